#!/bin/sh
# bundle_inputs.sh BIN [OLD_BIN]: qinspect and loramerge with a bundle as an input, against the same
# commands on directories, on MODEL (a float model directory; default make bench's, BUILD/bench/...).
# BIN holds nf4quant, qinspect and loramerge; OLD_BIN, if given, a build of another commit, timed on the
# same inputs. Every qinspect report is checked to be the directory-on-directory report of BIN, but for
# the paths and the time: reading a bundle in another order must not change a figure.
# With ADAPTER (a LoRA adapter directory for MODEL) loramerge is timed too. LABEL and OLD_LABEL name the
# builds in the table's head. RUNS (default 1) runs a
# command, the median kept. Prints a Markdown table; everything it makes goes under a scratch directory.
set -eu
bin=$(cd "${1:?usage: bundle_inputs.sh BIN [OLD_BIN]}" && pwd)
old=${2:+$(cd "$2" && pwd)}
top=$(cd "$(dirname "$0")/../.." && pwd)
model=${MODEL:-$top/build/bench/llama7b-widths-4l}
adapter=${ADAPTER:-}
runs=${RUNS:-1}
[ -f "$model/model.safetensors" ] || { echo "bundle_inputs.sh: no model at $model (make bench makes one)" >&2; exit 1; }
w=$(mktemp -d "${TMPDIR:-/tmp}/bundle-inputs-XXXXXX")
trap 'rm -rf "$w"' EXIT INT TERM

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
seconds() { # seconds of a command, median of $runs runs
	for i in $(seq "$runs"); do
		s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
		awk "BEGIN { print $e - $s }"
	done | median
}
report() { # report OUT QINSPECT ARGS...: the JSON without what names the inputs or times the run
	out=$1; shift
	"$@" --json | grep -v -e '"checkpoint"' -e '"reference"' -e '"seconds"' >"$out"
}

# the inputs: the float model and its NF4 form, each as a directory and as a .tar.zst as users make them
"$bin/nf4quant" -q --device cpu "$model" -o "$w/nf4"
"$bin/nf4quant" -q --device cpu "$model" -o "$w/nf4.tar.zst"
tar -C "$(dirname "$model")" -cf - "$(basename "$model")" | zstd -q -3 -T0 >"$w/model.tar.zst"
report "$w/want" "$bin/qinspect" --device cpu "$w/nf4" "$model"

echo "| command | ${LABEL:-this build} (s) |${old:+ ${OLD_LABEL:-OLD_BIN} (s) |}"
echo "|---|---|${old:+---|}"
echo "| cat of the float model | $(printf %.3f "$(seconds cat "$model/model.safetensors")") |${old:+ |}"
unz() { zstd -q -d -c "$1" >/dev/null; }
echo "| zstd -d of the NF4 bundle | $(printf %.3f "$(seconds unz "$w/nf4.tar.zst")") |${old:+ |}"
echo "| zstd -d of the float bundle | $(printf %.3f "$(seconds unz "$w/model.tar.zst")") |${old:+ |}"
row() { # row LABEL CHECKPOINT [REFERENCE]
	label=$1; shift
	n=$(seconds "$bin/qinspect" -q --device cpu "$@")
	if [ $# -eq 2 ]; then
		report "$w/got" "$bin/qinspect" --device cpu "$@"
		cmp -s "$w/got" "$w/want" || { echo "bundle_inputs.sh: qinspect $label: the report differs" >&2; exit 1; }
	fi
	o=${old:+$(seconds "$old/qinspect" -q --device cpu "$@")}
	if [ -n "$old" ] && [ $# -eq 2 ]; then
		report "$w/got-old" "$old/qinspect" --device cpu "$@"
		cmp -s "$w/got-old" "$w/want" || { echo "bundle_inputs.sh: old qinspect $label: the report differs" >&2; exit 1; }
	fi
	echo "| qinspect, $label | $(printf %.3f "$n") |${old:+ $(printf %.3f "$o") |}"
}
row "NF4 directory against the float directory" "$w/nf4" "$model"
row "NF4 bundle against the float directory" "$w/nf4.tar.zst" "$model"
row "NF4 directory against the float bundle" "$w/nf4" "$w/model.tar.zst"
row "NF4 bundle against the float bundle" "$w/nf4.tar.zst" "$w/model.tar.zst"
row "NF4 directory described" "$w/nf4"
row "NF4 bundle described" "$w/nf4.tar.zst"
if [ -n "$adapter" ]; then
	for base in nf4 nf4.tar.zst; do
		lm() { rm -rf "$w/lm"; "$1/loramerge" -q --device cpu "$w/$base" "$adapter" -o "$w/lm"; }
		n=$(seconds lm "$bin")
		o=${old:+$(seconds lm "$old")}
		echo "| loramerge, the NF4 $([ $base = nf4 ] && echo directory || echo bundle) as its base | $(printf %.3f "$n") |${old:+ $(printf %.3f "$o") |}"
	done
else
	echo
	echo "(loramerge not timed: no ADAPTER)"
fi
echo
echo "Every qinspect report with a reference equals the directory-on-directory one (but for paths and time)."
