#!/bin/sh
# device_session.sh: every GPU check and benchmark in one run on the lent GPU machine (README.md);
# each step's full log goes to $OUT/STEP.log, a summary to standard output.
set -u
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
export LD_LIBRARY_PATH=.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONUNBUFFERED=1
status=0
step() {
	name=$1; shift
	# STEPS="a b c" runs only those steps (all by default)
	case " ${STEPS:-$name} " in *" $name "*) ;; *) return 0 ;; esac
	echo "=== $name"
	t0=$(date +%s)
	if "$@" >"$out/$name.log" 2>&1; then r=PASS; else r="FAIL (exit $?)"; status=1; fi
	echo "$r $name ($(($(date +%s) - t0)) s)"
	grep -v -i -e "warn" -e "^ok " -e "Loading weights" -e "Writing model" "$out/$name.log" | tail -${TAIL:-14}
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
w=$(mktemp -d)
nq=.gpu/bin/nf4quant
# 0. the table lookup of the codes equals the binary search for every float
step verify_codes .gpu/bin/bench_gpu --verify
# 1. the kernels against the CPU reference: fresh random data, every dtype/code/blocksize, partial
#    blocks, odd sizes, zero blocks, ranges split across the backend's pieces; the golden cases
step gpu_unit env LQ_TEST_DEVICE=cuda .gpu/bin/test_unit golden quant executor
# 2. nf4quant on the GPU writes the CPU's bytes
gpu_vs_cpu() {
	set -f # the options below hold a literal '*'
	for args in "" "--quant-type fp4" "--no-double-quant --blocksize 128" "--blocksize 4096" "--include * --blocksize 32"; do
		for m in fixtures/models/tiny-llama fixtures/models/tiny-llama-sharded; do
			rm -rf "$w/g" "$w/c"
			$nq -q --device cuda $args "$m" -o "$w/g" && $nq -q --device cpu $args "$m" -o "$w/c" || return 1
			for f in $(ls "$w/c"); do cmp "$w/g/$f" "$w/c/$f" || return 1; done
			echo "identical: $m $args"
		done
	done
	rm -rf "$w/g" "$w/c"
	$nq -q --device all fixtures/models/tiny-llama -o "$w/g" && $nq -q --device cpu fixtures/models/tiny-llama -o "$w/c" &&
		cmp "$w/g/model.safetensors" "$w/c/model.safetensors" && echo "identical: --device all" || return 1
	set +f
}
step gpu_vs_cpu gpu_vs_cpu
$nq -q --device cuda fixtures/models/tiny-llama -o "$w/nf4"
$nq -q --device cuda --quant-type fp4 fixtures/models/tiny-llama -o "$w/fp4"
$nq -q --device cuda --exclude 'model.layers.0.*' fixtures/models/tiny-llama -o "$w/excluded"
step interop_logits python3 tests/gpu/interop_logits.py "$w/nf4" "$w/fp4" "$w/excluded"
# 3. compute-sanitizer: memory errors and races in the kernels
step memcheck compute-sanitizer --tool memcheck --error-exitcode 1 env LQ_TEST_DEVICE=cuda .gpu/bin/test_unit golden_reference
step racecheck compute-sanitizer --tool racecheck --error-exitcode 1 env LQ_TEST_DEVICE=cuda .gpu/bin/test_unit golden_reference
# 4. benchmarks
TAIL=8 step bench_kernels .gpu/bin/bench_gpu 64
TAIL=8 step bench_bnb python3 tests/gpu/bench_bnb.py
TAIL=60 step profile ncu --clock-control none --kernel-name regex:quantize_kernel --launch-skip 30 --launch-count 1 \
	--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy \
	--section WarpStateStats --section InstructionStats .gpu/bin/bench_gpu 64
step synthetic python3 tests/gpu/make_synthetic.py "$w/model"
TAIL=10 step bench_e2e python3 tests/gpu/bench_e2e.py $nq "$w/model" "$w/e2e"
step timing sh -c "$nq -vv -f --device cuda $w/model -o $w/t 2>&1 | grep -e time: -e compute; $nq -vv -f --device cpu $w/model -o $w/t 2>&1 | grep -e time: -e compute"
rm -rf "$w"
exit $status
