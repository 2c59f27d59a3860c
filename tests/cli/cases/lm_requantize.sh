# --requantize: PEFT's own 4-bit merge (dequantize, add the delta in float32, quantize the float32 sum),
# saved by transformers (fixtures/peft/merged/plain_r8__requant-nf4): the same tensors byte for byte
# (quant_state JSON compared by value) and the same config.json, from the NF4 checkpoint and from the
# float base (which PEFT, and so loramerge, quantizes first); from the float base, llm_int8_skip_modules
# is the explicit list nf4quant writes too (nf4_config), the 4-bit base's own kept from the other.
. "$CLIDIR/lib.sh"
ref="$FIXTURES/peft/merged/plain_r8__requant-nf4"
$LORAMERGE -q --requantize "$FIXTURES/models/tiny-llama-nf4" "$FIXTURES/peft/adapters/plain_r8" -o from-nf4
$LORAMERGE -q --requantize "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8" -o from-float
for o in from-nf4 from-float; do
	$STCMP $o "$ref" >$o.cmp || { cat $o.cmp >&2; die "$o differs from PEFT's 4-bit merge"; }
	if [ $o = from-nf4 ]; then cat "$ref/config.json"; else nf4_config "$ref/config.json"; fi >$o.want
	cmp $o/config.json $o.want || die "$o: config.json differs from transformers'"
done
