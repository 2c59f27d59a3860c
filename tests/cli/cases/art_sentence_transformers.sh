# A sentence-transformers model directory: a BertModel at the top, modules.json naming its modules, the
# Pooling module's config in 1_Pooling/, a Dense module with its own weights in 2_Dense/ (loaded by
# sentence-transformers with torch, so copied as they are, never quantized), an empty 3_Normalize/.
# nf4quant and loramerge carry the folders, to a directory and to a bundle, and back from a bundle; the
# MANIFEST lists the files by their paths and qinspect --verify checks them; what is not carried is said
# at the default verbosity.
. "$CLIDIR/lib.sh"
python3 - <<'PY'
import json, os, struct

state = 12345
def values(n):
    global state
    out = []
    for _ in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(((state >> 40) / 2**24 - 0.5) * 0.2)
    return out

def save(path, tensors):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        raw = struct.pack("<%df" % n, *values(n))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)

H, I, V = 64, 128, 40
os.makedirs("st/1_Pooling")
os.makedirs("st/2_Dense")
os.makedirs("st/3_Normalize")
t = [("embeddings.word_embeddings.weight", [V, H]), ("embeddings.position_embeddings.weight", [16, H]),
     ("embeddings.token_type_embeddings.weight", [2, H]), ("embeddings.LayerNorm.weight", [H]),
     ("embeddings.LayerNorm.bias", [H])]
p = "encoder.layer.0."
for m in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
    t += [(p + m + ".weight", [H, H]), (p + m + ".bias", [H])]
t += [(p + "attention.output.LayerNorm.weight", [H]), (p + "attention.output.LayerNorm.bias", [H]),
      (p + "intermediate.dense.weight", [I, H]), (p + "intermediate.dense.bias", [I]),
      (p + "output.dense.weight", [H, I]), (p + "output.dense.bias", [H]),
      (p + "output.LayerNorm.weight", [H]), (p + "output.LayerNorm.bias", [H]),
      ("pooler.dense.weight", [H, H]), ("pooler.dense.bias", [H])]
save("st/model.safetensors", t)
save("st/2_Dense/model.safetensors", [("linear.weight", [16, H]), ("linear.bias", [16])])
config = {"architectures": ["BertModel"], "hidden_size": H, "intermediate_size": I, "model_type": "bert",
          "num_attention_heads": 2, "num_hidden_layers": 1, "max_position_embeddings": 16, "type_vocab_size": 2,
          "vocab_size": V, "torch_dtype": "float32"}
files = {
    "config.json": json.dumps(config, indent=2, sort_keys=True) + "\n",
    "modules.json": json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}], indent=2),
    "sentence_bert_config.json": '{"max_seq_length": 16, "do_lower_case": false}',
    "tokenizer.json": '{"version": "1.0", "model": {"type": "WordPiece"}}',
    "1_Pooling/config.json": '{"word_embedding_dimension": 64, "pooling_mode_mean_tokens": true}',
    "2_Dense/config.json": '{"in_features": 64, "out_features": 16, "bias": true}',
}
for name, text in files.items():
    with open("st/" + name, "w") as f:
        f.write(text)
# a LoRA adapter on the query and value projections
cfg = {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["query", "value"], "bias": "none",
       "fan_in_fan_out": False, "use_dora": False, "use_rslora": False, "task_type": "FEATURE_EXTRACTION"}
os.makedirs("adapter")
with open("adapter/adapter_config.json", "w") as f:
    json.dump(cfg, f)
a = []
for m in ("query", "value"):
    a += [("base_model.model.encoder.layer.0.attention.self.%s.lora_A.weight" % m, [2, H]),
          ("base_model.model.encoder.layer.0.attention.self.%s.lora_B.weight" % m, [H, 2])]
save("adapter/adapter_model.safetensors", a)
PY
carried="1_Pooling/config.json 2_Dense/config.json 2_Dense/model.safetensors modules.json sentence_bert_config.json tokenizer.json"
want="1_Pooling/config.json 2_Dense/config.json 2_Dense/model.safetensors MANIFEST config.json model.safetensors modules.json sentence_bert_config.json tokenizer.json "
files() { (cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' '); }
same_carried() {
	for f in $carried; do
		cmp "st/$f" "$1/$f" || die "$1/$f is not st/$f byte for byte"
	done
}
# to a directory: every folder's files carried, the empty one said
$NF4QUANT st -o q 2>q.err
grep -qxF 'nf4quant: not carried: 3_Normalize/: an empty folder' q.err || die "no note on 3_Normalize: $(cat q.err)"
[ "$(files q)" = "$want" ] || die "q holds: $(files q)"
same_carried q
grep -q '"path": "2_Dense/model.safetensors"' q/MANIFEST || die "MANIFEST does not list 2_Dense/model.safetensors"
grep -q '"name": "linear.weight"' q/MANIFEST || die "MANIFEST does not list the Dense module's tensors"
grep -q 'quant_state' q/model.safetensors || die "the BERT was not quantized"
$QINSPECT --verify q >/dev/null
# to a bundle: the same files, in bytewise order, and the same bytes
$NF4QUANT -q st -o q.tar.zst
[ "$(tar -tf q.tar.zst | tr '\n' ' ')" = "$want" ] || die "q.tar.zst holds: $(tar -tf q.tar.zst | tr '\n' ' ')"
mkdir qx && tar -xf q.tar.zst -C qx
for f in $want; do
	cmp "q/$f" "qx/$f" || die "the bundle's $f differs from the directory's"
done
$QINSPECT --verify q.tar.zst >/dev/null
# reproducible: the same bytes with one thread and with three
$NF4QUANT -q -T 1 st -o q1.tar.zst
$NF4QUANT -q -T 3 st -o q3.tar.zst
cmp q.tar.zst q1.tar.zst && cmp q.tar.zst q3.tar.zst || die "the bundle's bytes depend on the thread count"
# a changed byte in a folder's file is found by --verify, named by its path
printf '{"word_embedding_dimension": 65, "pooling_mode_mean_tokens": true}' >q/1_Pooling/config.json
rc=0
$QINSPECT --verify q >verify.out 2>/dev/null || rc=$?
[ $rc = 1 ] && grep -q '^MISMATCH 1_Pooling/config.json: bytes differ' verify.out || die "--verify: $(cat verify.out)"
# back from the bundle: loramerge merges into its 4-bit base (the folders read from the archive)
$LORAMERGE -q q.tar.zst adapter -o m
[ "$(files m)" = "$want" ] || die "m holds: $(files m)"
same_carried m
$QINSPECT --verify m >/dev/null
# loramerge to a bundle, and nf4quant back from it to a directory
$LORAMERGE -q st adapter -o m.tar.zst
$QINSPECT --verify m.tar.zst >/dev/null
$NF4QUANT -q m.tar.zst -o mq
[ "$(files mq)" = "$want" ] || die "mq holds: $(files mq)"
same_carried mq
$QINSPECT --verify mq >/dev/null
