# A model of many shards under a low limit on open files: the input shards and the output shards are
# opened when they are used, a few at a time, never all at once (300 shards under `ulimit -n 64`; a
# 1,500-shard model failed under the usual 1024). Into a directory of as many shards, into one file,
# in parts, and read back by qinspect.
. "$CLIDIR/lib.sh"
n=300
mkdir in
i=0
index='{"metadata": {"total_size": '$((n * 8192))'}, "weight_map": {'
sep=
while [ $i -lt $n ]; do
	f=$(printf 'model-%05d-of-%05d.safetensors' $((i + 1)) $n)
	# a [64, 64] BF16 weight of zeros: a 120-byte header, then 8192 bytes
	printf '\170\000\000\000\000\000\000\000' >in/$f
	printf '%-120s' "{\"model.layers.$i.mlp.up_proj.weight\":{\"dtype\":\"BF16\",\"shape\":[64,64],\"data_offsets\":[0,8192]}}" >>in/$f
	truncate -s $((8 + 120 + 8192)) in/$f
	index="$index$sep \"model.layers.$i.mlp.up_proj.weight\": \"$f\""
	sep=,
	i=$((i + 1))
done
printf '%s}}\n' "$index" >in/model.safetensors.index.json
echo '{"model_type": "llama"}' >in/config.json
ulimit -n 64
$NF4QUANT -q --device cpu in -o out
[ "$(ls out | grep -c '\.safetensors$')" = $n ] || die "out does not hold $n shards"
$NF4QUANT -q --device cpu in -o out.safetensors
$QINSPECT -q --device cpu out.safetensors >/dev/null || die "qinspect of the single file failed"
for p in 1 2 3; do $NF4QUANT -q --device cpu --shard $p/3 in -o parts; done
$NF4QUANT -q --device cpu --finish in -o parts
diff -r out parts || die "the parts differ from one run"
$QINSPECT -q --device cpu out in >/dev/null || die "qinspect of $n shards against $n failed"
