# An unknown option, long or short: a usage error (exit 2), the message under the program's name
# ("nf4quant: ", whatever path it was run by), the pointer to --help; nothing written.
. "$CLIDIR/lib.sh"
usage_error -x "$FIXTURES/models/tiny-llama" -o out
usage_error --frobnicate "$FIXTURES/models/tiny-llama" -o out
