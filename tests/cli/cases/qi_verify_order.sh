# --verify is a mode and PATH its operand: --verify --json PATH, --json --verify PATH and --verify PATH
# --json are the same (--verify took the next word as PATH: "--json"); what only a report uses is refused.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
TOOL=qinspect
$NF4QUANT -q --device cpu "$M/tiny-llama" -o out
for args in "--verify --json out" "--json --verify out" "--verify out --json"; do
	$QINSPECT $args >v.json 2>err || die "$args: $(cat err)"
	grep -q '"verified":[[:space:]]*true' v.json || die "$args: $(cat v.json)"
done
$QINSPECT --verify out >v.txt || die "--verify out"
grep -q "^out: OK" v.txt || die "--verify out: $(cat v.txt)"
usage_error --verify
usage_error --json --verify
usage_error --verify out out
usage_error --verify out --html r.html
usage_error --verify out --max-rel-err 0.1
usage_error --verify out --csv
