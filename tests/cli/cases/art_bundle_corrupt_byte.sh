# A byte changed inside a bundle, where zstd stores the data as it is (added_tokens.json, random bytes: it
# decodes, wrongly, and only the frame's checksum tells): the message says the frame fails its checksum
# and names the entries whose bytes it holds (nf4quant's bundles are one zstd frame: all of them), not
# the last entry read when the checksum came (tokenizer.json). Every tool, exit 1, nothing written.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/"* in/
head -c 300000 /dev/zero | tr '\0' 'x' >in/tokenizer.json
python3 -c "import random; r = random.Random(7); open('in/added_tokens.json', 'wb').write(r.randbytes(200000))"
$NF4QUANT -q in -o m.tar.zst
python3 - <<'PY'

z = bytearray(open("m.tar.zst", "rb").read())
data = open("in/added_tokens.json", "rb").read()
# 64 bytes that the archive holds verbatim (a raw block)
for at in range(1000, len(data) - 64, 64):
    k = z.find(data[at:at + 64])
    if k >= 0:
        z[k + 32] ^= 0x10
        break
else:
    raise SystemExit("no raw block found")
open("bad.tar.zst", "wb").write(z)
PY
TOOL=qinspect
fails bad.tar.zst
case $msg in *"bad.tar.zst: one of the 6 entries from 'MANIFEST' to 'tokenizer.json': corrupt archive: zstd frame 1 (bytes 0 to"*"which holds their bytes, fails its checksum") ;;
*) die "qinspect: $msg" ;; esac
fails --verify bad.tar.zst
case $msg in *"fails its checksum"*) ;; *) die "qinspect --verify: $msg" ;; esac
TOOL=loramerge
fails bad.tar.zst "$FIXTURES/peft/adapters/plain_r8" -o merged
TOOL=nf4quant
fails_cleanly bad.tar.zst -o out
