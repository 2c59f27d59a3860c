# OUTPUT the same as INPUT, file or directory, by any spelling, even with -f: exit 1, said, the input
# untouched.
. "$CLIDIR/lib.sh"
cp -R "$FIXTURES/models/tiny-llama" in
cp in/model.safetensors m.safetensors
fails -f m.safetensors -o ./m.safetensors
fails -f in -o in
fails -f in -o ./in/
cmp m.safetensors "$FIXTURES/models/tiny-llama/model.safetensors"
for f in "$FIXTURES/models/tiny-llama/"*; do cmp "$f" "in/$(basename "$f")"; done
exit "$rc"
