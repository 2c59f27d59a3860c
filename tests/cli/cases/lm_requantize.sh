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
# The weights no adapter changes keep the 4-bit groups that loading the base in 4 bits gives them (PEFT
# leaves those layers alone): from the float base, the groups nf4quant makes (quant_state dtype bfloat16),
# so the same model as from the NF4 checkpoint. rslora_r16 changes q_proj and v_proj only. (They were
# dequantized and quantized again, with a float32 quant_state and another double-quantization offset.)
A="$FIXTURES/peft/adapters/rslora_r16"
$LORAMERGE -q --requantize "$FIXTURES/models/tiny-llama-nf4" "$A" -o rs-nf4
$LORAMERGE -q --requantize "$FIXTURES/models/tiny-llama" "$A" -o rs-float
$STCMP rs-float rs-nf4 >rs.cmp || { cat rs.cmp >&2; die "--requantize of the float base differs from the NF4 base's"; }
[ "$(grep -ao '"dtype": "bfloat16"' rs-float/model.safetensors | wc -l)" = 10 ] ||
	die "not 10 untouched weights with a bfloat16 quant_state"
