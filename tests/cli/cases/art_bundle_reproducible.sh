# A bundle is the same bytes every time: twice, with -T 1 and -T 2, at the default level; another
# --zstd-level gives other bytes but the same files. Its entries are sorted, with fixed metadata.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models"
$NF4QUANT -q --device cpu -T 1 "$M/tiny-llama-sharded" -o a.tar.zst
$NF4QUANT -q --device cpu -T 2 "$M/tiny-llama-sharded" -o b.tar.zst
$NF4QUANT -q --device cpu -T 2 "$M/tiny-llama-sharded" -o c.tar.zst
cmp a.tar.zst b.tar.zst || die "-T 1 and -T 2 gave different bundles"
cmp b.tar.zst c.tar.zst || die "two runs gave different bundles"
$NF4QUANT -q --device cpu --zstd-level 19 "$M/tiny-llama-sharded" -o d.tar.zst
! cmp -s a.tar.zst d.tar.zst || die "--zstd-level 19 gave the bytes of level 3"
zstd -q -d -c a.tar.zst >a.tar
zstd -q -d -c d.tar.zst | cmp - a.tar || die "the archive inside differs with the level"
# an uncompressed .tar is that same archive
$NF4QUANT -q --device cpu "$M/tiny-llama-sharded" -o e.tar
cmp a.tar e.tar || die "the .tar output is not the archive inside the .tar.zst"
# sorted entries, fixed owner and time, mode 0644, a MANIFEST among them
tar -tvf a.tar >list
names=$(awk '{print $6}' list)
[ "$names" = "$(printf '%s\n' "$names" | LC_ALL=C sort)" ] || die "entries not sorted: $names"
printf '%s\n' "$names" | grep -qx MANIFEST || die "no MANIFEST entry"
printf '%s\n' "$names" | grep -qx model.safetensors.index.json || die "no index"
awk '$1 != "-rw-r--r--" || $2 != "0/0" || $4 != "1970-01-01" {exit 1}' list || die "metadata not fixed: $(cat list)"
