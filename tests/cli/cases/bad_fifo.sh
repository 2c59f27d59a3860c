# A FIFO where a file is read (the weights, config.json, adapter_config.json, the adapter's weights, a
# part of --finish) would hold open(2) for ever, and a device such as /dev/zero never ends: refused at
# once, "not a regular file (a FIFO)", exit 1, nothing written. ("-" is standard input, by design.)
# Each run is limited to 60 s (valgrind included): one that hangs fails the case instead of holding it.
. "$CLIDIR/lib.sh"
NF4QUANT="timeout 60 $NF4QUANT"
LORAMERGE="timeout 60 $LORAMERGE"
M="$FIXTURES/models/tiny-llama"
A="$FIXTURES/peft/adapters/plain_r8"
said() {
	case $msg in *"$1"*) ;; *) die "not said: $1: $msg" ;; esac
}
mkfifo fifo.safetensors
fails fifo.safetensors -o out
said "cannot read 'fifo.safetensors': not a regular file (a FIFO)"
# the weights of a model directory, its config.json, its index
mkdir m1 m2 m3
cp "$M"/* m1/
rm m1/model.safetensors
mkfifo m1/model.safetensors
fails m1 -o out
said "not a regular file (a FIFO)"
cp "$M"/* m2/
rm m2/config.json
mkfifo m2/config.json
fails m2 -o out
said "cannot read 'm2/config.json': not a regular file (a FIFO)"
cp "$FIXTURES/models/tiny-llama-sharded"/* m3/
rm m3/model.safetensors.index.json
mkfifo m3/model.safetensors.index.json
fails m3 -o out
said "not a regular file (a FIFO)"
# a character device
mkdir m4
cp "$M"/* m4/
ln -sf /dev/zero m4/config.json
fails m4 -o out
said "not a regular file (a character device)"
# the adapter's config and weights
TOOL=loramerge
mkdir a1 a2
cp "$A"/* a1/
rm a1/adapter_config.json
mkfifo a1/adapter_config.json
fails "$M" a1 -o out
said "cannot read 'a1/adapter_config.json': not a regular file (a FIFO)"
cp "$A"/* a2/
rm a2/adapter_model.safetensors
mkfifo a2/adapter_model.safetensors
fails "$M" a2 -o out
said "cannot read 'a2/adapter_model.safetensors': not a regular file (a FIFO)"
# a part of --finish
TOOL=nf4quant
for i in 1 2 3; do $NF4QUANT -q --device cpu --shard $i/3 "$FIXTURES/models/tiny-llama-sharded" -o parts; done
rm parts/model-00003-of-00005.safetensors
mkfifo parts/model-00003-of-00005.safetensors
fails --finish "$FIXTURES/models/tiny-llama-sharded" -o parts
said "not a regular file (a FIFO)"
exit 0
