# ADAPTER:WEIGHT. What follows the last ':' of an argument that does not exist as a path is a weight: one
# that is not a number is a usage error that says so (it was "cannot open 'a:abc'"); a weight that is not
# finite (nan, inf, or past float32) too. A weight of 0 merges, with a one-line warning that its updates add
# nothing. An argument that exists as a path is a path, whatever follows its ':'.
. "$CLIDIR/lib.sh"
TOOL=loramerge
B="$FIXTURES/models/tiny-llama"
A="$FIXTURES/peft/adapters/plain_r8"
usage_error $B m:abc -o out
[ "$(printf '%s\n' "$msg" | head -1)" = "loramerge: 'm:abc' does not exist, and 'abc' after its last ':' is not a weight (ADAPTER:WEIGHT takes a number)" ] ||
	die "m:abc: $msg"
usage_error $B "$A:" -o out
usage_error $B "$A: 1" -o out
usage_error $B "$A:0.5x" -o out
for w in nan -nan inf -inf infinity 1e999 1e39; do
	usage_error $B "$A:$w" -o out
	[ "$(printf '%s\n' "$msg" | head -1)" = "loramerge: invalid weight '$w' in '$A:$w' (a finite number, within float32's range)" ] ||
		die "$w: $msg"
done
# a number after the ':' of a path that does not exist: the path is what is missing
fails $B "nowhere:0.5" -o out
[ "$msg" = "loramerge: cannot open 'nowhere': No such file or directory" ] || die "nowhere:0.5: $msg"
# weight 0: one warning, and the base unchanged
$LORAMERGE $B "$A:0" -o zero 2>err || die "weight 0 failed: $(cat err)"
[ "$(grep -c 'warning' err)" = 1 ] || die "weight 0: $(cat err)"
grep -qF "loramerge: warning: '$A:0': weight 0: the adapter's low-rank updates add nothing" err || die "weight 0: $(cat err)"
$STCMP zero $B >/dev/null || die "weight 0 changed the base"
[ "$($LORAMERGE -q -n $B "$A:-0.0" -o x 2>&1)" = "" ] || die "-q: the weight 0 warning is not quiet"
# the whole argument exists: a path, even with a number after its ':'
mkdir odd odd/x:abc
cp "$A"/* odd/x:abc/
$LORAMERGE -q $B odd/x:abc -o colon || die "odd/x:abc is a path"
$LORAMERGE -q $B "odd/x:abc:0.5" -o half || die "odd/x:abc:0.5 is odd/x:abc at weight 0.5"
$LORAMERGE -q $B "$A:0.5" -o half2
cmp half/model.safetensors half2/model.safetensors || die "odd/x:abc:0.5 differs from $A:0.5"
