# --json --dry-run: the same valid JSON document on stdout, "dry_run": true, and nothing written.
. "$CLIDIR/lib.sh"
out=$($NF4QUANT --json --dry-run "$FIXTURES/models/tiny-llama-sharded" -o out)
[ -z "$(ls -A)" ] || die "written: $(ls -A)"
printf '%s\n' "$out" | python3 -c 'import json, sys; json.load(sys.stdin)' || die "not valid JSON"
printf '%s\n' "$out" | grep -q '"dry_run":[[:space:]]*true' || die "dry_run is not true"
[ "$(printf '%s\n' "$out" | grep -c '^[[:space:]]*"name":')" = 20 ] || die "not 20 tensors"
[ "$(printf '%s\n' "$out" | grep -c '"action":[[:space:]]*"quantize"')" = 14 ] || die "not 14 quantized"
printf '%s\n' "$out" | sed -n '/"totals":/,/}/p' | grep -q '"bytes_out":' || die "no totals.bytes_out"
