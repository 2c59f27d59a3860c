# SIGINT (and SIGTERM) in the middle of a conversion of a 512 MiB synthetic BF16 file (about two seconds
# of work on one thread): exit non-zero, "interrupted", and nothing left behind, neither OUTPUT nor its
# temporary.
. "$CLIDIR/lib.sh"
# 16 tensors [4096, 4096] of BF16 zeros, the data a sparse hole: written in no time, read fast
h='{"__metadata__":{"format":"pt"}'
i=0
while [ $i -lt 16 ]; do
	h="$h,\"model.layers.$i.mlp.up_proj.weight\":{\"dtype\":\"BF16\",\"shape\":[4096,4096],\"data_offsets\":[$((i * 33554432)),$(((i + 1) * 33554432))]}"
	i=$((i + 1))
done
printf '\000\010\000\000\000\000\000\000' >big.safetensors # header length 2048
printf '%-2048s' "$h}" >>big.safetensors
truncate -s $((8 + 2048 + 16 * 33554432)) big.safetensors
for sig in INT TERM; do
	$NF4QUANT -T 1 big.safetensors -o out 2>err.txt &
	pid=$!
	# wait for the temporary output to appear (the conversion has begun), then signal
	i=0
	until ls -A | grep -q '^\.out\.tmp-'; do
		[ $i -lt 500 ] || { kill -KILL $pid; die "no temporary output after 10 s"; }
		sleep 0.02
		i=$((i + 1))
	done
	sleep 0.2
	kill -$sig $pid
	rc=0
	wait $pid || rc=$?
	cat err.txt >&2
	[ "$rc" != 0 ] || die "SIG$sig: exit status 0: the conversion was over before the signal (make the model bigger)"
	grep -q '^nf4quant: interrupted$' err.txt || die "SIG$sig: no 'interrupted' message"
	rm err.txt
	[ "$(ls -A)" = big.safetensors ] || die "SIG$sig: left behind: $(ls -A | tr '\n' ' ')"
done
