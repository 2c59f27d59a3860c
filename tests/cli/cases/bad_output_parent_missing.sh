# OUTPUT in a directory that does not exist: exit 1, the output named, nothing created.
. "$CLIDIR/lib.sh"
fails_cleanly "$FIXTURES/models/tiny-llama" -o no-such-dir/out
