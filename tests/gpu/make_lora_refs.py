"""PEFT references for the adapter features that shared/reference/lora lacks, made on the GPU machine.

    python3 tests/gpu/make_lora_refs.py OUTDIR

Writes under OUTDIR (copied into fixtures/peft/ afterwards, see fixtures/peft/README.md):
  models/tiny-qwen2/       a tiny Qwen2 (q/k/v projections with biases), bf16
  models/tiny-gpt2/        a tiny GPT-2 (Conv1D layers, stored [in, out]), bf16
  adapters/tokens_r4/      LoRA on q_proj + trainable_token_indices on the tied embedding of tiny-llama
  adapters/bias_r8/        LoRA with lora_bias on q/k/v of tiny-qwen2
  adapters/gpt2_r4/        LoRA on GPT-2's c_attn, c_proj, c_fc (Conv1D, fan_in_fan_out)
  merged/<name>/           merge_and_unload() of each, on the GPU, saved with save_pretrained
The adapters are trained-looking: init_lora_weights=False, and the trainable tokens and LoRA biases moved
away from their initial values, so that every feature changes the merged weights.
"""
import os, sys
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM
from peft import LoraConfig, PeftModel, get_peft_model

out = sys.argv[1]
top = os.path.dirname(os.path.abspath(__file__)) + "/../.."
dev = "cuda"
torch.manual_seed(20261128)

# the base models
qwen = Qwen2ForCausalLM(Qwen2Config(vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                    tie_word_embeddings=False)).to(torch.bfloat16)
with torch.no_grad():  # Qwen2 initializes biases to zero: make them count
    for n, p in qwen.named_parameters():
        if n.endswith("bias"):
            p.add_(torch.randn_like(p) * 0.05)
qwen.save_pretrained(f"{out}/models/tiny-qwen2")
gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=128, n_embd=64, n_layer=2, n_head=4)).to(torch.bfloat16)
gpt2.save_pretrained(f"{out}/models/tiny-gpt2")
bases = {"tiny-llama": f"{top}/fixtures/models/tiny-llama", "tiny-qwen2": f"{out}/models/tiny-qwen2",
         "tiny-gpt2": f"{out}/models/tiny-gpt2"}

adapters = {
    "tokens_r4": ("tiny-llama", dict(r=4, lora_alpha=8, target_modules=["q_proj"],
                                     trainable_token_indices=[1, 5, 300, 383])),
    "bias_r8": ("tiny-qwen2", dict(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj"],
                                   lora_bias=True)),
    "gpt2_r4": ("tiny-gpt2", dict(r=4, lora_alpha=16, target_modules=["c_attn", "c_proj", "c_fc"],
                                  fan_in_fan_out=True)),
}
for name, (base_name, kw) in adapters.items():
    torch.manual_seed(sum(map(ord, name)))
    base = AutoModelForCausalLM.from_pretrained(bases[base_name], dtype=torch.bfloat16, device_map=dev)
    pm = get_peft_model(base, LoraConfig(init_lora_weights=False, **kw))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "trainable_tokens_delta" in n or ("lora_B" in n and n.endswith("bias")):
                p.add_(torch.randn_like(p) * 0.05)
    pm.save_pretrained(f"{out}/adapters/{name}")
    base = AutoModelForCausalLM.from_pretrained(bases[base_name], dtype=torch.bfloat16, device_map=dev)
    merged = PeftModel.from_pretrained(base, f"{out}/adapters/{name}").merge_and_unload()
    merged.save_pretrained(f"{out}/merged/{name}")
    print("adapter", name, "done", flush=True)
for d in os.listdir(f"{out}/adapters"):
    for f in os.listdir(f"{out}/adapters/{d}"):
        if f == "README.md":
            os.remove(f"{out}/adapters/{d}/{f}")
print("all done")
