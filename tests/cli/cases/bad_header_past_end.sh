# A header length larger than the file: exit 1, the file named, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$DATA/header_past_end.safetensors" -o out
