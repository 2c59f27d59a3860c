"""Edge cases of bitsandbytes' CUDA 4-bit quantization, run on the GPU machine with the real library.

The shared reference (../shared/reference/tensors*) covers ordinary data. This adds what it does not:
subnormal inputs and products (the library is built with fast math, so flush-to-zero applies), absmax
values whose reciprocal flushes to zero, elements exactly at or one ulp around every NF4/FP4 threshold
for many absmax mantissas (the approximate reciprocal decides those), negative zeros and tiny negatives
for FP4's sign, and partial last blocks of zeros. Writes, in the layout of the shared reference:
  $OUT/edge_inputs.safetensors   one input tensor per case
  $OUT/edge_ref_q.safetensors    <case>.weight, .absmax, ... as quantize_4bit serializes them
  $OUT/edge_ref_deq.safetensors  dequantize_4bit of each case
  $OUT/edge_cases.json           blocksize, double_quant, quant_type, dtype, shape per case
It also prints how often torch's float32 mean of the block absmax (what bitsandbytes uses as the
double-quantization offset) differs from the double-precision mean rounded once, on real layer shapes.

Run: OUT=dir PYTHONPATH=<bitsandbytes> python3 tests/gpu/bnb_edge_cases.py
"""
import json
import os
import struct

import torch
import bitsandbytes.functional as F
from safetensors.torch import save_file

OUT = os.environ.get("OUT", "out")
dev = "cuda"
g = torch.Generator().manual_seed(20261128)

NF4_T = [0xbf591cd9, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
         0x3df64863, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d03, 0x3f248daf, 0x3f5c89d9]
FP4_T = [0x3e955555, 0x3f155550, 0x3f555555, 0x3ed55556, 0x3db00000, 0x3e555555, 0x3b2aaab9]


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def nudge(x, k, dtype):
    """x moved by k units in the last place of dtype (float32 tensor in, dtype tensor out)."""
    t = x.to(dtype)
    if dtype == torch.float32:
        return (t.view(torch.int32) + k).view(torch.float32)
    return (t.view(torch.int16) + k).view(dtype)


def threshold_blocks(dtype, thresholds, nblocks):
    """Blocks whose first element is the absmax a and whose others are a*t (t a threshold or its
    negative), rounded to dtype and moved by -1, 0 or +1 ulp: the products land on the thresholds."""
    rows = []
    for b in range(nblocks):
        a = torch.empty(1).uniform_(0.25, 4.0, generator=g) * (2.0 ** torch.randint(-12, 12, (1,), generator=g))
        a = a.to(dtype).float()
        row = [a]
        k = 0
        while len(row) < 64:
            t = f32(thresholds[k % len(thresholds)]) * (1 if (k // len(thresholds)) % 2 == 0 else -1)
            row.append(torch.tensor([a.item() * t]))
            k += 1
        r = torch.cat(row).to(dtype)
        nud = torch.randint(-1, 2, (64,), generator=g)
        nud[0] = 0
        rows.append(nudge(r.float(), nud.to(torch.int32 if dtype == torch.float32 else torch.int16), dtype))
    return torch.stack(rows)


def subnormal_blocks(dtype):
    tiny = torch.finfo(torch.float32).tiny  # smallest normal float32
    rows = []
    # all subnormal (bf16/fp32 only: fp16 values are normal in float32)
    r = torch.randn(64, generator=g) * tiny * 0.3
    rows.append(r)
    # a normal absmax with subnormal elements: products flush to zero
    r = torch.randn(64, generator=g) * tiny * 0.3
    r[5] = 1.0
    rows.append(r)
    # tiny negatives and negative zeros next to a positive absmax (FP4 sign of -0.0 and of flushed products)
    r = torch.full((64,), -0.0)
    r[0] = 3.0
    r[1:20] = -tiny * 0.5
    r[20:40] = -1e-30
    rows.append(r)
    # absmax above 2^126: its reciprocal flushes to zero
    r = torch.randn(64, generator=g) * 1e37
    r[0] = 2.5e38
    r[1] = -2.5e38
    rows.append(r)
    r = torch.randn(64, generator=g) * 1e37
    r[0] = 2.0 ** 126
    rows.append(r)
    # smallest normal absmax
    r = torch.randn(64, generator=g).clamp(-1, 1) * tiny
    r[0] = tiny
    rows.append(r)
    t = torch.stack(rows)
    if dtype == torch.float16:
        t = torch.randn(6, 64, generator=g) * 1e-6  # fp16 subnormals, normal in float32
        t[1, 0] = 6e-8
    return t.to(dtype)


def wide_random(dtype, nblocks):
    """Random blocks with absmax spread over many exponents and mantissas: exercises the reciprocal."""
    x = torch.randn(nblocks, 64, generator=g)
    lo, hi = (-20, 15) if dtype == torch.float16 else (-60, 60)
    scale = 2.0 ** torch.randint(lo, hi, (nblocks, 1), generator=g).float()
    return (x * scale).to(dtype)


cases = {}


def add(name, x, bs=64, dq=True, qt="nf4"):
    cases[name] = dict(x=x.contiguous().clone(), bs=bs, dq=dq, qt=qt)


for dtype, dn in ((torch.bfloat16, "bf16"), (torch.float16, "fp16"), (torch.float32, "fp32")):
    for qt in ("nf4", "fp4"):
        th = NF4_T if qt == "nf4" else FP4_T
        add(f"thr_{qt}_{dn}", threshold_blocks(dtype, th, 512), qt=qt, dq=False)
        add(f"thr_{qt}_{dn}_dq", threshold_blocks(dtype, th, 300), qt=qt, dq=True)
        add(f"sub_{qt}_{dn}", subnormal_blocks(dtype), qt=qt, dq=False)
        add(f"sub_{qt}_{dn}_dq", subnormal_blocks(dtype), qt=qt, dq=True)
        add(f"wide_{qt}_{dn}", wide_random(dtype, 2048), qt=qt, dq=True)
        add(f"wide_{qt}_{dn}_bs256", wide_random(dtype, 512), qt=qt, dq=False, bs=256)
    z = torch.randn(1, 65, generator=g).to(dtype)
    z[0, 64] = 0
    add(f"zero_tail_{dn}", z)
    add(f"zero_tail_fp4_{dn}", z, qt="fp4")
    add(f"odd_fp4_{dn}", torch.randn(3, 43, generator=g).to(dtype), qt="fp4")
    add(f"bs32_fp4_{dn}", torch.randn(16, 96, generator=g).to(dtype), qt="fp4", bs=32)

inputs, refq, refdeq, meta = {}, {}, {}, {}
for name, c in cases.items():
    x = c["x"]
    inputs[name] = x
    packed, st = F.quantize_4bit(x.to(dev), blocksize=c["bs"], compress_statistics=c["dq"], quant_type=c["qt"])
    torch.cuda.synchronize()
    refq[f"{name}.weight"] = packed.cpu().contiguous()
    for k, v in st.as_dict(packed=True).items():
        refq[f"{name}.weight.{k}"] = v.cpu().contiguous()
    refdeq[name] = F.dequantize_4bit(packed, st).cpu().contiguous()
    meta[name] = dict(blocksize=c["bs"], double_quant=c["dq"], quant_type=c["qt"], dtype=str(x.dtype),
                      shape=list(x.shape))
save_file(inputs, f"{OUT}/edge_inputs.safetensors", metadata={"format": "pt"})
save_file(refq, f"{OUT}/edge_ref_q.safetensors", metadata={"format": "pt"})
save_file(refdeq, f"{OUT}/edge_ref_deq.safetensors", metadata={"format": "pt"})
json.dump(meta, open(f"{OUT}/edge_cases.json", "w"), indent=1)
print("edge cases:", len(cases), flush=True)

# The double-quantization offset: torch's float32 mean (bitsandbytes) against the double mean.
shapes = [(4096, 4096), (11008, 4096), (4096, 11008), (1024, 4096), (8192, 8192), (28672, 8192), (8192, 28672)]
for shape in shapes:
    diff = 0
    trials = 8
    for t in range(trials):
        x = (torch.randn(*shape, device=dev) * 0.02 * (1 + torch.rand(shape[0], 1, device=dev))).to(torch.bfloat16)
        _, st = F.quantize_4bit(x, blocksize=64, compress_statistics=False, quant_type="nf4")
        a = st.absmax
        m32 = a.mean()
        m64 = (a.double().sum() / a.numel()).float()
        diff += int(m32.item() != m64.item())
        if t == 0:
            print(shape, "float32 mean", m32.item(), "double mean", m64.item(), flush=True)
    print(shape, f"offset differs in {diff}/{trials} trials", flush=True)
