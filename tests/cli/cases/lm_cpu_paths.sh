# The scalar reference and the vector code, and any number of threads, write the same bytes; so does
# every --device that works here.
. "$CLIDIR/lib.sh"
for a in plain_r8 dora_r8 embed_mts bf16_stored; do
	$LORAMERGE -q "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/$a" -o $a-default
	LQ_CPU=scalar $LORAMERGE -q -T 1 "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/$a" -o $a-scalar
	$LORAMERGE -q -T 3 --device cpu "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/$a" -o $a-t3
	cmp $a-default/model.safetensors $a-scalar/model.safetensors || die "$a: scalar and vector code differ"
	cmp $a-default/model.safetensors $a-t3/model.safetensors || die "$a: thread counts differ"
done
LQ_CPU=scalar $LORAMERGE -q --requantize "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/dora_r8" -o rq-scalar
$LORAMERGE -q --requantize "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/dora_r8" -o rq
cmp rq/model.safetensors rq-scalar/model.safetensors || die "--requantize: scalar and vector code differ"
