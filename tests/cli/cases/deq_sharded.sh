# nf4quant -d of a sharded 4-bit checkpoint keeps its layout (five shards and an index), and gives the
# tensors of the single file; --max-shard-size splits it; --shard 1/2, 2/2 and --finish give the bytes of
# one run; the MANIFEST says how it was made.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$NF4QUANT -q "$M/tiny-llama-sharded" -o q
$NF4QUANT -q -d q -o out
test -f out/model.safetensors.index.json
test "$(ls out/model-0000*-of-00005.safetensors | wc -l)" = 5
$NF4QUANT -q -d "$M/tiny-llama-nf4" -o one
$STCMP out one || die "the shards' tensors differ from the single file's"
$NF4QUANT -q -d q/model.safetensors.index.json -o out2
$STCMP out2 one
$NF4QUANT -q -d --max-shard-size 300KB "$M/tiny-llama-nf4" -o split
[ "$(ls split/*.safetensors | wc -l)" -gt 1 ] || die "--max-shard-size made one shard"
$STCMP split one
$NF4QUANT -q -d --shard 1/2 q -o parts
$NF4QUANT -q -d --shard 2/2 q -o parts
$NF4QUANT -q -d --finish q -o parts
for f in $(ls out); do cmp "out/$f" "parts/$f" || die "parts: $f differs"; done
grep -q '"dequantize": *"true"' out/MANIFEST || die "MANIFEST: $(cat out/MANIFEST | head -20)"
