# A Hugging Face cache snapshot, every file a symlink to ../../blobs/HASH: converted like the directory
# it stands for, and the output holds real files, not links.
. "$CLIDIR/lib.sh"
repo=hub/models--tiny--llama
mkdir -p $repo/blobs $repo/refs $repo/snapshots/0123abcd
echo 0123abcd >$repo/refs/main
printf '{"version": "1.0"}\n' >tokenizer.json
for f in "$FIXTURES/models/tiny-llama/"* tokenizer.json; do
	h=$(sha256sum <"$f" | cut -c1-64)
	cp "$f" $repo/blobs/$h
	ln -s ../../blobs/$h $repo/snapshots/0123abcd/"$(basename "$f")"
done
test -L $repo/snapshots/0123abcd/model.safetensors
$NF4QUANT -q $repo/snapshots/0123abcd -o out
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
nf4_config "$FIXTURES/models/tiny-llama-nf4/config.json" | cmp - out/config.json
[ "$(ls out | tr '\n' ' ')" = "MANIFEST config.json generation_config.json model.safetensors tokenizer.json " ] || die "out: $(ls out)"
for f in out/*; do
	test -f "$f" && ! test -L "$f" || die "$f is not a regular file"
done
cmp out/tokenizer.json tokenizer.json
cmp out/generation_config.json "$FIXTURES/models/tiny-llama/generation_config.json"
# the same with a sharded model, given by its index
repo=hub/models--tiny--llama-sharded
mkdir -p $repo/blobs $repo/snapshots/4567cdef
for f in "$FIXTURES/models/tiny-llama-sharded/"*; do
	h=$(sha256sum <"$f" | cut -c1-64)
	cp "$f" $repo/blobs/$h
	ln -s ../../blobs/$h $repo/snapshots/4567cdef/"$(basename "$f")"
done
$NF4QUANT -q $repo/snapshots/4567cdef/model.safetensors.index.json -o sharded
$STCMP sharded "$FIXTURES/models/tiny-llama-nf4"
for f in sharded/*; do
	test -f "$f" && ! test -L "$f" || die "$f is not a regular file"
done
