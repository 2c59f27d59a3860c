# nf4quant -d --dtype: the dequantized weights in fp32 or fp16, as transformers' dequantize(dtype) gives
# them: dequantize_4bit's result in the quant_state's type, then cast (so fp32 is the bf16 result widened);
# the other tensors as they are. An fp16 that cannot hold a value fails, naming the tensor and element.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
T="python3 $CLIDIR/data/deq_tool.py"
$NF4QUANT -q -d "$M/tiny-llama-nf4" -o bf16
$NF4QUANT -q -d --dtype fp32 "$M/tiny-llama-nf4" -o fp32
$NF4QUANT -q -d --dtype bf16 "$M/tiny-llama-nf4" -o bf16b
cmp bf16/model.safetensors bf16b/model.safetensors || die "--dtype bf16 is not the quant_state's bf16"
$T widen fp32/model.safetensors bf16/model.safetensors || die "fp32 is not the bf16 result widened"
grep -q '"dtype": *"fp32"' fp32/MANIFEST || die "MANIFEST lacks the dtype"
$NF4QUANT -q -d --dtype fp16 "$M/tiny-llama-nf4" -o fp16
header fp16/model.safetensors | grep -q '"model.layers.0.mlp.down_proj.weight":{"dtype":"F16"' ||
	die "fp16: $(header fp16/model.safetensors | head -c 300)"
header fp16/model.safetensors | grep -q '"model.norm.weight":{"dtype":"BF16"' || die "fp16: the norm was converted"
# the reference's large_vals case (scales near 1e30) does not fit fp16
TOOL=nf4quant
fails_cleanly -d --dtype fp16 "$FIXTURES/reference/tensors_ref/ref_q.safetensors" -o out.safetensors
