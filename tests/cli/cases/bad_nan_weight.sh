# A NaN in a weight that must be quantized (BF16, at [3, 7]): exit 1, one message naming the file, the
# tensor and the element; nothing written, into a directory, into shards or into a .safetensors file.
. "$CLIDIR/lib.sh"
fails --max-shard-size 1KB "$DATA/nan_model" -o out
fails "$DATA/nan_model" -o out.safetensors
fails_cleanly "$DATA/nan_model" -o out
