# Two INPUTs: a usage error (exit 2) naming the extra one; nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$FIXTURES/models/tiny-llama" "$FIXTURES/models/tiny-llama-sharded" -o out
