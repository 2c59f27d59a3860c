# A NaN in FINETUNED's weight: exit 1, the element named, nothing written (and none for a NaN in BASE).
. "$CLIDIR/lib.sh"
TOOL=loraextract
D=$DATA/extract
fails --rank 2 $D/nan.safetensors $D/ok.safetensors -o out
fails_cleanly --rank 2 $D/base.safetensors $D/nan.safetensors -o out
