# An existing output is refused without -f and replaced with it when it is an earlier output; never an
# input: not the adapter, not a directory that holds it, not a file of it, and not a directory of files
# these tools did not write. Each refusal: exit 1, said, everything untouched (a canary file keeps its
# bytes).
. "$CLIDIR/lib.sh"
TOOL=loramerge
M="$FIXTURES/models/tiny-llama"
A="$FIXTURES/peft/adapters/plain_r8"
$LORAMERGE -q "$M" "$A" -o out
fails "$M" "$A" -o out
$LORAMERGE -q -f "$M" "$A:0.5" -o out
[ "$(ls out | tr '\n' ' ')" = "MANIFEST config.json generation_config.json model.safetensors " ] ||
	die "-f did not replace out: $(ls out)"
# a directory of someone's files
mkdir mine
echo canary >mine/notes.txt
fails -f "$M" "$A" -o mine
[ "$(cat mine/notes.txt)" = canary ] || die "mine/notes.txt was touched"
# the adapter itself, a directory holding it, a file of it, a link to it
mkdir -p w/x
cp -R "$A" w/x/ad
echo canary >w/x/canary
fails -f "$M" w/x/ad -o w/x/ad
fails -f "$M" w/x/ad -o w/x
fails -f "$M" w/x/ad -o w
fails -f "$M" w/x/ad/adapter_config.json -o w/x
fails -f "$M" w/x/ad -o w/x/ad/adapter_model.safetensors
ln -s w/x/ad link
fails -f "$M" w/x/ad -o link
for f in "$A"/*; do cmp "$f" "w/x/ad/$(basename "$f")" || die "the adapter was damaged"; done
[ "$(cat w/x/canary)" = canary ] || die "w/x/canary was touched"
exit 0
