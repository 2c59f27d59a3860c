"""conv1d.py BUILD: loraextract on GPT-2's Conv1D weights (stored [in, out]), loaded by PEFT (issue 16).

A tiny GPT-2 (2 layers, width 64, built from a config: no download) and its fine-tune on the CPU (150 AdamW
steps on fixed random tokens; the Conv1D weights c_attn, c_proj, c_fc and the LayerNorms trained, the
embeddings and biases frozen, so that a full-rank adapter can reproduce it: a bias of a factored module
cannot also be saved whole), both float32, in a temporary directory. loraextract --keep-other at ranks 2,
8 and full; PEFT's PeftModel.from_pretrained loads each adapter on the base (fan_in_fan_out, the norms in
modules_to_save), and:
- every Conv1D module's delta as PEFT computes it (get_delta_weight, in the stored [in, out] layout) is
  within 1e-4 relative of the Eckart-Young optimum of its rank against the fine-tune's change (numpy's
  float64 SVD), the rank the one asked for;
- the logits approach the fine-tune's as the rank grows, the full-rank adapter's within 1e-4.
Prints the table rank -> max |logit error|; exits 1 on a failed check.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAILED: {what}")


def make_models(work):
    import transformers
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=96, n_positions=32, n_embd=64, n_layer=2, n_head=4,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(cfg).float()
    model.save_pretrained(f"{work}/base", safe_serialization=True)
    for name, p in model.named_parameters():
        p.requires_grad = (name.endswith(".weight") and (".c_" in name or ".ln_" in name or name.endswith("ln_f.weight")))
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, cfg.vocab_size, (16, 24), generator=g)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0.0)
    model.train()
    for step in range(150):
        batch = data[(step * 4) % 16:(step * 4) % 16 + 4]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(f"{work}/ft", safe_serialization=True)
    return float(loss.detach())


def main():
    build = os.path.abspath(sys.argv[1])
    torch.set_num_threads(1)
    import transformers
    from peft import PeftModel
    from safetensors.torch import load_file
    with tempfile.TemporaryDirectory(prefix="lq-conv1d-") as work:
        loss = make_models(work)
        base_w = {k: v.double().numpy() for k, v in load_file(f"{work}/base/model.safetensors").items()}
        ft_w = {k: v.double().numpy() for k, v in load_file(f"{work}/ft/model.safetensors").items()}
        ids = torch.randint(0, 96, (3, 20), generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            ref = transformers.GPT2LMHeadModel.from_pretrained(f"{work}/ft").eval()(input_ids=ids).logits
            base_logits = transformers.GPT2LMHeadModel.from_pretrained(f"{work}/base").eval()(input_ids=ids).logits
        lines = ["| rank | max \\|logit error\\| | mean \\|logit error\\| |", "|---|---|---|",
                 f"| 0 (base alone) | {(base_logits - ref).abs().max():.4g} | {(base_logits - ref).abs().mean():.4g} |"]
        prev = None
        for rank in ("2", "8", "full"):
            out = f"{work}/ad_{rank}"
            r = subprocess.run([f"{build}/loraextract", "-q", "--json", "--keep-other", "--rank",
                                "100000" if rank == "full" else rank, f"{work}/base", f"{work}/ft", "-o", out],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"loraextract --rank {rank}: {r.stderr}")
            rep = json.loads(r.stdout)
            cfg = json.load(open(f"{out}/adapter_config.json"))
            check(cfg.get("fan_in_fan_out") is True, f"rank {rank}: fan_in_fan_out is {cfg.get('fan_in_fan_out')}")
            kinds = {m["kind"] for m in rep["modules"]}
            check(kinds == {"conv1d"}, f"rank {rank}: module kinds {kinds}")
            check(len(rep["modules"]) == 8, f"rank {rank}: {len(rep['modules'])} modules, expected the 8 Conv1D")
            base = transformers.GPT2LMHeadModel.from_pretrained(f"{work}/base").eval()
            model = PeftModel.from_pretrained(base, out).eval()
            worst = 0.0
            for m in rep["modules"]:
                name = m["module"]
                layer = model.get_submodule("base_model.model." + name)
                delta = layer.get_delta_weight("default").double().detach().numpy()  # stored [in, out]
                d = ft_w[name + ".weight"] - base_w[name + ".weight"]
                check(delta.shape == d.shape, f"rank {rank}: {name}: PEFT's delta {delta.shape}, the change {d.shape}")
                s = np.linalg.svd(d, compute_uv=False)
                want = min(100000 if rank == "full" else int(rank), len(s))
                check(layer.r["default"] == want == m["rank"], f"rank {rank}: {name}: rank {layer.r['default']}")
                nrm = np.linalg.norm(d)
                err = np.linalg.norm(d - delta) / nrm
                opt = np.sqrt(np.sum(s[want:] ** 2)) / nrm
                check(err <= opt * (1 + 1e-4) + (1e-4 if opt == 0 else 0),
                      f"rank {rank}: {name}: error {err:.9g} against the optimum {opt:.9g}")
                worst = max(worst, (err - opt) / opt if opt else err)
            with torch.no_grad():
                lg = model(input_ids=ids).logits
            e = float((lg - ref).abs().max())
            lines.append(f"| {rank} | {e:.4g} | {float((lg - ref).abs().mean()):.4g} |")
            print(f"conv1d rank {rank}: {len(rep['modules'])} Conv1D modules, worst excess over Eckart-Young "
                  f"{worst:.2e} {'(absolute)' if rank == 'full' else '(relative)'}; PEFT loads it")
            if prev is not None:
                check(e <= prev * 1.05, f"logit error at rank {rank} ({e:.4g}) above the lower rank's ({prev:.4g})")
            prev = e
        check(prev < 1e-4, f"the full-rank adapter's logits differ from the fine-tune's by {prev:.4g}")
        print(f"\n### GPT-2 Conv1D (tests/extract/conv1d.py)\n\nA tiny GPT-2 (2 layers, width 64) fine-tuned on "
              f"its Conv1D weights and LayerNorms (150 AdamW steps, final loss {loss:.4f}); adapters by "
              "`loraextract --keep-other --rank R` (float32 factors, fan_in_fan_out, the LayerNorms in "
              "modules_to_save), loaded by PeftModel.from_pretrained on the float32 base; logits on 3 x 20 tokens "
              "against the fine-tune's.\n")
        print("\n".join(lines))
    if failures:
        print(f"{len(failures)} checks failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
