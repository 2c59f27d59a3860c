# A sharded model into a .safetensors OUTPUT: one file holding every tensor, nothing else written.
. "$CLIDIR/lib.sh"
$NF4QUANT -q "$FIXTURES/models/tiny-llama-sharded" -o q.safetensors
[ "$(ls -A)" = q.safetensors ] || die "written: $(ls -A)"
$STCMP q.safetensors "$FIXTURES/models/tiny-llama-nf4/model.safetensors"
