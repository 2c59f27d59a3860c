#!/bin/sh
# run.sh BUILD_DIR [--results FILE]: loraextract against numpy's float64 SVD (every module within 1e-4
# relative of the Eckart-Young optimum of its rank) and PEFT (the adapters load, on the float base and,
# --correct, on the 4-bit model; logits approach the fine-tune's as the rank grows) on a full fine-tune of
# tiny-llama made here (tests/extract/check.py). --results writes the tables (tests/extract/RESULTS.md).
# Needs the virtual environment ./setup makes ($top/.venv); without it, says SKIP.
set -eu
build=$(cd "${1:?usage: run.sh BUILD_DIR [--results FILE]}" && pwd)
shift
top=$(cd "$(dirname "$0")/../.." && pwd)
py="$top/.venv/bin/python"
if [ ! -x "$py" ]; then
	echo "extract: SKIP: no .venv (run ./setup)"
	exit 0
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error \
	TOKENIZERS_PARALLELISM=false
err=$(mktemp "${TMPDIR:-/tmp}/lq-extract-XXXXXX")
trap 'rm -f "$err"' EXIT INT TERM
if ! out=$("$py" "$top/tests/extract/check.py" "$build" "$@" 2>"$err"); then
	printf '%s\n' "$out"
	grep -v '^ *$' "$err" | tail -20 >&2
	exit 1
fi
printf '%s\n' "$out" | grep '^golden' | sed 's/^/extract: /'
echo "extract: PEFT loads the adapters; logits and --correct tables in tests/extract/RESULTS.md: ok"
