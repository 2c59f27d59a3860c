# calc.sh: sourced by the benchmark and GPU scripts for their arithmetic on decimal seconds and bytes.
# awk, not bc: the GPU machine has no bc, and a missing bc printed 0.000 for every time while the step
# still passed. calc EXPR prints EXPR's value; an infinite or NaN result (a division by zero, a time
# that was never measured) is an error, not a number in a table.
calc() {
	awk "BEGIN { v = ($*); if (!(v > -1e300 && v < 1e300)) exit 1; printf \"%.9f\\n\", v }" </dev/null ||
		{ echo "calc: cannot evaluate '$*'" >&2; return 1; }
}
# smaller A B: the smaller of two numbers
smaller() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 < b + 0 ? a : b) }' </dev/null; }
# positive X: true when X is a number above zero (a measured time)
positive() { awk -v x="$1" 'BEGIN { exit !(x ~ /^[0-9.eE+-]+$/ && x + 0 > 0) }' </dev/null; }
