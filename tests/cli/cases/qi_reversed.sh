# The order is QUANTIZED ORIGINAL. Given the other way round (the first without any 4-bit tensor, the
# second with some) the run goes on, errors relative to the quantized side, with one warning line that
# names the expected order; none in the right order, between two float checkpoints, or when --tensor
# selects no 4-bit tensor.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$QINSPECT "$M/tiny-llama" "$M/tiny-llama-nf4" >t.txt 2>err || die "reversed: exit status $?"
[ "$(wc -l <err)" = 1 ] || die "reversed: not one line: $(cat err)"
grep -q "^qinspect: warning: CHECKPOINT '.*/tiny-llama' has no 4-bit tensor and REFERENCE '.*/tiny-llama-nf4' has 14: the order is QUANTIZED ORIGINAL" err ||
	die "reversed: $(cat err)"
grep -q '^error of all 20 compared tensors' t.txt || die "reversed: no report: $(cat t.txt)"
$QINSPECT -n "$M/tiny-llama" "$M/tiny-llama-nf4" 2>err || die "-n reversed"
grep -q "warning: CHECKPOINT" err || die "-n reversed: no warning"
for args in "$M/tiny-llama-nf4 $M/tiny-llama" "$M/tiny-llama $M/tiny-llama-sharded" "--tensor *norm* $M/tiny-llama $M/tiny-llama-nf4"; do
	$QINSPECT $args >/dev/null 2>err || die "$args: exit status $?"
	[ ! -s err ] || die "$args: $(cat err)"
done
