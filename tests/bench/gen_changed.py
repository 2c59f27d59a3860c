"""A copy of a bf16 model directory whose every linear weight (`*_proj.weight`) has a random full-rank
change added (normal, standard deviation 1e-3), for loraextract's benchmark:

    python3 tests/bench/gen_changed.py MODEL_DIR OUT_DIR

One tensor at a time (np.memmap of the copy); the same bytes on every run (seeded by the tensor's name).
"""
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
for name in os.listdir(src):
    if os.path.isfile(f"{src}/{name}"):
        shutil.copyfile(f"{src}/{name}", f"{out}/{name}")
path = f"{out}/model.safetensors"
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
mm = np.memmap(path, dtype=np.uint8, mode="r+")
for name, t in header.items():
    if name == "__metadata__" or not name.endswith("_proj.weight") or t["dtype"] != "BF16":
        continue
    b, e = t["data_offsets"]
    raw = mm[8 + n + b:8 + n + e].view(np.uint16)
    x = (raw.astype(np.uint32) << 16).view(np.float32)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = x + rng.normal(0, 1e-3, x.shape).astype(np.float32)
    u = x.view(np.uint32)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even
    raw[:] = u.astype(np.uint16)
mm.flush()
