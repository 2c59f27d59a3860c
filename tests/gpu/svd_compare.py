"""svd_compare.py GPU_ADAPTER CPU_ADAPTER: two combined adapters of an svd type (loramerge --combine with
--device cuda and --device cpu) agree: the same tensor names and shapes, the singular values (the norms of
B's columns) within float32 rounding (1e-5 of the largest), and B @ A within 1e-5 relative (Frobenius).
Prints the worst figures; exit status 1 when a check fails. Needs numpy and safetensors."""
import sys

import numpy as np
from safetensors.numpy import load_file


def main():
    g = load_file(sys.argv[1] + "/adapter_model.safetensors")
    c = load_file(sys.argv[2] + "/adapter_model.safetensors")
    problems = []
    if sorted(g) != sorted(c):
        problems.append(f"tensor names differ: {sorted(set(g) ^ set(c))[:4]}")
    worst_ba = worst_s = 0.0
    same = 0
    keys = sorted(k for k in c if k.endswith("lora_A.weight") and k in g)
    for ka in keys:
        kb = ka.replace("lora_A", "lora_B")
        if g[ka].shape != c[ka].shape or g[kb].shape != c[kb].shape:
            problems.append(f"{ka}: shapes {g[ka].shape} {g[kb].shape}, CPU {c[ka].shape} {c[kb].shape}")
            continue
        same += bool(np.array_equal(g[ka], c[ka]) and np.array_equal(g[kb], c[kb]))
        dg = g[kb].astype(np.float64) @ g[ka].astype(np.float64)
        dc = c[kb].astype(np.float64) @ c[ka].astype(np.float64)
        rel = float(np.linalg.norm(dg - dc) / np.linalg.norm(dc))
        sg = np.linalg.norm(g[kb].astype(np.float64), axis=0)
        sc = np.linalg.norm(c[kb].astype(np.float64), axis=0)
        ds = float(np.abs(sg - sc).max() / sc.max())
        worst_ba, worst_s = max(worst_ba, rel), max(worst_s, ds)
        if rel > 1e-5:
            problems.append(f"{ka}: B @ A {rel:.3g} relative from the CPU's")
        if ds > 1e-5:
            problems.append(f"{ka}: singular values {ds:.3g} (of the largest) from the CPU's")
    print(f"{len(keys)} modules: B @ A within {worst_ba:.2g}, singular values within {worst_s:.2g} of the largest"
          f"; {same} modules bit-identical")
    for p in problems[:10]:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
