# Five input shards give five output shards (the input's layout) with an index, and the same tensors.
$NF4QUANT -q "$FIXTURES/models/tiny-llama-sharded" -o out
test -f out/model.safetensors.index.json
test "$(ls out/model-0000*-of-00005.safetensors | wc -l)" = 5
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
$NF4QUANT -q "$FIXTURES/models/tiny-llama-sharded/model.safetensors.index.json" -o out2
$STCMP out2 "$FIXTURES/models/tiny-llama-nf4"
