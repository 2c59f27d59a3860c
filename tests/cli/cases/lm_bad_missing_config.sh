# An adapter directory without adapter_config.json: refused, naming the file.
. "$CLIDIR/lib.sh"
TOOL=loramerge
mkdir -p ../noconfig
cp "$FIXTURES/peft/adapters/plain_r8/adapter_model.safetensors" ../noconfig/
fails_cleanly "$FIXTURES/models/tiny-llama" ../noconfig -o out
