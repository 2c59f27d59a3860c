$NF4QUANT -q --quant-type fp4 "$FIXTURES/models/tiny-llama" -o out
$STCMP out "$FIXTURES/models/tiny-llama-fp4"
cmp out/config.json "$FIXTURES/models/tiny-llama-fp4/config.json"
