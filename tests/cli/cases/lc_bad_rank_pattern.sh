# A module of another rank (rank_pattern) cannot be added by linear: PEFT's combined adapter has no rank_pattern.
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
fails_cleanly --combine ties --density 0.5 "$A/plain_r8" "$A/patterns" -o out
