# Bytes after the last tensor's data: exit 1, the file named, nothing written.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/"* in/
printf 'junk' >>in/model.safetensors
fails_cleanly in -o out
