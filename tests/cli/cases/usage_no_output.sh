# No -o OUTPUT: a usage error (exit 2) with the pointer to --help; nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$FIXTURES/models/tiny-llama"
