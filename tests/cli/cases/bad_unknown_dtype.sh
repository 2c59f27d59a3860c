# A dtype safetensors does not define: exit 1, the file, the tensor and the dtype named, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$DATA/unknown_dtype.safetensors" -o out
