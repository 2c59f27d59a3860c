. "$CLIDIR/lib.sh"
$NF4QUANT -q --quant-type fp4 "$FIXTURES/models/tiny-llama" -o out
$STCMP out "$FIXTURES/models/tiny-llama-fp4"
nf4_config "$FIXTURES/models/tiny-llama-fp4/config.json" | cmp - out/config.json
