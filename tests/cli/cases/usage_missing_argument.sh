# An option that needs a value given none (last on the line): a usage error (exit 2); nothing written.
. "$CLIDIR/lib.sh"
usage_error "$FIXTURES/models/tiny-llama" -o
usage_error "$FIXTURES/models/tiny-llama" -o out --blocksize
