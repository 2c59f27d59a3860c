"""nf4quant -d on the GPU machine: bitsandbytes' CUDA dequantize_4bit of real layer sizes, and the logits.

Run from the repository root, with bitsandbytes and transformers on PYTHONPATH:
    python3 tests/gpu/deq_check.py NF4QUANT_BINARY WORKDIR

1. For each case a random tensor of a real layer size is quantized by bitsandbytes.functional.quantize_4bit
   on the GPU and saved as a checkpoint holds it (w, w.absmax, ..., w.quant_state.bitsandbytes__nf4);
   nf4quant -d --device cuda and --device cpu of it must both equal dequantize_4bit's bytes.
2. tiny-llama-nf4 and -fp4 dequantized by nf4quant -d load in transformers as float models whose logits on
   the GPU equal those of the 4-bit checkpoint loaded by transformers + bitsandbytes (whose CUDA forward
   dequantizes the weights and multiplies), bit for bit.
Exit status 1 on any difference.
"""
import os
import subprocess
import sys

import torch
import bitsandbytes.functional as F
from safetensors.torch import load_file, save_file

binary, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
g = torch.Generator(device="cuda").manual_seed(20261207)
cases = [
    ("mlp_up_7b", (11008, 4096), torch.bfloat16, "nf4", 64, True),
    ("mlp_70b", (28672, 8192), torch.bfloat16, "nf4", 64, True),
    ("attn_7b_fp16", (4096, 4096), torch.float16, "nf4", 64, True),
    ("fp4_7b", (11008, 4096), torch.bfloat16, "fp4", 64, True),
    ("fp32_nodq", (4096, 4096), torch.float32, "nf4", 64, False),
    ("fp32_fp4_bs128", (2048, 4096), torch.float32, "fp4", 128, True),
    ("bs4096_nodq", (8192, 8192), torch.bfloat16, "nf4", 4096, False),
    ("odd_rows", (12345, 777), torch.bfloat16, "nf4", 64, True),
]
failed = False
for name, shape, dtype, qt, bs, dq in cases:
    x = torch.randn(*shape, device="cuda", generator=g) * 0.02
    x = (x * (1 + torch.rand(shape[0], 1, device="cuda", generator=g) * 3)).to(dtype)
    packed, st = F.quantize_4bit(x, blocksize=bs, compress_statistics=dq, quant_type=qt)
    group = {"w": packed.cpu()}
    for k, v in st.as_dict(packed=True).items():
        group[f"w.{k}"] = v.cpu()
    src = f"{work}/{name}-q.safetensors"
    save_file(group, src, metadata={"format": "pt"})
    want = F.dequantize_4bit(packed, st).cpu().contiguous()
    notes = []
    for dev in ("cuda", "cpu"):
        dst = f"{work}/{name}-{dev}.safetensors"
        subprocess.run([binary, "-q", "-f", "-d", "--device", dev, src, "-o", dst], check=True)
        got = load_file(dst)["w"]
        same = got.dtype == want.dtype and got.shape == want.shape and torch.equal(
            got.reshape(-1).view(torch.uint8), want.reshape(-1).view(torch.uint8))
        notes.append(f"{dev} {'identical' if same else 'DIFFERENT'}")
        failed |= not same
        os.remove(dst)
    os.remove(src)
    print(f"{name:16s} {str(tuple(shape)):14s} {str(dtype)[6:]:9s} {qt} bs{bs} {'dq' if dq else 'no-dq'}: "
          + ", ".join(notes), flush=True)

from transformers import AutoModelForCausalLM
import json
ids = torch.tensor(json.load(open("fixtures/models/logits_input.json"))["input_ids"], device="cuda")
for qt in ("nf4", "fp4"):
    src = f"fixtures/models/tiny-llama-{qt}"
    out = f"{work}/deq-{qt}"
    subprocess.run([binary, "-q", "-f", "-d", "--device", "cuda", src, "-o", out], check=True)
    with torch.no_grad():
        l4 = AutoModelForCausalLM.from_pretrained(src, device_map="cuda")(ids).logits
        lf = AutoModelForCausalLM.from_pretrained(out, device_map="cuda")(ids).logits
    same = torch.equal(l4, lf)
    failed |= not same
    print(f"tiny-llama-{qt}: logits of nf4quant -d's float model "
          + ("= the 4-bit model's" if same else f"DIFFER from the 4-bit model's by {(l4 - lf).abs().max().item()}"))
sys.exit(1 if failed else 0)
