# The --json summary cannot be written (standard output on a full disk, or a pipe closed by its reader):
# the run fails, exit 1, with the message, and leaves nothing behind (the summary is written before the
# output is renamed into place); nf4quant and loramerge.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models/tiny-llama"
[ -w /dev/full ] || { echo "SKIP: no /dev/full"; exit 0; }
rc=0
$NF4QUANT --json "$M" -o out >/dev/full 2>err || rc=$?
[ $rc = 1 ] || die "nf4quant: exit $rc with the summary unwritten"
grep -q "^nf4quant: cannot write to standard output: No space left on device$" err || die "nf4quant: $(cat err)"
[ "$(ls -A | tr '\n' ' ')" = "err " ] || die "nf4quant left: $(ls -A)"
rc=0
$LORAMERGE --json "$M" "$FIXTURES/peft/adapters/plain_r8" -o out.safetensors >/dev/full 2>err || rc=$?
[ $rc = 1 ] || die "loramerge: exit $rc with the summary unwritten"
[ "$(ls -A | tr '\n' ' ')" = "err " ] || die "loramerge left: $(ls -A)"
# a reader that goes away before the summary comes: the tool stops itself once the tensors are written
# (LQ_TEST_STOP_AT, cli.h), the reader closes its end, the tool goes on
mkfifo pipe
rc=0
LQ_TEST_STOP_AT=manifest $NF4QUANT --json "$M" -o out >pipe 2>err &
pid=$!
exec 3<pipe
await_stopped $pid
exec 3<&-
kill -CONT $pid
wait $pid || rc=$?
[ $rc = 1 ] || die "nf4quant into a closed pipe: exit $rc"
grep -q "^nf4quant: cannot write to standard output: Broken pipe$" err || die "closed pipe: $(cat err)"
[ "$(ls -A | tr '\n' ' ')" = "err pipe " ] || die "nf4quant into a closed pipe left: $(ls -A)"
