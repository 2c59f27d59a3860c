# A sharded model whose index names a shard that is not there: exit 1, the shard named, nothing written.
. "$CLIDIR/lib.sh"
cp -R "$FIXTURES/models/tiny-llama-sharded" in
rm in/model-00003-of-00005.safetensors
fails_cleanly in -o out
