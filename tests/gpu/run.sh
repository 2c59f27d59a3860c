#!/bin/sh
# run.sh BUILD_DIR: the tests that need an NVIDIA GPU with torch, transformers and bitsandbytes (the GPU
# machine; see tests/gpu/README.md). Without a GPU they are skipped, and this says so.
set -eu
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
	echo "GPU tests: SKIPPED, no NVIDIA GPU here (nvidia-smi finds none). They run on the GPU machine:"
	echo "           see tests/gpu/README.md; their last results are in tests/gpu/RESULTS.md."
	exit 0
fi
if ! python3 -c "import torch, transformers, bitsandbytes; assert torch.cuda.is_available()" 2>/dev/null; then
	echo "GPU tests: FAILED to start: python3 needs torch (CUDA), transformers and bitsandbytes" >&2
	exit 1
fi
cd "$top"
work=$(mktemp -d "${TMPDIR:-/tmp}/lq-gpu-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
# the kernels against the CPU reference (fresh random data, every dtype, code and blocksize) and the
# golden cases, through the unit suite on the GPU backend
LQ_TEST_DEVICE=cuda "$build/test_unit" golden quant executor
"$build/bench_gpu" --verify
for args in "" "--quant-type fp4" "--no-double-quant --blocksize 128"; do
	"$build/nf4quant" -q --device cuda $args fixtures/models/tiny-llama-sharded -o "$work/g"
	"$build/nf4quant" -q --device cpu $args fixtures/models/tiny-llama-sharded -o "$work/c"
	for f in $(ls "$work/c"); do cmp "$work/g/$f" "$work/c/$f"; done
	rm -rf "$work/g" "$work/c"
done
echo "GPU and CPU outputs identical"
"$build/nf4quant" -q "fixtures/models/tiny-llama" -o "$work/nf4"
"$build/nf4quant" -q --quant-type fp4 "fixtures/models/tiny-llama" -o "$work/fp4"
"$build/nf4quant" -q --exclude 'model.layers.0.*' "fixtures/models/tiny-llama" -o "$work/excluded"
python3 tests/gpu/interop_logits.py "$work/nf4" "$work/fp4" "$work/excluded"
python3 tests/gpu/large_tensors.py "$build/nf4quant" "$work/large"
python3 tests/gpu/torch_mean_check.py "$build/torch_mean_driver"
python3 tests/gpu/torch_norm_check.py "$build/torch_norm_driver"
python3 tests/gpu/dora_check.py "$build/loramerge" "$build/stcmp" "$work/dora"
echo "GPU tests: passed"
