# modules_to_save: PEFT loads every tensor of a saved module from the adapter and cannot load one that
# lacks any (a KeyError, PEFT 0.21). loramerge refuses such an adapter, part saved or nothing, and writes
# nothing; a complete one replaces the module's tensors; an entry that names no module of the base
# changes nothing.
. "$CLIDIR/lib.sh"
TOOL=loramerge
M="$FIXTURES/models/tiny-gpt2"
# ADAPTER ENTRY TENSORS...: the gpt2_r4 adapter with modules_to_save [ENTRY] and these base tensors saved
# (each the base's values plus one, bf16 as in the base)
adapter() {
	dir=$1 entry=$2
	shift 2
	python3 - "$FIXTURES/peft/adapters/gpt2_r4" "$M/model.safetensors" "$dir" "$entry" "$@" <<'PY' || die "adapter $dir"
import json, os, struct, sys
src, base, dst, entry, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        return header, f.read()
def bf16_plus_one(raw):
    out = bytearray()
    for i in range(0, len(raw), 2):
        v = struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] + 1.0
        out += struct.pack("<f", v)[2:]  # truncated to bf16: any values other than the base's do
    return bytes(out)
h, data = read(os.path.join(src, "adapter_model.safetensors"))
bh, bdata = read(base)
tensors = {k: (v, data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items() if k != "__metadata__"}
for name in names:
    v = bh[name]
    assert v["dtype"] == "BF16", v
    tensors["base_model.model." + name] = ({"dtype": "BF16", "shape": v["shape"]},
                                           bf16_plus_one(bdata[v["data_offsets"][0]:v["data_offsets"][1]]))
header, blob = {"__metadata__": {"format": "pt"}}, b""
for k, (v, raw) in sorted(tensors.items()):
    header[k] = {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": [len(blob), len(blob) + len(raw)]}
    blob += raw
os.makedirs(dst)
hb = json.dumps(header).encode()
hb += b" " * (-len(hb) % 8)
with open(os.path.join(dst, "adapter_model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb + blob)
cfg = json.load(open(os.path.join(src, "adapter_config.json")))
cfg["modules_to_save"] = [entry]
json.dump(cfg, open(os.path.join(dst, "adapter_config.json"), "w"))
PY
}
# part of ln_f saved (its weight, not its bias): refused, nothing written
adapter part ln_f transformer.ln_f.weight
fails "$M" part -o out
case $msg in
*"modules_to_save 'ln_f' holds the base's 'transformer.ln_f.bias', which the adapter does not save (PEFT cannot load it)") ;;
*) die "part saved: $msg" ;;
esac
[ ! -e out ] || die "part saved: an output was written"
# nothing of it saved: a warning, then refused
adapter none ln_f
$LORAMERGE "$M" none -o out 2>err && die "nothing saved: merged"
grep -q "modules_to_save 'ln_f': no tensor of it in the adapter" err || die "nothing saved: no warning: $(cat err)"
grep -q "holds the base's 'transformer.ln_f.bias', which the adapter does not save" err || die "nothing saved: $(cat err)"
[ ! -e out ] || die "nothing saved: an output was written"
# the whole module saved: both tensors replaced by the adapter's
adapter whole ln_f transformer.ln_f.weight transformer.ln_f.bias
$LORAMERGE -q "$M" whole -o out || die "whole module: failed"
python3 - whole/adapter_model.safetensors out/model.safetensors <<'PY' || die "whole module: not the adapter's tensors"
import json, struct, sys
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        d = f.read()
    return {k.replace("base_model.model.", ""): d[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, o = tensors(sys.argv[1]), tensors(sys.argv[2])
for k in ("transformer.ln_f.weight", "transformer.ln_f.bias"):
    assert a[k] == o[k], k
PY
rm -rf out
# an entry that names no module of this base (a classifier's head on a causal LM): merged, nothing replaced
adapter score score
$LORAMERGE "$M" score -o out 2>err || die "no such module: failed: $(cat err)"
grep -q "modules_to_save 'score': no tensor of it in the adapter" err || die "no such module: no warning: $(cat err)"
