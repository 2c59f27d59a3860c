"""nf4quant (CPU) against bitsandbytes (CUDA) on tensors of real layer sizes, byte for byte.

Run on the GPU machine from the repository root, with bitsandbytes on PYTHONPATH:
    python3 tests/gpu/large_tensors.py NF4QUANT_BINARY WORKDIR

For each case a random tensor (trained-weight-like spread, several dtypes) is saved as a plain safetensors
file, quantized by our binary with --include '*' and the case's options, and by
bitsandbytes.functional.quantize_4bit on the GPU; every part of the group (codes, absmax, nested_absmax,
quant_map, nested_quant_map) must be the same bytes, the quant_state JSON must decode to the same values
(the offset is torch.mean of the absmax on the GPU: the multi-block reduction order is exercised here),
and bitsandbytes' dequantize_4bit of OUR constants must equal its dequantization of its own.
Exit status 1 on any difference.
"""
import json
import os
import subprocess
import sys

import torch
import bitsandbytes.functional as F
from safetensors.torch import load_file, save_file

binary, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
g = torch.Generator(device="cuda").manual_seed(20261128)
cases = [
    # name, shape, dtype, quant_type, blocksize, double quant
    ("mlp_up_7b", (11008, 4096), torch.bfloat16, "nf4", 64, True),
    ("mlp_down_7b", (4096, 11008), torch.bfloat16, "nf4", 64, True),
    ("attn_7b_fp16", (4096, 4096), torch.float16, "nf4", 64, True),
    ("mlp_70b", (28672, 8192), torch.bfloat16, "nf4", 64, True),
    ("fp4_7b", (11008, 4096), torch.bfloat16, "fp4", 64, True),
    ("fp32_nodq", (4096, 4096), torch.float32, "nf4", 64, False),
    ("fp32_fp4", (2048, 4096), torch.float32, "fp4", 128, True),
    ("bs256_70b_attn", (8192, 8192), torch.bfloat16, "nf4", 256, True),
    ("odd_rows", (12345, 777), torch.bfloat16, "nf4", 64, True),
]
failed = False
for name, shape, dtype, qt, bs, dq in cases:
    x = torch.randn(*shape, device="cuda", generator=g) * 0.02
    x = (x * (1 + torch.rand(shape[0], 1, device="cuda", generator=g) * 3)).to(dtype)
    src, dst = f"{work}/{name}.safetensors", f"{work}/{name}-q.safetensors"
    save_file({"w": x.cpu()}, src, metadata={"format": "pt"})
    args = [binary, "-q", "-f", "--include", "*", "--quant-type", qt, "--blocksize", str(bs), src, "-o", dst]
    if not dq:
        args.insert(2, "--no-double-quant")
    subprocess.run(args, check=True)
    ours = load_file(dst)
    packed, st = F.quantize_4bit(x, blocksize=bs, compress_statistics=dq, quant_type=qt)
    theirs = {"w": packed.cpu()}
    for k, v in st.as_dict(packed=True).items():
        theirs[f"w.{k}"] = v.cpu()
    diffs = []
    for k, v in theirs.items():
        if ".quant_state." in k:
            a = json.loads(bytes(ours[k].tolist()).decode())
            b = json.loads(bytes(v.tolist()).decode())
            if a != b:
                diffs.append(f"{k}: {a} vs {b}")
        elif k not in ours:
            diffs.append(f"{k}: missing")
        elif not torch.equal(ours[k].reshape(-1).view(torch.uint8), v.reshape(-1).view(torch.uint8)):
            n = (ours[k].reshape(-1).view(torch.uint8) != v.reshape(-1).view(torch.uint8)).sum().item()
            diffs.append(f"{k}: {n} bytes differ")
    extra = set(ours) - set(theirs)
    if extra:
        diffs.append(f"extra tensors {sorted(extra)}")
    if not diffs:
        # dequantize our group with bitsandbytes: identical to its own
        qs = F.QuantState.from_dict({k[2:]: v.cuda() for k, v in ours.items() if k != "w"}, device="cuda")
        mine = F.dequantize_4bit(ours["w"].cuda(), qs)
        if not torch.equal(mine, F.dequantize_4bit(packed, st)):
            diffs.append("dequantized values differ")
    print(f"{name:16s} {str(tuple(shape)):14s} {str(dtype)[6:]:9s} {qt} bs{bs} {'dq' if dq else 'no-dq'}: "
          f"{'identical' if not diffs else 'DIFFERENT: ' + '; '.join(diffs)}", flush=True)
    failed |= bool(diffs)
    os.remove(src)
    os.remove(dst)
sys.exit(1 if failed else 0)
