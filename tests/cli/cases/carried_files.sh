# The regular non-weight files of a model directory are carried byte for byte (tokenizer files, README,
# remote code); hidden entries and stale weights (pytorch_model.bin, onnx/model.onnx: a folder that holds
# only weights is not made) are not. Folders: carried_folders, art_sentence_transformers.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/"* in/
printf '{"version": "1.0", "model": {"type": "BPE"}}\n' >in/tokenizer.json
printf '{"bos_token": "<s>", "model_max_length": 256}\n' >in/tokenizer_config.json
printf '{"bos_token": "<s>", "eos_token": "</s>"}\n' >in/special_tokens_map.json
printf -- '---\nlicense: mit\n---\n# tiny\n' >in/README.md
printf 'class TinyModel:\n    pass\n' >in/modeling_tiny.py
mkdir -p in/.cache/huggingface in/onnx
printf 'x\n' >in/.cache/huggingface/download.lock
printf '*.safetensors filter=lfs\n' >in/.gitattributes
printf 'onnx\n' >in/onnx/model.onnx
printf 'PK\003\004 not really a pickle\n' >in/pytorch_model.bin
$NF4QUANT -q in -o out
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
want="MANIFEST README.md config.json generation_config.json model.safetensors modeling_tiny.py special_tokens_map.json tokenizer.json tokenizer_config.json "
[ "$(ls -A out | tr '\n' ' ')" = "$want" ] || die "out holds: $(ls -A out | tr '\n' ' ')"
for f in README.md generation_config.json modeling_tiny.py special_tokens_map.json tokenizer.json tokenizer_config.json; do
	cmp "in/$f" "out/$f" || die "$f not carried byte for byte"
done
nf4_config "$FIXTURES/models/tiny-llama-nf4/config.json" | cmp - out/config.json
