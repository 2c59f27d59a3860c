# A bundle holds exactly the directory output's files, byte for byte; and a bundle is an input like a
# directory for every tool: nf4quant, loramerge and qinspect give what they give from the directory.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$NF4QUANT -q --device cpu "$M/tiny-llama" -o dir
$NF4QUANT -q --device cpu "$M/tiny-llama" -o b.tar.zst
mkdir x && (cd x && zstd -q -d -c ../b.tar.zst | tar -xf -)
diff -r dir x || die "the bundle's files differ from the directory's"
$STCMP b.tar.zst dir >/dev/null || die "stcmp: the bundle read in place differs from the directory"
# inputs: a bundle of the float model (as users make them, with a top directory) and of our output
mkdir src && cp -r "$M/tiny-llama" src/tiny-llama && tar -C src -cf - tiny-llama | zstd -q >in.tar.zst
$NF4QUANT -q --device cpu in.tar.zst -o from-bundle
diff -r dir from-bundle || die "nf4quant from a bundle differs from nf4quant from the directory"
$LORAMERGE -q --device cpu b.tar.zst "$FIXTURES/peft/adapters/plain_r8" -o merged-b
$LORAMERGE -q --device cpu dir "$FIXTURES/peft/adapters/plain_r8" -o merged-d
diff -r merged-b merged-d || die "loramerge from a bundle differs"
$QINSPECT --json b.tar.zst in.tar.zst | grep -v -e '"checkpoint"' -e '"reference"' -e '"seconds"' >qb
$QINSPECT --json dir "$M/tiny-llama" | grep -v -e '"checkpoint"' -e '"reference"' -e '"seconds"' >qd
grep -q '"rel_err"' qb || die "qinspect of bundles compared nothing"
diff qb qd >/dev/null || die "qinspect's figures from bundles differ: $(diff qb qd | head -5)"
# one side a bundle: its tensors are read in the order of its bytes, the report keeps the checkpoint's
# order and figures; the sharded float model bundled as a reference too
$QINSPECT --json b.tar.zst "$M/tiny-llama" | grep -v -e '"checkpoint"' -e '"reference"' -e '"seconds"' >q1
$QINSPECT --json dir in.tar.zst | grep -v -e '"checkpoint"' -e '"reference"' -e '"seconds"' >q2
diff q1 qd >/dev/null || die "qinspect with the checkpoint in a bundle differs: $(diff q1 qd | head -5)"
diff q2 qd >/dev/null || die "qinspect with the reference in a bundle differs: $(diff q2 qd | head -5)"
tar -C "$M" -cf - tiny-llama-sharded | zstd -q >sharded.tar.zst
$QINSPECT --csv b.tar.zst sharded.tar.zst >c1
$QINSPECT --csv dir "$M/tiny-llama-sharded" >c2
diff c1 c2 >/dev/null || die "qinspect against the sharded reference in a bundle differs: $(diff c1 c2 | head -5)"
