"""loramerge --combine against PEFT 0.21's add_weighted_adapter, on the shipped tiny-llama adapters.

For each case, PEFT combines the adapters in memory (float32 model, the adapters loaded as PEFT loads them)
and saves the combined adapter; loramerge --combine writes its own. Then:
- linear, cat, ties, magnitude_prune: every tensor equal (as values: the zeros that pad cat's modules take
  their sign from PEFT's random initialization times 0.0), on float32 adapters: rand_r8 and rand2_r8, made
  here with random float32 tensors of plain_r8's shapes (plain_r8's own values are all bfloat16 values). (Adapters stored in bf16 hold equal magnitudes,
  among which torch.topk's choice is its own: magnitude pruning keeps the lowest indices.)
- the svd types: the same shapes, the singular values (the norms of B's columns) within float32 rounding
  (1e-5 relative to the largest), and B @ A within 1e-5 relative (Frobenius) of PEFT's; with --svd-clamp,
  whose threshold depends on the signs of the singular vectors (LAPACK's here, MKL's in torch, cuSOLVER's
  on a GPU) and which magnifies float32 SVD error (PEFT's own: printed), the reference is PEFT's clamp of
  the float64 SVD of PEFT's float32 delta, with loramerge's signs;
- the dare types (PEFT's masks come from torch's generator, not reproduced): shapes only;
- PEFT loads loramerge's adapter (PeftModel.from_pretrained), and its logits equal those of PEFT's own
  combined adapter (bit for bit where the tensors are; within 1e-4 for the svd types);
- for linear, cat and ties: loramerge's merge of its combined adapter into tiny-llama (bf16) is within one
  unit in the last place of PEFT's merge_and_unload() of PEFT's combined adapter.

Usage: combine_check.py LORAMERGE WORKDIR [CASE...]      (run by tests/interop/combine.sh)
"""
import json
import os
import shutil
import subprocess
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM
from peft import PeftModel
from peft.utils.merge_utils import task_arithmetic

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AD = os.path.join(TOP, "fixtures/peft/adapters")
BASE = os.path.join(TOP, "fixtures/models/tiny-llama")

# name, TYPE, [(adapter, weight)], PEFT's keyword arguments (the CLI options follow from them)
CASES = [
    ("linear", "linear", [("plain_r8", 0.7), ("bf16_stored", -0.5)], {}),
    ("linear_one", "ties", [("rslora_r16", 1.5)], {"density": 0.5}),
    ("cat", "cat", [("plain_r8", 0.7), ("rslora_r16", -1.3)], {}),
    ("cat_patterns", "cat", [("patterns", 1.0), ("plain_r8", 0.5)], {}),
    ("cat_rslora_first", "cat", [("rslora_r16", 0.5), ("plain_r8", 1.0)], {}),
    ("ties", "ties", [("rand_r8", 0.7), ("rand2_r8", -0.5)], {"density": 0.5}),
    ("ties_frequency", "ties", [("rand_r8", 1.0), ("rand2_r8", 2.0)],
     {"density": 0.3, "majority_sign_method": "frequency"}),
    ("magnitude_prune", "magnitude_prune", [("rand_r8", 0.7), ("rand2_r8", 0.4)], {"density": 0.25}),
    ("ties_three", "ties", [("rand_r8", 0.7), ("rand2_r8", -0.5), ("rand_r8", 0.3)], {"density": 0.6}),
    ("svd_rank4", "svd", [("plain_r8", 1.0), ("bf16_stored", 1.0)], {"svd_rank": 4}),
    ("svd", "svd", [("plain_r8", 0.7), ("rslora_r16", -1.3)], {}),
    ("svd_rank_clamp", "svd", [("plain_r8", 1.0), ("bf16_stored", 1.0)], {"svd_rank": 4, "svd_clamp": 0.9}),
    ("ties_svd", "ties_svd", [("plain_r8", 0.7), ("bf16_stored", -0.5)], {"density": 0.5}),
    ("magnitude_prune_svd", "magnitude_prune_svd", [("plain_r8", 1.0), ("rslora_r16", 1.0)], {"density": 0.4}),
    ("dare_linear", "dare_linear", [("plain_r8", 0.7), ("bf16_stored", 0.5)], {"density": 0.5}),
    ("dare_ties", "dare_ties", [("plain_r8", 0.7), ("bf16_stored", 0.5)], {"density": 0.5}),
    ("dare_linear_svd", "dare_linear_svd", [("plain_r8", 0.7), ("rslora_r16", 0.5)], {"density": 0.7}),
    ("dare_ties_svd", "dare_ties_svd", [("plain_r8", 0.7), ("rslora_r16", 0.5)], {"density": 0.7}),
]

# the cases whose combined adapter is also merged into tiny-llama (bf16), by loramerge and by PEFT
MERGED = ("linear", "cat", "ties")

OPTION = {"density": "--density", "majority_sign_method": "--majority-sign-method", "svd_rank": "--svd-rank",
          "svd_clamp": "--svd-clamp"}


def logits(model):
    ids = torch.tensor([[1, 5, 17, 42, 99, 300, 7, 64]])
    with torch.no_grad():
        return model(input_ids=ids).logits


def make_rand_r8(work, name, seed):
    """plain_r8's config and shapes, random float32 values (no equal magnitudes)."""
    out = os.path.join(work, name)
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    src = load_file(os.path.join(AD, "plain_r8", "adapter_model.safetensors"))
    save_file({k: torch.randn(v.shape, generator=g) * 0.05 for k, v in src.items()},
              os.path.join(out, "adapter_model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(AD, "plain_r8", "adapter_config.json"), out)
    return out


def clamp_as_peft(b, a, signs, clamp):
    """PEFT's clamp of U @ diag(S) and Vh, with the singular vectors' signs given."""
    U, Vh = b * signs, a * signs[:, None]
    hi = torch.quantile(torch.cat([U.flatten(), Vh.flatten()]), clamp)
    return U.clamp(-hi, hi), Vh.clamp(-hi, hi)


def main():
    loramerge, work = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    paths = {"rand_r8": make_rand_r8(work, "rand_r8", 1234), "rand2_r8": make_rand_r8(work, "rand2_r8", 5678)}
    path = lambda a: paths.get(a, os.path.join(AD, a))
    # every adapter loaded once, under its name; each case adds its combination as PEFT does
    base = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32)
    pm = PeftModel.from_pretrained(base, path("plain_r8"), adapter_name="plain_r8")
    for a in ("bf16_stored", "rslora_r16", "patterns", "rand_r8", "rand2_r8"):
        pm.load_adapter(path(a), adapter_name=a)
    failures = 0
    ids = [1, 5, 17]
    for name, ctype, adapters, kw in CASES:
        if len(sys.argv) > 3 and name not in sys.argv[3:]:
            continue
        names = [a for a, _ in adapters]
        comb = "comb_" + name
        pm.add_weighted_adapter(names, [w for _, w in adapters], comb, combination_type=ctype, **kw)
        pm.set_adapter(comb)
        ref_logits = logits(pm)
        pdir = os.path.join(work, "peft_" + name)
        pm.save_pretrained(pdir, selected_adapters=[comb])
        ref = load_file(os.path.join(pdir, comb, "adapter_model.safetensors"))
        ours_dir = os.path.join(work, "ours_" + name)
        cmd = [loramerge, "-q", "--combine", ctype] + [f"{path(a)}:{w!r}" for a, w in adapters]
        for k, v in kw.items():
            cmd += [OPTION[k], str(v)]
        if ctype.startswith("dare"):
            cmd += ["--seed", "1"]
        subprocess.run(cmd + ["-o", ours_dir], check=True)
        ours = load_file(os.path.join(ours_dir, "adapter_model.safetensors"))
        problems = []
        if sorted(ours) != sorted(ref):
            problems.append(f"tensor names differ: {sorted(set(ours) ^ set(ref))[:4]}")
        exact = not ctype.endswith("svd") and not ctype.startswith("dare") or name == "linear_one"
        svd = ctype.endswith("svd") and not ctype.startswith("dare") and len(adapters) > 1
        worst = peft_worst = 0.0
        for key in sorted(set(ours) & set(ref)):
            o, r = ours[key], ref[key]
            if o.shape != r.shape or o.dtype != r.dtype:
                problems.append(f"{key}: {o.dtype}{list(o.shape)}, PEFT {r.dtype}{list(r.shape)}")
            elif exact and not torch.equal(o, r):
                n = int((o != r).sum())
                i = int((o != r).flatten().nonzero()[0])
                problems.append(f"{key}: {n} of {o.numel()} elements differ, first [{i}] "
                                f"{o.flatten()[i].item()!r}, PEFT {r.flatten()[i].item()!r}")
        peft32 = None
        if "svd_clamp" in kw:
            # PEFT's arithmetic on PEFT's float32 delta, its SVD taken in float64, loramerge's signs
            peft32 = {k: v.clone() for k, v in ref.items()}
            weights = torch.tensor([w for _, w in adapters])
            for key in sorted(k for k in ref if k.endswith("lora_A.weight")):
                kb = key.replace("lora_A", "lora_B")
                mod = pm.base_model.model.get_submodule(key[len("base_model.model."):-len(".lora_A.weight")])
                delta = task_arithmetic([mod.get_delta_weight(n) for n in names if n in mod.lora_A],
                                        weights[[n in mod.lora_A for n in names]])
                U, S, Vh = torch.linalg.svd(delta.double())
                k = kw["svd_rank"]
                b, a = (U[:, :k] * S[:k]).float(), Vh[:k].float()
                signs = torch.sign((a * ours[key]).sum(dim=1))
                signs[signs == 0] = 1
                ref[kb], ref[key] = clamp_as_peft(b, a, signs, kw["svd_clamp"])
        if svd:
            for key in sorted(k for k in ref if k.endswith("lora_A.weight")):
                kb = key.replace("lora_A", "lora_B")
                do, dr = ours[kb].double() @ ours[key].double(), ref[kb].double() @ ref[key].double()
                rel = float((do - dr).norm() / dr.norm())
                if peft32 is not None:
                    d32 = peft32[kb].double() @ peft32[key].double()
                    peft_worst = max(peft_worst, float((d32 - dr).norm() / dr.norm()))
                worst = max(worst, rel)
                if rel > 1e-5:
                    problems.append(f"{key}: B @ A {rel:.3g} relative from PEFT's")
                so, sr = ours[kb].double().norm(dim=0), ref[kb].double().norm(dim=0)
                if float((so - sr).abs().max()) > 1e-5 * float(sr.max()):
                    problems.append(f"{key}: singular values {so.tolist()[:3]}..., PEFT {sr.tolist()[:3]}...")
        cfg = json.load(open(os.path.join(ours_dir, "adapter_config.json")))
        rcfg = json.load(open(os.path.join(pdir, comb, "adapter_config.json")))
        for k in ("r", "lora_alpha", "use_rslora", "rank_pattern", "alpha_pattern"):
            if cfg.get(k) != rcfg.get(k):
                problems.append(f"config {k}: {cfg.get(k)!r}, PEFT {rcfg.get(k)!r}")
        if sorted(cfg["target_modules"]) != sorted(rcfg["target_modules"]):
            problems.append(f"config target_modules {cfg['target_modules']}, PEFT {rcfg['target_modules']}")
        # PEFT loads ours
        pm.load_adapter(ours_dir, adapter_name="ours_" + name)
        pm.set_adapter("ours_" + name)
        ours_logits = logits(pm)
        diff = float((ours_logits - ref_logits).abs().max())
        if not ctype.startswith("dare") or name == "linear_one":
            if (exact and diff != 0) or (diff > 1e-4 and "svd_clamp" not in kw):
                problems.append(f"logits differ from PEFT's combined adapter's by {diff:.3g}")
        if name in MERGED:
            # loramerge's merge of its combined adapter, PEFT's merge_and_unload of PEFT's: bf16, within 1 ulp
            merged = os.path.join(work, "merged_" + name + ".safetensors")
            subprocess.run([loramerge, "-q", BASE, ours_dir, "-o", merged], check=True)
            ours_m = load_file(merged)
            bf = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.bfloat16)
            peft_m = PeftModel.from_pretrained(bf, os.path.join(pdir, comb)).merge_and_unload().state_dict()
            ulps = 0
            for key, t in ours_m.items():
                r = peft_m[key]
                d = (t.view(torch.int16).int() - r.view(torch.int16).int()).abs()
                ulps = max(ulps, int(d.max()))
            if ulps > 1:
                problems.append(f"merged into tiny-llama: {ulps} units in the last place from PEFT's merge")
            extra_merge = f" (merged: within {ulps} ulp of PEFT's merge_and_unload)"
        else:
            extra_merge = ""
        status = "FAILED" if problems else "ok"
        extra = f" (B @ A within {worst:.2g})" if svd else (" (shapes; loads)" if ctype.startswith("dare") else "")
        if peft32 is not None:
            extra += f" (PEFT's own float32 SVD: {peft_worst:.2g}, whatever its signs)"
        print(f"combine {name}: {status}{extra}{extra_merge}")
        for p in problems[:6]:
            print("   ", p)
        failures += bool(problems)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
