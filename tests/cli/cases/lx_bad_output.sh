# The output may not be an input, nor lie inside one: refused, exit 1, nothing written.
. "$CLIDIR/lib.sh"
TOOL=loraextract
cp -r "$FIXTURES/models/tiny-llama" base
cp -r "$FIXTURES/models/tiny-llama" ft
fails --rank 2 base ft -o base
fails_cleanly --rank 2 base ft -o ft/adapter
