# nf4quant -d of every case bitsandbytes 0.50.2 quantized on an H200 (fixtures/reference: several block
# sizes, NF4 and FP4, with and without double quantization, bf16/fp16/fp32; fixtures/bnb-edge: subnormals,
# thresholds, partial blocks, scales over many binades) equals its CUDA dequantize_4bit byte for byte, with
# the fast kernels and the reference ones (LQ_CPU=scalar), on one thread and on several.
. "$CLIDIR/lib.sh"
T="python3 $CLIDIR/data/deq_tool.py"
for set in "reference/tensors_ref/ref_q reference/tensors_ref/ref_deq" "bnb-edge/edge_ref_q bnb-edge/edge_ref_deq"; do
	set -- $set
	$NF4QUANT -q -d "$FIXTURES/$1.safetensors" -o deq.safetensors
	$T cmp deq.safetensors "$FIXTURES/$2.safetensors" .weight >&2 || die "$1: not bitsandbytes' dequantize_4bit"
	LQ_CPU=scalar $NF4QUANT -q -f -d -T 1 "$FIXTURES/$1.safetensors" -o scalar.safetensors
	$NF4QUANT -q -f -d -T 3 "$FIXTURES/$1.safetensors" -o t3.safetensors
	cmp deq.safetensors scalar.safetensors || die "$1: the reference kernels differ"
	cmp deq.safetensors t3.safetensors || die "$1: the thread count changes the bytes"
	rm -f deq.safetensors scalar.safetensors t3.safetensors
done
