"""logits_table.py: what each merge of the trained adapters keeps, in logits (issue 14's evidence table).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python tests/fidelity/logits_table.py BUILD [-o TABLE.md]

For each adapter of fixtures/fidelity/ (common.ADAPTERS), the logits on its trained inputs (common.logits)
of the unmerged model (the 4-bit base + the adapter, as trained: PEFT on bitsandbytes' CPU backend) against:
  base             the 4-bit base without the adapter (what "no adapter at all" looks like)
  peft-4bit        PEFT's own 4-bit merge on the CPU (merge_and_unload() of the unmerged model)
  requantize       BUILD/loramerge --requantize BASE4 ADAPTER, loaded pre-quantized by transformers
  keep-float auto  BUILD/loramerge --requantize --keep-float auto BASE4 ADAPTER (when --help names it)
  keep-float, emulated  the same made here: the requantize output with the modules reference.py finds
                   erased (MERGED = that output) taken in bf16 from loramerge BASE4 ADAPTER (Y rounded to
                   bf16) and named in llm_int8_skip_modules
  bf16 into Wq     BUILD/loramerge --base-as nf4 W16 ADAPTER (the float merge into what the adapter saw)
  bf16 into W16    BUILD/loramerge W16 ADAPTER (the float merge into the original weights)
Columns: max and mean |logit - unmerged logit|; gap = |L - L_unmerged|_F / |L_base - L_unmerged|_F, the
part of the adapter's change of the logits the merge does not reproduce (0: all of it, 1: as far off as
no adapter); answer = the trained answer's share among the argmaxes (tiny: next tokens of the memorised
sequences; MiniLM: each sentence's paired sentence); agree = argmax equal to the unmerged model's; bits =
bits per parameter of the 4-bit output over the weights the base stores in 4 bits (codes + block absmax +
nested absmax, a weight kept in float at its own width). Then loramerge --requantize's bytes against PEFT's
CPU 4-bit merge, by peft_bytes.compare: codes exactly, the block constants within the tolerance that
bitsandbytes' CPU double quantization needs (it differs from CUDA's, which loramerge reproduces).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import peft_bytes  # noqa: E402
import reference  # noqa: E402

warnings.filterwarnings("ignore")


def st_tensors(path):
    from safetensors.torch import load_file
    return load_file(f"{path}/model.safetensors" if os.path.isdir(path) else path)


def quantized_names(sd):
    tail = ".quant_state.bitsandbytes__nf4"
    return sorted(k[:-len(tail)] for k in sd if k.endswith(tail))


def bits_per_param(sd, names):
    """bits per parameter of the weights named (the base's 4-bit ones) as sd holds them."""
    bits = params = 0
    for n in names:
        if n + ".absmax" in sd:
            qs = json.loads(bytes(sd[n + ".quant_state.bitsandbytes__nf4"].tolist()))
            params += int(torch.Size(qs["shape"]).numel())
            bits += 8 * sum(sd[n + s].numel() * sd[n + s].element_size() for s in ("", ".absmax", ".nested_absmax"))
        else:
            params += sd[n].numel()
            bits += 8 * sd[n].numel() * sd[n].element_size()
    return bits / params


def keep_float_emulated(req, wqm, kept, out):
    """What --keep-float should write, made here: loramerge --requantize's checkpoint (req) with the weights
    named in kept taken in bf16 from the float merge into Wq (wqm: Y rounded to bf16), their modules added
    to llm_int8_skip_modules so that transformers loads them as float Linear layers."""
    from safetensors.torch import save_file
    sd, f = st_tensors(req), st_tensors(wqm)
    for n in kept:
        for k in [k for k in sd if k == n or k.startswith(n + ".")]:
            del sd[k]
        sd[n] = f[n].contiguous()
    os.makedirs(out, exist_ok=True)
    save_file(sd, f"{out}/model.safetensors", metadata={"format": "pt"})
    with open(f"{req}/config.json") as fh:
        cfg = json.load(fh)
    skip = cfg["quantization_config"].get("llm_int8_skip_modules")
    if skip is None and kept:
        # a list replaces transformers' default, which must stay: compute it as transformers does
        import transformers
        from transformers.quantizers.base import get_keys_to_not_convert
        c = transformers.AutoConfig.from_pretrained(req)
        del c.quantization_config
        with torch.device("meta"):
            skip = sorted(get_keys_to_not_convert(common.model_class(req)._from_config(c)))
    if kept:
        cfg["quantization_config"]["llm_int8_skip_modules"] = skip + [n[:-len(".weight")] for n in kept]
    with open(f"{out}/config.json", "w") as fh:
        json.dump(cfg, fh, indent=2)
    return out


def same_checkpoint(a, b):
    """What differs between two checkpoints' tensors and skip lists (loramerge's --keep-float output and
    the emulation), as one line."""
    sa, sb = st_tensors(a), st_tensors(b)
    only = sorted(set(sa) ^ set(sb))
    diff = sorted(k for k in set(sa) & set(sb) if sa[k].dtype != sb[k].dtype or not torch.equal(sa[k], sb[k]))
    skips = []
    for d in (a, b):
        with open(f"{d}/config.json") as f:
            skips.append(sorted(json.load(f)["quantization_config"].get("llm_int8_skip_modules") or []))
    return (f"{len(only)} tensors in one only {only[:4]}, {len(diff)} differ {diff[:4]}, skip lists "
            + ("equal" if skips[0] == skips[1] else f"differ: {skips[0]} vs {skips[1]}"))


def loramerge(build, args, out):
    subprocess.run([f"{build}/loramerge", "-q", "-f", *args, "-o", out], check=True)
    return out


def row(label, lg, ref, lbase, kind, task, bits=None):
    d = (lg - ref).abs()
    gap = float((lg - ref).norm() / (lbase - ref).norm()) if label != "base" else 1.0
    ans = (common.predicted(kind, lg) == common.answer(kind, task)).float().mean().item()
    agree = (common.predicted(kind, lg) == common.predicted(kind, ref)).float().mean().item()
    b = "" if bits is None else f"{bits:.3f}"
    return f"| {label} | {d.max().item():.4g} | {d.mean().item():.4g} | {gap:.4f} | {ans:.3f} | {agree:.3f} | {b} |"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("-o", dest="out")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    torch.set_num_threads(1)
    common.prepare_minilm(build)
    b = common.bases(build)
    task = common.tasks()
    keep_float = "--keep-float" in subprocess.run([f"{build}/loramerge", "--help"], capture_output=True,
                                                  text=True).stdout
    lines = ["| merge | max \\|Δlogit\\| | mean \\|Δlogit\\| | gap | answer | agree | bits/param |",
             "|---|---|---|---|---|---|---|"]
    notes = []
    with tempfile.TemporaryDirectory(prefix="lq-fidelity-") as work, torch.no_grad():
        for name, kind, lr in common.ADAPTERS:
            w16, base4 = b[kind]
            ad = f"{common.FIX}/{name}"
            base_sd = st_tensors(base4)
            qnames = quantized_names(base_sd)
            lbase = common.logits(common.load(base4), kind, task)
            ref = common.logits(common.load_peft(base4, ad), kind, task)
            lines.append(f"| **{name}** (lr {lr:g}) | | | | | | |")
            lines.append(row("unmerged", ref, ref, lbase, kind, task))
            lines.append(row("base", lbase, ref, lbase, kind, task, bits_per_param(base_sd, qnames)))
            pm = common.peft_merge_4bit(base4, ad)
            peft_sd = common.groups_4bit(pm)
            lines.append(row("peft-4bit", common.logits(pm, kind, task), ref, lbase, kind, task,
                             bits_per_param(peft_sd, qnames)))
            out = loramerge(build, ["--requantize", base4, ad], f"{work}/{name}-req")
            ours = st_tensors(out)
            lines.append(row("requantize", common.logits(common.load(out), kind, task), ref, lbase, kind, task,
                             bits_per_param(ours, qnames)))
            names = peft_bytes.targets(ad)
            ok, cmp = peft_bytes.compare(ours, peft_sd, names, peft_bytes.ys_of(base4, ad, names))
            notes.append(f"{name}: loramerge --requantize against PEFT's CPU 4-bit merge, {len(names)} weights: "
                         + "; ".join(cmp) + (" (within the tolerance of peft_bytes.py)" if ok else " (OUTSIDE the "
                                             "tolerance of peft_bytes.py)"))
            req_fig = reference.run([base4, ad, f"{work}/{name}-req", "--base-kind", "4bit"])
            kept = [m["name"] for m in req_fig["modules"] if m["erased"]]
            wqm = loramerge(build, [base4, ad], f"{work}/{name}-wq4")
            emu = keep_float_emulated(f"{work}/{name}-req", wqm, kept, f"{work}/{name}-kfe")
            if keep_float:
                out = loramerge(build, ["--requantize", "--keep-float", "auto", base4, ad], f"{work}/{name}-kf")
                lines.append(row("keep-float auto", common.logits(common.load(out), kind, task), ref, lbase, kind,
                                 task, bits_per_param(st_tensors(out), qnames)))
                notes.append(f"{name}: --keep-float auto against the emulation: " + same_checkpoint(out, emu))
            else:
                lines.append("| keep-float auto | n/a (not built) | | | | | |")
            lines.append(row(f"keep-float, emulated ({len(kept)} kept)", common.logits(common.load(emu), kind, task),
                             ref, lbase, kind, task, bits_per_param(st_tensors(emu), qnames)))
            out = loramerge(build, ["--base-as", "nf4", w16, ad], f"{work}/{name}-wq")
            lines.append(row("bf16 into Wq", common.logits(common.load(out), kind, task), ref, lbase, kind, task))
            out = loramerge(build, [w16, ad], f"{work}/{name}-w16")
            lines.append(row("bf16 into W16", common.logits(common.load(out), kind, task), ref, lbase, kind, task))
            print(f"{name}: done", file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
