# A header that is not JSON: exit 1, the file named, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$DATA/not_json.safetensors" -o out
