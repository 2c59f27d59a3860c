# A NaN in a tensor that is only copied (model.norm.weight) is no concern of ours: exit 0, the tensor
# copied as it is, NaN included.
. "$CLIDIR/lib.sh"
$NF4QUANT -q "$DATA/nan_norm_model" -o out
h=$(header out/model.safetensors)
printf '%s' "$h" | grep -qF '"model.norm.weight":{"dtype":"BF16","shape":[16],' || die "model.norm.weight not copied"
printf '%s' "$h" | grep -qF '"model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4":' || die "up_proj not quantized"
# the NaN (BF16 0x7fc0) is there, as in the input
[ "$(od -An -tx1 -v out/model.safetensors | tr -d ' \n' | grep -o 'c07f' | wc -l)" = \
	"$(od -An -tx1 -v "$DATA/nan_norm_model/model.safetensors" | tr -d ' \n' | grep -o 'c07f' | wc -l)" ] || die "NaN lost"
