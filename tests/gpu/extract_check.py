"""extract_check.py BIN WORK: loraextract's criterion of issue 16 on a GPU (cuSOLVER) and on the CPU (LAPACK).

The full fine-tune of tiny-llama of tests/extract (finetune.py: 300 AdamW steps on the CPU, made in WORK/ft
unless there) is extracted at the golden check's ranks (tests/extract/check.py's golden: 1, 4, 16, full,
--energy 0.9 --max-rank 24, --split sqrt) with LQ_DEVICE=$XG_DEVICE (cuda by default) and with
LQ_DEVICE=cpu. For each device, every module's error ||dW - B A|| / ||dW||, computed here in float64 from
the files, is within 1e-4 relative of the Eckart-Young optimum of its rank (numpy's SVD), the ranks are
the ones asked for and the reported figures are the recomputed ones (golden's checks). Then the GPU's
adapters against the CPU's: per module the error within 1e-4 relative of the CPU's, and the products
B A (the worst relative difference, printed: singular vectors of close singular values may rotate, so
the products are not held to the factors' rounding). Needs torch, transformers (the fine-tune), numpy
and safetensors; not PEFT. Exit status 1 when a check fails.
"""
import os
import sys

import numpy as np

top = os.path.normpath(os.path.dirname(os.path.abspath(__file__)) + "/../..")
sys.path.insert(0, f"{top}/tests/extract")
import check  # noqa: E402
import finetune  # noqa: E402


def products(path):
    """{module: B A (float64, the stored weight's layout)} of an adapter directory."""
    t = check.f64(f"{path}/adapter_model.safetensors")
    out = {}
    for k, a in t.items():
        for sa, sb, emb in ((".lora_A.weight", ".lora_B.weight", False),
                            (".lora_embedding_A", ".lora_embedding_B", True)):
            if k.endswith(sa):
                b = t[k[:-len(sa)] + sb]
                p = b @ a
                out[k[:-len(sa)].replace("base_model.model.", "", 1)] = p.T if emb else p
    return out


def main():
    binary = os.path.abspath(sys.argv[1])
    work = os.path.abspath(sys.argv[2])
    gpu = os.environ.get("XG_DEVICE", "cuda")
    ft = f"{work}/ft"
    if not os.path.exists(f"{ft}/model.safetensors"):
        loss = finetune.finetune(ft, 300)
        print(f"fine-tune: 300 steps, final loss {loss:.4f}")
    runs = []
    for dev in (gpu, "cpu"):
        os.environ["LQ_DEVICE"] = dev
        d = f"{work}/runs-{len(runs)}-{dev}"
        os.makedirs(d, exist_ok=True)
        print(f"--- LQ_DEVICE={dev}")
        runs.append(check.golden(binary, d, ft))
    base = check.f64(f"{check.MODELS}/tiny-llama/model.safetensors")
    tuned = check.f64(f"{ft}/model.safetensors")
    print(f"--- {gpu} against cpu")
    for label in runs[1]:
        pg, pc = products(runs[0][label]), products(runs[1][label])
        check.check(sorted(pg) == sorted(pc), f"{label}: the modules differ: {sorted(set(pg) ^ set(pc))[:4]}")
        worst_err = worst_prod = 0.0
        for name in sorted(set(pg) & set(pc)):
            d = tuned[name + ".weight"] - base[name + ".weight"]
            nrm = np.linalg.norm(d)
            eg, ec = np.linalg.norm(d - pg[name]) / nrm, np.linalg.norm(d - pc[name]) / nrm
            rel = abs(eg - ec) / ec if ec > 1e-6 else abs(eg - ec)
            check.check(rel <= 1e-4, f"{label}: {name}: error {eg:.9g} on {gpu}, {ec:.9g} on the CPU")
            worst_err = max(worst_err, rel)
            worst_prod = max(worst_prod, float(np.linalg.norm(pg[name] - pc[name]) / np.linalg.norm(pc[name])))
        print(f"{gpu} vs cpu {label}: {len(pc)} modules, errors within {worst_err:.2e} "
              f"{'(absolute)' if label == 'full' else '(relative)'} of the CPU's; products B A within "
              f"{worst_prod:.2e} relative")
    if check.failures:
        print(f"{len(check.failures)} checks failed")
        return 1
    print("every module within 1e-4 relative of the Eckart-Young optimum on both devices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
