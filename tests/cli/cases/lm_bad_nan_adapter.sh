# A NaN in an adapter would spread over the whole weight: refused, naming the adapter tensor.
. "$CLIDIR/lib.sh"
TOOL=loramerge
mkdir -p ../nan_adapter
cp "$FIXTURES/peft/adapters/rslora_r16/adapter_config.json" "$FIXTURES/peft/adapters/rslora_r16/adapter_model.safetensors" ../nan_adapter/
chmod u+w ../nan_adapter/adapter_model.safetensors
# the last 4 bytes of the file are the last element of the last tensor (float32): a quiet NaN
size=$(wc -c <../nan_adapter/adapter_model.safetensors)
printf '\000\000\300\177' | dd of=../nan_adapter/adapter_model.safetensors bs=1 seek=$((size - 4)) conv=notrunc 2>/dev/null
fails_cleanly "$FIXTURES/models/tiny-llama" ../nan_adapter -o out
