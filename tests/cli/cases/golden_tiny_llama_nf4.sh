# The shipped model quantized with the defaults equals what transformers + bitsandbytes saved, tensor for
# tensor, and config.json is byte for byte theirs but for the explicit llm_int8_skip_modules (nf4_config).
. "$CLIDIR/lib.sh"
$NF4QUANT -q "$FIXTURES/models/tiny-llama" -o out
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
nf4_config "$FIXTURES/models/tiny-llama-nf4/config.json" | cmp - out/config.json
cmp out/generation_config.json "$FIXTURES/models/tiny-llama/generation_config.json"
test "$(ls out | tr '\n' ' ')" = "MANIFEST config.json generation_config.json model.safetensors "
