# No NVIDIA driver on the machine (the CUDA runtime then says "CUDA driver version is insufficient for
# CUDA runtime version"): --device cuda says "no GPU (no NVIDIA driver found)", for every tool. (--device
# auto does not try a GPU for the shipped model, whose run the CPU finishes sooner: device_auto_why; the
# unit test device_auto_context_follows_the_model checks its note when it tries one.) A driver library that
# is there but fails (the CUDA toolkit's stub libcuda.so) keeps the CUDA error's own text.
. "$CLIDIR/lib.sh"
# the default device is what this case checks: not one the environment sets (LQ_DEVICE)
unset LQ_DEVICE
M="$FIXTURES/models"
A="$FIXTURES/peft/adapters/plain_r8"
note=$($NF4QUANT -v --device cuda:0 "$M/tiny-llama" -o auto 2>&1 >/dev/null) && die "--device cuda:0 worked"
case $note in *"this build has no CUDA support"*) echo "SKIP: built without CUDA"; exit 0 ;; esac
if [ -e /proc/driver/nvidia/version ] || ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 ' ||
	find $(printf '%s' "${LD_LIBRARY_PATH:-}" | tr ':' ' ') -maxdepth 1 -name 'libcuda.so.1' 2>/dev/null | grep -q .; then
	echo "SKIP: an NVIDIA driver is installed (device.sh checks a device that cannot be used)"
	exit 0
fi
fails --device cuda "$M/tiny-llama" -o out
[ "$msg" = "nf4quant: --device cuda: no GPU (no NVIDIA driver found)" ] || die "nf4quant: $msg"
TOOL=loramerge
fails --device cuda:0 "$M/tiny-llama" "$A" -o out
[ "$msg" = "loramerge: --device cuda:0: no GPU (no NVIDIA driver found)" ] || die "loramerge: $msg"
TOOL=qinspect
fails --device all "$M/tiny-llama-nf4"
[ "$msg" = "qinspect: --device all: no GPU (no NVIDIA driver found)" ] || die "qinspect: $msg"
# a driver library that fails: its own error
nvcc=$(command -v nvcc) || exit 0
stub=$(dirname "$nvcc")/../lib64/stubs/libcuda.so
[ -f "$stub" ] || exit 0
stubdir=$(mktemp -d "${TMPDIR:-/tmp}/lq-stub-XXXXXX")
trap 'rm -rf "$stubdir"' EXIT
ln -s "$stub" "$stubdir/libcuda.so.1"
export LD_LIBRARY_PATH="$stubdir"
TOOL=nf4quant
fails --device cuda "$M/tiny-llama" -o out
case $msg in "nf4quant: --device cuda: no CUDA device: "*stub*) ;; *) die "stub driver: $msg" ;; esac
