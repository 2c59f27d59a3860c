# Usage errors: exit status 2, one message and the "Try" line, nothing written.
. "$CLIDIR/lib.sh"
TOOL=loramerge
B="$FIXTURES/models/tiny-llama"
A="$FIXTURES/peft/adapters/plain_r8"
usage_error $B $A
usage_error --base-as int8 $B $A -o out
usage_error --dtype fp8 $B $A -o out
usage_error --key-map noequals $B $A -o out
usage_error --blocksize 3 $B $A -o out
usage_error --bogus $B $A -o out
$LORAMERGE --help | grep -q -- --requantize || die "--help lacks --requantize"
$LORAMERGE --version | grep -q loramerge || die "--version"
