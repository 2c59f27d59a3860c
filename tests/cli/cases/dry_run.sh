# --dry-run (-n) writes nothing, not even a temporary, and prints the plan on stderr: sizes in and out,
# bits per parameter, the memory it needs; nothing on stdout.
. "$CLIDIR/lib.sh"
for o in out out.safetensors; do
	out=$($NF4QUANT --dry-run "$FIXTURES/models/tiny-llama" -o $o)
	[ -z "$out" ] || die "stdout: $out"
	out=$($NF4QUANT -n "$FIXTURES/models/tiny-llama-sharded" -o $o)
	[ -z "$(ls -A)" ] || die "written: $(ls -A)"
done
