# --max-shard-size 100KB: several shards model-0000i-of-0000N.safetensors of at most 100000 data bytes,
# an index naming exactly those, the same tensors as the single-file conversion; 1GB: one file.
. "$CLIDIR/lib.sh"
$NF4QUANT -q --max-shard-size 100KB "$FIXTURES/models/tiny-llama" -o out
n=$(ls out | grep -c '^model-.*\.safetensors$')
[ "$n" -ge 3 ] || die "$n shards"
i=1
while [ $i -le "$n" ]; do
	f=out/$(printf 'model-%05d-of-%05d.safetensors' $i "$n")
	test -f "$f" || die "no $f"
	data=$(($(wc -c <"$f") - 8 - $(header "$f" | wc -c)))
	[ $data -le 100000 ] || die "$f holds $data data bytes"
	i=$((i + 1))
done
[ "$(grep -o '"model-[0-9]*-of-[0-9]*\.safetensors"' out/model.safetensors.index.json | sort -u | wc -l)" = "$n" ] ||
	die "the index does not name the $n shards"
[ "$(ls out | grep -cv '^model-.*-of-.*\.safetensors$')" = 4 ] || die "other files: $(ls out)"
test -f out/model.safetensors.index.json && test -f out/config.json && test -f out/generation_config.json
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
$NF4QUANT -q --max-shard-size 1GB "$FIXTURES/models/tiny-llama" -o one
[ "$(ls one | tr '\n' ' ')" = "MANIFEST config.json generation_config.json model.safetensors " ] || die "1GB: $(ls one)"
