# DARE draws its masks: --seed is required (PEFT's come from torch's generator, not reproduced).
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
usage_error --combine dare_linear --density 0.5 "$A/plain_r8" "$A/bf16_stored" -o out
exit "$rc"
