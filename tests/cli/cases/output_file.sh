# A .safetensors OUTPUT: one file and nothing else (no config.json beside it), the tensors of the
# model directory's conversion.
. "$CLIDIR/lib.sh"
$NF4QUANT -q "$FIXTURES/models/tiny-llama" -o q.safetensors
[ "$(ls -A)" = q.safetensors ] || die "written: $(ls -A)"
$STCMP q.safetensors "$FIXTURES/models/tiny-llama-nf4/model.safetensors"
