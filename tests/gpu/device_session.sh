#!/bin/sh
# device_session.sh: every GPU check and benchmark in one run on the lent GPU machine (README.md);
# each step's full log goes to $OUT/STEP.log, a summary to standard output.
set -u
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
export LD_LIBRARY_PATH=$(pwd)/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# the zstd program, which the GPU machine lacks (the bundle cases and art_bench run it), comes in .gpu/bin
export PATH=$(pwd)/.gpu/bin:$PATH
export PYTHONUNBUFFERED=1
. tests/tools/calc.sh
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
# 5. loramerge: the GPU merge against the spec's arithmetic and the CPU; the golden cases (--device auto:
#    the CPU for these small inputs since issue 17, so they no longer exercise the GPU); PEFT references for trainable tokens, LoRA biases and GPT-2's Conv1D made
#    here and compared; transformers loads the merged models; the benchmark against PEFT
lm=.gpu/bin/loramerge
step lm_unit env LQ_TEST_DEVICE=cuda .gpu/bin/test_unit merge executor error_sums
step lm_memcheck compute-sanitizer --tool memcheck --error-exitcode 1 env LQ_TEST_DEVICE=cuda .gpu/bin/test_unit merge error_sums
step lm_cli env LQ_DEVICE=cuda sh tests/cli/run.sh .gpu/bin $(cd tests/cli/cases && ls lm_*.sh qi_*.sh | sed "s/[.]sh$//")
lm_gpu_vs_cpu() {
	b=fixtures/models
	for a in plain_r8 rslora_r16 patterns dora_r8 dora_embed_r4 embed_mts bf16_stored; do
		for mode in "$b/tiny-llama" "--base-as nf4 $b/tiny-llama" "$b/tiny-llama-nf4" "--requantize $b/tiny-llama" \
			"--dtype fp32 $b/tiny-llama-sharded"; do
			rm -rf "$w/g" "$w/c"
			$lm -q --device cuda $mode fixtures/peft/adapters/$a -o "$w/g" &&
				$lm -q --device cpu $mode fixtures/peft/adapters/$a -o "$w/c" || return 1
			for f in $(ls "$w/c"); do cmp "$w/g/$f" "$w/c/$f" || return 1; done
			echo "identical: $a $mode"
		done
	done
	rm -rf "$w/g" "$w/c"
	$lm -q --device cuda $b/tiny-llama fixtures/peft/adapters/plain_r8 fixtures/peft/adapters/dora_r8:0.5 -o "$w/g" &&
		$lm -q --device cpu $b/tiny-llama fixtures/peft/adapters/plain_r8 fixtures/peft/adapters/dora_r8:0.5 -o "$w/c" &&
		cmp "$w/g/model.safetensors" "$w/c/model.safetensors" && echo "identical: two adapters" || return 1
}
step lm_gpu_vs_cpu lm_gpu_vs_cpu
# the fidelity sums of a merge on the GPU are the CPU's bits: the reports equal but for the device
lm_fidelity_gpu_vs_cpu() {
	b=fixtures/models
	for a in fixtures/peft/adapters/plain_r8 fixtures/peft/adapters/dora_r8 fixtures/fidelity/tiny_lr1e-3; do
		for mode in "--requantize $b/tiny-llama" "$b/tiny-llama-nf4" "--requantize $b/tiny-llama-nf4" \
			"$b/tiny-llama" "--base-as nf4 $b/tiny-llama" "--requantize --no-double-quant $b/tiny-llama"; do
			for d in cuda cpu; do
				$lm -q -f --device $d --fidelity "$w/f-$d.json" $mode $a -o "$w/f-$d" || return 1
				grep -v -e '"device"' -e '"output"' "$w/f-$d.json" >"$w/f-$d.cmp"
			done
			cmp "$w/f-cuda.cmp" "$w/f-cpu.cmp" && cmp "$w/f-cuda/model.safetensors" "$w/f-cpu/model.safetensors" || return 1
			echo "identical fidelity reports and outputs: $a $mode"
		done
	done
}
step lm_fidelity_gpu_vs_cpu lm_fidelity_gpu_vs_cpu
# DoRA: the norms replayed in torch's CUDA order equal torch's, and the DoRA merges (rows of Linear weights,
# columns of an embedding and of GPT-2's Conv1D) equal PEFT's on this GPU, fp32 bases too, GPU = CPU
TAIL=12 step lm_torch_norm python3 tests/gpu/torch_norm_check.py .gpu/bin/torch_norm_driver
TAIL=8 step lm_dora python3 tests/gpu/dora_check.py $lm .gpu/bin/stcmp "$w/dora"
lora_refs() {
	r="$w/lora-refs"
	python3 tests/gpu/make_lora_refs.py "$r" || return 1
	tar -C "$w" -cf "$out/lora-refs.tar" lora-refs
	rc=0
	for spec in "tokens_r4 fixtures/models/tiny-llama" "bias_r8 $r/models/tiny-qwen2" "gpt2_r4 $r/models/tiny-gpt2"; do
		set -- $spec
		echo "--- $1"
		$lm -v -f "$2" "$r/adapters/$1" -o "$w/lr-$1" 2>&1 | tail -4
		.gpu/bin/stcmp --ulps 1 "$w/lr-$1" "$r/merged/$1" | tail -3 || rc=1
		$lm -q -f --device cpu "$2" "$r/adapters/$1" -o "$w/lrc-$1" &&
			cmp "$w/lr-$1/model.safetensors" "$w/lrc-$1/model.safetensors" && echo "cuda = cpu" || rc=1
	done
	return $rc
}
TAIL=40 step lm_refs lora_refs
# loramerge --combine's SVD types: cuSOLVER (GPU) against LAPACK (CPU) on the adapters of
# tests/interop/combine.sh; the unit test on random low-rank + noise matrices. cuSOLVER is loaded with
# dlopen: its library comes from torch's CUDA wheels (or a toolkit) here, and LD_DEBUG shows it loaded, so
# that a fall-back to LAPACK cannot pass for the GPU. LQ_SVD_DEVICE=cpu runs the same off the GPU machine.
cusolver_dir() {
	for d in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) /usr/local/cuda/lib64 \
		/usr/lib/x86_64-linux-gnu; do
		f=$(find "$d" -name 'libcusolver.so.[0-9]*' 2>/dev/null | head -1)
		[ -n "$f" ] && { dirname "$f"; return 0; }
	done
	return 1
}
lc_svd_gpu_vs_cpu() {
	dev=${LQ_SVD_DEVICE:-cuda}
	if [ "$dev" != cpu ]; then
		lib=$(cusolver_dir) || { echo "no libcusolver.so found"; return 1; }
		echo "cuSOLVER from $lib"
		export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$lib
	fi
	A=fixtures/peft/adapters
	rc=0
	while read -r label args; do
		rm -rf "$w/sg" "$w/sc"
		LD_DEBUG=files $lm -q --device $dev --combine $args -o "$w/sg" 2>"$w/sg.debug" || { tail -3 "$w/sg.debug"; return 1; }
		$lm -q --device cpu --combine $args -o "$w/sc" || return 1
		if [ "$dev" != cpu ] && ! grep -q 'calling init: .*libcusolver' "$w/sg.debug"; then
			echo "$label: cuSOLVER was not loaded"; rc=1
		fi
		printf "%s: " "$label"
		python3 tests/gpu/svd_compare.py "$w/sg" "$w/sc" || rc=1
	done <<-EOF
	svd svd $A/plain_r8:0.7 $A/rslora_r16:-1.3
	ties_svd ties_svd --density 0.5 $A/plain_r8:0.7 $A/bf16_stored:-0.5
	magnitude_prune_svd magnitude_prune_svd --density 0.4 $A/plain_r8 $A/rslora_r16
	svd_rank4 svd --svd-rank 4 $A/plain_r8 $A/bf16_stored
	svd_rank4_clamp svd --svd-rank 4 --svd-clamp 0.9 $A/plain_r8 $A/bf16_stored
	EOF
	LQ_TEST_DEVICE=$dev LD_DEBUG=files .gpu/bin/test_unit svd_ 2>"$w/su.debug" || rc=1
	if [ "$dev" != cpu ] && ! grep -q 'calling init: .*libcusolver' "$w/su.debug"; then
		echo "test_unit: cuSOLVER was not loaded"; rc=1
	fi
	return $rc
}
TAIL=12 step lc_svd lc_svd_gpu_vs_cpu
TAIL=12 step lm_interop python3 tests/gpu/lora_interop.py $lm "$w/lmi"
[ -d "$w/model" ] || step lm_synthetic python3 tests/gpu/make_synthetic.py "$w/model"
TAIL=14 step bench_loramerge python3 tests/gpu/bench_loramerge.py $lm "$w/model" "$w/lmb"
step lm_timing sh -c "$lm -vv -f --device cuda $w/model $w/lmb/adapter -o $w/t 2>&1 | tail -12; $lm -vv -f --device cpu $w/model $w/lmb/adapter -o $w/t 2>&1 | tail -12"
# 6. qinspect: the GPU's figures are the CPU's (the JSON reports equal but for the time and the device),
#    and the time to inspect the 1.07B model's NF4 form against it
qi=.gpu/bin/qinspect
qi_json() { # qi_json DEVICE ARGS...: the report without its time and device
	d=$1; shift
	$qi --json --device "$d" "$@" | grep -v -e '"seconds"' -e '"device"'
}
qi_gpu_vs_cpu() {
	m=fixtures/models
	for pair in "$m/tiny-llama-nf4 $m/tiny-llama" "$m/tiny-llama-fp4 $m/tiny-llama" \
		"fixtures/reference/tensors_ref/ref_q.safetensors" "$m/tiny-llama-nf4"; do
		qi_json cuda $pair >"$w/qg.json" || true
		qi_json cpu $pair >"$w/qc.json" || true
		cmp "$w/qg.json" "$w/qc.json" || return 1
		echo "identical reports: $pair"
	done
}
step qi_gpu_vs_cpu qi_gpu_vs_cpu
[ -d "$w/model" ] || step lm_synthetic python3 tests/gpu/make_synthetic.py "$w/model"
# qinspect --adapter: the merge measured on the GPU (the merge computed there, the sums on the host) gives
# the CPU's report, M computed or read from MERGED (loramerge's output, and a float merge)
qi_adapter_gpu_vs_cpu() {
	m=fixtures/models
	for a in fixtures/peft/adapters/plain_r8 fixtures/peft/adapters/dora_r8 fixtures/fidelity/tiny_lr1e-3; do
		$lm -q -f --device cpu --requantize $m/tiny-llama $a -o "$w/qa-m4" || return 1
		$lm -q -f --device cpu $m/tiny-llama-nf4 $a -o "$w/qa-mf" || return 1
		for args in "$m/tiny-llama" "$m/tiny-llama-nf4" "$m/tiny-llama $w/qa-m4" "$m/tiny-llama-nf4 $w/qa-mf"; do
			qi_json cuda --adapter $a $args >"$w/qag.json" || return 1
			qi_json cpu --adapter $a $args >"$w/qac.json" || return 1
			cmp "$w/qag.json" "$w/qac.json" || return 1
			echo "identical adapter reports: $a $args"
		done
	done
}
step qi_adapter_gpu_vs_cpu qi_adapter_gpu_vs_cpu
qi_bench() {
	$nq -q -f --device cuda "$w/model" -o "$w/model-nf4" || return 1
	for d in cuda cpu; do
		$qi -q --device $d "$w/model-nf4" "$w/model" # warm
		s=$(date +%s.%N)
		$qi --json --device $d "$w/model-nf4" "$w/model" >"$w/qi-$d.json" || return 1
		e=$(date +%s.%N)
		echo "qinspect --device $d: $(awk "BEGIN { printf \"%.3f\", $e - $s }") s"
	done
	grep -v -e '"seconds"' -e '"device"' "$w/qi-cuda.json" >"$w/a.json"
	grep -v -e '"seconds"' -e '"device"' "$w/qi-cpu.json" >"$w/b.json"
	cmp "$w/a.json" "$w/b.json" && echo "GPU and CPU reports identical" || return 1
	$qi --device cuda "$w/model-nf4" "$w/model" | tail -4
}
TAIL=10 step qi_bench qi_bench
# 7. artifacts: bundles, parts and streams give the CPU's bytes on the GPU, with any thread count; the
#    memory of a stream and the time of a bundle on the 1.07B model
art_gpu_vs_cpu() {
	m=fixtures/models/tiny-llama-sharded
	rm -rf "$w/a" && mkdir -p "$w/a"
	for d in cuda cpu; do
		for t in 1 2; do $nq -q --device $d -T $t $m -o "$w/a/$d-$t.tar.zst" || return 1; done
	done
	cmp "$w/a/cuda-1.tar.zst" "$w/a/cpu-1.tar.zst" && cmp "$w/a/cuda-2.tar.zst" "$w/a/cpu-1.tar.zst" &&
		cmp "$w/a/cpu-2.tar.zst" "$w/a/cpu-1.tar.zst" && echo "identical bundles: cuda/cpu x -T 1/2" || return 1
	for i in 1 2 3; do $nq -q --device cuda --shard $i/3 $m -o "$w/a/parts" || return 1; done
	$nq -q --finish $m -o "$w/a/parts" && $nq -q --device cpu $m -o "$w/a/whole" && diff -r "$w/a/parts" "$w/a/whole" &&
		echo "identical: 3 GPU parts + --finish = one CPU run" || return 1
	$lm -q --device cuda $m fixtures/peft/adapters/plain_r8 -o "$w/a/lg.tar.zst" &&
		$lm -q --device cpu $m fixtures/peft/adapters/plain_r8 -o "$w/a/lc.tar.zst" &&
		cmp "$w/a/lg.tar.zst" "$w/a/lc.tar.zst" && echo "identical loramerge bundles: cuda/cpu" || return 1
	a=fixtures/peft/adapters/rslora_r16
	for i in 2 1; do $lm -q --device cuda --base-as nf4 --requantize --shard $i/2 $m $a -o "$w/a/lbp" || return 1; done
	$lm -q --finish --base-as nf4 --requantize $m $a -o "$w/a/lbp" &&
		$lm -q --device cpu --base-as nf4 --requantize $m $a -o "$w/a/lbw" && diff -r "$w/a/lbp" "$w/a/lbw" &&
		echo "identical: loramerge --base-as --requantize, 2 GPU parts + --finish = one CPU run" || return 1
	$qi --verify "$w/a/cuda-1.tar.zst" && $qi --verify "$w/a/lg.tar.zst" || return 1
	f=fixtures/models/tiny-llama/model.safetensors
	cat $f | $nq -q --device cuda - -o - >"$w/a/sg" && cat $f | $nq -q --device cpu - -o - >"$w/a/sc" &&
		cmp "$w/a/sg" "$w/a/sc" && echo "identical streams: cuda/cpu" || return 1
}
step art_gpu_vs_cpu art_gpu_vs_cpu
# 8. nf4quant -d: the golden cases on the GPU give the CPU's bytes (and bitsandbytes' CUDA dequantize_4bit,
#    which the CPU's equal: tests/cli/cases/deq_golden_reference), every dtype, streams and bundles too;
#    real layer sizes against dequantize_4bit on this GPU, and the logits of the dequantized tiny-llama
deq_gpu_vs_cpu() {
	for q in reference/tensors_ref/ref_q bnb-edge/edge_ref_q tiny-llama-nf4 tiny-llama-fp4; do
		case $q in tiny-*) in=fixtures/models/$q ;; *) in=fixtures/$q.safetensors ;; esac
		for dt in "" "--dtype fp32" "--dtype bf16"; do
			rm -rf "$w/dg" "$w/dc"
			$nq -q --device cuda -d $dt "$in" -o "$w/dg" && $nq -q --device cpu -d $dt "$in" -o "$w/dc" || return 1
			for f in $(ls "$w/dc"); do cmp "$w/dg/$f" "$w/dc/$f" || return 1; done
			echo "identical: -d $dt $in"
		done
	done
	$nq -q -f --device cuda -d fixtures/reference/tensors_ref/ref_q.safetensors -o "$w/d.safetensors" &&
		python3 tests/cli/data/deq_tool.py cmp "$w/d.safetensors" fixtures/reference/tensors_ref/ref_deq.safetensors .weight || return 1
	$nq -q -f --device cuda -d fixtures/bnb-edge/edge_ref_q.safetensors -o "$w/d.safetensors" &&
		python3 tests/cli/data/deq_tool.py cmp "$w/d.safetensors" fixtures/bnb-edge/edge_ref_deq.safetensors .weight || return 1
	f=fixtures/models/tiny-llama-nf4/model.safetensors
	cat $f | $nq -q --device cuda -d - -o - >"$w/dsg" && cat $f | $nq -q --device cpu -d - -o - >"$w/dsc" &&
		cmp "$w/dsg" "$w/dsc" && echo "identical -d streams: cuda/cpu" || return 1
	$nq -q -f --device cuda -d fixtures/models/tiny-llama-nf4 -o "$w/dbg.tar.zst" &&
		$nq -q -f --device cpu -d fixtures/models/tiny-llama-nf4 -o "$w/dbc.tar.zst" &&
		cmp "$w/dbg.tar.zst" "$w/dbc.tar.zst" && echo "identical -d bundles: cuda/cpu" || return 1
}
step deq_gpu_vs_cpu deq_gpu_vs_cpu
TAIL=14 step deq_check python3 tests/gpu/deq_check.py $nq "$w/deq"
# every command-line case with the GPU builds (--device auto, the default, takes the CPU for these small
# inputs: its start would cost more than it saves; the *_gpu_vs_cpu steps name cuda)
TAIL=20 step cli_all env LQ_DEVICE=cuda sh tests/cli/run.sh .gpu/bin
[ -d "$w/model" ] || step art_synthetic python3 tests/gpu/make_synthetic.py "$w/model"
# tm LABEL CMD...: wall time and peak resident memory of CMD (and its children)
tm() {
	label=$1; shift
	python3 -c 'import resource, subprocess, sys, time
t = time.time(); r = subprocess.call(sys.argv[2:]); e = time.time() - t
print("%s: %.2f s, peak RSS %d MiB" % (sys.argv[1], e, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024))
sys.exit(r)' "$label" "$@"
}
art_bench() { # ART_RUNS (default 1) rounds of every row
	mf="$w/model/model.safetensors"
	cat "$mf" >/dev/null
	for r in $(seq "${ART_RUNS:-1}"); do
		echo "round $r"
		for d in cuda cpu; do
			tm "stream --device $d (cat | nf4quant - -o - >/dev/null)" sh -c "cat $mf | $nq -q --device $d - -o - >/dev/null" || return 1
			rm -f "$w/b.tar.zst"
			tm "bundle --device $d" $nq -q --device $d "$w/model" -o "$w/b.tar.zst" || return 1
			rm -rf "$w/dir"
			tm "directory --device $d (with its MANIFEST)" $nq -q --device $d "$w/model" -o "$w/dir" || return 1
		done
		tm "cat of the input" sh -c "cat $mf >/dev/null"
		tm "qinspect --verify of the bundle" $qi --verify "$w/b.tar.zst" || return 1
		tm "zstd -d of the bundle (what --verify must at least do)" sh -c "zstd -q -d -c $w/b.tar.zst >/dev/null"
		tm "qinspect --verify of the directory" $qi --verify "$w/dir" || return 1
	done
	ls -l "$w/b.tar.zst" "$w/dir"
}
TAIL=12 step art_bench art_bench
# 9. issue 17: --device auto against cpu and cuda on the 1.07B model (rank-64 adapter) and the shipped
#    one, medians of 3: auto's time over the faster device's, which must be <= 1.05 in every row
[ -d "$w/model" ] || step auto_synthetic python3 tests/gpu/make_synthetic.py "$w/model"
auto_table() {
	[ -d "$w/adapter64" ] || python3 tests/bench/gen_adapter.py "$w/adapter64" 4 || return 1
	WORK="$w/auto" sh tests/gpu/auto_table.sh .gpu/bin 1.07B "$w/model" "$w/adapter64" \
		tiny-llama fixtures/models/tiny-llama fixtures/peft/adapters/plain_r8
}
TAIL=12 step auto_table auto_table
# 10. issue 17: the 70B-shaped stream (tests/bench/gen_stream: Llama-3-70B's 723 tensors, 141 GB of bf16,
#     never stored) through nf4quant on the GPU and on the 16 cores, against the generator alone; peak RSS
#     of nf4quant alone, against the bound 2 x largest tensor (2.1 GB) + 512 MiB. Needs gen_stream and
#     xxhsum in .gpu/bin; STREAM70B_SHAPE="2 1024 4096 8192 8 2 128" makes it small. (nf4quant -d - would spool its 40 GB input to TMPDIR first: not run.)
stream70b() {
	rss() { python3 -c 'import resource, subprocess, sys
r = subprocess.call(sys.argv[1:])
print("nf4quant peak RSS %d MiB" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024), file=sys.stderr)
sys.exit(r)' "$@"; }
	g=.gpu/bin/gen_stream
	s=$(date +%s.%N); $g ${STREAM70B_SHAPE:-} | cat >/dev/null || return 1; e=$(date +%s.%N)
	t=$(calc "$e - $s") || return 1
	echo "gen_stream | cat >/dev/null: $(printf %.1f "$t") s"
	for d in ${STREAM70B_DEVICES:-cuda cpu}; do
		s=$(date +%s.%N)
		h=$($g ${STREAM70B_SHAPE:-} | rss $nq -q --device $d - -o - | xxhsum | cut -d' ' -f1)
		e=$(date +%s.%N)
		t=$(calc "$e - $s") || return 1
		echo "gen_stream | nf4quant --device $d - -o - | xxhsum: $(printf %.1f "$t") s, $h"
		# a failed or cut-short conversion hashes differently: the devices' outputs must agree
		[ -z "${h0:-}" ] || [ "$h" = "$h0" ] || { echo "the outputs differ"; return 1; }
		h0=$h
	done
}
TAIL=12 step stream70b stream70b
# 11. issue 18: --device all against cuda:0 and cpu on the fixtures and the 1.07B model (the same bytes),
#     their times, bench_gpu on 1 and N GPUs, a GPU that fails mid-run (LQ_TEST_FAIL_DEVICE):
#     tests/gpu/multi_gpu.sh, its tables in $OUT/multi_gpu.md. An estimated 5-6 minutes: a call of its own.
multi_gpu() {
	[ -f "$w/model/model.safetensors" ] || python3 tests/gpu/make_synthetic.py "$w/model" || return 1
	[ -d "$w/adapter64" ] || python3 tests/bench/gen_adapter.py "$w/adapter64" 4 || return 1
	OUT="$out" MODEL="$w/model" ADAPTER="$w/adapter64" WORK="$w/mg" sh tests/gpu/multi_gpu.sh .gpu/bin
}
TAIL=40 step multi_gpu multi_gpu
rm -rf "$w"
exit $status
