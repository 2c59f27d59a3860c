# INPUT given as a .safetensors file: a directory OUTPUT holds model.safetensors only (no config.json to
# rewrite, nothing to carry), with the tensors of the model directory's conversion.
. "$CLIDIR/lib.sh"
$NF4QUANT -q "$FIXTURES/models/tiny-llama/model.safetensors" -o out
[ "$(ls -A out | tr "\n" " ")" = "MANIFEST model.safetensors " ] || die "out: $(ls -A out)"
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
