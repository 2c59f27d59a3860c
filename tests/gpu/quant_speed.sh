#!/bin/sh
# quant_speed.sh: the bf16 NF4 quantize kernel (kernels/quantize_nf4_bf16.cu) and the layer's double
# quantization in one launch (issue 17: quantize NF4 + double quant >= 3.0 TB/s), on the GPU machine, from
# the bundle (tests/gpu/README.md), in the repository root:
#
#   sh tests/gpu/quant_speed.sh [BIN]        (BIN: .gpu/bin by default)
#
# 1. on the CPU, its code table on every float and its arithmetic against the reference (the same source,
#    quantize_nf4_bf16.cuh); on the GPU, the table on every float, and its bytes against the general
#    kernel's (quantize.cu) over 14 sizes x 8 block sizes with zero, subnormal, tiny, huge and non-finite
#    blocks;
# 2. the CUDA unit tests that compare the GPU with the CPU reference (fresh random data of every dtype,
#    code, block size and many lengths, ranges split over the backend's pieces, the first non-finite
#    element, the golden bitsandbytes cases);
# 3. bench_gpu's table twice: quantize with this kernel and one double-quantization launch for the layer,
#    with the launches per tensor, and with the general kernel (the numbers before), in the same run, and
#    the check that they write the same bytes; then bitsandbytes' own (tests/gpu/bench_bnb.py) when
#    PYTHONPATH finds it (.bnb: tests/gpu/pack_bnb.sh); the kernel's ncu profile where ncu is.
# Exit status 1 if any check fails. Until this has passed on a GPU, quantize_launch (the programs) takes the
# general kernel and step 2 tests that; once it has, kernels/quantize.cu routes bf16 to NF4 to the new kernel
# (bench_gpu's candidate_launch) and step 2 covers it too.
set -u
bin=${1:-.gpu/bin}
lib=$(cd "$bin/.." && pwd)/lib
export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
log=${OUT:-/tmp}/quant_speed_unit.log
rc=0
run() {
	echo "=== $*"
	"$@" || { echo "FAIL (exit $?): $*"; rc=1; }
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
run "$bin/bench_gpu" --verify-tables
run "$bin/bench_gpu" --verify
echo "=== LQ_TEST_DEVICE=cuda $bin/test_unit golden quant executor"
LQ_TEST_DEVICE=cuda "$bin/test_unit" golden quant executor >"$log" 2>&1 || { echo "FAIL: test_unit (log: $log)"; rc=1; }
grep -e "tests, " -e "FAIL" "$log" | tail -20 | grep . || tail -5 "$log"
run "$bin/bench_gpu" 64
run "$bin/bench_gpu" 64
# the kernel's profile (one 4096 x 4096 launch), where ncu is: warp-instructions per element (expected
# about 0.36, 11.4 thread-instructions, against the general kernel's 0.69), DRAM and SM throughput
if command -v ncu >/dev/null 2>&1; then
	run ncu --clock-control none --kernel-name regex:quantize_nf4_bf16_kernel --launch-skip 30 --launch-count 1 \
		--section SpeedOfLight --section Occupancy --section WarpStateStats --section InstructionStats \
		"$bin/bench_gpu" 64
fi
if python3 -c "import bitsandbytes, torch" 2>/dev/null; then
	run python3 tests/gpu/bench_bnb.py
else
	echo "=== bench_bnb.py: SKIP (no bitsandbytes on PYTHONPATH)"
fi
echo "quant_speed: $([ $rc = 0 ] && echo PASS || echo FAIL)"
exit $rc
