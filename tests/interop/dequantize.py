"""nf4quant -d against bitsandbytes and transformers on the CPU (tests/interop/dequantize.sh runs it).

  dequantize.py bnb-cpu REF_Q REF_DEQ [REF_Q REF_DEQ]...
      Whether bitsandbytes' CPU dequantize_4bit is a valid reference here: every case of the CUDA reference
      files (ref_q: the quantized groups, ref_deq: CUDA's dequantize_4bit of each) dequantized on the CPU.
      Found with bitsandbytes 0.50.2: NF4 equal bit for bit; FP4 equal but for the sign of some zeros (the
      code of -0, which CUDA mostly dequantizes to -0.0 and the CPU backend to +0.0); and the edge cases of blocksize 256 without double
      quantization whose block scales span many binades (bnb-edge's wide_*_bs256), which the CPU backend
      dequantizes to other values altogether (nf4quant -d gives CUDA's: tests/cli/cases/deq_golden_reference).
      Those are listed in NOT_A_REFERENCE and said; anything else that differs fails.
  dequantize.py transformers WORK NF4QUANT FIXTURES
      For tiny-llama-nf4 and -fp4: transformers' model.dequantize() (default and dtype=float32) and
      save_pretrained into WORK, against nf4quant -d (and -d --dtype fp32) of the same checkpoint: the same
      tensors (names, dtypes, shapes, bits; for FP4 the CPU's +0.0 where CUDA and nf4quant give -0.0), and
      neither config.json has a quantization_config; then nf4quant -d's output loaded by transformers as a
      float model gives the logits of the 4-bit model's own forward (which dequantizes the same way).
"""
import json
import os
import subprocess
import sys

import torch
import bitsandbytes.functional as F
from safetensors.torch import load_file


def bits(t):
    return t.reshape(-1).view({1: torch.uint8, 2: torch.int16, 4: torch.int32}[t.element_size()])


def same(got, want, fp4, what):
    """got equals want bit for bit, but for FP4's zeros of the other sign (bitsandbytes' CPU backend against CUDA)."""
    if got.dtype != want.dtype or got.shape != want.shape:
        raise SystemExit(f"FAILED: {what}: {got.dtype} {list(got.shape)} against {want.dtype} {list(want.shape)}")
    diff = bits(got) != bits(want)
    n = int(diff.sum())
    if n == 0:
        return 0
    g, w = got.reshape(-1)[diff].float(), want.reshape(-1)[diff].float()
    if fp4 and bool(((g == 0) & (w == 0)).all()):
        return n
    raise SystemExit(f"FAILED: {what}: {n} elements differ (first: {g[0].item()!r} against {w[0].item()!r})")


NOT_A_REFERENCE = {f"wide_{q}_{d}_bs256" for q in ("nf4", "fp4") for d in ("bf16", "fp16", "fp32")}


def bnb_cpu(pairs):
    for qpath, dpath in zip(pairs[::2], pairs[1::2]):
        q, ref = load_file(qpath), load_file(dpath)
        zeros = {}
        for name, r in ref.items():
            parts = {k[len(name) + 8:]: v for k, v in q.items() if k.startswith(name + ".weight.")}
            st = F.QuantState.from_dict(parts, device=torch.device("cpu"))
            out = F.dequantize_4bit(q[name + ".weight"], st)
            if name in NOT_A_REFERENCE:
                d = int((bits(r) != bits(out)).sum())
                print(f"bitsandbytes CPU dequantize_4bit is not CUDA's on {name}: {d} of {r.numel()} elements differ")
                continue
            n = same(r, out, st.quant_type == "fp4", f"{os.path.basename(dpath)}: {name}: CPU against CUDA")
            if n:
                zeros[name] = n
        print(f"bitsandbytes CPU dequantize_4bit = CUDA on {len(ref)} cases of {os.path.basename(qpath)}"
              + (f", but for the sign of zeros in FP4: {sum(zeros.values())} elements of {len(zeros)} cases" if zeros else ""))


def transformers_ref(work, nf4quant, fixtures):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging
    logging.set_verbosity_error()
    ids = torch.tensor(json.load(open(os.path.join(fixtures, "models", "logits_input.json")))["input_ids"])
    for qt in ("nf4", "fp4"):
        src = os.path.join(fixtures, "models", f"tiny-llama-{qt}")
        for dtype, opt in ((None, []), (torch.float32, ["--dtype", "fp32"])):
            tag = f"{qt}-{'fp32' if dtype else 'default'}"
            ours = os.path.join(work, f"ours-{tag}")
            subprocess.run([nf4quant, "-q", "-d", *opt, src, "-o", ours], check=True)
            with torch.no_grad():
                logits_4bit = AutoModelForCausalLM.from_pretrained(src, device_map="cpu")(ids).logits
            # a model of its own: bitsandbytes' CPU forward repacks the codes in place for its kernel
            # (packing_format_for_cpu), and dequantize() after it reads the repacked bytes as codes
            model = AutoModelForCausalLM.from_pretrained(src, device_map="cpu")
            model.dequantize(dtype=dtype) if dtype else model.dequantize()
            theirs = os.path.join(work, f"transformers-{tag}")
            model.save_pretrained(theirs)
            a, b = load_file(os.path.join(ours, "model.safetensors")), load_file(os.path.join(theirs, "model.safetensors"))
            if sorted(a) != sorted(b):
                raise SystemExit(f"FAILED: {tag}: tensor names differ: {sorted(set(a) ^ set(b))}")
            zeros = sum(same(a[k], b[k], qt == "fp4", f"{tag}: {k}") for k in a)
            for d in (ours, theirs):
                if "quantization_config" in json.load(open(os.path.join(d, "config.json"))):
                    raise SystemExit(f"FAILED: {tag}: {d}/config.json keeps its quantization_config")
            # the float model nf4quant wrote loads as the dequantized model does and computes what it computes;
            # the 4-bit model's CPU forward (bitsandbytes' own CPU kernel) is only near it: the GPU session
            # compares with the CUDA forward, which dequantizes first
            if dtype is not None:  # float32 Linears among bf16 layers: transformers' own model does not run
                print(f"{tag}: nf4quant -d --dtype fp32 = transformers dequantize(dtype=torch.float32) + "
                      f"save_pretrained, {len(a)} tensors" + (f" (FP4: {zeros} signed zeros as above)" if zeros else ""))
                continue
            with torch.no_grad():
                logits = AutoModelForCausalLM.from_pretrained(ours, device_map="cpu")(ids).logits
                want = model(ids).logits
            if not torch.equal(logits, want):
                raise SystemExit(f"FAILED: {tag}: logits of nf4quant -d's model differ from transformers' dequantized "
                                 f"model's by {(logits.float() - want.float()).abs().max().item()}")
            print(f"{tag}: nf4quant -d = transformers dequantize() + save_pretrained, {len(a)} tensors"
                  + (f" (FP4: {zeros} zeros of the other sign, where bitsandbytes' CPU backend differs from CUDA)" if zeros else "")
                  + f"; the same logits (the 4-bit model's CPU forward within "
                  f"{(logits.float() - logits_4bit.float()).abs().max().item():g} of them)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "bnb-cpu":
        bnb_cpu(sys.argv[2:])
    else:
        transformers_ref(*sys.argv[2:5])
