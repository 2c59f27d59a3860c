"""The benchmark adapter of DESIGN.md: LoRA of rank 64 on every linear layer of tests/bench/gen_model.c's
model (Llama-7B widths), float32 as PEFT saves adapters, alpha 128.

    python3 tests/bench/gen_adapter.py DIR [LAYERS [HIDDEN INTERMEDIATE [RANK [dora]]]]

HIDDEN and INTERMEDIATE (default 4096 and 11008) fit it to a gen_model of other widths, RANK (default 64)
sets r (alpha is 2 r), and "dora" adds a magnitude vector per module (a DoRA adapter; tests/same_bytes.sh).
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

d = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
h, inter = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (4096, 11008)
r = int(sys.argv[5]) if len(sys.argv) > 5 else 64
dora = len(sys.argv) > 6 and sys.argv[6] == "dora"
rng = np.random.default_rng(64)
shapes = {}
for i in range(layers):
    for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
        shapes[f"model.layers.{i}.self_attn.{n}"] = (h, h)
    shapes[f"model.layers.{i}.mlp.gate_proj"] = (inter, h)
    shapes[f"model.layers.{i}.mlp.up_proj"] = (inter, h)
    shapes[f"model.layers.{i}.mlp.down_proj"] = (h, inter)
tensors = {}
for m, (out, inp) in shapes.items():
    tensors[f"base_model.model.{m}.lora_A.weight"] = (rng.standard_normal((r, inp), dtype=np.float32) * 0.01)
    tensors[f"base_model.model.{m}.lora_B.weight"] = (rng.standard_normal((out, r), dtype=np.float32) * 0.01)
    if dora:
        # about the norm of a row of gen_model's weights (0.02 per element)
        tensors[f"base_model.model.{m}.lora_magnitude_vector"] = (
            0.02 * np.sqrt(inp) * (1 + 0.1 * rng.standard_normal(out, dtype=np.float32))).astype(np.float32)
os.makedirs(d, exist_ok=True)
save_file(tensors, f"{d}/adapter_model.safetensors")
with open(f"{d}/adapter_config.json", "w") as f:
    json.dump({"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "target_modules": ["q_proj", "k_proj", "v_proj",
               "o_proj", "gate_proj", "up_proj", "down_proj"], "use_rslora": False, "use_dora": dora,
               "lora_bias": False, "bias": "none", "init_lora_weights": True, "fan_in_fan_out": False,
               "modules_to_save": None, "task_type": "CAUSAL_LM"}, f, indent=2)
print(f"gen_adapter: {d}: {len(shapes)} modules of rank {r}{' (DoRA)' if dora else ''}")
