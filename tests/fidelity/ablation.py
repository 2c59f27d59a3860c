"""ablation.py: does `erased` say where the logits move? One merged weight requantized at a time.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python tests/fidelity/ablation.py BUILD [-o OUT.md]

For each adapter of fixtures/fidelity/: the float merge into Wq (BUILD/loramerge BASE4 ADAPTER: every
targeted weight is Y rounded to bf16, the adapter's change kept) is loaded as a bf16 model, and each
targeted weight in turn is replaced by its 4-bit merge M (BUILD/loramerge --requantize's group,
dequantized, in bf16); gap = |L - L_unmerged|_F / |L_base - L_unmerged|_F as in logits_table.py, next
to the module's figures from reference.py (survival, residual, erased; MERGED = that --requantize
output). Then all of them replaced (about the requantize row of the table), and what --keep-float auto
would give: only the modules that are not erased replaced (the erased ones stay in bf16), with its bits
per parameter over the weights the base stores in 4 bits (codes + absmax + nested absmax; 16 for a kept
one). The summary: mean gap of the erased and of the other modules, and Spearman's rank correlation of
the single-module gaps with 1 - survival, with residual, and with the lost change |D| (1 - survival).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import reference  # noqa: E402

warnings.filterwarnings("ignore")


def spearman(a, b):
    from scipy.stats import spearmanr
    if len(a) < 3:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def gap(lg, ref, lbase):
    return float((lg - ref).norm() / (lbase - ref).norm())


def answer(kind, lg, task):
    return (common.predicted(kind, lg) == common.answer(kind, task)).float().mean().item()


def one(build, name, kind, task, work, out):
    w16, base4 = common.bases(build)[kind]
    ad = f"{common.FIX}/{name}"
    req = f"{work}/{name}-req"
    subprocess.run([f"{build}/loramerge", "-q", "-f", "--requantize", base4, ad, "-o", req], check=True)
    wqm = f"{work}/{name}-wq"
    subprocess.run([f"{build}/loramerge", "-q", "-f", base4, ad, "-o", wqm], check=True)
    fig = reference.run([base4, ad, req, "--base-kind", "4bit", "--w16", w16, "-o", f"{work}/{name}.json"])
    mods = fig["modules"]
    reqck = reference.Checkpoint(req)
    mq = {m["name"]: reqck.dequantized(m["name"])[0].to(torch.bfloat16) for m in mods}
    lbase = common.logits(common.load(base4), kind, task)
    ref = common.logits(common.load_peft(base4, ad), kind, task)
    model = common.load(wqm)
    lfloat = common.logits(model, kind, task)
    params = {m["name"]: model.get_submodule(m["name"][:-len(".weight")]).weight for m in mods}
    keep = {n: p.data.clone() for n, p in params.items()}

    def with_requantized(names):
        for n in names:
            params[n].data.copy_(mq[n])
        lg = common.logits(model, kind, task)
        for n in names:
            params[n].data.copy_(keep[n])
        return lg

    out.append(f"\n### {name}\n")
    out.append(f"bf16 merge into Wq (nothing requantized): gap {gap(lfloat, ref, lbase):.4f}, "
               f"answer {answer(kind, lfloat, task):.3f}\n")
    out.append("| module | adapter_norm | survival | residual | erased | gap, only it requantized |")
    out.append("|---|---|---|---|---|---|")
    gaps = []
    for m in mods:
        g = gap(with_requantized([m["name"]]), ref, lbase)
        gaps.append(g)
        out.append(f"| {m['name']} | {m['adapter_norm']:.4g} | {m['survival']:.4f} | {m['residual']:.4f} | "
                   f"{'yes' if m['erased'] else 'no'} | {g:.4f} |")
    erased = [m["erased"] for m in mods]
    lall = with_requantized([m["name"] for m in mods])
    lkf = with_requantized([m["name"] for m in mods if not m["erased"]])
    # bits per parameter over the base's 4-bit weights: 4-bit ones as stored, kept ones at 16
    base_ck = reference.Checkpoint(base4)
    qn = sorted({k.split(".quant_state.")[0] for k in base_ck.where if ".quant_state." in k})
    bits = params_n = 0
    kept = {m["name"] for m in mods if m["erased"]}
    for n in qn:
        w = reqck.tensor(n)
        absmax = reqck.tensor(n + ".absmax")
        nested = reqck.tensor(n + ".nested_absmax")
        elems = 2 * w.numel()
        params_n += elems
        bits += 16 * elems if n in kept else 8 * (w.numel() + absmax.numel() + 4 * nested.numel())
    s = [1 - m["survival"] for m in mods]
    r = [m["residual"] for m in mods]
    lost = [m["adapter_norm"] * (1 - m["survival"]) for m in mods]
    ge = [g for g, e in zip(gaps, erased) if e]
    gn = [g for g, e in zip(gaps, erased) if not e]
    out.append("")
    out.append(f"- all {len(mods)} requantized: gap {gap(lall, ref, lbase):.4f}, answer {answer(kind, lall, task):.3f}")
    out.append(f"- keep-float auto, emulated ({len(kept)} erased modules kept in bf16, the rest requantized): gap "
               f"{gap(lkf, ref, lbase):.4f}, answer {answer(kind, lkf, task):.3f}, {bits / params_n:.3f} bits per "
               f"parameter of the 4-bit weights")
    out.append(f"- erased: {len(ge)} of {len(mods)}; mean single-module gap: erased "
               f"{np.mean(ge) if ge else float('nan'):.4f}, not erased {np.mean(gn) if gn else float('nan'):.4f}")
    out.append(f"- Spearman rank correlation of the single-module gap with 1 - survival {spearman(gaps, s):.3f}, "
               f"with residual {spearman(gaps, r):.3f}, with |D| (1 - survival) {spearman(gaps, lost):.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("-o", dest="out")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    torch.set_num_threads(1)
    common.prepare_minilm(build)
    task = common.tasks()
    out = []
    with tempfile.TemporaryDirectory(prefix="lq-fidelity-") as work, torch.no_grad():
        for name, kind, _ in common.ADAPTERS:
            one(build, name, kind, task, work, out)
    text = "\n".join(out) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
