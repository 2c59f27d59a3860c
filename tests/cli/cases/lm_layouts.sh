# Output layouts: a sharded base gives the same shards (same tensors per shard) and the same tensors as
# the unsharded base; a .safetensors output is one file with the same tensors; --max-shard-size reshards.
. "$CLIDIR/lib.sh"
A="$FIXTURES/peft/adapters/plain_r8"
$LORAMERGE -q "$FIXTURES/models/tiny-llama" $A -o one
$LORAMERGE -q "$FIXTURES/models/tiny-llama-sharded" $A -o sharded
$STCMP one sharded >/dev/null || die "sharded output differs"
[ "$(cd sharded && ls *.safetensors)" = "$(cd "$FIXTURES/models/tiny-llama-sharded" && ls *.safetensors)" ] ||
	die "not the base's shards: $(ls sharded)"
[ -f sharded/model.safetensors.index.json ] || die "no index"
$LORAMERGE -q "$FIXTURES/models/tiny-llama" $A -o file.safetensors
$STCMP one file.safetensors >/dev/null || die "file output differs"
$LORAMERGE -q --max-shard-size 200KB "$FIXTURES/models/tiny-llama" $A -o small
[ "$(ls small/*.safetensors | wc -l)" -gt 2 ] || die "--max-shard-size 200KB: $(ls small)"
$STCMP one small >/dev/null || die "resharded output differs"
