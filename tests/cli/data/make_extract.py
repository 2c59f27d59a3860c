#!/usr/bin/env python3
"""Writes the inputs of loraextract's command-line cases (lx_*) under tests/cli/data/extract/, byte for
byte the same on every run (fixed values, standard library only):

- base.safetensors: 'model.layers.0.mlp.up_proj.weight' bf16 [8, 16] and 'model.norm.weight' bf16 [16];
- ok.safetensors: both changed (the weight by a rank-2 change, the norm by +1/8);
- same.safetensors: a copy of the base's values;
- shape.safetensors: the weight [16, 8];
- extra.safetensors: the base's two and 'model.layers.0.mlp.down_proj.weight' [16, 8];
- missing.safetensors: the weight alone;
- nan.safetensors: the weight with a NaN at [2, 3].

Run from the top of the tree: python3 tests/cli/data/make_extract.py
"""
import json
import math
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "extract")
W = "model.layers.0.mlp.up_proj.weight"
N = "model.norm.weight"


def safetensors(path, tensors):
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


def bf16(vals):
    return b"".join(struct.pack("<f", v)[2:] for v in vals)


def to_bf16(v):
    return struct.unpack("<f", b"\0\0" + struct.pack("<f", v)[2:])[0]


base_w = [to_bf16(((i * 37) % 23 - 11) / 16) for i in range(8 * 16)]
base_n = [1.0] * 16
change = [to_bf16(base_w[i] + ((i // 16) % 3 - 1) * ((i % 16) / 8) + (i // 16 == 5) * 0.25) for i in range(128)]
os.makedirs(OUT, exist_ok=True)
safetensors(f"{OUT}/base.safetensors", {W: ("BF16", [8, 16], bf16(base_w)), N: ("BF16", [16], bf16(base_n))})
safetensors(f"{OUT}/ok.safetensors", {W: ("BF16", [8, 16], bf16(change)), N: ("BF16", [16], bf16([1.125] * 16))})
safetensors(f"{OUT}/same.safetensors", {W: ("BF16", [8, 16], bf16(base_w)), N: ("BF16", [16], bf16(base_n))})
safetensors(f"{OUT}/shape.safetensors", {W: ("BF16", [16, 8], bf16(base_w)), N: ("BF16", [16], bf16(base_n))})
safetensors(f"{OUT}/extra.safetensors", {W: ("BF16", [8, 16], bf16(base_w)), N: ("BF16", [16], bf16(base_n)),
                                         "model.layers.0.mlp.down_proj.weight": ("BF16", [16, 8], bf16(base_w))})
safetensors(f"{OUT}/missing.safetensors", {W: ("BF16", [8, 16], bf16(base_w))})
nan_w = list(change)
nan_w[2 * 16 + 3] = math.nan
safetensors(f"{OUT}/nan.safetensors", {W: ("BF16", [8, 16], bf16(nan_w)), N: ("BF16", [16], bf16(base_n))})
