# --base-as with a base that is already 4-bit is refused.
. "$CLIDIR/lib.sh"
TOOL=loramerge
fails_cleanly --base-as nf4 "$FIXTURES/models/tiny-llama-nf4" "$FIXTURES/peft/adapters/plain_r8" -o out
