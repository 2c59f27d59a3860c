# A directory with only a pickled pytorch_model.bin: exit 1, a message saying it is never unpickled and
# should be converted to safetensors first; nothing written.
. "$CLIDIR/lib.sh"
mkdir in
cp "$FIXTURES/models/tiny-llama/config.json" in/
printf 'PK\003\004 a pickle\n' >in/pytorch_model.bin
fails_cleanly in -o out
