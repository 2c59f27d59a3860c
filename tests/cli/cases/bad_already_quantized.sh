# A model whose config.json already has a quantization_config (our own output): exit 1, said, nothing
# written.
. "$CLIDIR/lib.sh"
fails_cleanly "$FIXTURES/models/tiny-llama-nf4" -o out
