# A missing adapter directory, and no adapter at all.
. "$CLIDIR/lib.sh"
TOOL=loramerge
fails "$FIXTURES/models/tiny-llama" ../no-such-adapter -o out
[ "$rc" = 1 ] || die "exit status $rc"
case $msg in *no-such-adapter*) ;; *) die "message does not name the adapter: $msg" ;; esac
usage_error "$FIXTURES/models/tiny-llama" -o out
