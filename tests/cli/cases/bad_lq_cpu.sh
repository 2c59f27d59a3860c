# LQ_CPU names kernels; another value is a usage error, not a silent fallback to the fastest, for each
# tool. An empty LQ_CPU is the default.
. "$CLIDIR/lib.sh"
LQ_CPU=avx1024 usage_error "$FIXTURES/models/tiny-llama" -o out
[ "$msg" = "nf4quant: invalid LQ_CPU 'avx1024' (scalar, avx2 or avx512)
$(try_line)" ] || die "message: $msg"
TOOL=loramerge
LQ_CPU=AVX2 usage_error "$FIXTURES/models/tiny-llama" "$FIXTURES/peft/adapters/plain_r8" -o out
TOOL=qinspect
LQ_CPU=sse2 usage_error "$FIXTURES/models/tiny-llama"
LQ_CPU= $NF4QUANT -q "$FIXTURES/models/tiny-llama" -o empty
