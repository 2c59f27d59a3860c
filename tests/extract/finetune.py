"""finetune.py OUT [STEPS]: a full fine-tune of fixtures/models/tiny-llama on the CPU, every weight trained
(embeddings, norms and all linear layers), written to OUT as a bf16 model directory like the base.

Deterministic: one thread, a fixed seed, fixed random token sequences to memorise (next-token loss),
AdamW at lr 1e-3. The weights it gives may differ in the last bits between machines (torch's CPU kernels);
the tests compare loraextract with numpy on the files this run wrote, never with stored numbers.
"""
import json
import os
import shutil
import sys

import torch

top = os.path.normpath(os.path.dirname(os.path.abspath(__file__)) + "/../..")
BASE = f"{top}/fixtures/models/tiny-llama"


def finetune(out, steps=300):
    import transformers
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = transformers.LlamaForCausalLM.from_pretrained(BASE, dtype=torch.float32)
    model.train()
    g = torch.Generator().manual_seed(1)
    data = torch.randint(3, model.config.vocab_size, (32, 24), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    for step in range(steps):
        batch = data[(step * 8) % 32:(step * 8) % 32 + 8]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model = model.to(torch.bfloat16)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for name in ("generation_config.json",):
        shutil.copy(f"{BASE}/{name}", out)
    return float(loss.detach())


if __name__ == "__main__":
    loss = finetune(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
    print(json.dumps({"final_loss": loss}))
