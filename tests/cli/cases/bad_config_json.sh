# A malformed config.json: exit 1, the file named, nothing written.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/"* in/
printf '{"model_type": "llama",\n' >in/config.json
fails_cleanly in -o out
