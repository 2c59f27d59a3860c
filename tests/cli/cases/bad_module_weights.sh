# A sentence-transformers module's weights (2_Dense/model.safetensors) are carried as they are, and the
# output's MANIFEST lists their tensors: a header that does not parse is refused when the input is opened,
# not after the conversion, with the file named, exit 1, nothing written; from a bundle too.
. "$CLIDIR/lib.sh"
mkdir -p in/2_Dense
cp "$FIXTURES/models/tiny-llama/"* in/
printf '[{"idx": 0, "name": "0", "path": "", "type": "t"}, {"idx": 1, "name": "1", "path": "2_Dense", "type": "d"}]\n' >in/modules.json
printf '\020\000\000\000\000\000\000\000{"a": 1}        ' >in/2_Dense/model.safetensors
tar -C in -cf in.tar .
fails in.tar -o out.tar.zst
case $msg in *"in.tar:2_Dense/model.safetensors: header byte 14"*) ;; *) die "bundle: $msg" ;; esac
TOOL=loramerge
fails in "$FIXTURES/peft/adapters/plain_r8" -o merged
TOOL=nf4quant
fails_cleanly in -o out
