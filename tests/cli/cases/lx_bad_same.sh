# Two models that do not differ: no adapter, exit 1, nothing written.
. "$CLIDIR/lib.sh"
TOOL=loraextract
fails_cleanly --rank 2 "$DATA/extract/base.safetensors" "$DATA/extract/same.safetensors" -o out
