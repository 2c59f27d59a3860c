# -q: nothing on stderr or stdout on success, warnings included; the output is written.
. "$CLIDIR/lib.sh"
[ -z "$($NF4QUANT -q "$FIXTURES/models/tiny-llama" -o out 2>&1)" ] || die "-q printed something"
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
# a plain copy gives a warning without -q, none with it
$NF4QUANT "$DATA/mixed.safetensors" -o w.safetensors 2>&1 | grep -q 'warning: ' || die "no warning without -q"
[ -z "$($NF4QUANT --quiet "$DATA/mixed.safetensors" -o q.safetensors 2>&1)" ] || die "-q printed a warning"
