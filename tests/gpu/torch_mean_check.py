"""Checks libquant's lq_torch_mean_f32 against torch.mean() of float32 CUDA tensors on this GPU.

bitsandbytes' double quantization stores offset = absmax.mean(), a float32 sum taken in the order of ATen's
CUDA reduction (Reduce.cuh) times float32(1/n). libquant/torch_mean.c replays that order on the CPU. This
script draws arrays (sizes 1 .. 2^24, absmax-like values, wide exponent ranges, signed data, constants,
subnormals), takes torch.mean on the GPU, writes the arrays to a file, runs tests/gpu/torch_mean_driver
(built on the CPU machine) on it with this GPU's multiprocessor count and threads per multiprocessor, and
compares bit patterns. The driver also prints older Reduce.cuh variants (warp shuffle offsets ascending;
vectorized loads only for n > 128), so a mismatch says which variant this torch runs, if any.

Build the driver (CPU machine, repository root):
  gcc -std=c11 -O2 -DLQ_BUILDING -Ilibquant tests/gpu/torch_mean_driver.c libquant/torch_mean.c \
      -o torch_mean_driver
Run (GPU machine, torch with CUDA, numpy):
  python3 tests/gpu/torch_mean_check.py ./torch_mean_driver
Prints one summary line and the first few mismatches; exit status 0 when every array matches, 1 otherwise,
2 when the check itself could not run.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

F32 = np.float32
VARIANTS = ["current", "shfl_ascending", "vec_above_128", "shfl_ascending+vec_above_128"]


def draw(rng, kind, n):
    if kind == "absmax":  # block absmax of |N(0, 0.02)| weights: positive, narrow range
        return (np.abs(rng.standard_normal(n, dtype=F32)) * F32(0.02) + F32(0.03)).astype(F32)
    if kind == "halfnormal":
        return (np.abs(rng.standard_normal(n, dtype=F32)) * F32(0.02)).astype(F32)
    if kind == "wide":  # positive, exponents over 2^-60 .. 2^60: the summation order shows
        return (np.exp2(rng.uniform(-60, 60, n)) * rng.uniform(1, 2, n)).astype(F32)
    if kind == "signed":
        return (np.exp2(rng.uniform(-20, 20, n)) * rng.choice([-1.0, 1.0], n)).astype(F32)
    if kind == "const":
        return np.full(n, F32(rng.choice([0.1, 1 / 3, 0.02, 7.0e-3])), dtype=F32)
    if kind == "subnormal":  # gradual underflow must behave the same on both sides
        return (rng.uniform(0, 1, n) * 2.0 ** -126).astype(F32)
    raise ValueError(kind)


def cases(rng):
    small = (list(range(1, 11)) + [31, 32, 33, 127, 128, 129, 511, 512, 513, 1000, 4095, 4096, 4097,
             65535, 65536, 65537, 130560, 130561])
    for n in small:
        for kind in ("absmax", "halfnormal", "wide", "signed", "const"):
            yield f"{kind}", n, draw(rng, kind, n)
    for n in (3, 64, 129, 4097, 65537):
        yield "subnormal", n, draw(rng, "subnormal", n)
    yield "negzero", 5, np.full(5, F32(-0.0), dtype=F32)
    # real layer shapes: 4096x4096 / 64, 11008x4096 / 64, 8192x28672 / 64, 8192x8192 / 32
    for n in (4096 * 4096 // 64, 11008 * 4096 // 64, 8192 * 28672 // 64, 8192 * 8192 // 32):
        for kind in ("absmax", "absmax", "absmax", "wide"):
            yield kind, n, draw(rng, kind, n)
    for n in [int(v) for v in rng.integers(1 << 20, 1 << 24, 3)] + [1 << 24]:
        yield "absmax", n, draw(rng, "absmax", n)
    yield "wide", 1 << 24, draw(rng, "wide", 1 << 24)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("driver", help="path of the torch_mean_driver binary built on the CPU machine")
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--show", type=int, default=5, help="mismatches to print")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_mean_check: no CUDA device", file=sys.stderr)
        return 2
    props = torch.cuda.get_device_properties(0)
    sm = props.multi_processor_count
    thr = getattr(props, "max_threads_per_multi_processor", None)
    note = ""
    if thr is None:
        thr = 2048
        note = " (max_threads_per_multi_processor not reported; assumed 2048)"

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    names, sizes, got_torch = [], [], []
    fd, path = tempfile.mkstemp(prefix="torch_mean_", suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"LQTMEAN1" + struct.pack("<Q", 0))
            count = 0
            for name, n, a in cases(rng):
                t = torch.from_numpy(a).to("cuda")
                assert t.is_contiguous() and t.data_ptr() % 16 == 0
                got_torch.append(t.mean())
                del t
                names.append(name)
                sizes.append(n)
                f.write(struct.pack("<q", n))
                f.write(a.tobytes())
                count += 1
            f.seek(8)
            f.write(struct.pack("<Q", count))
        torch_bits = torch.stack(got_torch).cpu().numpy().astype(F32).view(np.uint32)
        run = subprocess.run([args.driver, path, str(sm), str(thr)], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if run.returncode != 0:
        print(f"torch_mean_check: driver failed ({run.returncode}): {run.stderr.strip()}", file=sys.stderr)
        return 2
    lines = run.stdout.split("\n")[:count]
    if len(lines) != count:
        print("torch_mean_check: driver printed too few lines", file=sys.stderr)
        return 2

    ours = np.array([[int(h, 16) for h in ln.split()] for ln in lines], dtype=np.uint64)
    ref = torch_bits.astype(np.uint64)
    variant_ok = [(ours[:, k] == ref).sum() for k in range(4)]
    bad = np.nonzero(ours[:, 0] != ref)[0]
    print(f"torch_mean_check: {count - len(bad)}/{count} match, {len(bad)} mismatches "
          f"(torch {torch.__version__}, {props.name}, {sm} SMs, {thr} threads/SM{note}; "
          f"variants matching: " + ", ".join(f"{v} {k}" for v, k in zip(VARIANTS, variant_ok)) +
          f"; {time.time() - t0:.1f} s)")
    for i in bad[: args.show]:
        print(f"  mismatch {names[i]} n={sizes[i]}: torch {int(ref[i]):08x}, ours {int(ours[i, 0]):08x}, "
              f"variants " + " ".join(f"{int(v):08x}" for v in ours[i, 1:]))
    return 1 if len(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
