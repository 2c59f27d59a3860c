# A Hugging Face cache: a snapshot's files are links to ../../blobs/HASH. With -f, no output may take
# the place of what the snapshot's links lead to (blobs/, the repository's directory), and another
# snapshot (links into the same blobs, no MANIFEST) is not replaced; the blobs keep their bytes.
. "$CLIDIR/lib.sh"
repo=hub/models--tiny--llama
mkdir -p $repo/blobs $repo/refs $repo/snapshots/0123abcd $repo/snapshots/4567cdef
echo 0123abcd >$repo/refs/main
for f in "$FIXTURES/models/tiny-llama/"*; do
	h=$(sha256sum <"$f" | cut -c1-64)
	cp "$f" $repo/blobs/$h
	ln -s ../../blobs/$h $repo/snapshots/0123abcd/"$(basename "$f")"
	ln -s ../../blobs/$h $repo/snapshots/4567cdef/"$(basename "$f")"
done
snap=$repo/snapshots/0123abcd
fails -f $snap -o $repo/blobs
case $msg in *"part of the input '$snap'"*) ;; *) die "blobs/: $msg" ;; esac
fails -f $snap -o $repo
fails -f $snap -o hub
fails -f $snap -o $repo/snapshots
fails -f $snap -o $repo/snapshots/4567cdef
fails -f $snap/model.safetensors -o $repo/blobs
for f in "$FIXTURES/models/tiny-llama/"*; do
	cmp "$f" $repo/blobs/"$(sha256sum <"$f" | cut -c1-64)" || die "a blob was damaged"
	test -L $repo/snapshots/4567cdef/"$(basename "$f")" || die "the other snapshot was damaged"
done
# the snapshot converts, and an earlier output beside it is replaced
$NF4QUANT -q $snap -o out
$NF4QUANT -q -f $snap -o out
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
