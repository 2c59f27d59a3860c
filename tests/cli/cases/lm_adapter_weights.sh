# ADAPTER:WEIGHT scales an adapter: weight 0 leaves every tensor as it was; several adapters merge one
# after another, each result rounded, as merging them in separate runs does.
. "$CLIDIR/lib.sh"
A="$FIXTURES/peft/adapters"
$LORAMERGE -q "$FIXTURES/models/tiny-llama" "$A/plain_r8:0" -o zero
$STCMP zero "$FIXTURES/models/tiny-llama" >zero.cmp || { cat zero.cmp >&2; die "weight 0 changed the base"; }
$LORAMERGE -q "$FIXTURES/models/tiny-llama" "$A/plain_r8" "$A/rslora_r16:0.5" -o both
$LORAMERGE -q "$FIXTURES/models/tiny-llama" "$A/plain_r8" -o first
$LORAMERGE -q first "$A/rslora_r16:0.5" -o second
cmp both/model.safetensors second/model.safetensors || die "two adapters in one run differ from two runs"
$STCMP both first >/dev/null && die "the second adapter changed nothing"
# a ':' that is part of the path is not a weight
mkdir odd
cp -r "$A/plain_r8" odd/x:2
$LORAMERGE -q "$FIXTURES/models/tiny-llama" odd/x:2 -o colon
cmp colon/model.safetensors first/model.safetensors || die "odd/x:2 was read as a weight"
