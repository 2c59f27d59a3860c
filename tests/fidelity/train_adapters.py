"""train_adapters.py: trains the four QLoRA adapters of fixtures/fidelity/ (issue 14's evidence) on the CPU.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python tests/fidelity/train_adapters.py BUILD [OUTDIR]

BUILD is a build directory with nf4quant (it makes the MiniLM bases in BUILD/fidelity/, see common.py);
OUTDIR defaults to fixtures/fidelity. PEFT 0.21 + bitsandbytes 0.50.2's CPU backend + transformers 5.25:
the base is the NF4 checkpoint (nf4, double quantization, blocksize 64, bf16), loaded pre-quantized, in
bf16, the 4-bit layers' AVX512-BF16 path off; LoRA (dropout 0) trained with AdamW (no weight decay),
full batch, seed 0, one thread, in eval mode (no dropout anywhere), so every run gives the same adapters.

- tiny-llama (2 layers, hidden 128, random weights): LoRA r 8, alpha 16 on every linear projection
  (q/k/v/o, gate/up/down); the task: memorise 4 sequences of 16 random token ids (next-token cross
  entropy), 300 steps.
- all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384): LoRA r 4, alpha 8 on query, key, value and
  attention.output.dense (the FFN's dense layers left out to keep the fixture small); the task: pair
  8 sentences with 8 unrelated ones by a fixed permutation (cross entropy over 20 * the cosine similarity
  of the mean-pooled embeddings, both directions), 200 steps.
Each at a normal learning rate (1e-3 tiny, 5e-4 MiniLM: the trained answer appears) and at 1e-7 (the
change stays far below the 4-bit quantization step). The adapters are saved with their tensors in bf16
(to keep the fixtures small: r x (in + out) values per module) and what PEFT writes in adapter_config.json,
target_modules sorted; the inputs in OUTDIR/tasks.json. Prints each adapter's loss and how much of the
trained answer the unmerged model gives, before and after.
"""
import json
import os
import random
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

QUERIES = ["my cat sleeps on the sofa", "the dog barks at night", "a horse runs in the field",
           "the bird sings in the morning", "fish swim in the river", "a cow eats grass",
           "the mouse hides in the wall", "a snake lies in the sun"]
KEYS = ["the stock market fell today", "she plays the violin", "rain is expected tomorrow",
        "he repaired the old car", "the train leaves at noon", "we painted the kitchen blue",
        "the book has ten chapters", "they won the football match"]


def make_tasks(minilm_dir):
    from transformers import AutoTokenizer
    rng = random.Random(14)
    seqs = [[rng.randrange(3, 384) for _ in range(16)] for _ in range(4)]
    pairing = list(range(8))
    rng.shuffle(pairing)
    tok = AutoTokenizer.from_pretrained(minilm_dir)

    def enc(s):
        e = tok(s, padding=True)
        return {"input_ids": e["input_ids"], "attention_mask": e["attention_mask"]}
    return {"tiny": {"sequences": seqs},
            "minilm": {"queries_text": QUERIES, "keys_text": KEYS, "pairing": pairing,
                       "queries": enc(QUERIES), "keys": enc(KEYS)}}


def loss_of(kind, lg, task):
    ans = common.answer(kind, task)
    if kind == "tiny":
        return torch.nn.functional.cross_entropy(lg[:, :-1].reshape(-1, lg.shape[-1]), ans.reshape(-1))
    inv = torch.argsort(ans)
    return 0.5 * (torch.nn.functional.cross_entropy(lg, ans) + torch.nn.functional.cross_entropy(lg.T, inv))


def accuracy(kind, lg, task):
    return (common.predicted(kind, lg) == common.answer(kind, task)).float().mean().item()


def train(name, kind, lr, base, task, outdir):
    torch.manual_seed(0)
    model = common.load(base)
    if kind == "tiny":
        cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                         "down_proj"])
        steps = 300
    else:
        cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                         target_modules=["query", "key", "value", "attention.output.dense"])
        steps = 200
    pm = common.no_avx512bf16(get_peft_model(model, cfg))
    pm.eval()
    params = [p for p in pm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    with torch.no_grad():
        acc0 = accuracy(kind, common.logits(pm, kind, task), task)
    for step in range(steps):
        opt.zero_grad()
        loss = loss_of(kind, common.logits(pm, kind, task), task)
        loss.backward()
        opt.step()
        if step == 0:
            loss0 = loss.item()
    with torch.no_grad():
        lg = common.logits(pm, kind, task)
        acc1 = accuracy(kind, lg, task)
        loss1 = loss_of(kind, lg, task).item()
    out = f"{outdir}/{name}"
    pm.save_pretrained(out)
    for extra in ("README.md",):
        if os.path.exists(f"{out}/{extra}"):
            os.remove(f"{out}/{extra}")
    sd = load_file(f"{out}/adapter_model.safetensors")
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in sorted(sd.items())},
              f"{out}/adapter_model.safetensors", metadata={"format": "pt"})
    with open(f"{out}/adapter_config.json") as f:
        ac = json.load(f)
    ac["target_modules"] = sorted(ac["target_modules"])
    ac["base_model_name_or_path"] = {"tiny": "fixtures/models/tiny-llama-nf4",
                                     "minilm": "all_minilm_l6_v2 (bf16, nf4quant)"}[kind]
    with open(f"{out}/adapter_config.json", "w") as f:
        json.dump(ac, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"{name}: lr {lr:g}, {steps} steps: loss {loss0:.4f} -> {loss1:.4f}, "
          f"trained answer {acc0:.3f} -> {acc1:.3f} (in training, fp32 adapter)", flush=True)


def main():
    build = os.path.abspath(sys.argv[1])
    outdir = sys.argv[2] if len(sys.argv) > 2 else common.FIX
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    common.prepare_minilm(build)
    b = common.bases(build)
    os.makedirs(outdir, exist_ok=True)
    task = make_tasks(b["minilm"][0])
    with open(f"{outdir}/tasks.json", "w") as f:
        json.dump(task, f, separators=(",", ":"))
        f.write("\n")
    for name, kind, lr in common.ADAPTERS:
        train(name, kind, lr, b[kind][1], task, outdir)


if __name__ == "__main__":
    main()
