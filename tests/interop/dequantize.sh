#!/bin/sh
# dequantize.sh BUILD_DIR: nf4quant -d against bitsandbytes' CPU backend and transformers' dequantize() +
# save_pretrained on the CPU (tests/interop/dequantize.py says what is checked): first whether the CPU
# backend's dequantize_4bit is a valid reference (against the CUDA reference files), then the shipped
# tiny-llama-nf4 and -fp4. Needs the virtual environment ./setup makes ($top/.venv); without it, says SKIP.
set -eu
build=$(cd "${1:?usage: dequantize.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
py="$top/.venv/bin/python"
if ! [ -x "$py" ]; then
	echo "interop: dequantize: SKIP: no .venv (run ./setup)"
	exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/lq-dequantize-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error
run() {
	if ! "$@" >"$work/out" 2>"$work/err"; then
		cat "$work/out"
		grep -v '^ *$' "$work/err" | tail -20 >&2
		exit 1
	fi
	# bitsandbytes says on standard output that its optional CPU kernel package is not installed
	grep -v -e 'kernels-community' "$work/out" | sed 's/^/interop: /'

}
f="$top/fixtures"
run "$py" "$top/tests/interop/dequantize.py" bnb-cpu "$f/reference/tensors_ref/ref_q.safetensors" \
	"$f/reference/tensors_ref/ref_deq.safetensors" "$f/bnb-edge/edge_ref_q.safetensors" "$f/bnb-edge/edge_ref_deq.safetensors"
run "$py" "$top/tests/interop/dequantize.py" transformers "$work" "$build/nf4quant" "$f"
