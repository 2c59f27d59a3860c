#!/bin/sh
# auto_table.sh BINDIR LABEL MODEL ADAPTER [LABEL MODEL ADAPTER]...: whether --device auto is within 5 %
# of the faster of --device cpu and --device cuda (issue 17, DESIGN.md's target), on each model given:
# nf4quant to a directory, a .tar.zst bundle and a stream (cat | nf4quant - -o - >/dev/null), loramerge
# with ADAPTER, qinspect of the model's NF4 form against it; each command with each device, medians of
# RUNS (3) runs, page cache warm. Prints a Markdown table: the three times, what auto chose (its -v
# line), and auto's time over the faster device's. Exits 1 when a command fails; the ratio is for the
# reader (or a CI gate) to judge, since a single machine's runs vary by a few per cent.
#
# GPU_DEVICE (default cuda) names the device compared with cpu: GPU_DEVICE=cpu runs the script on a
# machine without a GPU (the table then compares cpu with itself). WORK (default a temporary folder) holds
# the outputs.
set -u
bin=${1:?usage: auto_table.sh BINDIR LABEL MODEL ADAPTER [LABEL MODEL ADAPTER]...}
shift
gpu=${GPU_DEVICE:-cuda}
runs=${RUNS:-3}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/auto-table-XXXXXX")}
mkdir -p "$work"
nq=$bin/nf4quant
lm=$bin/loramerge
qi=$bin/qinspect

. "$(dirname "$0")/../tools/calc.sh"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# secs FN ARGS...: the median seconds of RUNS runs of FN (a shell function), after one warm-up; fails
# when a run fails or a time is not a positive number
secs() {
	"$@" >/dev/null 2>&1 || return 1
	: >"$work/times"
	for i in $(seq "$runs"); do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || return 1
		e=$(date +%s.%N)
		calc "$e - $s" >>"$work/times" || return 1
	done
	t=$(median <"$work/times")
	positive "$t" || return 1
	echo "$t"
}
# the commands: each takes the device first
nq_dir() { rm -rf "$work/o"; $nq -q -T 0 --device "$1" "$model" -o "$work/o"; }
nq_bundle() { rm -f "$work/o.tar.zst"; $nq -q -T 0 --device "$1" "$model" -o "$work/o.tar.zst"; }
nq_stream() { cat "$model/model.safetensors" | $nq -q -T 0 --device "$1" - -o - >/dev/null; }
lm_dir() { rm -rf "$work/m"; $lm -q -T 0 --device "$1" "$model" "$adapter" -o "$work/m"; }
qi_cmp() { $qi -q -T 0 --device "$1" "$work/nf4" "$model"; }
# why LABEL: auto's choice from its -v line ("cpu", "cuda:0 (NVIDIA H200)")
why() {
	case $1 in
	nq_dir) rm -rf "$work/o"; $nq -v -T 0 "$model" -o "$work/o" 2>&1 ;;
	nq_bundle) rm -f "$work/o.tar.zst"; $nq -v -T 0 "$model" -o "$work/o.tar.zst" 2>&1 ;;
	nq_stream) cat "$model/model.safetensors" | $nq -v -T 0 - -o - 2>&1 >/dev/null ;;
	lm_dir) rm -rf "$work/m"; $lm -v -T 0 "$model" "$adapter" -o "$work/m" 2>&1 ;;
	qi_cmp) $qi -v -T 0 "$work/nf4" "$model" 2>&1 >/dev/null ;;
	esac | sed -n 's/^[a-z0-9]*: --device auto: \([^ ]*\).*/\1/p' | head -1
}
echo "| model | command | cpu (s) | $gpu (s) | auto (s) | auto chose | auto / faster |"
echo "|---|---|---|---|---|---|---|"
status=0
while [ $# -ge 3 ]; do
	label=$1 model=$2 adapter=$3
	shift 3
	rm -rf "$work/nf4"
	$nq -q -T 0 --device cpu "$model" -o "$work/nf4" || { status=1; continue; }
	cat "$model"/*.safetensors >/dev/null
	for c in nq_dir nq_bundle nq_stream lm_dir qi_cmp; do
		case $c in
		nq_dir) what="nf4quant MODEL -o DIR" ;;
		nq_bundle) what="nf4quant MODEL -o B.tar.zst" ;;
		nq_stream) what="cat \\| nf4quant - -o - >/dev/null" ;;
		lm_dir) what="loramerge MODEL ADAPTER -o DIR" ;;
		qi_cmp) what="qinspect NF4 MODEL" ;;
		esac
		tc=$(secs $c cpu) && tg=$(secs $c "$gpu") && ta=$(secs $c auto) || { echo "| $label | $what | failed | | | | |"; status=1; continue; }
		best=$(smaller "$tc" "$tg")
		echo "| $label | $what | $(printf %.3f "$tc") | $(printf %.3f "$tg") | $(printf %.3f "$ta") | $(why $c) | $(calc "$ta / $best" | xargs printf %.3f) |"
	done
done
rm -rf "$work/o" "$work/o.tar.zst" "$work/m" "$work/nf4"
[ -n "${WORK:-}" ] || rm -rf "$work"
exit $status
