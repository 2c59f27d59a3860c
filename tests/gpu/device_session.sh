#!/bin/sh
# device_session.sh: every GPU check in one run on the lent GPU machine (see README.md); logs to $OUT.
set -u
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
export LD_LIBRARY_PATH=.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONUNBUFFERED=1
status=0
step() {
	name=$1; shift
	echo "=== $name"
	if "$@" >"$out/$name.log" 2>&1; then echo "PASS $name"; else echo "FAIL $name (exit $?)"; status=1; fi
	grep -v -i "warn" "$out/$name.log" | tail -25
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, transformers, bitsandbytes; print('torch', torch.__version__, 'transformers', transformers.__version__, 'bitsandbytes', bitsandbytes.__version__)" 2>&1 | tail -1
step rcp_table sh -c '.gpu/bin/rcp_approx_gen /tmp/rcp.bin && sha256sum /tmp/rcp.bin | grep -q ^bbda0d685ab5a66767c2c3881a67dff147e1f5a2c766db1f6dd5b63fecedcf2c && echo "the GPU reproduces the shipped table (sha256 bbda0d68...)"'
w=$(mktemp -d)
.gpu/bin/nf4quant -q fixtures/models/tiny-llama -o "$w/nf4"
.gpu/bin/nf4quant -q --quant-type fp4 fixtures/models/tiny-llama -o "$w/fp4"
.gpu/bin/nf4quant -q --exclude 'model.layers.0.*' fixtures/models/tiny-llama -o "$w/excluded"
step interop_logits python3 tests/gpu/interop_logits.py "$w/nf4" "$w/fp4" "$w/excluded"
step torch_mean python3 tests/gpu/torch_mean_check.py .gpu/bin/torch_mean_driver
step large_tensors python3 tests/gpu/large_tensors.py .gpu/bin/nf4quant "$w/large"
step select_truth python3 tests/gpu/select_truth.py --out "$out/select_truth.json"
rm -rf "$w"
exit $status
