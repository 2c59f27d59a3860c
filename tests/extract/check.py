"""check.py BUILD [--results FILE]: loraextract against numpy's float64 SVD and PEFT (issue 16).

1. A full fine-tune of tiny-llama (finetune.py: every weight, 300 AdamW steps on the CPU) in a temporary
   directory; loraextract --embed --keep-other --dtype fp32 at ranks 1, 4, 16, full and --energy 0.9
   --max-rank 24: for every module, the error of the factors written, ||dW - B A|| / ||dW|| computed here
   in float64 from the files, is within 1e-4 relative of the Eckart-Young optimum of its rank (the
   root of the discarded sigma^2 over ||dW||, numpy.linalg.svd in float64), the rank is the one asked for
   (--energy: numpy's smallest rank reaching 0.9 of ||dW||^2, at most 24), and the tool's reported
   figures are those recomputed here. --split sqrt gives the same products.
2. PEFT loads each adapter on the base (float32) and its logits approach the fine-tune's as the rank grows
   (the full-rank adapter within 1e-3); the table rank -> max |logit error|.
3. --correct on fixtures/models/tiny-llama-nf4 against tiny-llama at ranks 4, 16, 64: PEFT loads the
   adapter on the 4-bit model (bitsandbytes' CPU backend); the weight error ||BASE - (dequant(Q) + B A)||
   over ||BASE - dequant(Q)|| (dequant by bitsandbytes' own dequantize_4bit) falls with the rank, and the
   logit error against the bf16 model; the table.
Prints the tables (markdown); exits 1 on any failed check.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import load_file as np_load

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) + "/../fidelity")
import finetune  # noqa: E402

top = finetune.top
MODELS = f"{top}/fixtures/models"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAILED: {what}")


def f64(path):
    """{name: float64 array} of a safetensors file (bf16 read through torch)."""
    from safetensors.torch import load_file
    return {k: v.double().numpy() for k, v in load_file(path).items()}


def extract(build, args, out):
    r = subprocess.run([f"{build}/loraextract", "-q", "--json", *args, "-o", out], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"loraextract {' '.join(args)}: {r.stderr}")
    return json.loads(r.stdout)


def golden(build, work, ft):
    base = f64(f"{MODELS}/tiny-llama/model.safetensors")
    tuned = f64(f"{ft}/model.safetensors")
    runs = {}
    for label, args in (("1", ["--rank", "1"]), ("4", ["--rank", "4"]), ("16", ["--rank", "16"]),
                        ("full", ["--rank", "100000"]), ("energy", ["--energy", "0.9", "--max-rank", "24"]),
                        ("sqrt16", ["--rank", "16", "--split", "sqrt"])):
        out = f"{work}/ad_{label}"
        rep = extract(build, ["--embed", "--keep-other", "--dtype", "fp32", *args, f"{MODELS}/tiny-llama", ft], out)
        runs[label] = out
        ad = f64(f"{out}/adapter_model.safetensors")
        worst = 0.0
        for m in rep["modules"]:
            name = m["module"]
            d = tuned[name + ".weight"] - base[name + ".weight"]
            s = np.linalg.svd(d, compute_uv=False)
            emb = m["kind"] == "embedding"
            a = ad[f"base_model.model.{name}.lora_embedding_A" if emb else f"base_model.model.{name}.lora_A.weight"]
            b = ad[f"base_model.model.{name}.lora_embedding_B" if emb else f"base_model.model.{name}.lora_B.weight"]
            prod = (b @ a).T if emb else b @ a
            r = a.shape[0]
            want = min(int(args[1]), len(s)) if args[0] == "--rank" else \
                min(int(np.searchsorted(np.cumsum(s ** 2), 0.9 * np.sum(s ** 2))) + 1, 24)
            check(r == want == m["rank"], f"{label}: {name}: rank {r} (reported {m['rank']}), expected {want}")
            nrm = np.linalg.norm(d)
            err = np.linalg.norm(d - prod) / nrm
            opt = np.sqrt(np.sum(s[r:] ** 2)) / nrm
            check(err <= opt * (1 + 1e-4) + (1e-4 if opt == 0 else 0),
                  f"{label}: {name}: error {err:.9g} against the optimum {opt:.9g}")
            check(abs(err - m["rel_error"]) <= 1e-9 + 1e-7 * err and abs(opt - m["rel_error_optimal"]) <= 1e-9,
                  f"{label}: {name}: reported error {m['rel_error']:.9g} / optimum {m['rel_error_optimal']:.9g}, "
                  f"here {err:.9g} / {opt:.9g}")
            worst = max(worst, (err - opt) / max(opt, 1e-300) if opt else err)
        print(f"golden {label}: {len(rep['modules'])} modules, worst excess over Eckart-Young "
              f"{worst:.2e} {'(absolute, full rank)' if label == 'full' else '(relative)'}")
        kept = sorted(x["tensor"] for x in rep["others"] if x["action"] == "modules_to_save")
        check(len(kept) == 5, f"{label}: the five norms kept whole, got {kept}")
    return runs


def peft_logits(base_path, adapter, ids, fourbit=False):
    from peft import PeftModel
    import common
    if fourbit:
        model = common.load(base_path)
    else:
        import transformers
        model = transformers.LlamaForCausalLM.from_pretrained(base_path, dtype=torch.float32).eval()
    if adapter:
        model = common.no_avx512bf16(PeftModel.from_pretrained(model, adapter)).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits.float(), model


def main():
    build = os.path.abspath(sys.argv[1])
    results = sys.argv[sys.argv.index("--results") + 1] if "--results" in sys.argv else None
    torch.manual_seed(0)
    torch.set_num_threads(1)
    lines = []
    with tempfile.TemporaryDirectory(prefix="lq-extract-") as work:
        ft = f"{work}/ft"
        loss = finetune.finetune(ft, 300)
        runs = golden(build, work, ft)
        ids = torch.randint(3, 384, (4, 24), generator=torch.Generator().manual_seed(1))
        ref, _ = peft_logits(ft, None, ids)
        base, _ = peft_logits(f"{MODELS}/tiny-llama", None, ids)
        lines += ["### Extraction from a full fine-tune of tiny-llama", "",
                  f"finetune.py: all weights, 300 AdamW steps (lr 1e-3), final loss {loss:.4f}; adapters by "
                  "`loraextract --embed --keep-other --dtype fp32 --rank R` (norms in modules_to_save), loaded by "
                  "PeftModel.from_pretrained on the float32 base; logits on 4 x 24 tokens against the fine-tune's "
                  "(float32).", "",
                  "| rank | max \\|logit error\\| | mean \\|logit error\\| |", "|---|---|---|",
                  f"| 0 (base alone) | {(base - ref).abs().max():.4g} | {(base - ref).abs().mean():.4g} |"]
        prev = None
        for label in ("1", "4", "16", "full"):
            lg, _ = peft_logits(f"{MODELS}/tiny-llama", runs[label], ids)
            e = float((lg - ref).abs().max())
            lines.append(f"| {label} | {e:.4g} | {float((lg - ref).abs().mean()):.4g} |")
            if prev is not None:
                check(e <= prev * 1.05, f"logit error at rank {label} ({e:.4g}) above the lower rank's ({prev:.4g})")
            prev = e
        check(prev < 1e-3, f"the full-rank adapter's logits differ from the fine-tune's by {prev:.4g}")
        # --correct
        import bitsandbytes as bnb
        q, fl = f"{MODELS}/tiny-llama-nf4", f"{MODELS}/tiny-llama"
        w16 = f64(f"{fl}/model.safetensors")
        ref16, _ = peft_logits(fl, None, ids, fourbit=True)
        lines += ["", "### --correct: tiny-llama-nf4 towards tiny-llama (bf16)", "",
                  "`loraextract --correct fixtures/models/tiny-llama-nf4 fixtures/models/tiny-llama --rank R` "
                  "(bf16 factors); PEFT loads the adapter on the 4-bit model (bitsandbytes CPU backend, bf16); "
                  "weight error = sqrt(sum over the 14 linear weights of ||W - (dequant(Q) + B A)||^2) over "
                  "that of ||W - dequant(Q)||, dequant by bitsandbytes' dequantize_4bit; logits against the bf16 "
                  "model's.", "",
                  "| rank | weight error (relative to the 4-bit error) | weight error (relative to \\|W\\|) | "
                  "max \\|logit error\\| | mean \\|logit error\\| |", "|---|---|---|---|---|"]
        prev = None
        for rank in (0, 4, 16, 64):
            ad = None
            if rank:
                ad = f"{work}/corr_{rank}"
                extract(build, ["--correct", "--rank", str(rank), q, fl], ad)
            lg, model = peft_logits(q, ad, ids, fourbit=True)
            num = den = wn = 0.0
            for name, mod in model.named_modules():
                if not isinstance(mod, bnb.nn.Linear4bit):
                    continue
                key = name.replace("base_model.model.", "")
                w = bnb.functional.dequantize_4bit(mod.weight.data, mod.weight.quant_state).double().numpy()
                parent = None
                if ad:
                    parent = model.get_submodule(name.rsplit(".base_layer", 1)[0])
                    a = parent.lora_A["default"].weight.double().detach().numpy()
                    b = parent.lora_B["default"].weight.double().detach().numpy()
                    w = w + b @ a
                ref_w = w16[key.replace(".base_layer", "") + ".weight"]
                num += np.sum((ref_w - w) ** 2)
                wn += np.sum(ref_w ** 2)
                if not ad:
                    den += np.sum((ref_w - w) ** 2)
            if not ad:
                den0 = den
            rel = np.sqrt(num / den0)
            e = float((lg - ref16).abs().max())
            lines.append(f"| {rank or '0 (4-bit alone)'} | {rel:.4f} | {np.sqrt(num / wn):.4g} | {e:.4g} | "
                         f"{float((lg - ref16).abs().mean()):.4g} |")
            if prev is not None:
                check(rel < prev, f"--correct rank {rank}: weight error {rel:.4f} not below the lower rank's {prev:.4f}")
            prev = rel
    print("\n".join(lines))
    if results:
        with open(results, "w") as f:
            f.write("# loraextract: measured (tests/extract/check.py)\n\n"
                    "Made by `tests/extract/run.sh build --results tests/extract/RESULTS.md` (CPU, torch "
                    f"{torch.__version__}); the golden checks of every module passed on this run.\n\n")
            f.write("\n".join(lines) + "\n")
    if failures:
        print(f"{len(failures)} checks failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
