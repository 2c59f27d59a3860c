# bitsandbytes decodes a 4-bit group with the maps its checkpoint stores (quant_map, nested_quant_map);
# the kernels here decode with the standard ones. A stored map that differs from them by a single bit
# (here the lowest bit of one value, or NF4's 0.0 made -0.0) is refused by every tool that decodes it, with the
# file and tensor named, exit 1 and nothing written; the untouched checkpoint is taken.
. "$CLIDIR/lib.sh"
# patch MODEL TENSOR INDEX BYTE: XOR byte 0..3 of float INDEX of TENSOR with 0x01 (BYTE 0) or 0x80 (BYTE 3)
patch() {
	python3 - "$@" <<'PY'
import json, struct, sys
path, name, idx, byte = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(path, 'r+b') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    at = 8 + n + json.loads(f.read(n))[name]['data_offsets'][0] + 4 * idx + byte
    f.seek(at)
    b = f.read(1)[0]
    f.seek(at)
    f.write(bytes([b ^ (0x80 if byte == 3 else 0x01)]))
PY
}
w=model.layers.0.self_attn.q_proj.weight
cp -r "$FIXTURES/models/tiny-llama-nf4" nested
patch nested/model.safetensors $w.nested_quant_map 200 0
cp -r "$FIXTURES/models/tiny-llama-nf4" map
patch map/model.safetensors $w.quant_map 7 3
TOOL=qinspect
fails nested
case $msg in *"nested/model.safetensors: tensor $w.nested_quant_map is not bitsandbytes' dynamic map (nested_quant_map): its value 200 is"*) ;;
*) die "qinspect: $msg" ;; esac
fails map "$FIXTURES/models/tiny-llama"
case $msg in *"tensor $w.quant_map is not bitsandbytes' NF4 map (quant_map): its value 7 is -0 (0x80000000), the map's 0 (0x00000000)"*) ;;
*) die "qinspect: $msg" ;; esac
TOOL=loramerge
fails nested "$FIXTURES/peft/adapters/plain_r8" -o out
case $msg in *"$w.nested_quant_map is not bitsandbytes'"*) ;; *) die "loramerge: $msg" ;; esac
fails map "$FIXTURES/peft/adapters/plain_r8" -o out
fails --requantize map "$FIXTURES/peft/adapters/plain_r8" -o out
$QINSPECT "$FIXTURES/models/tiny-llama-nf4" >/dev/null
