# --combine refuses adapters made for different base models (their configs name them).
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
fails_cleanly --combine cat "$A/plain_r8" "$A/gpt2_r4" -o out
