"""extract_changed.py MODEL OUT: tests/bench/gen_changed.py's copy of a bf16 model directory, made with torch
on the GPU (seconds rather than a minute): every linear weight (`*_proj.weight`) plus normal noise of
standard deviation 1e-3, rounded to bf16 (nearest even); the other tensors and files as they are. The same
distribution as gen_changed.py's, not its bytes (another generator). Needs torch (CUDA when there) and
safetensors."""
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
for name in os.listdir(src):
    if os.path.isfile(f"{src}/{name}") and name != "model.safetensors":
        shutil.copyfile(f"{src}/{name}", f"{out}/{name}")
dev = "cuda" if torch.cuda.is_available() else "cpu"
g = torch.Generator(device=dev).manual_seed(11)
t = load_file(f"{src}/model.safetensors")
for k, v in t.items():
    if k.endswith("_proj.weight") and v.dtype == torch.bfloat16:
        x = v.to(dev, torch.float32)
        x += torch.randn(x.shape, device=dev, generator=g) * 1e-3
        t[k] = x.to(torch.bfloat16).cpu()
save_file(t, f"{out}/model.safetensors", metadata={"format": "pt"})
