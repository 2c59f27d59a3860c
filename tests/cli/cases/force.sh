# What -f replaces, and how: an earlier output of these tools (exactly what its MANIFEST lists, in
# subdirectories too), an empty directory, a file, and a symbolic link (the link itself, never what it
# points to); nothing of the old output stays, and no temporary or old copy is left beside.
. "$CLIDIR/lib.sh"
M="$FIXTURES/models/tiny-llama"
want="MANIFEST config.json generation_config.json model.safetensors "
# an earlier output, replaced by one made with other options
$NF4QUANT -q --quant-type fp4 "$M" -o out
$NF4QUANT -q -f "$M" -o out
[ "$(ls out | tr '\n' ' ')" = "$want" ] || die "out: $(ls out)"
$STCMP out "$FIXTURES/models/tiny-llama-nf4"
# an earlier output with a subdirectory its MANIFEST lists (sentence-transformers' 1_Pooling/): all of it
# goes, the directory too
mkdir out/1_Pooling
echo '{"pooling_mode_mean_tokens": true}' >out/1_Pooling/config.json
awk '{ print } /"files": \[/ { print "    {\"path\": \"1_Pooling/config.json\", \"size\": 35, \"xxh3_128\": \"00\"}," }' \
	out/MANIFEST >m && mv m out/MANIFEST
grep -q '"1_Pooling/config.json"' out/MANIFEST || die "the MANIFEST was not edited"
$NF4QUANT -q -f "$M" -o out
[ "$(ls out | tr '\n' ' ')" = "$want" ] || die "out after a subdirectory: $(ls out)"
# an empty directory
mkdir empty
$NF4QUANT -q -f "$M" -o empty
$STCMP empty "$FIXTURES/models/tiny-llama-nf4"
# a file, by a file and by a directory
echo old >out.safetensors
$NF4QUANT -q --force "$M" -o out.safetensors
$STCMP out.safetensors "$FIXTURES/models/tiny-llama-nf4/model.safetensors"
echo old >file
$NF4QUANT -q -f "$M" -o file
[ -d file ] && [ "$(ls file | tr '\n' ' ')" = "$want" ] || die "file was not replaced by a directory"
# a link to a directory of someone else's files: the link is replaced, the files stay, byte for byte
mkdir victim
echo canary >victim/keep
mkdir victim/sub
echo canary >victim/sub/keep
ln -s victim link
$NF4QUANT -q -f "$M" -o link
[ ! -L link ] && [ "$(ls link | tr '\n' ' ')" = "$want" ] || die "link was not replaced by the output"
[ "$(cat victim/keep victim/sub/keep)" = "canary
canary" ] && [ "$(ls -A victim | tr '\n' ' ')" = "keep sub " ] || die "the link's target was touched"
# a link to a file: the link is replaced, the file stays
echo canary >target
ln -s target flink.safetensors
$NF4QUANT -q -f "$M" -o flink.safetensors
[ ! -L flink.safetensors ] && [ "$(cat target)" = canary ] || die "the file link's target was touched"
$STCMP flink.safetensors "$FIXTURES/models/tiny-llama-nf4/model.safetensors"
# an earlier output of a bundle
$NF4QUANT -q "$M" -o b.tar.zst
$NF4QUANT -q -f --quant-type fp4 "$M" -o b.tar.zst
[ "$(ls -A | tr '\n' ' ')" = "b.tar.zst empty file flink.safetensors link out out.safetensors target victim " ] ||
	die "left beside: $(ls -A)"
