# No INPUT: a usage error (exit 2) with the pointer to --help; nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly -o out
