# `--` ends the options: an INPUT whose name begins with '-' is an INPUT.
. "$CLIDIR/lib.sh"
cp -R "$FIXTURES/models/tiny-llama" ./-model
$NF4QUANT -q -o out -- -model
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
