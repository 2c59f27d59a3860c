"""reference.py: the merge-fidelity figures of issue 14, computed independently in double precision.

    reference.py BASE ADAPTER [MERGED] --base-kind float|4bit [--w16 DIR] [--wq-from DIR]
                 [--output 4bit|float] [--min-survival 0.5] [--max-residual 1] [-o OUT.json]

Per LoRA-targeted weight (a module the adapter changes), as loramerge --fidelity and qinspect --adapter
define them (the names of the checkpoint, e.g. model.layers.0.self_attn.q_proj.weight):
  W16  the float base weight: BASE with --base-kind float, --w16 DIR with a 4-bit BASE; else unknown.
  Wq   the weight the adapter was trained against, in the quant_state's dtype: a 4-bit BASE's (or
       --wq-from DIR's) group dequantized by bitsandbytes' dequantize_4bit from the checkpoint's bytes;
       for a float BASE, dequantize_4bit(quantize_4bit(W16)) (nf4, blocksize 64, double quantization:
       what transformers' BitsAndBytesConfig does), bitsandbytes' CPU functions. Those are CUDA's codes,
       but not always CUDA's block constants: the CPU's double quantization takes its offset from a
       torch.mean in another order (a few units in the last place) and can round a block absmax to the
       farther of two 8-bit codes (peft_bytes.py); --wq-from takes CUDA-made bytes instead.
  Y    float32(Wq) + delta, delta = PEFT's get_delta_weight (the adapter loaded with PEFT 0.21 onto the
       model that BASE's config.json names, built empty from that config: the delta does not depend on
       the base's weights), the float32 sum PEFT's merges make.
  D    Y - Wq in float64.
  M    the merged weight: MERGED's tensor when given (a 4-bit group dequantized by dequantize_4bit and
       rounded to Wq's dtype, as the forward pass uses it; a float tensor as stored); else computed:
       --output 4bit (default) dequantize_4bit(quantize_4bit(Y)) rounded to Wq's dtype (bitsandbytes' CPU
       functions, as PEFT's 4-bit merge does on the CPU), --output float Y rounded to Wq's dtype.
Figures: adapter_norm = |D|, quant_noise_norm = |W16 - Wq| (null without W16), base_ratio =
quant_noise_norm / adapter_norm, survival = <M - Wq, D> / |D|^2, residual = |M - Y| / |D|, erased =
survival < min-survival or residual > max-residual; per layer (the N of `.layers.N.` / `.layer.N.` /
`.h.N.` in the name) and overall from the summed squares and dots. Every sum in numpy float64. The JSON:
{"modules": [{"name", "layer", "elements", "adapter_norm", "quant_noise_norm", "base_ratio", "survival",
"residual", "erased", "sums": {"d2", "noise2", "dot", "res2"}}], "layers": [{"layer", "modules", ...}],
"overall": {...}, "inputs": {...}}. Not covered: DoRA (refused), several adapters, embeddings.
"""
import argparse
import functools
import json
import os
import re
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")


class Checkpoint:
    """The tensors of a model directory (model.safetensors or an index of shards) or of one file, read
    with safetensors; a 4-bit group (NAME + .absmax, .quant_map, .nested_*, .quant_state.*) dequantized
    with bitsandbytes."""

    def __init__(self, path):
        from safetensors import safe_open
        if os.path.isdir(path):
            idx = f"{path}/model.safetensors.index.json"
            if os.path.exists(idx):
                with open(idx) as f:
                    files = sorted(set(json.load(f)["weight_map"].values()))
                files = [f"{path}/{x}" for x in files]
            else:
                files = [f"{path}/model.safetensors"]
        else:
            files = [path]
        self.where = {}
        self.handles = [safe_open(f, framework="pt") for f in files]
        for h in self.handles:
            for k in h.keys():
                self.where[k] = h

    def has(self, name):
        return name in self.where

    def tensor(self, name):
        return self.where[name].get_tensor(name)

    def quantized(self, name):
        return any(k.startswith(name + ".quant_state.bitsandbytes__") for k in self.group_keys(name))

    def group_keys(self, name):
        p = name + "."
        return [k for k in self.where if k.startswith(p) and k[len(p):].split(".")[0] in (
            "absmax", "quant_map", "nested_absmax", "nested_quant_map", "quant_state")]

    def dequantized(self, name):
        """(values, dtype of the quant_state): bitsandbytes' dequantize_4bit of the group's bytes."""
        import bitsandbytes.functional as F
        qs = F.QuantState.from_dict({k[len(name) + 1:]: self.tensor(k) for k in self.group_keys(name)},
                                    device=torch.device("cpu"))
        return F.dequantize_4bit(self.tensor(name), qs), qs.dtype


def qdq(w):
    """dequantize_4bit(quantize_4bit(w)) with bitsandbytes' CPU functions, nf4, blocksize 64, double
    quantization, in w's dtype."""
    import bitsandbytes.functional as F
    q, qs = F.quantize_4bit(w.contiguous(), blocksize=64, compress_statistics=True, quant_type="nf4",
                            quant_storage=torch.uint8)
    return F.dequantize_4bit(q, qs)


@functools.lru_cache(maxsize=None)
def deltas(base_dir, adapter):
    """{checkpoint weight name: PEFT's get_delta_weight (float32)} for every module the adapter targets."""
    import transformers
    from peft import PeftModel
    with open(f"{adapter}/adapter_config.json") as f:
        ac = json.load(f)
    if ac.get("use_dora"):
        sys.exit("reference.py: DoRA adapters are not covered (the delta depends on the base)")
    cfg = transformers.AutoConfig.from_pretrained(base_dir)
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    cls = getattr(transformers, cfg.architectures[0])
    torch.manual_seed(0)
    model = cls._from_config(cfg, dtype=torch.float32)
    pm = PeftModel.from_pretrained(model, adapter)
    out = {}
    with torch.no_grad():
        for name, m in pm.named_modules():
            if hasattr(m, "lora_A") and "default" in m.lora_A:
                key = name[len("base_model.model."):] + ".weight"
                out[key] = m.get_delta_weight("default").float().contiguous()
    return out


LAYER = re.compile(r"\.(?:layers|layer|h|blocks)\.(\d+)\.")


def figures(s, min_survival, max_residual):
    """The ratios of summed squares and dots s = {d2, noise2, dot, res2} (noise2 None without W16)."""
    d = np.sqrt(s["d2"])
    f = {"adapter_norm": float(d),
         "quant_noise_norm": None if s["noise2"] is None else float(np.sqrt(s["noise2"])),
         "base_ratio": None, "survival": None, "residual": None, "erased": None}
    if s["d2"] > 0:
        if s["noise2"] is not None:
            f["base_ratio"] = float(np.sqrt(s["noise2"]) / d)
        f["survival"] = float(s["dot"] / s["d2"])
        f["residual"] = float(np.sqrt(s["res2"]) / d)
        f["erased"] = bool(f["survival"] < min_survival or f["residual"] > max_residual)
    return f


def add(acc, s):
    for k in ("d2", "dot", "res2"):
        acc[k] += s[k]
    acc["noise2"] = None if acc["noise2"] is None or s["noise2"] is None else acc["noise2"] + s["noise2"]


def f64(t):
    return t.to(torch.float64).numpy()


def run(argv):
    """The figures (the JSON's object) for a command line (a list of arguments, as main takes them)."""
    ap = argparse.ArgumentParser(description="merge-fidelity figures in float64 (see the header)")
    ap.add_argument("base")
    ap.add_argument("adapter")
    ap.add_argument("merged", nargs="?")
    ap.add_argument("--base-kind", choices=["float", "4bit"], required=True)
    ap.add_argument("--w16", help="the float base W16 when BASE is 4-bit")
    ap.add_argument("--wq-from", help="a 4-bit checkpoint whose bytes give Wq when BASE is float")
    ap.add_argument("--output", choices=["4bit", "float"], default="4bit")
    ap.add_argument("--min-survival", type=float, default=0.5)
    ap.add_argument("--max-residual", type=float, default=1.0)
    ap.add_argument("-o", dest="out")
    a = ap.parse_args(argv)

    base = Checkpoint(a.base)
    w16src = base if a.base_kind == "float" else (Checkpoint(a.w16) if a.w16 else None)
    wqsrc = Checkpoint(a.wq_from) if a.wq_from else (base if a.base_kind == "4bit" else None)
    merged = Checkpoint(a.merged) if a.merged else None
    cfg_dir = a.base if os.path.isdir(a.base) else os.path.dirname(a.base)
    delta = deltas(cfg_dir, a.adapter)

    modules, layers = [], {}
    overall = {"d2": 0.0, "dot": 0.0, "res2": 0.0, "noise2": 0.0 if w16src else None}
    for name in sorted(delta):
        if not base.has(name):
            sys.exit(f"reference.py: {a.base}: no tensor '{name}' for the adapter's module")
        # Wq, in the quant_state's dtype (bf16 here)
        if wqsrc is not None and wqsrc.quantized(name):
            wq, dtype = wqsrc.dequantized(name)
        elif wqsrc is not None:
            wq = wqsrc.tensor(name)
            dtype = wq.dtype
        else:
            wq = qdq(base.tensor(name))
            dtype = wq.dtype
        w16 = w16src.tensor(name) if w16src else None
        y = wq.float() + delta[name]                                # float32, as PEFT sums it
        if merged is not None:
            if not merged.has(name):
                sys.exit(f"reference.py: {a.merged}: no tensor '{name}'")
            m = merged.dequantized(name)[0] if merged.quantized(name) else merged.tensor(name)
            m = m.to(dtype) if merged.quantized(name) else m
        elif a.output == "4bit":
            m = qdq(y).to(dtype)
        else:
            m = y.to(dtype)
        Wq, Y, M = f64(wq), f64(y), f64(m)
        D = Y - Wq
        R = M - Y
        s = {"d2": float(np.sum(D * D)), "dot": float(np.sum((M - Wq) * D)), "res2": float(np.sum(R * R)),
             "noise2": None if w16 is None else float(np.sum((f64(w16) - Wq) ** 2))}
        mt = LAYER.search("." + name)
        entry = {"name": name, "layer": int(mt.group(1)) if mt else None, "elements": int(D.size)}
        entry.update(figures(s, a.min_survival, a.max_residual))
        entry["sums"] = s
        modules.append(entry)
        add(overall, s)
        if mt:
            acc = layers.setdefault(int(mt.group(1)), {"d2": 0.0, "dot": 0.0, "res2": 0.0,
                                                       "noise2": 0.0 if w16src else None, "n": 0})
            add(acc, s)
            acc["n"] += 1
    out = {"modules": modules,
           "layers": [dict({"layer": k, "modules": v["n"]}, **figures(v, a.min_survival, a.max_residual))
                      for k, v in sorted(layers.items())],
           "overall": dict({"modules": len(modules),
                            "erased_modules": sum(1 for x in modules if x["erased"])},
                           **figures(overall, a.min_survival, a.max_residual)),
           "inputs": {"base": a.base, "base_kind": a.base_kind, "adapter": a.adapter, "merged": a.merged,
                      "w16": a.w16, "wq_from": a.wq_from, "output": None if a.merged else a.output,
                      "min_survival": a.min_survival, "max_residual": a.max_residual}}
    if a.out:
        with open(a.out, "w") as f:
            f.write(json.dumps(out, indent=1) + "\n")
    return out


def main():
    out = run(sys.argv[1:])
    if "-o" not in sys.argv[1:]:
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
