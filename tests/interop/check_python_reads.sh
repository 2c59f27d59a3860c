#!/bin/sh
# check_python_reads.sh BUILD_DIR: the official Python safetensors package reads every kind of file
# nf4quant and loramerge write (single file and shards; nf4 and fp4; with and without double
# quantization; every block size; every tensor quantized; bf16, fp16 and fp32 inputs; merged models in
# float and requantized, with an untied head).
set -eu
build=$(cd "${1:?usage: check_python_reads.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
if ! python3 -c "import safetensors, numpy" 2>/dev/null; then
	echo "interop: FAILED: python3 with the safetensors and numpy packages is required (run ./setup)" >&2
	exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/lq-interop-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
nq="$build/nf4quant"
m="$top/fixtures/models"
$nq -q "$m/tiny-llama" -o "$work/nf4"
$nq -q --quant-type fp4 --no-double-quant "$m/tiny-llama" -o "$work/fp4"
$nq -q "$m/tiny-llama-sharded" -o "$work/sharded"
$nq -q --max-shard-size 100KB --blocksize 4096 "$m/tiny-llama" -o "$work/split"
$nq -q --include '*' --blocksize 32 "$m/tiny-llama/model.safetensors" -o "$work/all.safetensors"
$nq -q --include '*' "$top/fixtures/reference/tensors/inputs.safetensors" -o "$work/inputs.safetensors"
lm="$build/loramerge"
a="$top/fixtures/peft/adapters"
$lm -q "$m/tiny-llama-sharded" "$a/embed_mts" -o "$work/merged"
$lm -q --dtype fp32 "$m/tiny-llama-nf4" "$a/dora_r8" -o "$work/merged-fp32.safetensors"
$lm -q --requantize "$m/tiny-llama" "$a/plain_r8" -o "$work/requantized"
python3 "$top/tests/interop/read_with_safetensors.py" $(find "$work" -name '*.safetensors' | sort)
echo "interop: the official safetensors package read every file"
