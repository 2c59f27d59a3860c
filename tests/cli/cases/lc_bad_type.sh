# A TYPE PEFT does not have is a usage error (exit status 2), as every invalid option value.
. "$CLIDIR/lib.sh"
TOOL=loramerge
A=$FIXTURES/peft/adapters
usage_error --combine dare --density 0.5 "$A/plain_r8" "$A/bf16_stored" -o out
exit "$rc"
