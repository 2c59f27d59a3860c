# Any thread count, any run: the same bytes.
$NF4QUANT -q -T 1 "$FIXTURES/models/tiny-llama" -o a
$NF4QUANT -q -T 2 "$FIXTURES/models/tiny-llama" -o b
$NF4QUANT -q -T 7 "$FIXTURES/models/tiny-llama" -o c
LQ_CPU=scalar $NF4QUANT -q -T 3 "$FIXTURES/models/tiny-llama" -o d
for x in b c d; do
	for f in config.json generation_config.json model.safetensors; do cmp "a/$f" "$x/$f"; done
done
