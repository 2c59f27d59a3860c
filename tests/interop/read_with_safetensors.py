"""Reads safetensors files with the official Python package (safetensors 0.8) and checks what it sees.

    python3 read_with_safetensors.py FILE...

For every file: the package's own parser accepts the header (safe_open), the metadata holds
{"format": "pt"}, and every tensor's bytes (safetensors.deserialize, which works for every dtype,
bfloat16 included) have the size its dtype and shape say. quant_state tensors must hold JSON that
json.loads accepts. Prints one line per file; exit status 1 on the first problem.
"""
import json
import sys

import safetensors

BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
        "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64}


def check(path):
    with safetensors.safe_open(path, framework="numpy") as f:
        meta = f.metadata()
        keys = list(f.keys())
    if meta != {"format": "pt"}:
        raise SystemExit(f"{path}: metadata {meta!r}, expected {{'format': 'pt'}}")
    with open(path, "rb") as fh:
        data = fh.read()
    tensors = safetensors.deserialize(data)
    if sorted(name for name, _ in tensors) != sorted(keys):
        raise SystemExit(f"{path}: deserialize and safe_open disagree on the tensor names")
    for name, t in tensors:
        n = 1
        for d in t["shape"]:
            n *= d
        want = n * BITS[t["dtype"]] // 8
        if len(t["data"]) != want:
            raise SystemExit(f"{path}: {name}: {len(t['data'])} bytes, expected {want}")
        if ".quant_state.bitsandbytes__" in name:
            state = json.loads(bytes(t["data"]))
            if state["quant_type"] not in ("nf4", "fp4"):
                raise SystemExit(f"{path}: {name}: quant_state {state!r}")
    print(f"ok   {path}: {len(keys)} tensors")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        check(p)
