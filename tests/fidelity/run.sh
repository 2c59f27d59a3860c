#!/bin/sh
# run.sh BUILD_DIR [REPORT.json -- REFERENCE_ARGS...]: the merge-fidelity tests (issue 14) on the QLoRA
# adapters trained on the CPU in fixtures/fidelity/ (tiny-llama and the real all-MiniLM-L6-v2, each at a
# normal learning rate and at 1e-7; tests/fidelity/train_adapters.py made them). Without REPORT:
# tests/fidelity/check.py, which checks loramerge --requantize against PEFT's own CPU 4-bit merge (codes
# exactly, block constants within the stated CPU/CUDA tolerance), reference.py (the figures in float64
# from bitsandbytes' and PEFT's own functions) against itself computed two ways and against loramerge's
# float merge, the figures of loramerge's requantized output against fixtures/fidelity/figures.json and
# which modules are erased, and, once loramerge has --fidelity, its reports against reference.py
# (compare.py, relative tolerance 1e-9). With REPORT: reference.py REFERENCE_ARGS... (BASE ADAPTER
# [MERGED] --base-kind float|4bit ...) against that report, e.g.
#   tests/fidelity/run.sh build r.json -- fixtures/models/tiny-llama-nf4 fixtures/fidelity/tiny_lr1e-3 \
#       OUT --base-kind 4bit
# Needs the virtual environment ./setup makes ($top/.venv); without it, says SKIP.
set -eu
build=$(cd "${1:?usage: run.sh BUILD_DIR [REPORT.json -- REFERENCE_ARGS...]}" && pwd)
shift
top=$(cd "$(dirname "$0")/../.." && pwd)
py="$top/.venv/bin/python"
if [ ! -x "$py" ]; then
	echo "fidelity: SKIP: no .venv (run ./setup)"
	exit 0
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error \
	TOKENIZERS_PARALLELISM=false
work=$(mktemp -d "${TMPDIR:-/tmp}/lq-fidelity-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
if [ $# -gt 0 ]; then
	report=$1
	shift
	[ "${1:-}" = "--" ] && shift
	"$py" "$top/tests/fidelity/reference.py" "$@" -o "$work/reference.json" 2>"$work/err" ||
		{ tail -20 "$work/err" >&2; exit 1; }
	exec "$py" "$top/tests/fidelity/compare.py" "$work/reference.json" "$report"
fi
# the chatter of the Python libraries only on failure; the checks' lines: all on failure, else a summary
if ! "$py" "$top/tests/fidelity/check.py" "$build" >"$work/out" 2>"$work/err"; then
	cat "$work/out"
	grep -v '^ *$' "$work/err" | tail -20 >&2
	exit 1
fi
n=$(grep -c ': ok$' "$work/out" || true)
echo "fidelity: $n checks on 4 trained adapters ok"
grep 'SKIP' "$work/out" || true
