#!/bin/sh
# sentence_transformers.sh BUILD_DIR: a sentence-transformers model converted by nf4quant loads in
# sentence-transformers and gives the float model's embeddings. The model is the real all-MiniLM-L6-v2
# (the PyPI package all_minilm_l6_v2 in the CPU virtual environment that ./setup makes, .venv): a BERT
# at the top of the directory, its Pooling module in 1_Pooling/ (and a Normalize module, 2_Normalize,
# with no files), laid out here as a Hugging Face cache snapshot (every file, those in 1_Pooling/
# included, a symbolic link to ../blobs/HASH). nf4quant writes a directory and a bundle of it; both load
# with SentenceTransformer(path) and bitsandbytes' CPU backend, and each sentence's embedding is within
# cosine similarity 0.95 of the float model's (0.975 measured with bitsandbytes 0.50.2), unit length
# (the Normalize module ran). The same model with a Dense module added (2_Dense/model.safetensors, its
# weights made here) comes out with those weights byte for byte and loads and embeds the same way.
# Without .venv: SKIP.
set -eu
build=$(cd "${1:?usage: sentence_transformers.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
py="$top/.venv/bin/python"
if [ ! -x "$py" ]; then
	echo "SKIP: no .venv (run ./setup)"
	exit 0
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
work=$(mktemp -d "${TMPDIR:-/tmp}/lq-st-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
"$py" -c 'import sys, all_minilm_l6_v2; all_minilm_l6_v2.extract_model(sys.argv[1])' "$work/float" >/dev/null
model="$work/float/all-MiniLM-L6-v2"
[ -f "$model/1_Pooling/config.json" ] && [ -f "$model/modules.json" ] ||
	{ echo "sentence-transformers: FAILED: $model is not the sentence-transformers layout" >&2; exit 1; }
# the cache snapshot: blobs by hash, the snapshot's files links to them, folders included
snap="$work/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/0123abcd"
blobs="$work/hub/models--sentence-transformers--all-MiniLM-L6-v2/blobs"
mkdir -p "$blobs"
(cd "$model" && find . -type f) | sed 's|^\./||' | sort | while IFS= read -r f; do
	h=$(sha256sum <"$model/$f" | cut -c1-64)
	cp "$model/$f" "$blobs/$h"
	mkdir -p "$snap/$(dirname "$f")"
	up=$(printf '%s\n' "$f" | sed 's|[^/]*/|../|g; s|[^/]*$||')
	ln -s "../../${up}blobs/$h" "$snap/$f"
done
[ -L "$snap/1_Pooling/config.json" ]
"$build/nf4quant" -q "$snap" -o "$work/nf4"
"$build/nf4quant" -q "$snap" -o "$work/nf4.tar.zst"
mkdir "$work/unpacked"
zstd -dcq "$work/nf4.tar.zst" | tar -xf - -C "$work/unpacked"
"$build/qinspect" --verify "$work/nf4" >/dev/null
# the same model with a Dense module (384 -> 128, tanh) before Normalize: its weights, in 2_Dense/, are
# sentence-transformers' own, copied as they are
dense="$work/dense"
cp -R "$model" "$dense"
python3 - "$dense" <<'PY'
import json, os, random, struct, sys
d = sys.argv[1]
os.makedirs(d + "/2_Dense")
r = random.Random(5)
w = [r.gauss(0, 0.05) for _ in range(128 * 384)] + [r.gauss(0, 0.01) for _ in range(128)]
h = json.dumps({"linear.bias": {"dtype": "F32", "shape": [128], "data_offsets": [0, 512]},
                "linear.weight": {"dtype": "F32", "shape": [128, 384], "data_offsets": [512, 512 + 128 * 384 * 4]}}).encode()
h += b" " * (-len(h) % 8)
with open(d + "/2_Dense/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + struct.pack("<128f", *w[128 * 384:]) + struct.pack("<%df" % (128 * 384), *w[:128 * 384]))
with open(d + "/2_Dense/config.json", "w") as f:
    json.dump({"in_features": 384, "out_features": 128, "bias": True,
               "activation_function": "torch.nn.modules.activation.Tanh"}, f)
mods = json.load(open(d + "/modules.json"))
mods = mods[:2] + [{"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}] + \
       [dict(m, idx=3, name="3", path="3_Normalize") for m in mods[2:]]
json.dump(mods, open(d + "/modules.json", "w"), indent=2)
PY
"$build/nf4quant" -q "$dense" -o "$work/dense-nf4"
cmp "$dense/2_Dense/model.safetensors" "$work/dense-nf4/2_Dense/model.safetensors"
# bitsandbytes and transformers talk on stderr (kernels they cannot fetch offline): shown on failure only
if ! "$py" "$top/tests/interop/sentence_transformers_check.py" "$model" "$work/nf4" "$model" "$work/unpacked" \
	"$dense" "$work/dense-nf4" >"$work/log" 2>&1; then
	cat "$work/log" >&2
	echo "interop: FAILED: SentenceTransformer and nf4quant's all-MiniLM-L6-v2" >&2
	exit 1
fi
grep 'cosine to the float model' "$work/log" | sed "s|$work/||"
echo "interop: SentenceTransformer loads nf4quant's all-MiniLM-L6-v2, directory and bundle, and with a Dense module"
