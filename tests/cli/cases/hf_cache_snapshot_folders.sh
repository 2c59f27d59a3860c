# A Hugging Face cache snapshot of a sentence-transformers model: the files in its folders are links to
# ../../../blobs/HASH as well, and are carried as the regular files they point to. A link from the
# snapshot into another repository's blobs leads out of this model: not followed, and said.
. "$CLIDIR/lib.sh"
repo=hub/models--org--st
snap=$repo/snapshots/89abcdef
mkdir -p $repo/blobs $snap/1_Pooling hub/models--other--x/blobs
blob() { # blob FILE LINK: FILE stored in the blobs, LINK in the snapshot pointing to it
	h=$(sha256sum <"$1" | cut -c1-64)
	cp "$1" $repo/blobs/$h
	ln -s "$3../../blobs/$h" "$snap/$2"
}
for f in "$FIXTURES/models/tiny-llama/"*; do
	blob "$f" "$(basename "$f")" ""
done
printf '{"word_embedding_dimension": 64}\n' >pooling.json
blob pooling.json 1_Pooling/config.json ../
printf '[{"idx": 0, "name": "0", "path": "", "type": "t"}, {"idx": 1, "name": "1", "path": "1_Pooling", "type": "p"}]\n' >modules.json
blob modules.json modules.json ""
printf 'not this model\n' >hub/models--other--x/blobs/0000
ln -s ../../../models--other--x/blobs/0000 $snap/other.txt
test -L $snap/1_Pooling/config.json
$NF4QUANT $snap -o out 2>err
grep -qF "nf4quant: not carried: other.txt: a symbolic link that leads outside the model directory" err || die "$(cat err)"
[ "$(grep -c 'not carried' err)" = 1 ] || die "$(cat err)"
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
test -f out/1_Pooling/config.json && ! test -L out/1_Pooling/config.json || die "1_Pooling/config.json is not a regular file"
cmp out/1_Pooling/config.json pooling.json
cmp out/modules.json modules.json
! test -e out/other.txt || die "other.txt was carried"
$QINSPECT --verify out >/dev/null
