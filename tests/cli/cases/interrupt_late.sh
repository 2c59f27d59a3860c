# SIGINT, SIGTERM and SIGHUP at every step that finishes an output (the shards' syncs, the index,
# config.json, the carried files, the MANIFEST, the directory's sync, the bundle's entries and sync, the
# moment before the rename into place; a part's and a --finish's too) end the run: exit 1,
# "interrupted", and nothing left behind, an earlier output replaced with -f untouched. The tool stops
# itself as the step begins (LQ_TEST_STOP_AT, cli.h), the signal is sent, then SIGCONT: no race with the
# machine's speed, under valgrind too.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models/tiny-llama-sharded"
A="$FIXTURES/peft/adapters/plain_r8"
$NF4QUANT -q --quant-type fp4 "$M" -o earlier
for i in 1 2; do $NF4QUANT -q --device cpu --shard $i/2 "$M" -o parts; done
before=$(listing; cat earlier/MANIFEST)

# late STEP SIG TOOL ARG...: the run, stopped at STEP, signalled
late() {
	_step=$1 _sig=$2 _tool=$3
	shift 3
	rc=0
	LQ_TEST_STOP_AT=$_step $_tool "$@" 2>err &
	_pid=$!
	await_stopped $_pid
	kill -$_sig $_pid
	kill -CONT $_pid
	await_end $_pid "$_step SIG$_sig"
	wait $_pid || rc=$?
	[ $rc = 1 ] || die "$_step SIG$_sig: exit status $rc: the run went on: $(cat err)"
	grep -q ": interrupted$" err || die "$_step SIG$_sig: no 'interrupted' message: $(cat err)"
	rm err
	[ "$(listing; cat earlier/MANIFEST)" = "$before" ] || die "$_step SIG$_sig: left behind or changed: $(listing)"
}
# await_end PID WHAT: until PID ends; stopping again means it went on to the next step: it is killed
await_end() {
	while _state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) && [ -n "$_state" ] && [ "$_state" != Z ]; do
		[ "$_state" != T ] || { kill -KILL "$1"; kill -CONT "$1"; die "$2: the run went on to the next step"; }
		sleep 0.02
	done
}
for sig in INT TERM HUP; do
	for step in shards index config carry manifest sync rename; do
		late $step $sig "$NF4QUANT" -T 1 --device cpu "$M" -o out
	done
	for step in manifest rename; do
		late $step $sig "$NF4QUANT" -f --device cpu "$M" -o earlier
	done
	for step in bundle bundle-sync rename; do
		late $step $sig "$NF4QUANT" -f --device cpu "$M" -o out.tar.zst
	done
	for step in shards rename; do
		late $step $sig "$NF4QUANT" --device cpu --shard 1/2 "$M" -o new-parts
	done
	for step in config manifest rename; do
		late $step $sig "$NF4QUANT" --device cpu --finish "$M" -o parts
	done
	for step in shards manifest rename; do
		late $step $sig "$LORAMERGE" --device cpu "$M" "$A" -o merged
	done
done
# and without a signal the same runs complete
LQ_TEST_STOP_AT=rename $NF4QUANT -q --device cpu "$M" -o out &
pid=$!
await_stopped $pid
kill -CONT $pid
wait $pid || die "a run stopped and continued without a signal failed"
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
