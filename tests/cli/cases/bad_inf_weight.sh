# A +Inf in a weight that must be quantized (F32, at [5, 2]): exit 1, one message naming the file, the
# tensor and the element; nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$DATA/inf_model" -o out
