# A file shorter than the 8-byte header length: exit 1, the file named, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$DATA/short.safetensors" -o out
