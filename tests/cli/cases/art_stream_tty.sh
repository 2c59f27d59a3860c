# Binary data is never written to a terminal: -o - with standard output on one fails at once.
. "$CLIDIR/lib.sh"
command -v script >/dev/null || { echo "SKIP: no script(1) to make a terminal"; exit 0; }
rc=0
script -qec "$NF4QUANT - -o - </dev/null" /dev/null >out 2>&1 || rc=$?
[ $rc = 1 ] || die "exit status $rc on a terminal: $(cat out)"
grep -q "refusing to write binary data to a terminal" out || die "no message: $(cat out)"
