#!/usr/bin/env python3
"""Writes the inputs of the command-line cases about results that are not finite (lm_bad_overflow,
lm_bad_dora_zero_norm, nq_bad_huge_weights), byte for byte the same on every run (fixed values, standard
library only), under tests/cli/data/nonfinite/:

- overflow_adapter/: a LoRA (r 1, lora_alpha 2: scaling 2) on layers.0.self_attn.q_proj of
  fixtures/models/tiny-llama whose every delta is 1.8e19 * 9.4446e18 * 2 = 3.40006e38: finite in float32,
  +inf once rounded to the base's bfloat16.
- zero_row.safetensors: a base of one bfloat16 weight 'model.layers.0.self_attn.q_proj.weight' [4, 8]
  whose row 2 is zero; dora_zero_row/: a DoRA adapter (r 1) on it whose lora_B row 2 is zero too, so that
  row 2 of W + D has norm 0 and magnitude / norm * (W + D) is NaN.
- huge.safetensors: one float32 weight 'w' [64, 64] of +-3e38, near float32's maximum: each block's
  scale is finite, their mean (the double-quantization offset) overflows.

Run from the top of the tree: python3 tests/cli/data/make_nonfinite.py
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nonfinite")
PREFIX = "base_model.model.model.layers.0.self_attn.q_proj"


def safetensors(path, tensors):
    """tensors: name -> (dtype, shape, bytes); name order, header padded to 8 bytes with spaces."""
    header = {"__metadata__": {"format": "pt"}}
    data = b""
    for name in sorted(tensors):
        dtype, shape, buf = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(buf)]}
        data += buf
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def bf16(vals):
    return b"".join(struct.pack("<f", v)[2:] for v in vals)  # exact: the values are bfloat16 numbers


def adapter(d, tensors, **config):
    os.makedirs(d, exist_ok=True)
    cfg = {"peft_type": "LORA", "r": 1, "lora_alpha": 2, "target_modules": ["q_proj"], "lora_dropout": 0.0,
           "bias": "none", "fan_in_fan_out": False, "use_rslora": False, "use_dora": False}
    cfg.update(config)
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    safetensors(os.path.join(d, "adapter_model.safetensors"), tensors)


# tiny-llama's q_proj is [128, 128]
adapter(os.path.join(OUT, "overflow_adapter"),
        {PREFIX + ".lora_A.weight": ("F32", [1, 128], f32([1.8e19] * 128)),
         PREFIX + ".lora_B.weight": ("F32", [128, 1], f32([9.4446e18] * 128))})

w = [((i * 7) % 11 - 5) / 8.0 or 0.25 for i in range(32)]
for j in range(8):
    w[2 * 8 + j] = 0.0
safetensors(os.path.join(OUT, "zero_row.safetensors"),
            {"model.layers.0.self_attn.q_proj.weight": ("BF16", [4, 8], bf16(w))})
adapter(os.path.join(OUT, "dora_zero_row"),
        {PREFIX + ".lora_A.weight": ("F32", [1, 8], f32([0.5, -0.25, 0.125, 1.0, -1.0, 0.75, 0.5, -0.5])),
         PREFIX + ".lora_B.weight": ("F32", [4, 1], f32([0.5, 0.25, 0.0, -0.5])),
         PREFIX + ".lora_magnitude_vector": ("F32", [4], f32([1.0, 2.0, 1.5, 0.5]))},
        use_dora=True)

safetensors(os.path.join(OUT, "huge.safetensors"),
            {"w": ("F32", [64, 64], f32([3e38 if i % 3 else -3e38 for i in range(64 * 64)]))})
