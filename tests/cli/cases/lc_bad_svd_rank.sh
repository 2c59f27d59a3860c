# An --svd-rank beyond a module's smaller side: PEFT would write tensors its config does not describe.
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
fails_cleanly --combine svd --svd-rank 64 "$A/plain_r8" "$A/bf16_stored" -o out
