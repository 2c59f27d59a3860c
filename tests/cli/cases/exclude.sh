# --exclude GLOB (repeatable) keeps matching tensors as they are, even when --include names them too;
# the others are quantized as usual.
. "$CLIDIR/lib.sh"
$NF4QUANT -q --exclude '*.mlp.*' --exclude '*.q_proj.weight' "$FIXTURES/models/tiny-llama" -o out
h=$(header out/model.safetensors)
for l in 0 1; do
	for t in mlp.up_proj:320,128 mlp.gate_proj:320,128 mlp.down_proj:128,320 self_attn.q_proj:128,128; do
		n="model.layers.$l.${t%%:*}.weight"
		printf '%s' "$h" | grep -qF "\"$n\":{\"dtype\":\"BF16\",\"shape\":[${t#*:}]," || die "$n not kept"
		case $h in *"$n.absmax"*) die "$n quantized" ;; esac
	done
done
[ "$(printf '%s' "$h" | grep -o 'quant_state' | wc -l)" = 6 ] || die "expected 6 quantized tensors"
$NF4QUANT --json --dry-run --include '*norm*' --exclude 'model.norm.*' "$FIXTURES/models/tiny-llama" -o x >j
grep -A2 '"name":[[:space:]]*"model.norm.weight"' j | grep -q '"action":[[:space:]]*"copy"' || die "model.norm.weight quantized"
grep -A2 '"name":[[:space:]]*"model.layers.0.input_layernorm.weight"' j | grep -q '"action":[[:space:]]*"quantize"' ||
	die "--include '*norm*' ignored"
