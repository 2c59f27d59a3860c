# --json: stdout is one valid JSON document with, per tensor, name, action, shape, bytes_in and
# bytes_out, and totals that add up; the output is written as without it.
. "$CLIDIR/lib.sh"
$NF4QUANT --json "$FIXTURES/models/tiny-llama" -o out >report.json
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
python3 -c 'import json, sys; json.load(sys.stdin)' <report.json || die "not valid JSON"
for k in name action shape bytes_in bytes_out; do
	[ "$(sed -n '/"tensors":[[:space:]]*\[/,/"totals":/p' report.json | grep -c "^[[:space:]]*\"$k\":")" = 20 ] || die "\"$k\" not given for the 20 tensors"
done
[ "$(grep -c '"action":[[:space:]]*"quantize"' report.json)" = 14 ] || die "not 14 quantized"
grep -q '"dry_run":[[:space:]]*false' report.json || die "dry_run is not false"
grep -A1 '"name":[[:space:]]*"model.layers.0.mlp.down_proj.weight"' report.json | grep -q '"action":[[:space:]]*"quantize"' ||
	die "down_proj not quantized"
grep -A5 '"name":[[:space:]]*"model.layers.0.mlp.down_proj.weight"' report.json | tr -d ' \t\n' |
	grep -q '"shape":\[128,320\],"bytes_in":81920,' || die "down_proj: shape or bytes_in wrong"
sum=0
for b in $(sed -n 's/^[[:space:]]*"bytes_in":[[:space:]]*\([0-9]*\),*$/\1/p' report.json); do sum=$((sum + b)); done
# 20 tensors, then the total
[ "$sum" = $((2 * 754944)) ] || die "bytes_in: tensors and total do not add up to 2 x 754944 ($sum)"
for k in tensors quantized bytes_in bytes_out bits_per_param; do
	sed -n '/"totals":/,/}/p' report.json | grep -q "\"$k\":" || die "no totals.$k"
done
grep -q '"seconds":' report.json || die "no seconds"
