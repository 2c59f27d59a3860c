# SIGINT (and SIGTERM) in the middle of a conversion: exit non-zero, "interrupted", and nothing left
# behind, neither OUTPUT nor its temporary. Three ways to be in the middle:
#  1. converting a 2 GiB synthetic BF16 file (about two seconds of work on one thread on a fast machine,
#     signalled 0.05 s after its temporary output appears);
#  2. reading a stream whose producer has stalled (curl on a dead link): the signal must end the wait
#     at once, not when the producer gives up, which here it never does;
#  3. writing a stream whose consumer has stalled.
# 2 and 3 do not depend on the machine's speed: the tool is waiting when the signal comes.
. "$CLIDIR/lib.sh"
# 64 tensors [4096, 4096] of BF16 zeros, the data a sparse hole: written in no time, read fast
h='{"__metadata__":{"format":"pt"}'
i=0
while [ $i -lt 64 ]; do
	h="$h,\"model.layers.$i.mlp.up_proj.weight\":{\"dtype\":\"BF16\",\"shape\":[4096,4096],\"data_offsets\":[$((i * 33554432)),$(((i + 1) * 33554432))]}"
	i=$((i + 1))
done
printf '\000\040\000\000\000\000\000\000' >big.safetensors # header length 8192
printf '%-8192s' "$h}" >>big.safetensors
truncate -s $((8 + 8192 + 64 * 33554432)) big.safetensors

# await_temporary PID: until the temporary output appears (the conversion has begun)
await_temporary() {
	i=0
	until ls -A | grep -q '^\.out\.tmp-'; do
		[ $i -lt 500 ] || { kill -KILL "$1"; die "no temporary output after 10 s"; }
		sleep 0.02
		i=$((i + 1))
	done
}
# ends_within PID SECONDS WHAT: PID exits within SECONDS of the signal, else it is killed and the case fails
# (it takes a fraction of a second; the margin is for CLI_PREFIX=valgrind, where the tensors in flight
# take seconds to finish)
ends_within() {
	i=0
	while kill -0 "$1" 2>/dev/null; do
		[ $i -lt $(($2 * 50)) ] || { kill -KILL "$1"; die "$3: still running $2 s after the signal"; }
		sleep 0.02
		i=$((i + 1))
	done
}
# check_interrupted PID SIG WHAT LISTING: non-zero exit, the message, and only LISTING left
check_interrupted() {
	rc=0
	wait "$1" || rc=$?
	cat err.txt >&2
	[ "$rc" != 0 ] || die "$3 SIG$2: exit status 0: the conversion was over before the signal (make the model bigger)"
	grep -q '^nf4quant: interrupted$' err.txt || die "$3 SIG$2: no 'interrupted' message"
	rm err.txt
	[ "$(ls -A | tr '\n' ' ')" = "$4" ] || die "$3 SIG$2: left behind: $(ls -A | tr '\n' ' ')"
}

mkfifo feed
for sig in INT TERM; do
	# 1. a file
	$NF4QUANT -T 1 big.safetensors -o out 2>err.txt &
	pid=$!
	await_temporary $pid
	sleep 0.05
	kill -$sig $pid
	check_interrupted $pid $sig file "big.safetensors feed "

	# 2. a stalled producer: 40 MB of the file, then nothing, the pipe still open
	$NF4QUANT -T 1 - -o out <feed 2>err.txt &
	pid=$!
	exec 3>feed
	head -c 40000000 big.safetensors >&3
	await_temporary $pid
	kill -$sig $pid
	ends_within $pid 15 "stalled producer"
	exec 3>&-
	check_interrupted $pid $sig "stalled producer" "big.safetensors feed "

	# 3. a stalled consumer: the pipe is open for reading but never read
	$NF4QUANT -T 1 big.safetensors -o - >feed 2>err.txt &
	pid=$!
	exec 3<feed
	# its first bytes: it is running (its handlers set), and from now on nothing more is read
	dd bs=8 count=1 <&3 >/dev/null 2>&1
	kill -$sig $pid
	ends_within $pid 15 "stalled consumer"
	exec 3<&-
	check_interrupted $pid $sig "stalled consumer" "big.safetensors feed "
done
