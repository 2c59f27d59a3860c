# LQ_TEST_FAIL_DEVICE (the GPU whose kernel launches fail, for tests/gpu/multi_gpu.sh) is read only where
# the CUDA backend opens its devices: the CPU never sees it, whatever its value. Every tool writes the
# bytes of a run without it on --device cpu, and on --device auto where auto takes the CPU (the shipped
# models). That the named GPU fails, with a message naming it, is checked on a GPU machine only.
. "$CLIDIR/lib.sh"
# the default device is what this case checks: not one the environment sets (LQ_DEVICE)
unset LQ_DEVICE
M="$FIXTURES/models"
A="$FIXTURES/peft/adapters/plain_r8"
$NF4QUANT -q --device cpu "$M/tiny-llama" -o ref
$NF4QUANT -q --device cpu -d "$M/tiny-llama-nf4" -o ref-d
$LORAMERGE -q --device cpu --requantize "$M/tiny-llama" "$A" -o ref-m
$QINSPECT --json --device cpu "$M/tiny-llama-nf4" "$M/tiny-llama" | grep -v -e '"seconds"' -e '"device"' >ref.json
for v in 0 1 15 x; do
	for d in cpu auto; do
		LQ_TEST_FAIL_DEVICE=$v $NF4QUANT -q --device $d "$M/tiny-llama" -o o || die "nf4quant $d, $v"
		LQ_TEST_FAIL_DEVICE=$v $NF4QUANT -q --device $d -d "$M/tiny-llama-nf4" -o o-d || die "nf4quant -d $d, $v"
		LQ_TEST_FAIL_DEVICE=$v $LORAMERGE -q --device $d --requantize "$M/tiny-llama" "$A" -o o-m ||
			die "loramerge $d, $v"
		LQ_TEST_FAIL_DEVICE=$v $QINSPECT --json --device $d "$M/tiny-llama-nf4" "$M/tiny-llama" |
			grep -v -e '"seconds"' -e '"device"' >o.json || die "qinspect $d, $v"
		diff -r ref o && diff -r ref-d o-d && diff -r ref-m o-m && cmp ref.json o.json || die "$d, $v: other bytes"
		rm -rf o o-d o-m o.json
	done
done
