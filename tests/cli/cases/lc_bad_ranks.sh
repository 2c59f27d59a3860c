# linear (and ties, dare_*, magnitude_prune) adds A's and B's: adapters of different r are refused, as PEFT refuses them.
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
fails_cleanly --combine linear "$A/plain_r8" "$A/rslora_r16:0.5" -o out
