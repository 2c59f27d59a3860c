# --device auto decides from the plan before opening anything (libquant/device_auto.c), and -v says what
# it chose and why: the shipped model's run is one pass of a megabyte, which no GPU's start would pay for,
# so each tool takes the CPU, as the default and as --device auto (a build without CUDA says that instead).
# Without -v no reason is given.
. "$CLIDIR/lib.sh"
# the default device is what this case checks: not one the environment sets (LQ_DEVICE)
unset LQ_DEVICE
M="$FIXTURES/models"
A="$FIXTURES/peft/adapters/plain_r8"
check() { # check TOOL-OUTPUT: the why line, and the compute line that follows it
	case $1 in *"--device auto: cpu (built without CUDA)"*) # make HAVE_CUDA=0: nothing to weigh
		printf '%s\n' "$1" | grep -q "compute: CPU: built without CUDA; " || die "no compute note: $1"
		return ;;
	esac
	printf '%s\n' "$1" | grep -q "^[a-z0-9]*: --device auto: cpu (2 cores, [0-9.]* [kM]B .*about [0-9.]* s on the CPU, [0-9.]* s on the GPU" ||
		die "no reason: $1"
	printf '%s\n' "$1" | grep -q "compute: CPU: faster for this run (--device auto); " || die "no compute note: $1"
}
check "$($NF4QUANT -v -T 2 "$M/tiny-llama" -o q 2>&1 >/dev/null)"
check "$($NF4QUANT -v -T 2 --device auto "$M/tiny-llama" -o q.safetensors 2>&1 >/dev/null)"
check "$(cat "$M/tiny-llama/model.safetensors" | $NF4QUANT -v -T 2 - -o - 2>&1 >/dev/null)"
check "$($NF4QUANT -v -T 2 -d "$M/tiny-llama-nf4" -o d 2>&1 >/dev/null)"
check "$($LORAMERGE -v -T 2 "$M/tiny-llama" "$A" -o m 2>&1 >/dev/null)"
check "$($QINSPECT -v -T 2 "$M/tiny-llama-nf4" "$M/tiny-llama" 2>&1 >/dev/null)"
check "$($QINSPECT -v -T 2 --adapter "$A" "$M/tiny-llama" 2>&1 >/dev/null)"
# one line, said only with -v; --device cpu gives no reason (nothing was weighed)
$NF4QUANT -T 2 -f "$M/tiny-llama" -o q 2>&1 | grep -q -e "--device auto" && die "a reason given without -v"
$NF4QUANT -v -T 2 -f --device cpu "$M/tiny-llama" -o q 2>&1 | grep -q -e "--device auto" && die "--device cpu gave a reason"
# the outputs are the CPU's
$NF4QUANT -q -T 2 --device cpu "$M/tiny-llama" -o c
cmp q/model.safetensors c/model.safetensors || die "auto and cpu differ"
