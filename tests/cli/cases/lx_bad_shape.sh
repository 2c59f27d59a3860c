# A weight of another shape in FINETUNED: exit 1, both shapes and both files named, nothing written.
. "$CLIDIR/lib.sh"
TOOL=loraextract
fails_cleanly --rank 2 "$DATA/extract/base.safetensors" "$DATA/extract/shape.safetensors" -o out
