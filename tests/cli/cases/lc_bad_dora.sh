# DoRA: PEFT's combined adapter takes its magnitudes from the base model, which --combine does not read.
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
fails_cleanly --combine cat "$A/plain_r8" "$A/dora_r8" -o out
