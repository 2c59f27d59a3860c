# --finish replaces the directory of parts with the finished output, so it consumes the parts and
# removes nothing else: a directory that holds anything else is refused, the entry named (a file, a
# subdirectory, the temporary file of a --shard job still writing); parts made with other options than
# the finish run are said to be so, not "missing". Each: exit 1, one message, nothing changed.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models/tiny-llama-sharded"
for i in 1 2 3; do $NF4QUANT -q --device cpu --shard $i/3 "$M" -o parts; done
echo canary >parts/notes.txt
fails --finish "$M" -o parts
case $msg in *"'notes.txt'"*) ;; *) die "notes.txt not named: $msg" ;; esac
fails "$M" -o parts
rm parts/notes.txt
mkdir parts/sub
echo canary >parts/sub/keep
fails --finish "$M" -o parts
rm -r parts/sub
echo partial >parts/.model-00002-of-00005.safetensors.tmp-AbC123
fails --finish "$M" -o parts
case $msg in *"still writing"*) ;; *) die "the temporary part was not recognized: $msg" ;; esac
rm parts/.model-00002-of-00005.safetensors.tmp-AbC123
# parts of another plan (--max-shard-size gives other shards): the options differ
for i in 1 2; do $NF4QUANT -q --device cpu --shard $i/2 --max-shard-size 100kB "$M" -o other; done
fails --finish "$M" -o other
case $msg in *"other options"*) ;; *) die "the options were not said to differ: $msg" ;; esac
fails --finish --max-shard-size 200kB "$M" -o other
case $msg in *"other options"*) ;; *) die "the options were not said to differ: $msg" ;; esac
# with the options of the parts, both finish
$NF4QUANT -q --device cpu --finish --max-shard-size 100kB "$M" -o other
$NF4QUANT -q --device cpu --finish "$M" -o parts
$NF4QUANT -q --device cpu "$M" -o whole
diff -r whole parts || die "the finished parts differ from one run"
