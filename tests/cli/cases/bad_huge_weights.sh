# Finite weights near float32's maximum: each block's scale is finite, but the mean of the scales (the
# double-quantization offset, which bitsandbytes takes in float32) overflows. Refused with the tensor named,
# nothing written (it had been written with "nested_offset": Infinity, which is not JSON and which the
# tools themselves then refused to read). Without double quantization the same weights quantize.
. "$CLIDIR/lib.sh"
fails --include '*' "$CLIDIR/data/nonfinite/huge.safetensors" -o q.safetensors
[ "$rc" = 1 ] || die "exit status $rc"
$NF4QUANT -q --include '*' --no-double-quant "$CLIDIR/data/nonfinite/huge.safetensors" -o q.safetensors ||
	die "--no-double-quant refused"
[ -f q.safetensors ] || die "no output"
rm q.safetensors
fails_cleanly --include '*' "$CLIDIR/data/nonfinite/huge.safetensors" -o q.safetensors
