# --json --dry-run: the same valid JSON document on stdout and nothing else there, "dry_run": true, and
# nothing written.
. "$CLIDIR/lib.sh"
out=$($NF4QUANT --json --dry-run "$FIXTURES/models/tiny-llama-sharded" -o out)
[ -z "$(ls -A)" ] || die "written: $(ls -A)"
printf '%s\n' "$out" | python3 -c 'import json, sys; json.load(sys.stdin)' || die "not valid JSON"
printf '%s\n' "$out" | grep -q '"dry_run":[[:space:]]*true' || die "dry_run is not true"
[ "$(printf '%s\n' "$out" | grep -c '^[[:space:]]*"name":')" = 20 ] || die "not 20 tensors"
[ "$(printf '%s\n' "$out" | grep -c '"action":[[:space:]]*"quantize"')" = 14 ] || die "not 14 quantized"
printf '%s\n' "$out" | sed -n '/"totals":/,/}/p' | grep -q '"bytes_out":' || die "no totals.bytes_out"
# standard output is the JSON's alone; the human plan is on standard error with -v only (it was on
# standard error, besides the JSON, without -v)
err=$($NF4QUANT --json --dry-run "$FIXTURES/models/tiny-llama-sharded" -o out 2>&1 >/dev/null)
[ -z "$err" ] || die "stderr without -v: $err"
$NF4QUANT -v --json --dry-run "$FIXTURES/models/tiny-llama-sharded" -o out >v.json 2>v.err
python3 -c 'import json, sys; json.load(open("v.json"))' || die "-v: not valid JSON: $(cat v.json)"
[ "$(grep -c '^nf4quant: quantize ' v.err)" = 14 ] || die "-v: not 14 quantize lines on stderr: $(cat v.err)"
grep -q '^nf4quant: 14 of 20 tensors quantized' v.err || die "-v: no totals on stderr: $(cat v.err)"
