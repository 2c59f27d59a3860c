#!/bin/sh
# compare_builds.sh OLD_BIN NEW_BIN: the end-to-end commands of `make bench`, timed with two builds side by
# side in one run (a refactor must not slow anything down: `make bench BENCH_BASELINE=OLD_BIN`). Each
# command runs RUNS times (default 3) per build, the builds alternating (old, new, old, new, ...) so that
# the page cache and the machine's load treat them alike; the median is kept. The outputs of the two
# builds are compared too (cmp of the files, --json reports less their times): a faster build that writes
# other bytes is no faster.
# MODEL (default make bench's, BUILD/bench/llama7b-widths-4l) and ADAPTER (its rank-64 adapter) are the
# inputs. Prints a Markdown table: command, old seconds, new seconds, new / old.
set -eu
old=$(cd "${1:?usage: compare_builds.sh OLD_BIN NEW_BIN}" && pwd)
new=$(cd "${2:?usage: compare_builds.sh OLD_BIN NEW_BIN}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
model=${MODEL:-$top/build/bench/llama7b-widths-4l}
adapter=${ADAPTER:-$top/build/bench/lora-r64-4l}
runs=${RUNS:-3}
[ -f "$model/model.safetensors" ] || { echo "compare_builds.sh: no model at $model (make bench makes one)" >&2; exit 1; }
[ -f "$adapter/adapter_model.safetensors" ] || { echo "compare_builds.sh: no adapter at $adapter" >&2; exit 1; }
w=$(mktemp -d "${TMPDIR:-/tmp}/compare-builds-XXXXXX")
trap 'rm -rf "$w"' EXIT INT TERM

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# the inputs both builds read: the model's NF4 form (made by the old build)
"$old/nf4quant" -q --device cpu "$model" -o "$w/nf4"
cat "$model/model.safetensors" "$w/nf4/model.safetensors" >/dev/null

# row LABEL OUTPUT COMMAND: COMMAND (a shell command line) may hold @BIN@ (the build's directory) and @OUT@
# (its output, removed before each run); each build's last output (or standard output) is kept for the
# comparison.
row() {
	label=$1 output=$2 template=$3
	: >"$w/t.old" && : >"$w/t.new"
	for i in $(seq "$runs"); do
		for b in old new; do
			eval "dir=\$$b"
			rm -rf "$w/$output.$b"
			cmd=$(printf '%s' "$template" | sed -e "s|@BIN@|$dir|g" -e "s|@OUT@|$w/$output.$b|g")
			s=$(date +%s.%N)
			sh -c "$cmd" >"$w/$output.$b.stdout"
			e=$(date +%s.%N)
			awk "BEGIN { print $e - $s }" >>"$w/t.$b"
		done
	done
	to=$(median <"$w/t.old") tn=$(median <"$w/t.new")
	same=same
	if [ -e "$w/$output.old" ]; then
		diff -r "$w/$output.old" "$w/$output.new" >/dev/null || same="OUTPUTS DIFFER"
	else
		grep -v -e '"seconds"' "$w/$output.old.stdout" >"$w/a" || true
		grep -v -e '"seconds"' "$w/$output.new.stdout" >"$w/b" || true
		cmp -s "$w/a" "$w/b" || same="REPORTS DIFFER"
	fi
	printf '| %s | %.3f | %.3f | %.2f | %s |\n' "$label" "$to" "$tn" "$(awk "BEGIN { print $tn / $to }")" "$same"
}

echo "| command | old build (s) | new build (s) | new / old | outputs |"
echo "|---|---|---|---|---|"
row "nf4quant, directory" out "@BIN@/nf4quant -q --device cpu $model -o @OUT@"
row "nf4quant, .tar.zst bundle" out.tar.zst "@BIN@/nf4quant -q --device cpu $model -o @OUT@"
row "loramerge, rank-64 adapter, bf16 base" out "@BIN@/loramerge -q --device cpu $model $adapter -o @OUT@"
row "loramerge --base-as nf4" out "@BIN@/loramerge -q --device cpu --base-as nf4 $model $adapter -o @OUT@"
row "loramerge --requantize" out "@BIN@/loramerge -q --device cpu --requantize $model $adapter -o @OUT@"
row "qinspect, NF4 against the model (--json)" report "@BIN@/qinspect --json --device cpu $w/nf4 $model"
row "qinspect, NF4 alone (--json)" report "@BIN@/qinspect --json --device cpu $w/nf4"
