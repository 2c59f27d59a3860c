# Usage errors: exit status 2, nothing written.
. "$CLIDIR/lib.sh"
TOOL=qinspect
M="$FIXTURES/models"
usage_error
usage_error "$M/tiny-llama-nf4" --max-rel-err 0.1
usage_error "$M/tiny-llama-nf4" "$M/tiny-llama" --max-rel-err abc
usage_error "$M/tiny-llama-nf4" "$M/tiny-llama" --json --csv
usage_error "$M/tiny-llama-nf4" "$M/tiny-llama" "$M/tiny-llama-fp4"
usage_error --bogus "$M/tiny-llama-nf4"
$QINSPECT --help | grep -q -- --min-snr || die "--help lacks --min-snr"
$QINSPECT --version | grep -q qinspect || die "--version"
# an option where --html wants its FILE: refused, not a file named "--json" (./--json names such a file)
usage_error --html --json "$M/tiny-llama-nf4"
usage_error -o -q "$M/tiny-llama-nf4"
usage_error --html - "$M/tiny-llama-nf4"
