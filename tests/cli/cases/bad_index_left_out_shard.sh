# A sharded model whose index leaves out one of its shards (model-00005-of-00005.safetensors, of the same
# series as the four it names): the index is incomplete, and converting it would drop that shard's
# tensors without a word. Every tool refuses it, the shard named, exit 1, nothing written.
. "$CLIDIR/lib.sh"
cp -R "$FIXTURES/models/tiny-llama-sharded" in
python3 - <<'PY'
import json
p = "in/model.safetensors.index.json"
idx = json.load(open(p))
idx["weight_map"] = {k: v for k, v in idx["weight_map"].items() if v != "model-00005-of-00005.safetensors"}
json.dump(idx, open(p, "w"), indent=2)
PY
TOOL=qinspect
fails in
case $msg in *"'model-00005-of-00005.safetensors' is a shard of the model that the index does not name"*) ;;
*) die "qinspect: $msg" ;; esac
TOOL=loramerge
fails in "$FIXTURES/peft/adapters/plain_r8" -o merged
TOOL=nf4quant
fails_cleanly in -o out
