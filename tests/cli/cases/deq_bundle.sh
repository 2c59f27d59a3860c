# nf4quant -d reads a bundle of a 4-bit model directory in place and writes one: the same bytes as from and
# to a directory, reproducibly; qinspect --verify accepts it.
. "$CLIDIR/lib.sh"
command -v zstd >/dev/null || { echo "SKIP: no zstd program"; exit 0; }
M="$FIXTURES/models"
$NF4QUANT -q "$M/tiny-llama" -o q.tar.zst
$NF4QUANT -q -d q.tar.zst -o out
$NF4QUANT -q -d "$M/tiny-llama-nf4" -o ref
cmp out/model.safetensors ref/model.safetensors || die "a bundle input differs"
cmp out/config.json ref/config.json
$NF4QUANT -q -d q.tar.zst -o out.tar.zst
$NF4QUANT -q -d -T 1 q.tar.zst -o out1.tar.zst
cmp out.tar.zst out1.tar.zst || die "the bundle depends on the thread count"
$QINSPECT -q --verify out.tar.zst
mkdir x && zstd -dq <out.tar.zst | tar -xf - -C x
cmp x/model.safetensors ref/model.safetensors || die "the bundle's model differs"
