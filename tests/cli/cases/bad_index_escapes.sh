# An index naming a shard outside the model directory ("../evil.safetensors", an absolute path) is
# refused even though the file exists: exit 1, the index and the name given, nothing written.
. "$CLIDIR/lib.sh"
cp -R "$FIXTURES/models/tiny-llama-sharded" in
mv in/model-00001-of-00005.safetensors evil.safetensors
sed 's|"model-00001-of-00005.safetensors"|"../evil.safetensors"|' "$FIXTURES/models/tiny-llama-sharded/model.safetensors.index.json" >in/model.safetensors.index.json
fails in -o out
sed "s|\"model-00001-of-00005.safetensors\"|\"$PWD/evil.safetensors\"|" "$FIXTURES/models/tiny-llama-sharded/model.safetensors.index.json" >in/model.safetensors.index.json
fails_cleanly in -o out
