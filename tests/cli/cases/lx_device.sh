# loraextract --device: cpu gives the default's bytes (auto keeps small SVDs on the CPU, and without a GPU
# computes there); an unknown name is a usage error; a GPU that cannot be used (none here, a build
# without CUDA, or cuSOLVER's library missing on the GPU machine) is an error naming the device, before
# any work, with nothing left. Before, --device was accepted and ignored: the SVDs ran on the CPU.
. "$CLIDIR/lib.sh"
TOOL=loraextract
D=$DATA/extract
unset LQ_DEVICE
$LORAEXTRACT -q --device cpu --rank 2 $D/base.safetensors $D/ok.safetensors -o cpu
$LORAEXTRACT -q --rank 2 $D/base.safetensors $D/ok.safetensors -o auto
cmp cpu/adapter_model.safetensors auto/adapter_model.safetensors || die "--device cpu and auto differ"
$LORAEXTRACT -v --rank 2 $D/base.safetensors $D/ok.safetensors -o auto2 2>err
grep -q '^loraextract: compute: CPU (--device auto: ' err || die "-v does not say where auto computes"
usage_error --device bogus --rank 2 $D/base.safetensors $D/ok.safetensors -o out
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
	fails --device cuda:999 --rank 2 $D/base.safetensors $D/ok.safetensors -o out
else
	fails --device cuda --rank 2 $D/base.safetensors $D/ok.safetensors -o out
fi
case $msg in "loraextract: --device cuda"*) ;; *) die "message does not name the device: $msg" ;; esac
# -n plans without opening a device
$LORAEXTRACT -n --device cuda:999 --rank 2 $D/base.safetensors $D/ok.safetensors -o d >/dev/null || die "-n opened the device"
