#!/bin/sh
# run.sh BUILD_DIR [--results FILE]: loraextract against numpy's float64 SVD (every module within 1e-4
# relative of the Eckart-Young optimum of its rank) and PEFT (the adapters load, on the float base and,
# --correct, on the 4-bit model; logits approach the fine-tune's as the rank grows) on a full fine-tune of
# tiny-llama made here (tests/extract/check.py), and on GPT-2's Conv1D weights (tests/extract/conv1d.py);
# the peak memory with large unchanged tensors (tests/extract/memory.py).
# --results writes the tables (tests/extract/RESULTS.md).
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
# --results FILE: the tables are written anew; a section "## By hand" at its end (vs_mergekit.py's) is kept
keep=
if [ "${1:-}" = --results ] && [ -f "${2:-}" ]; then
	keep=$(sed -n '/^## By hand/,$p' "$2")
fi
err=$(mktemp "${TMPDIR:-/tmp}/lq-extract-XXXXXX")
trap 'rm -f "$err"' EXIT INT TERM
if ! out=$("$py" "$top/tests/extract/check.py" "$build" "$@" 2>"$err"); then
	printf '%s\n' "$out"
	grep -v '^ *$' "$err" | tail -20 >&2
	exit 1
fi
printf '%s\n' "$out" | grep '^golden' | sed 's/^/extract: /'
# GPT-2's Conv1D weights: the factors of the stored [in, out] matrix, loaded by PEFT (fan_in_fan_out)
if ! c1=$("$py" "$top/tests/extract/conv1d.py" "$build" 2>"$err"); then
	printf '%s\n' "$c1"
	grep -v '^ *$' "$err" | tail -20 >&2
	exit 1
fi
printf '%s\n' "$c1" | grep '^conv1d' | sed 's/^/extract: /'
if [ "${1:-}" = --results ]; then
	printf '\n%s\n' "$(printf '%s\n' "$c1" | sed -n '/^### GPT-2 Conv1D/,$p')" >>"$2"
	[ -z "$keep" ] || printf '\n%s\n' "$keep" >>"$2"
fi
# peak memory with large unchanged tensors: within the streaming bound (tests/extract/memory.py)
if ! mem=$("$py" "$top/tests/extract/memory.py" "$build" 2>"$err"); then
	printf '%s\n' "$mem"
	grep -v '^ *$' "$err" | tail -20 >&2
	exit 1
fi
printf 'extract: %s\n' "$mem"
echo "extract: PEFT loads the adapters; logits and --correct tables in tests/extract/RESULTS.md: ok"
