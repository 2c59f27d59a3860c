#!/bin/sh
# extract_gpu.sh [BIN]: loraextract's SVD on the GPU (issue 16), in one device call of about 3 to 4 minutes,
# from the bundle (tests/gpu/README.md; BIN defaults to .gpu/bin, which needs loraextract and test_unit):
#
#   no_cusolver  --device cuda with cuSOLVER's library off the library path: exit 1, one message saying
#                so, nothing written (skipped, saying so, where the system's path has it)
#   unit         test_unit svd_thin on the GPU (LQ_TEST_DEVICE): known singular values, full-rank and
#                exactly low-rank, the factors orthonormal; cuSOLVER seen loaded (LD_DEBUG); the same with
#                LQ_SVD_GPU=gesvd, and with gesvdp alone (its result on the low-rank cases is printed, not
#                held: that is why the default falls back to gesvd)
#   finetune     the criterion: tests/gpu/extract_check.py (the tiny-llama fine-tune; every module within
#                1e-4 relative of the Eckart-Young optimum on the GPU and on the CPU, GPU against CPU)
#   model        the 1.07B benchmark model (make_synthetic.py, on the GPU) and its copy with a random
#                full-rank change on every linear weight (extract_changed.py: gen_changed.py's change, made
#                on the GPU; XG_GEN=bench runs gen_changed.py itself)
#   speed        loraextract --rank 64 of the whole model on the GPU against `cat` of both inputs, peak
#                RSS; every module's reported error within 1e-4 relative of its optimum; LQ_SVD_TRACE's
#                line per SVD (routine, seconds, gesvdp's error estimate, workspaces, the host's peak
#                memory so far) in the log; FAIL when the peak RSS is above the streaming bound (man
#                loraextract, Memory) plus XG_LIB_MIB for the runtime libraries' own pages
#   methods      one 4096 x 4096 module (layer 0's q_proj) with LQ_SVD_GPU=gesvdp and =gesvd: the
#                evidence for the default, each module's error against its optimum
#   cpu          LAPACK (one core) cannot do the whole model in the call's time (about 9 minutes per
#                4096 x 11008 weight on the development machine): the 2048 x 2048 block of layer 0's
#                q_proj on the CPU and on the GPU, and the CPU's time for the whole model extrapolated
#                from it (LAPACK's time grows as m n min(m, n)); XG_CPU_N=4096 takes the whole q_proj
#
# Logs: $OUT/xg.STEP.log; the tables: $OUT/extract_gpu.md and standard output. XG_STEPS="a b" runs only
# those steps; XG_WORK=DIR keeps the work (the model is reused when there). Off the GPU machine,
# XG_DEVICE=cpu XG_MODEL=DIR (a small model directory with layer 0's q_proj) runs the shell logic with
# the CPU standing in for the GPU (its no_cusolver and unit steps skipped).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "${1:-$top/.gpu/bin}" && pwd)
out=${OUT:-/tmp/extract-gpu-out}
mkdir -p "$out"
w=${XG_WORK:-$(mktemp -d)}
mkdir -p "$w"
dev=${XG_DEVICE:-cuda}
py=${PYTHON:-python3}
[ -d "$top/.gpu/lib" ] && export LD_LIBRARY_PATH="$top/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$bin:$PATH" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 \
	TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
unset LQ_DEVICE LQ_SVD_GPU LQ_SVD_TRACE
lx=$bin/loraextract
md=$out/extract_gpu.md
: >"$md"
status=0
t_start=$(date +%s)
ran() { case " ${XG_STEPS:-$1} " in *" $1 "*) return 0 ;; esac; return 1; }
step() {
	name=$1
	shift
	ran "$name" || return 0
	echo "=== $name"
	t0=$(date +%s)
	if "$@" >"$out/xg.$name.log" 2>&1; then r=PASS; else r="FAIL (exit $?)"; status=1; fi
	echo "$r $name ($(($(date +%s) - t0)) s)"
	tail -n "${TAIL:-12}" "$out/xg.$name.log"
}
# timed LABEL TIMEOUT STDOUT CMD...: runs CMD (its standard output to STDOUT) and appends "LABEL SECONDS
# EXIT PEAK_RSS_MIB" to $w/times; killed after TIMEOUT seconds (exit 124)
timed() {
	"$py" - "$@" <<-'EOF'
	import os, resource, subprocess, sys, time
	label, limit, stdout, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
	t = time.time()
	try:
	    with open(stdout, "w") as f:
	        rc = subprocess.run(cmd, stdout=f, timeout=limit).returncode
	except subprocess.TimeoutExpired:
	    rc = 124
	t = time.time() - t
	rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
	with open(os.environ["XG_TIMES"], "a") as f:
	    f.write(f"{label} {t:.3f} {rc} {rss}\n")
	print(f"{label}: {t:.2f} s, exit {rc}, peak RSS {rss} MiB")
	EOF
}
export XG_TIMES="$w/times"
: >"$XG_TIMES"
# field N of the line LABEL of $w/times
tf() { awk -v l="$1" -v f="$2" '$1 == l { v = $f } END { print v }' "$XG_TIMES"; }

# The runtime libraries' own resident pages, allowed above the streaming bound (MiB): CUDA's runtime and
# driver, cuSOLVER, cuBLAS(Lt) and cuSPARSE's code and their loaded kernels, measured at 350 to 450 MiB
# (574 MiB for a 2048 x 2048 block whose data is 128 MiB; 958 MiB for a 4096 x 4096 weight whose data was
# 512 MiB); on the CPU LAPACK, cJSON and the C library, about 10 MiB (a --dry-run's peak).
LIB_MIB_GPU=512
LIB_MIB_CPU=64
lib_mib=${XG_LIB_MIB:-$([ "$dev" = cpu ] && echo $LIB_MIB_CPU || echo $LIB_MIB_GPU)}

# bounds MODEL RANK [N]: the sum of m n min(m, n) over the model's changed weights over N^3; their number;
# the streaming bound (MiB) of loraextract --rank RANK on the model on a GPU and on the CPU (man
# loraextract, Memory), for its largest weight (m x n, k = min(m, n)): the pair as float32 and the change
# in double precision, 16 m n bytes; on a GPU the RANK leading singular vectors 8 RANK (m + n + 1), on
# the CPU LAPACK's whole thin factors 8 k (m + n + 1) and its workspace 8 (4 k^2 + 4 k + max(m, n)), and
# the kept vectors' copy 8 RANK (m + n); both: the factors rounded (4 RANK (m + n)), every module's
# factors kept until the end (at most float32: 4 RANK (m + n) each) and the error's band of rows (8 x 16
# rows x threads x n); the largest weight's shape
bounds() {
	"$py" - "$1" "$2" "${3:-2048}" "$(nproc)" <<-'EOF'
	import json, struct, sys
	with open(sys.argv[1] + "/model.safetensors", "rb") as f:
	    h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
	r, threads = int(sys.argv[2]), min(int(sys.argv[4]), 256)
	sh = [v["shape"] for k, v in h.items() if k.endswith("_proj.weight") and len(v["shape"]) == 2]
	s = sum(a * b * min(a, b) for a, b in sh)
	m, n = max(sh, key=lambda x: x[0] * x[1])
	k = min(m, n)
	common = 16 * m * n + 4 * r * (m + n) + sum(4 * min(r, a, b) * (a + b) for a, b in sh) + 8 * 16 * threads * max(b for a, b in sh)
	gpu = common + 8 * r * (m + n + 1)
	cpu = common + 8 * k * (m + n + 1) + 8 * (4 * k * k + 4 * k + max(m, n)) + 8 * r * (m + n)
	print(f"{s / int(sys.argv[3]) ** 3:.2f} {len(sh)} {gpu / 2**20:.0f} {cpu / 2**20:.0f} {m}x{n}")
	EOF
}

# --------------------------------------------------------------------------------- cuSOLVER absent
D=$top/tests/cli/data/extract
no_cusolver() {
	rm -rf "$w/nc"
	rc=0
	"$lx" --device cuda --rank 2 "$D/base.safetensors" "$D/ok.safetensors" -o "$w/nc" 2>"$w/nc.err" || rc=$?
	cat "$w/nc.err"
	if [ "$rc" = 0 ]; then
		echo "cuSOLVER is on this machine's default library path: the missing-library check cannot run here"
		return 0
	fi
	[ "$rc" = 1 ] || { echo "exit $rc, expected 1"; return 1; }
	[ "$(wc -l <"$w/nc.err")" = 1 ] || { echo "not one message line"; return 1; }
	grep -q "^loraextract: --device cuda: .*cannot load cuSOLVER" "$w/nc.err" || { echo "the message does not say cuSOLVER"; return 1; }
	[ ! -e "$w/nc" ] || { echo "an output was left"; return 1; }
	echo "ok: --device cuda without cuSOLVER fails before any work, nothing written"
}
[ "$dev" = cpu ] || step no_cusolver no_cusolver
if [ "$dev" != cpu ]; then
	# cuSOLVER comes from torch's CUDA wheels (or a toolkit) here, as for loramerge --combine
	for d in $("$py" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) /usr/local/cuda/lib64 \
		/usr/lib/x86_64-linux-gnu; do
		f=$(find "$d" -name 'libcusolver.so.[0-9]*' 2>/dev/null | head -1)
		if [ -n "$f" ]; then
			export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(dirname "$f")"
			echo "cuSOLVER: $f"
			break
		fi
	done
fi

# --------------------------------------------------------------------------------- unit
unit() {
	rc=0
	LQ_TEST_DEVICE=$dev LD_DEBUG=files "$bin/test_unit" svd_thin 2>"$w/u.debug" || rc=1
	grep -v -e '^ *[0-9]*:' "$w/u.debug" || true
	grep -q 'calling init: .*libcusolver' "$w/u.debug" || { echo "cuSOLVER was not loaded"; rc=1; }
	echo "--- LQ_SVD_GPU=gesvd"
	LQ_TEST_DEVICE=$dev LQ_SVD_GPU=gesvd "$bin/test_unit" svd_thin || rc=1
	echo "--- LQ_SVD_GPU=gesvdp (not held)"
	LQ_TEST_DEVICE=$dev LQ_SVD_GPU=gesvdp LQ_SVD_TRACE=1 "$bin/test_unit" svd_thin 2>&1 | grep -v '^svd: ' || true
	echo "--- default, traced"
	LQ_TEST_DEVICE=$dev LQ_SVD_TRACE=1 "$bin/test_unit" svd_thin 2>&1 | grep '^svd: ' | sed -n '1,40p'
	return $rc
}
[ "$dev" = cpu ] || TAIL=30 step unit unit

# --------------------------------------------------------------------------------- the criterion
TAIL=24 step finetune env XG_DEVICE="$dev" "$py" "$top/tests/gpu/extract_check.py" "$bin" "$w/finetune"
if ran finetune; then
	{
		echo "### loraextract on the GPU: the tiny-llama fine-tune (tests/gpu/extract_check.py)"
		echo
		grep -e '^golden' -e ' vs cpu ' -e '^---' -e 'FAILED' -e 'every module' "$out/xg.finetune.log" | sed 's/^/    /'
		echo
	} >>"$md"
fi

# --------------------------------------------------------------------------------- the 1.07B model
model=${XG_MODEL:-$w/model}
changed=$w/$(basename "$model")-changed
make_model() {
	[ -f "$model/model.safetensors" ] || "$py" "$top/tests/gpu/make_synthetic.py" "$model" || return 1
	# XG_GEN=bench: tests/bench/gen_changed.py's bytes (numpy on the CPU: about a minute), else the same on the GPU
	if [ ! -f "$changed/model.safetensors" ]; then
		if [ "${XG_GEN:-}" = bench ]; then
			"$py" "$top/tests/bench/gen_changed.py" "$model" "$changed" || return 1
		else
			"$py" "$top/tests/gpu/extract_changed.py" "$model" "$changed" || return 1
		fi
	fi
	ls -l "$model/model.safetensors" "$changed/model.safetensors"
}
step model make_model
q=model.layers.0.self_attn.q_proj.weight

# worst excess of each module's reported error over its optimum, from a --json summary
excess() {
	"$py" - "$1" <<-'EOF'
	import json, sys
	r = json.load(open(sys.argv[1]))
	w = max((m["rel_error"] - m["rel_error_optimal"]) / (m["rel_error_optimal"] or 1) for m in r["modules"])
	print(f"{len(r['modules'])} {w:.3e}")
	EOF
}


speed() {
	cat "$model/model.safetensors" "$changed/model.safetensors" >/dev/null
	timed cat 60 /dev/null cat "$model/model.safetensors" "$changed/model.safetensors"
	rm -rf "$w/r64"
	timed full "${XG_FULL_TIMEOUT:-150}" "$w/r64.json" env LQ_SVD_TRACE=1 "$lx" -q --json --device "$dev" --rank 64 \
		"$model" "$changed" -o "$w/r64" 2>"$w/r64.trace"
	sed -n '1,40p' "$w/r64.trace"
	[ "$(tf full 3)" = 0 ] || return 1
	set -- $(excess "$w/r64.json")
	echo "$1 modules, worst excess of the error over its optimum $2 (relative)"
	awk -v x="$2" 'BEGIN { exit !(x <= 1e-4) }' || { echo "above 1e-4"; return 1; }
	echo "gesvd again: $(grep -c 'again by gesvd' "$w/r64.trace") of $(grep -c '^svd: gesvdp' "$w/r64.trace") SVDs"
	# the peak RSS against the streaming bound of this device, plus the libraries' allowance
	set -- $(bounds "$model" 64)
	bound=$([ "$dev" = cpu ] && echo "$4" || echo "$3")
	rss=$(tf full 4)
	echo "peak RSS $rss MiB; streaming bound $bound MiB ($5, --device $dev) + $lib_mib MiB for the libraries"
	[ "$rss" -le $((bound + lib_mib)) ] || { echo "peak RSS $rss MiB above $((bound + lib_mib)) MiB"; return 1; }
}
TAIL=16 step speed speed

methods() {
	"$py" "$top/tests/gpu/extract_pair.py" "$model" "$changed" $q "$w/pair" || return 1
	rc=0
	for m in gesvdp gesvd; do
		rm -rf "$w/pm"
		timed "$m" 120 "$w/pm.json" env LQ_SVD_GPU=$m LQ_SVD_TRACE=1 "$lx" -q --json --device "$dev" --rank 64 \
			"$w/pair/base.safetensors" "$w/pair/ft.safetensors" -o "$w/pm" || rc=1
		[ "$(tf "$m" 3)" = 0 ] && echo "$m: modules, worst excess over the optimum: $(excess "$w/pm.json")" || rc=1
	done
	return $rc
}
TAIL=20 step methods methods

cpu_block() {
	n=${XG_CPU_N:-2048}
	"$py" "$top/tests/gpu/extract_pair.py" "$model" "$changed" $q "$w/block" "$n" || return 1
	rc=0
	for d in cpu "$dev"; do
		rm -rf "$w/b"
		timed "block-$d" 300 "$w/b.json" "$lx" -q --json --device "$d" --rank 64 "$w/block/base.safetensors" \
			"$w/block/ft.safetensors" -o "$w/b" || rc=1
		[ "$(tf "block-$d" 3)" = 0 ] && echo "$d: $(excess "$w/b.json")" || rc=1
	done
	return $rc
}
step cpu cpu_block

# --------------------------------------------------------------------------------- the table
if [ -s "$XG_TIMES" ]; then
	gpuname=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
	n=${XG_CPU_N:-2048}
	set -- $(bounds "$model" 64 "$n")
	ratio=$1 nweights=$2 bound_gpu=$3 bound_cpu=$4 largest=$5
	{
		echo "### loraextract --rank 64: the 1.07B model and a copy with a random full-rank change"
		echo
		echo "$gpuname, $(nproc) cores; inputs $model and its changed copy (${XG_GEN:+tests/bench/gen_changed.py}${XG_GEN:-tests/gpu/extract_changed.py}); work in $w."
		echo
		echo "| run | seconds | vs cat | peak RSS (MiB) |"
		echo "|---|---|---|---|"
		tc=$(tf cat 2)
		row() { [ -n "$(tf "$1" 2)" ] && echo "| $2 | $(tf "$1" 2)$([ "$(tf "$1" 3)" = 0 ] || echo " (exit $(tf "$1" 3))") | $(awk -v a="$(tf "$1" 2)" -v b="$tc" 'BEGIN { if (b > 0) printf "%.1fx", a / b }') | $(tf "$1" 4) |"; }
		row cat "\`cat\` of both inputs (page cache)"
		row full "loraextract --device $dev --rank 64, the $nweights weights"
		row gesvdp "layer 0's q_proj alone, LQ_SVD_GPU=gesvdp"
		row gesvd "layer 0's q_proj alone, LQ_SVD_GPU=gesvd"
		row "block-$dev" "its ${n} x ${n} block, --device $dev"
		row block-cpu "its ${n} x ${n} block, --device cpu (LAPACK, one core)"
		if [ -n "$(tf block-cpu 2)" ]; then
			echo "| the whole model on the CPU, extrapolated: ${n}-block time x $ratio | $(awk -v a="$(tf block-cpu 2)" -v r="$ratio" 'BEGIN { printf "~%.0f", a * r }') | | |"
		fi
		echo
		echo "Streaming bound for the largest weight ($largest), rank 64: $bound_gpu MiB on a GPU, $bound_cpu MiB on the CPU"
		echo "(two float32 weights and their change in double precision; on a GPU the 64 leading singular vectors, on"
		echo "the CPU LAPACK's whole factors and workspace; the factors kept, the error's rows: man loraextract, Memory);"
		echo "the speed step allows $lib_mib MiB above it for the runtime libraries."
		echo
	} >>"$md"
fi
echo "=== summary ($(($(date +%s) - t_start)) s; tables in $md)"
cat "$md"
exit $status
