# --device: cpu gives the default's bytes; an unknown name is a usage error; a GPU that cannot be used is
# an error naming the device, with nothing left.
. "$CLIDIR/lib.sh"
# the default device is what this case checks: not one the environment sets (LQ_DEVICE)
unset LQ_DEVICE
TOOL=loramerge
B="$FIXTURES/models/tiny-llama"
A="$FIXTURES/peft/adapters/dora_r8"
$LORAMERGE -q --device cpu $B $A -o cpu
$LORAMERGE -q $B $A -o auto
cmp cpu/model.safetensors auto/model.safetensors
usage_error --device bogus $B $A -o out
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
	fails --device cuda:999 $B $A -o out
else
	fails --device cuda $B $A -o out
fi
case $msg in *"--device cuda"*) ;; *) die "message does not name the device: $msg" ;; esac
