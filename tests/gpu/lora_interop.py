"""transformers loads what loramerge writes, and the model computes what PEFT's merged model computes.

    python3 tests/gpu/lora_interop.py LORAMERGE WORK

For each adapter of fixtures/peft/adapters (and the 4-bit merges): loramerge's output directory is loaded
with AutoModelForCausalLM.from_pretrained (bf16 on the GPU), and its logits on fixed tokens are compared
with those of PEFT's merge_and_unload() of the same base and adapter. The weights agree to within one unit
in the last place (the golden tests count how many differ), so the logits are compared with a tolerance
for that; a wrong merge moves them far more. The requantized 4-bit output needs bitsandbytes to load and
is skipped (saying so) when the package is not there.
"""
import os
import subprocess
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

lm, work = sys.argv[1:3]
os.makedirs(work, exist_ok=True)
top = os.path.dirname(os.path.abspath(__file__)) + "/../.."
base = f"{top}/fixtures/models/tiny-llama"
ids = torch.tensor([[1, 17, 200, 33, 5, 300, 64, 2, 99, 150]], device="cuda")
failed = 0


def logits(m):
    with torch.no_grad():
        return m(ids).logits.float()


for name in ("plain_r8", "rslora_r16", "patterns", "dora_r8", "embed_mts", "bf16_stored"):
    adapter = f"{top}/fixtures/peft/adapters/{name}"
    out = f"{work}/{name}"
    subprocess.run([lm, "-q", "-f", base, adapter, "-o", out], check=True)
    ours = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16, device_map="cuda")
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16,
                                                                          device_map="cuda"), adapter).merge_and_unload()
    a, b = logits(ours), logits(peft)
    diff = (a - b).abs().max().item()
    scale = b.abs().max().item()
    ok = diff <= 0.02 * scale
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name}: transformers loaded {out}; logits max |diff| {diff:.3g} "
          f"(max |logit| {scale:.3g}); identical: {torch.equal(a, b)}")
try:
    import bitsandbytes  # noqa: F401
    have_bnb = True
except ImportError:
    have_bnb = False
if have_bnb:
    out = f"{work}/requant"
    subprocess.run([lm, "-q", "-f", "--requantize", base, f"{top}/fixtures/peft/adapters/plain_r8", "-o", out],
                   check=True)
    m = AutoModelForCausalLM.from_pretrained(out, device_map="cuda")
    print("ok   requantized: transformers loaded", out, "logits finite:", bool(torch.isfinite(logits(m)).all()))
else:
    print("skip requantized output: bitsandbytes is not installed here (its tensors are compared byte for byte "
          "with PEFT's own 4-bit merge by the command-line case lm_requantize)")
sys.exit(1 if failed else 0)
