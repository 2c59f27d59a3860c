# LQ_DEVICE: the device when --device is not given (the GPU machine's session sets it so that the
# command-line cases run on the GPU); --device wins over it; a form --device does not take is a usage error
# in every tool, and an empty value is the default (auto).
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
LQ_DEVICE=cpu $NF4QUANT -v -T 2 "$M/tiny-llama" -o a.safetensors 2>err || die "LQ_DEVICE=cpu failed"
grep -q "compute: CPU, as asked" err || die "LQ_DEVICE=cpu not taken: $(cat err)"
LQ_DEVICE= $NF4QUANT -v -T 2 "$M/tiny-llama" -o b.safetensors 2>err || die "empty LQ_DEVICE failed"
grep -q -e "--device auto" err || die "empty LQ_DEVICE is not auto: $(cat err)"
cmp a.safetensors b.safetensors || die "the device changed the bytes"
LQ_DEVICE=cuda:99 $NF4QUANT -v --device cpu "$M/tiny-llama" -o c.safetensors 2>err || die "--device did not win over LQ_DEVICE"
grep -q "compute: CPU, as asked" err || die "--device cpu not taken: $(cat err)"
rm -f a.safetensors b.safetensors c.safetensors err
for tool in nf4quant loramerge qinspect; do
	TOOL=$tool
	case $tool in
	nf4quant) args="$M/tiny-llama -o x" ;;
	loramerge) args="$M/tiny-llama $FIXTURES/peft/adapters/plain_r8 -o x" ;;
	*) args="$M/tiny-llama" ;;
	esac
	LQ_DEVICE=gpu usage_error $args
	printf '%s\n' "$msg" | grep -q "invalid LQ_DEVICE 'gpu' (cpu, cuda, cuda:N, all or auto)" || die "$tool: $msg"
done
