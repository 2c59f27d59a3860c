# Two tensors whose data_offsets overlap: exit 1, the file and the tensor named, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$DATA/overlap.safetensors" -o out
