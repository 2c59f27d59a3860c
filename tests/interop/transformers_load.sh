#!/bin/sh
# transformers_load.sh BUILD_DIR: nf4quant's checkpoints load in transformers 4.57 and 5.x (CPU, through
# bitsandbytes' CPU backend) exactly as nf4quant planned them: the shipped tiny-llama, a tiny BertModel
# and BertForMaskedLM made in the test, and the MiniLM of the PyPI package all_minilm_l6_v2 (a BertModel,
# whose last parameter is a bias: transformers 4.x's default skips differ from 5.x's there). See
# transformers_load.py for what is checked. Needs the virtual environment ./setup makes ($top/.venv, with
# transformers 4 in .venv/transformers4); without it, says SKIP.
set -eu
build=$(cd "${1:?usage: transformers_load.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
py="$top/.venv/bin/python"
t4="$top/.venv/transformers4"
if ! [ -x "$py" ]; then
	echo "interop: transformers loads: SKIP: no .venv (run ./setup)"
	exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/lq-transformers-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error
# one Python process per transformers version; their chatter (progress, kernel notices) only on failure
run() {
	if ! "$@" >"$work/out" 2>"$work/err"; then
		cat "$work/out"
		grep -v '^ *$' "$work/err" | tail -20 >&2
		exit 1
	fi
	sed 's/^/interop: /' "$work/out"
}
run "$py" "$top/tests/interop/transformers_load.py" prepare-check "$work/w" "$build/nf4quant" "$top"
if [ -d "$t4/transformers" ]; then
	PYTHONPATH="$t4${PYTHONPATH:+:$PYTHONPATH}" run "$py" "$top/tests/interop/transformers_load.py" check "$work/w"
else
	echo "interop: transformers 4 loads: SKIP: no .venv/transformers4 (run ./setup)"
fi
