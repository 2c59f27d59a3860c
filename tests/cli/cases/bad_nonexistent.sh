# An INPUT that does not exist: exit 1, one message naming it, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly no-such-model -o out
