# --shard 1/3, 2/3, 3/3 as separate processes, in any order, then --finish, give the bytes of one run;
# so does running without --shard over the completed parts; a missing part is named.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$NF4QUANT -q --device cpu "$M/tiny-llama-sharded" -o whole
for i in 3 1 2; do $NF4QUANT -q --device cpu -T $i --shard $i/3 "$M/tiny-llama-sharded" -o parts; done
[ ! -e parts/MANIFEST ] || die "a part wrote the MANIFEST"
[ "$(ls parts | wc -l)" = 5 ] || die "parts holds $(ls parts)"
$NF4QUANT -q --device cpu --finish "$M/tiny-llama-sharded" -o parts
diff -r whole parts || die "parts + --finish differ from one run"
# the same without --finish: a directory of every part is completed
for i in 1 2 3; do $NF4QUANT -q --device cpu --shard $i/3 "$M/tiny-llama-sharded" -o p2; done
$NF4QUANT -q --device cpu "$M/tiny-llama-sharded" -o p2
diff -r whole p2 || die "parts completed without --finish differ"
# a part missing: named, nothing written
for i in 1 3; do $NF4QUANT -q --device cpu --shard $i/3 "$M/tiny-llama-sharded" -o p3; done
rc=0; $NF4QUANT --finish "$M/tiny-llama-sharded" -o p3 2>e || rc=$?
[ $rc = 1 ] || die "--finish with a part missing: exit $rc"
grep -q "lacks .* of its 5 parts' shards" e || die "no message naming the missing shards: $(cat e)"
[ ! -e p3/config.json ] || die "--finish wrote a config.json with a part missing"
# parts made with other options are not taken
$NF4QUANT -q --device cpu --shard 2/3 --blocksize 128 "$M/tiny-llama-sharded" -o p3
rc=0; $NF4QUANT --finish "$M/tiny-llama-sharded" -o p3 2>e || rc=$?
[ $rc = 1 ] && grep -q "not a part of this conversion" e || die "a part of other options was taken: $(cat e)"
# loramerge: the same
$LORAMERGE -q --device cpu "$M/tiny-llama-sharded" "$FIXTURES/peft/adapters/plain_r8" -o lm-whole
for i in 1 2; do $LORAMERGE -q --device cpu --shard $i/2 "$M/tiny-llama-sharded" "$FIXTURES/peft/adapters/plain_r8" -o lm; done
$LORAMERGE -q --device cpu --finish "$M/tiny-llama-sharded" "$FIXTURES/peft/adapters/plain_r8" -o lm
diff -r lm-whole lm || die "loramerge parts + --finish differ from one run"
