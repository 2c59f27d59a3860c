# A header that lies about a size: data_offsets that hold fewer bytes than dtype and shape need: exit 1,
# the file and the tensor named, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$DATA/wrong_size.safetensors" -o out
