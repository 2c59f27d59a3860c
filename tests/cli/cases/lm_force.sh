# An existing output is refused without -f and replaced with it.
. "$CLIDIR/lib.sh"
TOOL=loramerge
mkdir out
echo keep >out/file
fails "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8" -o out
[ -f out/file ] || die "the existing output was touched"
$LORAMERGE -q -f "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8" -o out
[ ! -e out/file ] && [ -f out/model.safetensors ] || die "-f did not replace out"
