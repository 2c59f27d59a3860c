"""Checks libquant's replay of torch.linalg.norm(V, dim=1) (libquant/torch_norm.h) against torch on this GPU.

PEFT's DoRA merge divides the magnitude vector by the norm of W + D taken with torch.linalg.norm(dim=1):
of the rows of a Linear weight [out, in] (an inner reduction), or of the columns of an embedding or a GPT-2
Conv1D weight (PEFT norms a transposed view: an outer reduction). The sums are float32 in the order of
ATen's CUDA reduction (Reduce.cuh), which libquant/torch_norm.c replays. This script draws matrices of
many shapes (odd and aligned widths, the vectorization threshold of 128, shapes whose rows are split over
warps and blocks, real layer and vocabulary sizes; weight-like, wide-range, signed and constant values),
takes the norms on the GPU, runs tests/gpu/torch_norm_driver (built on the CPU machine) on the same
matrices with this GPU's multiprocessor count and threads per multiprocessor, and compares bit patterns.
The driver also replays variants (warp shuffle offsets ascending, float4 loads only above 128 elements,
no fused multiply-add), so that a mismatch says which variant this torch runs, if any.

Build the driver (CPU machine, repository root): make build/torch_norm_driver
Run (GPU machine, torch with CUDA, numpy):
  python3 tests/gpu/torch_norm_check.py build/torch_norm_driver
Prints one summary line and the first few mismatches; exit status 0 when every norm matches, 1 otherwise,
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
VARIANTS = ["current", "shfl_ascending", "vec_above_128", "shfl_asc+vec_above", "no_fma", "no_fma+shfl_asc",
            "no_fma+vec_above", "no_fma+shfl_asc+vec_above"]


def draw(rng, kind, shape):
    n = shape[0] * shape[1]
    if kind == "weight":  # W + D of a trained layer
        v = rng.standard_normal(n, dtype=F32) * F32(0.02)
    elif kind == "wide":
        v = np.exp2(rng.uniform(-30, 30, n)) * rng.choice([-1.0, 1.0], n)
    elif kind == "const":
        v = np.full(n, rng.choice([0.1, 1 / 3, 7.0e-3]))
    else:
        raise ValueError(kind)
    return v.astype(F32).reshape(shape)


def cases(rng):
    # rows of a Linear: (out, in), the norms of the rows
    for c in (1, 2, 3, 4, 5, 31, 32, 33, 64, 100, 127, 128, 129, 130, 131, 255, 256, 257, 320, 384, 511, 512,
              513, 1000, 2048, 4095, 4096, 4097, 11008, 14336, 28672):
        for r in (1, 2, 3, 7, 16, 17, 100, 512):
            if r * c <= 4 << 20:
                yield "inner", "weight", (r, c)
        yield "inner", "wide", (33, c)
    for r, c in ((4096, 4096), (1024, 11008), (2, 140000), (5, 300001), (1, 1 << 20), (3, 8388608)):
        yield "inner", "weight", (r, c)
    # columns of an embedding [num, dim] or a Conv1D [in, out]: (rows reduced, cols = outputs)
    for r in (1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 100, 255, 256, 257, 384, 1000, 4097, 30522):
        for c in (1, 2, 3, 4, 6, 8, 33, 128, 384, 768):
            if r * c <= 8 << 20:
                yield "outer", "weight", (r, c)
        yield "outer", "wide", (r, 12)
    for r, c in ((32000, 1024), (50257, 768), (128256, 256), (262144, 7), (1 << 20, 4)):
        yield "outer", "weight", (r, c)
    yield "inner", "const", (64, 4096)
    yield "outer", "const", (4096, 64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("driver", help="path of the torch_norm_driver binary built on the CPU machine")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--show", type=int, default=8, help="mismatches to print")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_norm_check: no CUDA device", file=sys.stderr)
        return 2
    props = torch.cuda.get_device_properties(0)
    sm = props.multi_processor_count
    thr = getattr(props, "max_threads_per_multi_processor", None) or 2048
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    recs, ref = [], []
    fd, path = tempfile.mkstemp(prefix="torch_norm_", suffix=".bin")
    outp = path + ".out"
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"LQTNORM1" + struct.pack("<Q", 0))
            for layout, kind, shape in cases(rng):
                a = draw(rng, kind, shape)
                v = torch.from_numpy(a).to("cuda")
                assert v.is_contiguous() and v.data_ptr() % 16 == 0
                n = torch.linalg.norm(v if layout == "inner" else v.T, dim=1)
                ref.append(n.cpu().numpy().view(np.uint32).copy())
                recs.append((layout, kind, shape))
                f.write(struct.pack("<qqq", shape[0], shape[1], 1 if layout == "inner" else 0))
                f.write(a.tobytes())
                del v, n
            f.seek(8)
            f.write(struct.pack("<Q", len(recs)))
        run = subprocess.run([args.driver, path, outp, str(sm), str(thr)], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"torch_norm_check: driver failed ({run.returncode}): {run.stderr.strip()}", file=sys.stderr)
            return 2
        ours = np.fromfile(outp, dtype=np.uint32)
    finally:
        os.unlink(path)
        if os.path.exists(outp):
            os.unlink(outp)
    pos, bad, shown = 0, 0, 0
    variant_ok = [0] * 8
    total = 0
    for (layout, kind, shape), r in zip(recs, ref):
        k = len(r)
        got = [ours[pos + v * k: pos + (v + 1) * k] for v in range(8)]
        pos += 8 * k
        total += k
        for v in range(8):
            variant_ok[v] += int((got[v] == r).sum())
        miss = np.nonzero(got[0] != r)[0]
        if len(miss):
            bad += 1
            if shown < args.show:
                shown += 1
                i = miss[0]
                print(f"  mismatch {layout} {kind} {shape}: {len(miss)}/{k} norms differ, first [{i}] torch "
                      f"{r[i]:08x} ours {got[0][i]:08x}; variants matching: " +
                      ", ".join(VARIANTS[v] for v in range(8) if (got[v] == r).all()))
    print(f"torch_norm_check: {len(recs) - bad}/{len(recs)} matrices match, {bad} differ (torch {torch.__version__}, "
          f"{props.name}, {sm} SMs, {thr} threads/SM; norms matching per variant of {total}: " +
          ", ".join(f"{VARIANTS[v]} {variant_ok[v]}" for v in range(8)) + f"; {time.time() - t0:.1f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
