# Hostile archives are refused with a message naming the archive and the entry, exit status 1, and no
# output: traversal (in a folder too), absolute names, links, a file that is also a folder, a truncated
# zstd frame, not an archive. (Folders themselves are fine: art_sentence_transformers.)
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
mkdir src && cp "$M/tiny-llama/"* src/
python3 - <<'PY'
import io, tarfile
def make(name, extra, compress=True):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for f in ("config.json", "model.safetensors"):
            t.add("src/" + f, arcname=f)
        extra(t)
    data = buf.getvalue()
    open(name, "wb").write(data)
def member(name, data=b"x", **kw):
    def add(t):
        i = tarfile.TarInfo(name); i.size = len(data)
        for k, v in kw.items(): setattr(i, k, v)
        t.addfile(i, io.BytesIO(data) if i.isreg() else None)
    return add
make("traversal.tar", member("../evil.txt"))
make("absolute.tar", member("/etc/evil.txt"))
make("symlink.tar", member("link.json", type=tarfile.SYMTYPE, linkname="/etc/passwd"))
make("hardlink.tar", member("hard.json", type=tarfile.LNKTYPE, linkname="config.json"))
make("nested.tar", member("1_Pooling/../../evil.txt"))
make("folder.tar", member("config.json/x.txt"))
make("fifo.tar", member("fifo", type=tarfile.FIFOTYPE))
make("duplicate.tar", member("config.json", b"{}"))
PY
for a in traversal absolute symlink hardlink nested folder fifo duplicate; do
	zstd -q "$a.tar" -o "$a.tar.zst"
	rm "$a.tar"
	fails $a.tar.zst -o out
	case $msg in *"$a.tar.zst"*) ;; *) die "$a: the archive is not named: $msg" ;; esac
done
tar -C src -cf - . | zstd -q >good.tar.zst
size=$(wc -c <good.tar.zst)
head -c $((size / 2)) good.tar.zst >truncated.tar.zst
fails truncated.tar.zst -o out
printf 'this is not an archive' | zstd -q >garbage.tar.zst
fails garbage.tar.zst -o out
rm good.tar.zst
