# -f replaces an existing output directory (nothing of the old one stays) and an existing file, and
# leaves no temporary or old copy beside them.
. "$CLIDIR/lib.sh"
mkdir out
echo old >out/marker
echo old >out.safetensors
$NF4QUANT -q -f "$FIXTURES/models/tiny-llama" -o out
$NF4QUANT -q --force "$FIXTURES/models/tiny-llama" -o out.safetensors
[ "$(ls out | tr '\n' ' ')" = "MANIFEST config.json generation_config.json model.safetensors " ] || die "out: $(ls out)"
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
$STCMP out.safetensors "$FIXTURES/models/tiny-llama-nf4/model.safetensors"
[ "$(ls -A | tr '\n' ' ')" = "out out.safetensors " ] || die "left beside: $(ls -A)"
