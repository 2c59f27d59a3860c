"""PEFT references for DoRA on embeddings, Linear and GPT-2 Conv1D layers, made on the CPU with the project's venv.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python tests/interop/make_dora_refs.py OUTDIR

Writes under OUTDIR (copied into fixtures/peft/ afterwards, see fixtures/peft/README.md), the same bytes on
every run:
  adapters/dora_embed_r4/                 a DoRA adapter (r 4, alpha 8) on tiny-llama's embed_tokens (PEFT's
                                          DoraEmbeddingVariant: the magnitude scales the embedding's columns)
                                          and on layers.0.self_attn.k_proj (DoraLinearVariant: its rows)
  merged/dora_embed_r4__bf16base.safetensors   merge_and_unload() into models/tiny-llama as it is (bf16)
  merged/dora_embed_r4__fp32base.safetensors   the same into tiny-llama loaded as float32 (exact upcast)
  adapters/dora_gpt2_r4/                  DoRA (r 4, alpha 8, fan_in_fan_out) on tiny-gpt2's c_attn and c_proj,
                                          Conv1D weights stored [in, out]: PEFT norms their transpose, so the
                                          magnitude scales columns
  merged/dora_gpt2_r4__bf16base.safetensors    merge_and_unload() into models/tiny-gpt2 (bf16)
The merged files hold only the weights the merge changed, as the shared reference's do. The adapters are
trained-looking: init_lora_weights=False, and the magnitudes moved away from the weight norms PEFT
initializes them to (otherwise every DoRA factor would be exactly 1).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM
from peft import LoraConfig, PeftModel, get_peft_model

out = sys.argv[1]
top = os.path.dirname(os.path.abspath(__file__)) + "/../.."


def make(name, base_name, changed, dtypes, seed, **kw):
    base_dir = f"{top}/fixtures/models/{base_name}"
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.bfloat16)
    pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, use_dora=True, init_lora_weights=False, **kw))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_magnitude_vector" in n:
                p.mul_(1 + 0.1 * torch.randn_like(p))
    pm.save_pretrained(f"{out}/adapters/{name}", save_embedding_layers=False)
    os.remove(f"{out}/adapters/{name}/README.md")
    # the same bytes on every run: target_modules is a set, the base's path is this machine's
    with open(f"{out}/adapters/{name}/adapter_config.json") as f:
        ac = json.load(f)
    ac["target_modules"] = sorted(ac["target_modules"])
    ac["base_model_name_or_path"] = f"models/{base_name}"
    with open(f"{out}/adapters/{name}/adapter_config.json", "w") as f:
        json.dump(ac, f, indent=2, sort_keys=True)
        f.write("\n")
    os.makedirs(f"{out}/merged", exist_ok=True)
    for tag, dtype in dtypes:
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype)
        merged = PeftModel.from_pretrained(base, f"{out}/adapters/{name}").merge_and_unload()
        sd = merged.state_dict()
        keep = [k for k in sd if changed(k)]
        save_file({k: sd[k].contiguous() for k in keep}, f"{out}/merged/{name}__{tag}.safetensors",
                  metadata={"format": "pt"})
        print(name, tag, "done", flush=True)


both = (("bf16base", torch.bfloat16), ("fp32base", torch.float32))
make("dora_embed_r4", "tiny-llama",
     lambda k: k in ("model.embed_tokens.weight", "model.layers.0.self_attn.k_proj.weight"), both, 20261207,
     target_modules=["embed_tokens", "model.layers.0.self_attn.k_proj"])
make("dora_gpt2_r4", "tiny-gpt2", lambda k: k.endswith((".c_attn.weight", ".c_proj.weight")),
     both[:1], 20261208, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True)
