#!/bin/sh
# combine.sh BUILD_DIR: loramerge --combine against PEFT's add_weighted_adapter on the shipped tiny-llama
# adapters, every combination type (tests/interop/combine_check.py says what is checked). Needs the
# virtual environment ./setup makes ($top/.venv); without it, says SKIP.
set -eu
build=$(cd "${1:?usage: combine.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
py="$top/.venv/bin/python"
if ! [ -x "$py" ]; then
	echo "interop: combine: SKIP: no .venv (run ./setup)"
	exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/lq-combine-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error
if ! "$py" -W ignore "$top/tests/interop/combine_check.py" "$build/loramerge" "$work" >"$work/out" 2>"$work/err"; then
	sed 's/^/interop: /' "$work/out"
	grep -v '^ *$' "$work/err" | tail -20 >&2
	exit 1
fi
sed 's/^/interop: /' "$work/out"
