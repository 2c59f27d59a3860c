# nf4quant -d of a float checkpoint: nothing to dequantize, said, exit 1, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly -d "$FIXTURES/models/tiny-llama" -o out
