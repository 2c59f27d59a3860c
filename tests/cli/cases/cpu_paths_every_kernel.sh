# Every CPU path this machine runs (LQ_CPU: scalar, avx2, avx512) writes the same bytes as the default
# (the fastest), for a conversion, a merge and a merge with --requantize; -v names the kernels used. A
# path the processor lacks is a usage error that says so (and is skipped here, out loud).
. "$CLIDIR/lib.sh"
$NF4QUANT -q "$FIXTURES/models/tiny-llama" -o q-default
$LORAMERGE -q "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/dora_r8" -o m-default
$LORAMERGE -q --requantize "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8" -o r-default
for p in scalar avx2 avx512; do
	rc=0
	LQ_CPU=$p $NF4QUANT -v "$FIXTURES/models/tiny-llama" -o q-$p 2>err || rc=$?
	if [ $rc = 2 ] && grep -qF "LQ_CPU=$p: this CPU does not run the $p kernels" err; then
		echo "note: this CPU does not run the $p kernels: not compared"
		continue
	fi
	[ $rc = 0 ] || die "$p: nf4quant failed: $(cat err)"
	grep -q "cpu-$p kernels" err || die "$p: -v does not name the kernels: $(cat err)"
	LQ_CPU=$p $LORAMERGE -q -T 3 "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/dora_r8" -o m-$p
	LQ_CPU=$p $LORAMERGE -q --requantize "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8" -o r-$p
	cmp q-default/model.safetensors q-$p/model.safetensors || die "nf4quant: $p differs from the default"
	cmp m-default/model.safetensors m-$p/model.safetensors || die "loramerge: $p differs from the default"
	cmp r-default/model.safetensors r-$p/model.safetensors || die "loramerge --requantize: $p differs"
done
