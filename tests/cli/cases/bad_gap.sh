# Bytes between two tensors that belong to neither: exit 1, the file and the tensor named, nothing
# written.
. "$CLIDIR/lib.sh"
fails_cleanly "$DATA/gap.safetensors" -o out
