# A model whose model.safetensors was cut short (a partial download): exit 1, the file named, nothing
# written.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/"* in/
size=$(wc -c <"$FIXTURES/models/tiny-llama/model.safetensors")
head -c $((size - 1000)) "$FIXTURES/models/tiny-llama/model.safetensors" >in/model.safetensors
fails_cleanly in -o out
