# loramerge --base-as and --requantize as shard jobs: the parts plus --finish give the bytes of one run,
# each part quantizes only the base weights of its own shards, and --finish quantizes none.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models/tiny-llama-sharded"
A="$FIXTURES/peft/adapters/rslora_r16" # q and v only: the other weights are copied as 4-bit groups
for mode in "--base-as nf4" "--requantize" "--base-as fp4 --blocksize 128 --requantize"; do
	$LORAMERGE -q --device cpu $mode "$M" "$A" -o whole
	total=0
	for i in 2 1 3; do
		$LORAMERGE -v --device cpu $mode --shard $i/3 "$M" "$A" -o parts 2>e || die "$mode part $i/3: $(cat e)"
		n=$(sed -n 's/.*--base-as: \([0-9]*\) weights\{0,1\} of the shards.*/\1/p' e)
		[ -n "$n" ] || die "$mode part $i/3 says nothing of --base-as: $(cat e)"
		[ "$n" -lt 14 ] || die "$mode part $i/3 quantized $n weights: the whole base"
		total=$((total + n))
	done
	[ $total = 14 ] || die "$mode: the parts quantized $total weights, not the base's 14"
	$LORAMERGE -v --device cpu $mode --finish "$M" "$A" -o parts 2>e || die "$mode --finish: $(cat e)"
	! grep -q -- '--base-as:' e || die "$mode --finish quantized: $(cat e)"
	diff -r whole parts || die "$mode: parts + --finish differ from one run"
	ls -a | grep -q 'base-as' && die "$mode: a scratch file was left: $(ls -a)"
	rm -rf whole parts
done
exit 0
