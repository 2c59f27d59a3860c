#!/bin/sh
# multi_gpu.sh [BINDIR]: issue 18's check of --device all, in one call on a machine with N >= 1 GPUs (N from
# nvidia-smi; with one GPU, all is that GPU). BINDIR (default .gpu/bin) holds nf4quant, loramerge,
# qinspect and bench_gpu.
#
#   identity_fixtures  nf4quant (options, shards, bundles, a stream), nf4quant -d (files, directories, a
#                      bundle), loramerge (float base, 4-bit base, --base-as nf4, --requantize; 3 adapters;
#                      a bundle) and qinspect (--json less its time and device) on the shipped fixtures:
#                      --device all, --device cuda:0 and --device cpu give the same bytes
#   identity_model     the same on the 1.07B synthetic model and its rank-64 adapter
#   throughput         the 1.07B model's commands with cuda:0 and with all, medians of RUNS, against `cat` of
#                      the input and reading it + writing and syncing the output's bytes; nf4quant -vv's
#                      split of the time on each
#   kernels            bench_gpu (which has no device choice: CUDA_VISIBLE_DEVICES picks each GPU) on every
#                      GPU alone, then on all N at once
#   failure            LQ_TEST_FAIL_DEVICE=N-1 (its kernel launches fail): the run ends with a message naming
#                      GPU N-1, exit status 1, nothing left in the output's folder; loramerge's float merges and
#                      qinspect's sums run on GPU 0 only, so with N >= 2 these may instead succeed with the
#                      CPU's bytes (said in the table)
#
# Writes $OUT/multi_gpu.md (the tables, for tests/gpu/RESULTS.md and bench/gpu.md) and $OUT/multi_gpu.STEP.log;
# prints a summary; exits 1 when a check failed.
# Environment: OUT (default /tmp/gpu-out); WORK (scratch; default a temporary folder, removed at the end);
# MODEL (the 1.07B model, tests/gpu/make_synthetic.py, made in WORK when unset) and ADAPTER (its rank-64
# adapter, tests/bench/gen_adapter.py, made when unset); RUNS (3); MG_STEPS (some of the steps above).
# MG_ONE (cuda:0), MG_ALL (all), MG_NGPU (nvidia-smi's count): the devices compared with cpu, and N.
# MG_ONE=cpu MG_ALL=cpu MG_NGPU=1 runs the other steps' shell logic without a GPU (kernels and failure need one).
set -u
bin=${1:-.gpu/bin}
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
nq=$bin/nf4quant
lm=$bin/loramerge
qi=$bin/qinspect
runs=${RUNS:-3}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/multi-gpu-XXXXXX")}
mkdir -p "$work"
ngpu=${MG_NGPU:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')}
one=${MG_ONE:-cuda:0}
all=${MG_ALL:-all}
md=$out/multi_gpu.md
F=fixtures/models
A=fixtures/peft/adapters
status=0

# step NAME FN: runs FN (unless MG_STEPS leaves NAME out), its output in $OUT/multi_gpu.NAME.log
step() {
	name=$1; shift
	case " ${MG_STEPS:-$name} " in *" $name "*) ;; *) return 0 ;; esac
	echo "=== $name"
	t0=$(date +%s)
	if "$@" >"$out/multi_gpu.$name.log" 2>&1; then r=PASS; else r="FAIL (exit $?)"; status=1; fi
	echo "$r $name ($(($(date +%s) - t0)) s)"
	grep -v -e "^identical" "$out/multi_gpu.$name.log" | tail -${TAIL:-12}
}
# with DEV OUTPUT CMD...: CMD with each argument @D replaced by DEV, and @O (or @O.SUFFIX) by OUTPUT(.SUFFIX)
# (no sh function has local variables: the names of these, and the callers', are distinct)
with() {
	w_dev=$1 w_o=$2
	shift 2
	w_n=$#
	for w_a; do
		case $w_a in @D) w_a=$w_dev ;; @O*) w_a=$w_o${w_a#@O} ;; esac
		set -- "$@" "$w_a"
	done
	shift "$w_n"
	"$@"
}
# same_bytes A B: folders A and B, or files A and B, hold the same bytes (or neither exists)
same_bytes() {
	if [ -d "$1" ]; then diff -r "$1" "$2"; elif [ -e "$1" ] || [ -e "$2" ]; then cmp "$1" "$2"; fi
}
# same LABEL SUFFIX CMD...: CMD (with @D and @O) on cpu, $one and $all writes the same bytes to @O (a
# folder, or a file ending in SUFFIX) and to standard output
same() {
	label=$1 sfx=$2
	shift 2
	i=0
	for d in cpu "$one" "$all"; do
		rm -rf "$work/id$i$sfx"
		with "$d" "$work/id$i$sfx" "$@" >"$work/id$i.stdout" || { echo "FAILED ($d): $label"; return 1; }
		i=$((i + 1))
	done
	for i in 1 2; do
		same_bytes "$work/id0$sfx" "$work/id$i$sfx" && cmp "$work/id0.stdout" "$work/id$i.stdout" || { echo "DIFFER (cpu, $one, $all): $label"; return 1; }
	done
	rm -rf "$work/id0$sfx" "$work/id1$sfx" "$work/id2$sfx"
	echo "identical (cpu = $one = $all): $label"
}
# the commands, device first: qinspect's report less its time and device; a stream; -d of a stream
qi_json() { d=$1; shift; $qi --json --device "$d" "$@" | grep -v -e '"seconds"' -e '"device"'; }
nq_stream() { cat "$2" | $nq -q --device "$1" - -o -; }

identity_fixtures() {
	set -f # the options hold no pattern; the fixtures' paths no blank
	rc=0
	for m in $F/tiny-llama $F/tiny-llama-sharded; do
		for args in "" "--quant-type fp4" "--no-double-quant --blocksize 128" "--blocksize 4096"; do
			same "nf4quant $args $m" "" $nq -q --device @D $args $m -o @O || rc=1
		done
	done
	same "nf4quant $F/tiny-llama-sharded -o B.tar.zst" .tar.zst $nq -q --device @D $F/tiny-llama-sharded -o @O || rc=1
	same "nf4quant -T 1 $F/tiny-llama-sharded -o B.tar.zst" .tar.zst $nq -q -T 1 --device @D $F/tiny-llama-sharded -o @O || rc=1
	same "cat $F/tiny-llama/model.safetensors | nf4quant - -o -" "" nq_stream @D $F/tiny-llama/model.safetensors || rc=1
	for q in fixtures/reference/tensors_ref/ref_q.safetensors fixtures/bnb-edge/edge_ref_q.safetensors; do
		for dt in "" "--dtype fp32" "--dtype bf16"; do
			same "nf4quant -d $dt $q" .safetensors $nq -q -d $dt --device @D $q -o @O || rc=1
		done
	done
	for m in $F/tiny-llama-nf4 $F/tiny-llama-fp4; do
		same "nf4quant -d $m" "" $nq -q -d --device @D $m -o @O || rc=1
	done
	same "nf4quant -d $F/tiny-llama-nf4 -o B.tar.zst" .tar.zst $nq -q -d --device @D $F/tiny-llama-nf4 -o @O || rc=1
	for a in plain_r8 dora_r8 rslora_r16; do
		for mode in "$F/tiny-llama" "$F/tiny-llama-nf4" "--base-as nf4 $F/tiny-llama" "--requantize $F/tiny-llama" \
			"--base-as nf4 --requantize $F/tiny-llama-sharded"; do
			same "loramerge $mode $a" "" $lm -q --device @D $mode $A/$a -o @O || rc=1
		done
	done
	same "loramerge $F/tiny-llama-sharded plain_r8 -o B.tar.zst" .tar.zst \
		$lm -q --device @D $F/tiny-llama-sharded $A/plain_r8 -o @O || rc=1
	for pair in "$F/tiny-llama-nf4 $F/tiny-llama" "$F/tiny-llama-fp4 $F/tiny-llama" \
		"fixtures/reference/tensors_ref/ref_q.safetensors" "$F/tiny-llama-nf4" "--adapter $A/plain_r8 $F/tiny-llama-nf4"; do
		same "qinspect --json $pair" "" qi_json @D $pair || rc=1
	done
	set +f
	return $rc
}

# the 1.07B model, its rank-64 adapter and its NF4 form (the CPU's)
model_ready() {
	if [ -z "${MODEL:-}" ]; then
		MODEL=$work/model
		[ -f "$MODEL/model.safetensors" ] || python3 tests/gpu/make_synthetic.py "$MODEL" || return 1
	fi
	if [ -z "${ADAPTER:-}" ]; then
		ADAPTER=$work/adapter64
		[ -d "$ADAPTER" ] || python3 tests/bench/gen_adapter.py "$ADAPTER" 4 || return 1
	fi
	[ -d "$work/nf4" ] || $nq -q --device cpu "$MODEL" -o "$work/nf4"
}
identity_model() {
	model_ready || return 1
	rc=0
	same "nf4quant 1.07B" "" $nq -q --device @D "$MODEL" -o @O || rc=1
	same "nf4quant 1.07B -o B.tar.zst" .tar.zst $nq -q --device @D "$MODEL" -o @O || rc=1
	same "nf4quant -d 1.07B-nf4" "" $nq -q -d --device @D "$work/nf4" -o @O || rc=1
	for mode in "$MODEL" "$work/nf4" "--base-as nf4 $MODEL" "--requantize $MODEL"; do
		same "loramerge $(echo "$mode" | sed "s|$work/nf4|1.07B-nf4|; s|$MODEL|1.07B|") rank-64" "" \
			$lm -q --device @D $mode "$ADAPTER" -o @O || rc=1
	done
	same "qinspect --json 1.07B-nf4 1.07B" "" qi_json @D "$work/nf4" "$MODEL" || rc=1
	return $rc
}

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# secs CMD...: the median seconds of RUNS runs of CMD, after one warm-up
secs() {
	"$@" >/dev/null 2>&1 || return 1
	for i in $(seq "$runs"); do
		s=$(now)
		"$@" >/dev/null 2>&1 || return 1
		e=$(now)
		awk -v s="$s" -v e="$e" 'BEGIN {print e - s}'
	done | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# read the input, write BYTES and sync them: what any conversion to BYTES must at least do
io() {
	python3 -c 'import os, sys
src, n, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
buf = bytearray(1 << 24)
with open(src, "rb", buffering=0) as f, open(dst, "wb", buffering=0) as o:
    while True:
        k = f.readinto(buf)
        if not k:
            break
        w = min(k, n)
        if w:
            o.write(memoryview(buf)[:w])
            n -= w
    while n > 0:
        n -= o.write(memoryview(buf)[:min(n, len(buf))])
    os.fsync(o.fileno())
os.unlink(dst)' "$1" "$2" "$work/io.tmp"
}
bytes_of() { du -sb "$1" | cut -f1; }
# the commands timed, device first
t_nq_dir() { rm -rf "$work/t"; $nq -q --device "$1" "$MODEL" -o "$work/t"; }
t_nq_bundle() { rm -f "$work/t.tar.zst"; $nq -q --device "$1" "$MODEL" -o "$work/t.tar.zst"; }
t_nq_stream() { cat "$MODEL/model.safetensors" | $nq -q --device "$1" - -o - >/dev/null; }
t_nq_deq() { rm -rf "$work/t"; $nq -q -d --device "$1" "$work/nf4" -o "$work/t"; }
t_lm_float() { rm -rf "$work/t"; $lm -q --device "$1" "$MODEL" "$ADAPTER" -o "$work/t"; }
t_lm_4bit() { rm -rf "$work/t"; $lm -q --device "$1" "$work/nf4" "$ADAPTER" -o "$work/t"; }
t_lm_base_as() { rm -rf "$work/t"; $lm -q --device "$1" --base-as nf4 "$MODEL" "$ADAPTER" -o "$work/t"; }
t_lm_requant() { rm -rf "$work/t"; $lm -q --device "$1" --requantize "$MODEL" "$ADAPTER" -o "$work/t"; }
t_qi() { $qi -q --device "$1" "$work/nf4" "$MODEL"; }
throughput() {
	model_ready || return 1
	in=$MODEL/model.safetensors
	nb=$(bytes_of "$work/nf4") fb=$(bytes_of "$in")
	t_cat=$(secs cat "$in") && t_io4=$(secs io "$in" "$nb") && t_iof=$(secs io "$in" "$fb") || return 1
	{
		echo "| command (MODEL: $(awk -v b="$fb" 'BEGIN {printf "%.2f", b / 1e9}') GB bf16) | $one (s) | $all (s) | $all / $one | vs cat ($one / $all) | vs read + write + sync ($one / $all) |"
		echo "|---|---|---|---|---|---|"
		echo "| cat of the input | $(printf %.3f "$t_cat") | | | 1.00 | |"
		echo "| read the input, write and sync the NF4 form's $(awk -v b="$nb" 'BEGIN {printf "%.2f", b / 1e9}') GB | $(printf %.3f "$t_io4") | | | | 1.00 |"
		echo "| read the input, write and sync as many bytes | $(printf %.3f "$t_iof") | | | | 1.00 |"
	} >"$work/tp.md"
	rc=0
	for c in nq_dir nq_bundle nq_stream nq_deq lm_float lm_4bit lm_base_as lm_requant qi; do
		case $c in
		nq_dir) what="nf4quant MODEL -o DIR" anchor=$t_io4 ;;
		nq_bundle) what="nf4quant MODEL -o B.tar.zst" anchor=$t_io4 ;;
		nq_stream) what="cat \\| nf4quant - -o - >/dev/null" anchor= ;;
		nq_deq) what="nf4quant -d NF4 -o DIR" anchor=$t_iof ;;
		lm_float) what="loramerge MODEL ADAPTER" anchor=$t_iof ;;
		lm_4bit) what="loramerge NF4 ADAPTER" anchor=$t_iof ;;
		lm_base_as) what="loramerge --base-as nf4 MODEL ADAPTER" anchor=$t_iof ;;
		lm_requant) what="loramerge --requantize MODEL ADAPTER" anchor=$t_io4 ;;
		qi) what="qinspect NF4 MODEL" anchor= ;;
		esac
		if t1=$(secs t_$c "$one") && tn=$(secs t_$c "$all"); then
			vio=
			[ -z "$anchor" ] || vio="$(ratio "$t1" "$anchor") / $(ratio "$tn" "$anchor")"
			echo "| $what | $(printf %.3f "$t1") | $(printf %.3f "$tn") | $(ratio "$tn" "$t1") | $(ratio "$t1" "$t_cat") / $(ratio "$tn" "$t_cat") | $vio |"
		else
			echo "| $what | failed | | | | |"
			rc=1
		fi >>"$work/tp.md"
	done
	rm -rf "$work/t" "$work/t.tar.zst"
	cat "$work/tp.md"
	# where the time goes: nf4quant's own split, on one GPU and on all
	for d in "$one" "$all"; do
		echo "nf4quant -vv --device $d:"
		$nq -vv -f --device "$d" "$MODEL" -o "$work/t" 2>&1 | grep -e time: -e compute
	done
	rm -rf "$work/t"
	return $rc
}

kernels() {
	[ "$ngpu" -ge 1 ] || { echo "no GPU"; return 1; }
	rc=0
	for i in $(seq 0 $((ngpu - 1))); do
		CUDA_VISIBLE_DEVICES=$i "$bin/bench_gpu" 64 >"$work/k-alone-$i" 2>&1 || rc=1
		echo "GPU $i alone:"
		cat "$work/k-alone-$i"
	done
	for i in $(seq 0 $((ngpu - 1))); do
		CUDA_VISIBLE_DEVICES=$i "$bin/bench_gpu" 64 >"$work/k-all-$i" 2>&1 &
	done
	wait # (the status of each is in its table: a failed one has none)
	for i in $(seq 0 $((ngpu - 1))); do
		echo "GPU $i, all $ngpu at once:"
		cat "$work/k-all-$i"
	done
	# the sums over the GPUs of each kernel's Gparam/s, alone and at once
	gp() { # gp FILES...: "quantize+dq dequantize" Gparam/s summed
		cat "$@" | awk -F'|' '$2 ~ /quantize NF4 \+ double quant/ {q += $4} $2 ~ /dequantize NF4/ {d += $4}
			END {printf "%.0f %.0f", q, d}'
	}
	set -- $(gp "$work"/k-alone-0); a_q=$1 a_d=$2
	set -- $(gp "$work"/k-all-*); n_q=$1 n_d=$2
	{
		echo "| bench_gpu (one Llama-7B layer, bf16, blocksize 64) | 1 GPU (GPU 0) | $ngpu GPUs at once (sum) | ratio |"
		echo "|---|---|---|---|"
		echo "| quantize NF4 + double quant, Gparam/s | $a_q | $n_q | $(ratio "$n_q" "$a_q") |"
		echo "| dequantize NF4 to bf16, Gparam/s | $a_d | $n_d | $(ratio "$n_d" "$a_d") |"
	} | tee "$work/k.md"
	[ "$a_q" != 0 ] && [ "$n_q" != 0 ] || rc=1
	return $rc
}

# fails_named MUST LABEL CMD...: with GPU N-1 failing, CMD (@O an output in an empty folder) exits 1 with a
# message naming that GPU and leaves nothing; unless MUST is "must", it may instead succeed with the CPU's
# bytes (its work then ran on other GPUs)
fails_named() {
	must=$1 label=$2
	shift 2
	f=$((ngpu - 1))
	rm -rf "$work/fail" "$work/fail-ref"
	mkdir -p "$work/fail"
	export LQ_TEST_FAIL_DEVICE=$f
	with "$all" "$work/fail/o" "$@" >"$work/fail.stdout" 2>"$work/fail.err"
	f_rc=$?
	unset LQ_TEST_FAIL_DEVICE
	msg=$(grep -v '^$' "$work/fail.err" | tail -1)
	left=$(ls -A "$work/fail")
	if [ $f_rc = 0 ] && [ "$must" != must ]; then
		if ! with cpu "$work/fail-ref" "$@" >"$work/fail-ref.stdout" 2>/dev/null ||
			! same_bytes "$work/fail-ref" "$work/fail/o" >&2 || ! cmp "$work/fail-ref.stdout" "$work/fail.stdout" >&2; then
			echo "| $label | 0 | succeeded with other bytes than the CPU's | | FAIL |"
			return 1
		fi
		echo "| $label | 0 | (GPU $f not used: the CPU's bytes) | | ok |"
		return 0
	fi
	ok=ok
	[ $f_rc = 1 ] || ok=FAIL
	case $msg in *"GPU $f ("*"simulated: LQ_TEST_FAIL_DEVICE"*) ;; *) ok=FAIL ;; esac
	[ -z "$left" ] || ok=FAIL
	[ "$(grep -c . "$work/fail.err")" = 1 ] || ok=FAIL
	echo "| $label | $f_rc | \`$msg\` | $(echo $left) | $ok |"
	[ $ok = ok ]
}
failure() {
	[ "$ngpu" -ge 1 ] || { echo "no GPU"; return 1; }
	model_ready || return 1
	may=may
	[ "$ngpu" -gt 1 ] || may=must
	rc=0
	echo "| LQ_TEST_FAIL_DEVICE=$((ngpu - 1)), --device $all | exit | message | left behind | |"
	echo "|---|---|---|---|---|"
	{
		fails_named must "nf4quant tiny-llama -o DIR" $nq -q --device @D $F/tiny-llama -o @O || rc=1
		fails_named must "nf4quant 1.07B -o DIR" $nq -q --device @D "$MODEL" -o @O || rc=1
		fails_named must "nf4quant 1.07B -o B.tar.zst" $nq -q --device @D "$MODEL" -o @O.tar.zst || rc=1
		fails_named must "nf4quant -d 1.07B-nf4 -o DIR" $nq -q -d --device @D "$work/nf4" -o @O || rc=1
		fails_named must "loramerge --requantize tiny-llama plain_r8" $lm -q --device @D --requantize $F/tiny-llama \
			$A/plain_r8 -o @O || rc=1
		fails_named must "loramerge --base-as nf4 1.07B rank-64" $lm -q --device @D --base-as nf4 "$MODEL" "$ADAPTER" \
			-o @O || rc=1
		fails_named $may "loramerge 1.07B rank-64 (merges on GPU 0)" $lm -q --device @D "$MODEL" "$ADAPTER" -o @O || rc=1
		fails_named $may "qinspect 1.07B-nf4 1.07B" $qi -q --device @D "$work/nf4" "$MODEL" || rc=1
	} >"$work/f.md"
	cat "$work/f.md"
	rm -rf "$work/fail" "$work/fail-ref"
	return $rc
}

{
	echo "# multi_gpu.sh, $(date -u +%Y-%m-%d)"
	echo
	nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/    /'
	echo "    $(nproc) CPU cores; N = $ngpu; devices compared: cpu, $one, $all"
} >"$md"
cat "$md"
step identity_fixtures identity_fixtures
step identity_model identity_model
TAIL=20 step throughput throughput
TAIL=10 step kernels kernels
TAIL=12 step failure failure
for s in identity_fixtures identity_model throughput kernels failure; do
	[ -f "$out/multi_gpu.$s.log" ] || continue
	printf '\n## %s\n\n' "$s"
	case $s in
	identity_*) grep -c "^identical" "$out/multi_gpu.$s.log" | sed 's/$/ checks identical/'
		grep -v "^identical" "$out/multi_gpu.$s.log" ;;
	*) cat "$out/multi_gpu.$s.log" ;;
	esac
done >>"$md"
[ -n "${WORK:-}" ] || rm -rf "$work"
exit $status
