# loramerge into the bf16 base, for each of PEFT's adapters in fixtures/peft/adapters, against the tensors
# PEFT 0.21's merge_and_unload() produced on an H200 (fixtures/peft/merged/NAME__bf16base.safetensors,
# which hold only the tensors the merge changed or added). Tolerance: one unit in the last place of bf16,
# with at least 99.9% of the elements identical: the spec's bound, since PEFT sums B @ A in cuBLAS's order
# and we sum in k order (1 element of 327680 differs for plain_r8, none elsewhere: dora_r8's one went when its
# norms took torch's CUDA order).
# Every other tensor must be the base's, byte for byte.
. "$CLIDIR/lib.sh"
for a in plain_r8 rslora_r16 patterns dora_r8 embed_mts bf16_stored; do
	$LORAMERGE -q "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/$a" -o $a
	ref="$FIXTURES/peft/merged/${a}__bf16base.safetensors"
	$STCMP --subset --ulps 1 $a "$ref" >$a.cmp || { cat $a.cmp >&2; die "$a differs from PEFT's merge"; }
	grep ': .* elements identical' $a.cmp | cut -d: -f1 | sort >$a.want
	[ -s $a.want ] || die "$a: nothing compared"
	# what differs from the base: exactly the reference's tensors
	$STCMP $a "$FIXTURES/models/tiny-llama" | grep -E ': (only in |[0-9]+ of [0-9]+ bytes differ)' |
		cut -d: -f1 | sort >$a.got || true
	cmp -s $a.want $a.got || { diff $a.want $a.got >&2; die "$a: other tensors changed than PEFT's"; }
done
