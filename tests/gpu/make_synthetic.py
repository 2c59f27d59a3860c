"""Writes DESIGN.md's benchmark model on the GPU machine, fast (torch): Llama-7B widths, 4 layers,
1.07e9 parameters, 2.14 GB of bf16, untied lm_head. Same shapes as tests/bench/gen_model.c.

    python3 tests/gpu/make_synthetic.py DIR
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

d = sys.argv[1]
os.makedirs(d, exist_ok=True)
g = torch.Generator(device="cuda").manual_seed(7)
h, inter, vocab, layers = 4096, 11008, 32000, 4
t = {"model.embed_tokens.weight": (vocab, h), "model.norm.weight": (h,), "lm_head.weight": (vocab, h)}
for i in range(layers):
    p = f"model.layers.{i}."
    for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
        t[p + f"self_attn.{n}.weight"] = (h, h)
    t[p + "mlp.gate_proj.weight"] = (inter, h)
    t[p + "mlp.up_proj.weight"] = (inter, h)
    t[p + "mlp.down_proj.weight"] = (h, inter)
    t[p + "input_layernorm.weight"] = (h,)
    t[p + "post_attention_layernorm.weight"] = (h,)
tensors = {k: (torch.randn(*s, device="cuda", generator=g) * (0.02 if len(s) == 2 else 1.0)).to(torch.bfloat16).cpu()
           for k, s in t.items()}
save_file(tensors, f"{d}/model.safetensors", metadata={"format": "pt"})
json.dump({"architectures": ["LlamaForCausalLM"], "dtype": "bfloat16", "hidden_size": h, "intermediate_size": inter,
           "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": layers, "num_key_value_heads": 32,
           "rms_norm_eps": 1e-05, "tie_word_embeddings": False, "vocab_size": vocab},
          open(f"{d}/config.json", "w"), indent=2, sort_keys=True)
print(f"make_synthetic: {d}: {sum(v.numel() for v in tensors.values())} parameters")
