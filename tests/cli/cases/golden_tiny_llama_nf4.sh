# The shipped model quantized with the defaults equals what transformers + bitsandbytes saved, tensor for
# tensor, and config.json is byte for byte theirs.
$NF4QUANT -q "$FIXTURES/models/tiny-llama" -o out
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
cmp out/config.json "$FIXTURES/models/tiny-llama-nf4/config.json"
cmp out/generation_config.json "$FIXTURES/models/tiny-llama/generation_config.json"
test "$(ls out | tr '\n' ' ')" = "MANIFEST config.json generation_config.json model.safetensors "
