"""extract_pair.py MODEL CHANGED TENSOR OUT [N]: one weight of two models as a pair of one-tensor files,
OUT/base.safetensors and OUT/ft.safetensors (its top-left N x N block with N), for loraextract's timings of
one module (tests/gpu/extract_gpu.sh). Needs torch and safetensors."""
import os
import sys

from safetensors import safe_open
from safetensors.torch import save_file

model, changed, name, out = sys.argv[1:5]
n = int(sys.argv[5]) if len(sys.argv) > 5 else None
os.makedirs(out, exist_ok=True)
for src, dst in ((model, "base"), (changed, "ft")):
    with safe_open(f"{src}/model.safetensors", framework="pt") as f:
        t = f.get_tensor(name)
    if n:
        t = t[:n, :n]
    save_file({name: t.contiguous()}, f"{out}/{dst}.safetensors")
print(f"{out}: {name} {list(t.shape)}")
