#!/bin/sh
# run.sh BUILD_DIR: the CPU benchmarks (`make bench`). Prints a Markdown report and writes it to
# bench/cpu.md. On the GPU machine, tests/gpu/ has the GPU benchmarks.
#
#  1. the kernels in memory: GB/s of bf16 input per core and on all cores, scalar and SIMD, with the
#     machine's memcpy bandwidth as the anchor;
#  2. nf4quant end to end on DESIGN.md's synthetic model (Llama-7B widths, 4 layers: 1.07e9 parameters,
#     2.14 GB of bf16), page cache warm, against `cat` of the same input, with peak memory (RSS) against
#     the bound 2 x largest tensor + 512 MiB;
#  3. loramerge end to end on the same model with a rank-64 adapter on every linear layer
#     (tests/bench/gen_adapter.py), against `cat` and against reading the input and writing and syncing
#     as many bytes, with peak memory. PEFT's own time is measured on the GPU machine
#     (tests/gpu/bench_loramerge.py, bench/gpu.md);
#  3b. what measuring a merge's fidelity costs (loramerge --fidelity, --keep-float auto, qinspect --adapter),
#     against the same merge unmeasured, each --fidelity row paired with its merge in alternation (5
#     rounds, the median ratio);
#  4. qinspect comparing the model's NF4 form with it: every weight dequantized and compared, against
#     `cat` of both inputs;
#  5. artifacts: nf4quant as a stream (stdin to stdout) with its peak memory, a bundle, and
#     qinspect --verify (against `zstd -d` of the bundle, which it must at least do); the bundle as an
#     input of qinspect and loramerge against the directory; and the shipped model through
#     `cat | nf4quant - -o - | zstd`;
#  5b. loraextract: a rank-64 adapter from the model and a copy with a random full-rank change
#     (tests/bench/extract.sh), against `cat` of both inputs, with peak memory;
#  6. with BENCH_BASELINE=DIR (a build of another commit), the end-to-end commands with both builds side by
#     side (tests/bench/compare_builds.sh), for a change that must not slow anything down.
# BENCH_DIR (default BUILD_DIR/bench) holds the generated model; BENCH_LAYERS changes its size.
set -eu
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/tools/calc.sh"
dir=${BENCH_DIR:-$build/bench}
layers=${BENCH_LAYERS:-4}
model="$dir/llama7b-widths-${layers}l"
out="$dir/out"
report="$top/bench/cpu.md"
mkdir -p "$dir" "$top/bench"
[ -f "$model/model.safetensors" ] || "$build/gen_model" "$model" "$layers" 4096 11008 32000 >&2
adapter="$dir/lora-r64-${layers}l"
[ -f "$adapter/adapter_model.safetensors" ] || python3 "$top/tests/bench/gen_adapter.py" "$adapter" "$layers" >&2
in_bytes=$(stat -c %s "$model/model.safetensors")

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
seconds() { # seconds of a command, median of $1 runs
	runs=$1; shift
	for i in $(seq "$runs"); do
		s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
		calc "$e - $s"
	done | median
}

cat "$model/model.safetensors" >/dev/null
t_cat=$(seconds 5 cat "$model/model.safetensors")
cores=$(nproc)
# The I/O floor of a conversion: read the whole input, write (and sync) as many bytes as the output has.
rm -rf "$out"
"$build/nf4quant" -q "$model" -o "$out"
out_bytes=$(du -cb "$out"/* | tail -1 | cut -f1)
rm -rf "$out"
io() { head -c "$out_bytes" "$model/model.safetensors" >"$dir/io.tmp" && cat "$model/model.safetensors" >/dev/null && sync "$dir/io.tmp"; rm -f "$dir/io.tmp"; }
t_io=$(seconds 3 io)

{
echo "# CPU benchmarks"
echo
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $cores cores, $(free -g | awk '/Mem:/ {print $2}') GiB;"
# a tree with uncommitted changes says so: the figures are not those of the commit alone
dirty=$(git -C "$top" status --porcelain --untracked-files=no -- . ':!bench' 2>/dev/null | grep -q . && echo ' with uncommitted changes' || true)
echo "$(date -u +%Y-%m-%d), commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')$dirty. Command: \`make bench\`."
echo
echo "## Kernels in memory (bench_kernels)"
echo
"$build/bench_kernels" 512
echo
echo "## nf4quant end to end"
echo
echo "Input: $model/model.safetensors, $in_bytes bytes of bf16 (page cache warm)."
echo "\`cat\` of the input: $(printf %.3f "$t_cat") s = $(calc "$in_bytes / $t_cat / 1000000000" | xargs printf %.2f) GB/s."
echo "Read the input and write and sync $out_bytes bytes (the output's size): $(printf %.3f "$t_io") s."
echo
echo "| threads | seconds | GB/s of input | per core | vs cat | vs read + write | peak RSS (MiB) |"
echo "|---|---|---|---|---|---|---|"
for t in 1 $cores; do
	rm -rf "$out"
	"$build/nf4quant" -q -T "$t" "$model" -o "$out"
	rss_kb=$( { /usr/bin/time -f %M "$build/nf4quant" -q -f -T "$t" "$model" -o "$out" ; } 2>&1 | tail -1)
	s=$(seconds 3 "$build/nf4quant" -q -f -T "$t" "$model" -o "$out")
	echo "| $t | $(printf %.3f "$s") | $(calc "$in_bytes / $s / 1000000000" | xargs printf %.2f) | $(calc "$in_bytes / $s / 1000000000 / $t" | xargs printf %.2f) | $(calc "$s / $t_cat" | xargs printf %.1f)x | $(calc "$s / $t_io" | xargs printf %.2f)x | $((rss_kb / 1024)) |"
done
largest=$((32000 * 4096 * 2))
echo
echo "Largest tensor: $largest bytes; memory bound 2 x largest + 512 MiB = $(( (2 * largest) / 1048576 + 512 )) MiB."
echo "The output is written and synced (fsync) in every run; the time includes it."
echo
echo "## loramerge end to end"
echo
nq_out_bytes=$out_bytes
out_bytes=$in_bytes
t_io2=$(seconds 3 io)
out_bytes=$nq_out_bytes
echo "Adapter: rank 64 on the $((7 * layers)) linear layers, float32 ($(du -b "$adapter/adapter_model.safetensors" | cut -f1) bytes)."
echo "Read the input and write and sync $in_bytes bytes (the output's size): $(printf %.3f "$t_io2") s."
echo
echo "| threads | seconds | GB/s of input | vs cat | vs read + write | peak RSS (MiB) |"
echo "|---|---|---|---|---|---|"
for t in 1 $cores; do
	rm -rf "$out"
	"$build/loramerge" -q -T "$t" --device cpu "$model" "$adapter" -o "$out"
	rss_kb=$( { /usr/bin/time -f %M "$build/loramerge" -q -f -T "$t" --device cpu "$model" "$adapter" -o "$out" ; } 2>&1 | tail -1)
	s=$(seconds 3 "$build/loramerge" -q -f -T "$t" --device cpu "$model" "$adapter" -o "$out")
	echo "| $t | $(printf %.3f "$s") | $(calc "$in_bytes / $s / 1000000000" | xargs printf %.2f) | $(calc "$s / $t_cat" | xargs printf %.1f)x | $(calc "$s / $t_io2" | xargs printf %.2f)x | $((rss_kb / 1024)) |"
done
echo
echo "PEFT (load, merge_and_unload, save_pretrained on the GPU) takes 3.28 s on the GPU machine (DESIGN.md);"
echo "bench/gpu.md has it measured in the same run as loramerge there."
echo
echo "## Merge fidelity (issue 14)"
echo
echo "What measuring a merge costs, $cores threads. Each --fidelity row and the merge it measures ran in"
echo "alternation, 5 rounds (merge, merge --fidelity, merge, ...): its ratio is the median of the rounds' ratios,"
echo "so that drift of this machine's speed between rows cannot pass for a cost; the other rows are medians"
echo "of 3 against the 4-bit merge's median."
echo
echo "| command | seconds | vs the merge unmeasured | vs read + write |"
echo "|---|---|---|---|"
req() { rm -rf "$out"; "$build/loramerge" -q --device cpu --requantize "$@" "$model" "$adapter" -o "$out"; }
flt() { rm -rf "$out"; "$build/loramerge" -q --device cpu "$@" "$model" "$adapter" -o "$out"; }
# paired ROUNDS A B: the commands A and B (each a function and its arguments, one word list) in
# alternation; prints the median seconds of A, of B, and the median of the rounds' B / A
paired() {
	rounds=$1 a=$2 b=$3
	: >"$dir/pa"
	: >"$dir/pb"
	: >"$dir/pr"
	for i in $(seq "$rounds"); do
		s=$(date +%s.%N); $a >/dev/null; m=$(date +%s.%N); $b >/dev/null; e=$(date +%s.%N)
		calc "$m - $s" >>"$dir/pa"
		calc "$e - $m" >>"$dir/pb"
		calc "($e - $m) / ($m - $s)" >>"$dir/pr"
	done
	echo "$(median <"$dir/pa") $(median <"$dir/pb") $(median <"$dir/pr")"
	rm -f "$dir/pa" "$dir/pb" "$dir/pr"
}
row() { # label, seconds, ratio to the merge unmeasured
	echo "| $1 | $(printf %.3f "$2") | $(printf %.2f "$3")x | $(calc "$2 / $t_io2" | xargs printf %.2f)x |"
}
set -- $(paired 5 req "req --fidelity $dir/fid.json -f")
t_req=$1 t_reqf=$2 r_reqf=$3
set -- $(paired 5 flt "flt --fidelity $dir/fid.json -f")
t_flt=$1 t_fltf=$2 r_fltf=$3
row "loramerge --requantize (the 4-bit merge)" "$t_req" 1
row "loramerge --requantize --fidelity" "$t_reqf" "$r_reqf"
t=$(seconds 3 req --keep-float auto)
row "loramerge --requantize --keep-float auto (a measuring pass first)" "$t" "$(calc "$t / $t_req")"
t=$(seconds 3 "$build/qinspect" -q --device cpu --adapter "$adapter" "$model")
row "qinspect --adapter (the same figures, nothing written)" "$t" "$(calc "$t / $t_req")"
row "loramerge (float merge)" "$t_flt" 1
row "loramerge --fidelity (float merge; base_shift: each weight quantized once more)" "$t_fltf" "$r_fltf"
rm -rf "$out" "$dir/fid.json"
echo
echo "## qinspect end to end"
echo
"$build/nf4quant" -q -f "$model" -o "$dir/nf4"
both() { cat "$dir/nf4/model.safetensors" "$model/model.safetensors" >/dev/null; }
both
t_both=$(seconds 3 both)
echo "The model's NF4 form (nf4quant) against the model: $(du -cb "$dir/nf4"/*.safetensors | tail -1 | cut -f1) + $in_bytes bytes."
echo "\`cat\` of both: $(printf %.3f "$t_both") s."
echo
echo "| threads | seconds | vs cat of both | peak RSS (MiB) |"
echo "|---|---|---|---|"
for t in 1 $cores; do
	rss_kb=$( { /usr/bin/time -f %M "$build/qinspect" -q -T "$t" --device cpu "$dir/nf4" "$model" ; } 2>&1 | tail -1)
	s=$(seconds 3 "$build/qinspect" -q -T "$t" --device cpu "$dir/nf4" "$model")
	echo "| $t | $(printf %.3f "$s") | $(calc "$s / $t_both" | xargs printf %.1f)x | $((rss_kb / 1024)) |"
done
echo
echo "## nf4quant -d end to end (issue 15)"
echo
echo "The model's NF4 form back to bf16: against reading it and writing and syncing $in_bytes bytes (the output's size)."
ioq() { head -c "$in_bytes" "$model/model.safetensors" >"$dir/io.tmp" && cat "$dir/nf4/model.safetensors" >/dev/null && sync "$dir/io.tmp"; rm -f "$dir/io.tmp"; }
t_ioq=$(seconds 3 ioq)
echo "Read + write + sync: $(printf %.3f "$t_ioq") s."
echo
echo "| threads | seconds | vs read + write | peak RSS (MiB) |"
echo "|---|---|---|---|"
for t in 1 $cores; do
	rm -rf "$out"
	"$build/nf4quant" -q -d -T "$t" --device cpu "$dir/nf4" -o "$out"
	rss_kb=$( { /usr/bin/time -f %M "$build/nf4quant" -q -f -d -T "$t" --device cpu "$dir/nf4" -o "$out" ; } 2>&1 | tail -1)
	s=$(seconds 3 "$build/nf4quant" -q -f -d -T "$t" --device cpu "$dir/nf4" -o "$out")
	echo "| $t | $(printf %.3f "$s") | $(calc "$s / $t_ioq" | xargs printf %.2f)x | $((rss_kb / 1024)) |"
done
rm -rf "$out" "$dir/nf4"
echo
echo "## loramerge --combine (issue 15)"
echo
echo "The rank-64 adapter and itself at weight 0.5 combined into one adapter, $cores threads, medians of 3;"
echo "the SVD types are not timed here (each module's exact SVD by Debian's reference LAPACK takes minutes at"
echo "these widths)."
echo
echo "| TYPE | seconds | output bytes |"
echo "|---|---|---|"
for type in linear cat ties magnitude_prune; do
	case $type in ties | magnitude_prune) density="--density 0.5" ;; *) density= ;; esac
	comb() { rm -rf "$dir/comb"; "$build/loramerge" -q --combine $type $density "$adapter" "$adapter:0.5" -o "$dir/comb"; }
	s=$(seconds 3 comb)
	echo "| $type | $(printf %.3f "$s") | $(du -cb "$dir/comb"/*.safetensors | tail -1 | cut -f1) |"
done
rm -rf "$dir/comb"
echo
echo "## Artifacts: streams, bundles, manifests"
echo
echo "\`cat model.safetensors | nf4quant - -o - >/dev/null\`: one pass in, one out; peak RSS against the"
echo "largest tensor ($largest bytes). The directory output includes hashing every file for its MANIFEST."
echo
echo "| what | seconds | vs cat | peak RSS (MiB) | bytes |"
echo "|---|---|---|---|---|"
stream() { cat "$model/model.safetensors" | "$build/nf4quant" -q --device cpu - -o - >/dev/null; }
rss_kb=$( { /usr/bin/time -f %M sh -c "cat '$model/model.safetensors' | '$build/nf4quant' -q --device cpu - -o - >/dev/null" ; } 2>&1 | tail -1)
s=$(seconds 3 stream)
echo "| stream, all cores | $(printf %.3f "$s") | $(calc "$s / $t_cat" | xargs printf %.1f)x | $((rss_kb / 1024)) | $out_bytes |"
dirq() { rm -rf "$out"; "$build/nf4quant" -q --device cpu "$model" -o "$out"; }
s=$(seconds 3 dirq)
echo "| directory + MANIFEST | $(printf %.3f "$s") | $(calc "$s / $t_cat" | xargs printf %.1f)x | | $(du -cb "$out"/* | tail -1 | cut -f1) |"
bundle() { rm -f "$dir/b.tar.zst"; "$build/nf4quant" -q --device cpu "$model" -o "$dir/b.tar.zst"; }
rss_kb=$( { rm -f "$dir/b.tar.zst"; /usr/bin/time -f %M "$build/nf4quant" -q --device cpu "$model" -o "$dir/b.tar.zst" ; } 2>&1 | tail -1)
s=$(seconds 3 bundle)
echo "| bundle .tar.zst (level 3) | $(printf %.3f "$s") | $(calc "$s / $t_cat" | xargs printf %.1f)x | $((rss_kb / 1024)) | $(stat -c %s "$dir/b.tar.zst") |"
s=$(seconds 3 "$build/qinspect" --verify "$dir/b.tar.zst")
unzstd() { zstd -q -d -c "$dir/b.tar.zst" >/dev/null; }
t_unzstd=$(seconds 3 unzstd)
echo "| qinspect --verify of the bundle | $(printf %.3f "$s") | $(calc "$s / $t_cat" | xargs printf %.1f)x; $(calc "$s / $t_unzstd" | xargs printf %.2f)x zstd -d of it | | |"
echo "| zstd -d of the bundle (what --verify must at least do) | $(printf %.3f "$t_unzstd") | $(calc "$t_unzstd / $t_cat" | xargs printf %.1f)x | | |"
s=$(seconds 3 "$build/qinspect" --verify "$out")
echo "| qinspect --verify of the directory | $(printf %.3f "$s") | $(calc "$s / $t_cat" | xargs printf %.1f)x | | |"
# the bundle as an input, read in place, against the same from the directory
s=$(seconds 3 "$build/qinspect" -q "$dir/b.tar.zst" "$model")
t=$(seconds 3 "$build/qinspect" -q "$out" "$model")
echo "| qinspect, the bundle against the model | $(printf %.3f "$s") | $(calc "$s / $t_cat" | xargs printf %.1f)x; $(calc "$s / $t" | xargs printf %.2f)x the directory's $(printf %.3f "$t") s | | |"
lmb() { rm -rf "$dir/lm"; "$build/loramerge" -q --device cpu "$dir/b.tar.zst" "$adapter" -o "$dir/lm"; }
lmd() { rm -rf "$dir/lm"; "$build/loramerge" -q --device cpu "$out" "$adapter" -o "$dir/lm"; }
s=$(seconds 3 lmb)
t=$(seconds 3 lmd)
rm -rf "$dir/lm"
echo "| loramerge, the bundle as its NF4 base | $(printf %.3f "$s") | $(calc "$s / $t_cat" | xargs printf %.1f)x; $(calc "$s / $t" | xargs printf %.2f)x the directory's $(printf %.3f "$t") s | | |"
rm -f "$dir/b.tar.zst"
# the pipeline of the shipped model, as the man page shows it; peak RSS of nf4quant alone
tiny="$top/fixtures/models/tiny-llama/model.safetensors"
tiny_stream() { cat "$tiny" | "$build/nf4quant" -q --device cpu - -o - | zstd -q >/dev/null; }
rss_kb=$( { cat "$tiny" | /usr/bin/time -f %M "$build/nf4quant" -q --device cpu - -o - | zstd -q >/dev/null; } 2>&1 | tail -1)
s=$(seconds 5 tiny_stream)
t_cat_tiny=$(seconds 5 cat "$tiny")
echo "| shipped tiny-llama: cat \| nf4quant - -o - \| zstd | $(printf %.3f "$s") | $(calc "$s / $t_cat_tiny" | xargs printf %.1f)x (its own cat) | $((rss_kb / 1024)).$(( (rss_kb % 1024) * 10 / 1024 )) | $(stat -c %s "$tiny") in |"
# BENCH_EXTRACT=1 (hours on two cores: the exact SVD of every 4096 x 11008 change by Debian's reference
# LAPACK; not run by default): loraextract --rank 64 from the model and a copy with a random change
if [ -n "${BENCH_EXTRACT:-}" ]; then
	echo
	echo "## loraextract end to end (BENCH_EXTRACT=1)"
	echo
	sh "$top/tests/bench/extract.sh" "$build" "$model" "$dir"
fi
# 7. BENCH_70B=1 (minutes; not run by default): the 70B-shaped stream. tests/bench/gen_stream writes
#    Llama-3-70B's 723 tensors (141 GB of bf16) to a pipe without storing them; nf4quant converts the stream
#    to a stream; peak RSS of nf4quant alone against the bound, time against the generator into cat.
if [ -n "${BENCH_70B:-}" ]; then
	command -v xxhsum >/dev/null || { echo "BENCH_70B needs xxhsum (the Debian package xxhash)" >&2; exit 1; }
	g="$build/gen_stream"
	echo
	echo "## 70B-shaped stream (BENCH_70B=1)"
	echo
	echo "\`gen_stream\`: Llama-3-70B's tensor names and shapes (80 layers, hidden 8192, intermediate 28672,"
	echo "vocab 128256, 64 query and 8 KV heads of 128), 141 GB of bf16, generated into the pipe, never stored."
	echo
	s=$(date +%s.%N); "$g" 2>/dev/null | cat >/dev/null; e=$(date +%s.%N)
	t_gen=$(calc "$e - $s")
	s=$(date +%s.%N)
	r=$( { "$g" 2>/dev/null | /usr/bin/time -f %M "$build/nf4quant" -q - -o - | xxhsum >"$dir/70b.hash"; } 2>&1 | tail -1)
	e=$(date +%s.%N)
	t_nq=$(calc "$e - $s")
	largest=$((128256 * 8192 * 2))
	echo "| command | seconds | GB/s of input | time vs gen_stream \\| cat | peak RSS of nf4quant (MiB) |"
	echo "|---|---|---|---|---|"
	echo "| gen_stream \\| cat >/dev/null | $(printf %.1f "$t_gen") | $(calc "141107499128 / $t_gen / 1000000000" | xargs printf %.2f) | 1.00 | |"
	echo "| gen_stream \\| nf4quant - -o - \\| xxhsum | $(printf %.1f "$t_nq") | $(calc "141107499128 / $t_nq / 1000000000" | xargs printf %.2f) | $(calc "$t_nq / $t_gen" | xargs printf %.2f) | $((r / 1024)) |"
	echo
	echo "Output hash: $(cut -d' ' -f1 "$dir/70b.hash"). Largest tensor $largest bytes (embed_tokens, lm_head); bound"
	echo "2 x largest + 512 MiB = $(( 2 * largest / 1048576 + 512 )) MiB; \`nf4quant -n - -o -\` plans about 176 MB."
	rm -f "$dir/70b.hash"
fi
# 6. BENCH_BASELINE=DIR: the end-to-end commands with that build (another commit's) and this one, side by
#    side, their outputs compared (tests/bench/compare_builds.sh)
if [ -n "${BENCH_BASELINE:-}" ]; then
	echo
	echo "## Against another build, side by side"
	echo
	echo "Old build: $BENCH_BASELINE${BENCH_BASELINE_LABEL:+ ($BENCH_BASELINE_LABEL)}; new: this one."
	echo "Medians of ${RUNS:-3} runs, the builds alternating, 2.14 GB model and its rank-64 adapter."
	echo
	MODEL="$model" ADAPTER="$adapter" sh "$top/tests/bench/compare_builds.sh" "$BENCH_BASELINE" "$build"
fi
} | tee "$report"
rm -rf "$out"
# On a machine with an NVIDIA GPU: the kernels against the copy bandwidth, and end to end on the GPU
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && [ -x "$build/bench_gpu" ]; then
	{
		echo "# GPU benchmarks ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)), \`make bench\`"
		echo
		"$build/bench_gpu" 64
		echo
		python3 "$top/tests/gpu/bench_e2e.py" "$build/nf4quant" "$model" "$dir/e2e"
		echo
		python3 "$top/tests/gpu/bench_loramerge.py" "$build/loramerge" "$model" "$dir/lm"
	} | tee "$top/bench/gpu.md"
else
	echo "GPU benchmarks: SKIPPED (no NVIDIA GPU here); bench/gpu.md holds the last results from the GPU machine"
fi
