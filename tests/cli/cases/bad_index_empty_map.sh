# An index whose weight_map names no tensor would give an empty model: refused, exit 1, nothing written.
. "$CLIDIR/lib.sh"
cp -R "$FIXTURES/models/tiny-llama-sharded" in
printf '{"metadata": {"total_size": 0}, "weight_map": {}}\n' >in/model.safetensors.index.json
TOOL=qinspect
fails in
TOOL=nf4quant
fails_cleanly in -o out
