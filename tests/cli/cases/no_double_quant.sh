# --no-double-quant: no nested_* tensors, absmax stored as F32 (one float per block), config.json and
# --json say so.
. "$CLIDIR/lib.sh"
$NF4QUANT -q --no-double-quant "$FIXTURES/models/tiny-llama" -o out
h=$(header out/model.safetensors)
case $h in *nested_*) die "nested_* tensors written" ;; esac
[ "$(printf '%s' "$h" | grep -o '\.absmax":{"dtype":"F32"' | wc -l)" = 14 ] || die "absmax is not F32 in 14 tensors"
printf '%s' "$h" | grep -qF '"model.layers.0.self_attn.q_proj.weight.absmax":{"dtype":"F32","shape":[256],' ||
	die "q_proj absmax is not F32 [256]"
grep -q '^    "bnb_4bit_use_double_quant": false,$' out/config.json || die "config.json does not say false"
[ "$(grep -ao '"nested_' out/model.safetensors | wc -l)" = 0 ] || die "a quant_state names nested fields"
$NF4QUANT --json --dry-run --no-double-quant "$FIXTURES/models/tiny-llama" -o x |
	grep -q '"double_quant":[[:space:]]*false' || die "--json says double_quant is not false"
