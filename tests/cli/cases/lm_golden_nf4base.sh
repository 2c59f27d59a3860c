# The QLoRA merge: the adapter added to the dequantized NF4 weights it was trained against, two ways (a
# float base with --base-as nf4, and the NF4 checkpoint nf4quant made), against PEFT's merge into the
# dequantized NF4 base (fixtures/peft/merged/NAME__nf4base.safetensors). Tolerance as lm_golden_bf16 (all
# elements are in fact identical here). The two ways give the same bytes.
. "$CLIDIR/lib.sh"
for a in plain_r8 rslora_r16 dora_r8; do
	ref="$FIXTURES/peft/merged/${a}__nf4base.safetensors"
	$LORAMERGE -q --base-as nf4 "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/$a" -o $a-base-as
	$LORAMERGE -q "$FIXTURES/models/tiny-llama-nf4" "$FIXTURES/peft/adapters/$a" -o $a-nf4
	for o in $a-base-as $a-nf4; do
		$STCMP --subset --ulps 1 $o "$ref" >$o.cmp || { cat $o.cmp >&2; die "$o differs from PEFT's merge"; }
	done
	cmp $a-base-as/model.safetensors $a-nf4/model.safetensors || die "$a: --base-as and the NF4 base differ"
	# the scratch file of --base-as is gone
	[ "$(ls -A | grep -c base-as-)" = 0 ] || die "a scratch file was left: $(ls -A)"
	grep -q '"dtype": "bfloat16"' $a-nf4/config.json || die "$a-nf4: dtype not bfloat16"
	! grep -q quantization_config $a-nf4/config.json || die "$a-nf4: quantization_config kept"
done
