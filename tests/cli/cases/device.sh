# --device: cpu always works and gives the default's bytes; an unknown name is a usage error; a GPU that
# cannot be used (none here, or a build without CUDA) is an error naming the device, with nothing left.
. "$CLIDIR/lib.sh"
# the default device is what this case checks: not one the environment sets (LQ_DEVICE)
unset LQ_DEVICE
$NF4QUANT -q --device cpu "$FIXTURES/models/tiny-llama" -o cpu
$NF4QUANT -q "$FIXTURES/models/tiny-llama" -o auto
cmp cpu/model.safetensors auto/model.safetensors
usage_error --device bogus "$FIXTURES/models/tiny-llama" -o out
usage_error --device cuda:x "$FIXTURES/models/tiny-llama" -o out
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
	fails --device cuda:999 "$FIXTURES/models/tiny-llama" -o out
else
	fails --device cuda "$FIXTURES/models/tiny-llama" -o out
fi
case $msg in *"--device cuda"*) ;; *) die "message does not name the device: $msg" ;; esac
