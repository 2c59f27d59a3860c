"""Does transformers load nf4quant's output as a pre-quantized 4-bit model, with the logits of the real thing?

Run on the GPU machine (torch, transformers 5.17, bitsandbytes on PYTHONPATH):
    python3 tests/gpu/interop_logits.py NF4_DIR FP4_DIR EXCLUDED_DIR

NF4_DIR and FP4_DIR are nf4quant's outputs for fixtures/models/tiny-llama (defaults, and --quant-type fp4).
For each: from_pretrained with no quantization_config argument (the checkpoint's own config says 4-bit),
every Linear of the decoder is a bitsandbytes Linear4bit whose packed weight is exactly the bytes of our
file (it was loaded, not quantized at load), and the logits for fixtures/models/logits_input.json equal
fixtures/models/logits.safetensors[nf4|fp4] (what transformers + bitsandbytes computed) bit for bit.
EXCLUDED_DIR is nf4quant --exclude 'model.layers.0.*' of the same model: it must load with exactly the 7
Linear modules of layer 1 as Linear4bit (the llm_int8_skip_modules nf4quant wrote keep the others out).
Exit status 1 on any difference.
"""
import json
import sys

import torch
import bitsandbytes as bnb
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

ref = load_file("fixtures/models/logits.safetensors")
ids = torch.tensor(json.load(open("fixtures/models/logits_input.json"))["input_ids"], device="cuda")
failed = False
for qt, path in (("nf4", sys.argv[1]), ("fp4", sys.argv[2])):
    ours = load_file(f"{path}/model.safetensors")
    m = AutoModelForCausalLM.from_pretrained(path, device_map="cuda")
    n4 = 0
    for name, mod in m.named_modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            n4 += 1
            w = mod.weight
            if not torch.equal(w.data.cpu().reshape(-1), ours[name + ".weight"].reshape(-1)):
                print(f"{qt}: {name}: loaded packed weight differs from the file")
                failed = True
            if w.quant_state.quant_type != qt:
                print(f"{qt}: {name}: quant_type {w.quant_state.quant_type}")
                failed = True
    with torch.no_grad():
        logits = m(ids).logits.float().cpu()
    for key in (qt, qt + "_reloaded"):
        d = (logits - ref[key]).abs().max().item()
        same = torch.equal(logits, ref[key])
        print(f"{qt}: {n4} Linear4bit modules; logits vs reference '{key}': {'identical' if same else 'DIFFER'} "
              f"(max abs diff {d})")
        failed |= not same
    if n4 != 14:
        print(f"{qt}: expected 14 Linear4bit modules, found {n4}")
        failed = True
m = AutoModelForCausalLM.from_pretrained(sys.argv[3], device_map="cuda")
q4 = sorted(n for n, mod in m.named_modules() if isinstance(mod, bnb.nn.Linear4bit))
ok = len(q4) == 7 and all(n.startswith("model.layers.1.") for n in q4)
with torch.no_grad():
    ok &= bool(torch.isfinite(m(ids).logits).all())
print(f"excluded layer 0: {len(q4)} Linear4bit modules, all in layer 1: {ok}")
failed |= not ok
sys.exit(1 if failed else 0)
