"""loramerge end to end on the GPU machine (DESIGN.md's anchor: PEFT load, merge_and_unload, save of the
1.07B synthetic model with an r=64 all-linear adapter), page cache warm, in the same run: PEFT itself on
the GPU, `cat` of the input, reading the input and writing and syncing as many bytes, and loramerge with
--device cuda and --device cpu (outputs compared byte for byte), with the peak memory of each.

    python3 tests/gpu/bench_loramerge.py LORAMERGE MODEL_DIR WORK
"""
import filecmp
import json
import os
import subprocess
import sys
import time

import torch
from safetensors.torch import save_file

lm, model, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
src = f"{model}/model.safetensors"
in_bytes = os.path.getsize(src)

# the adapter: r=64 on every linear layer of every block, float32 as PEFT keeps them
adapter = f"{work}/adapter"
os.makedirs(adapter, exist_ok=True)
h, inter, layers, r = 4096, 11008, 4, 64
g = torch.Generator(device="cuda").manual_seed(64)
shapes = {}
for i in range(layers):
    for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
        shapes[f"model.layers.{i}.self_attn.{n}"] = (h, h)
    shapes[f"model.layers.{i}.mlp.gate_proj"] = (inter, h)
    shapes[f"model.layers.{i}.mlp.up_proj"] = (inter, h)
    shapes[f"model.layers.{i}.mlp.down_proj"] = (h, inter)
tensors = {}
for m, (out, inp) in shapes.items():
    tensors[f"base_model.model.{m}.lora_A.weight"] = (torch.randn(r, inp, device="cuda", generator=g) * 0.01).cpu()
    tensors[f"base_model.model.{m}.lora_B.weight"] = (torch.randn(out, r, device="cuda", generator=g) * 0.01).cpu()
save_file(tensors, f"{adapter}/adapter_model.safetensors")
json.dump({"peft_type": "LORA", "r": r, "lora_alpha": 128, "target_modules": ["q_proj", "k_proj", "v_proj",
           "o_proj", "gate_proj", "up_proj", "down_proj"], "use_rslora": False, "use_dora": False,
           "lora_bias": False, "bias": "none", "init_lora_weights": True, "fan_in_fan_out": False,
           "modules_to_save": None, "task_type": "CAUSAL_LM", "base_model_name_or_path": model},
          open(f"{adapter}/adapter_config.json", "w"), indent=2)


def median_s(fn, runs):
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def cat():
    with open(src, "rb") as f:
        while f.read(1 << 24):
            pass


def io():
    with open(src, "rb") as f, open(f"{work}/io.tmp", "wb") as o:
        while True:
            b = f.read(1 << 24)
            if not b:
                break
            o.write(b)
        o.flush()
        os.fsync(o.fileno())
    os.remove(f"{work}/io.tmp")


def peak_mib(cmd):
    """Runs cmd under /usr/bin/time -v when present; returns its maximum resident set size in MiB."""
    if not os.path.exists("/usr/bin/time"):
        subprocess.run(cmd, check=True)
        return None
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], check=True, capture_output=True, text=True)
    for line in p.stderr.splitlines():
        if "Maximum resident set size" in line:
            return int(line.split()[-1]) // 1024
    return None


def loramerge(device, out):
    subprocess.run([lm, "-q", "-f", "--device", device, model, adapter, "-o", out], check=True)


def peft_merge():
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16, device_map="cuda")
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged.save_pretrained(f"{work}/peft")
    torch.cuda.synchronize()


cat()
t_cat = median_s(cat, 5)
t_io = median_s(io, 3)
peft_merge()  # warm: imports, CUDA context
t_peft = median_s(peft_merge, 3)
loramerge("cuda", f"{work}/gpu")
t_gpu = median_s(lambda: loramerge("cuda", f"{work}/gpu"), 3)
t_cpu = median_s(lambda: loramerge("cpu", f"{work}/cpu"), 3)
rss_gpu = peak_mib([lm, "-q", "-f", "--device", "cuda", model, adapter, "-o", f"{work}/gpu"])
rss_cpu = peak_mib([lm, "-q", "-f", "--device", "cpu", model, adapter, "-o", f"{work}/cpu"])
same = all(filecmp.cmp(f"{work}/gpu/{f}", f"{work}/cpu/{f}", shallow=False) for f in os.listdir(f"{work}/cpu"))
cmp = subprocess.run([os.path.join(os.path.dirname(lm), "stcmp"), "--ulps", "1", f"{work}/gpu", f"{work}/peft"],
                     capture_output=True, text=True)
print(f"loramerge end to end: {in_bytes} bytes of bf16, {len(shapes)} LoRA modules of rank {r}, "
      f"{os.cpu_count()} CPU cores, {torch.cuda.get_device_name()}")
print("| run | seconds | vs PEFT | vs cat | vs read + write | peak RSS |\n|---|---|---|---|---|---|")
print(f"| PEFT 0.21: load on the GPU, merge_and_unload, save_pretrained | {t_peft:.3f} | 1.00 | | | |")
print(f"| cat of the input | {t_cat:.3f} | | 1.00 | | |")
print(f"| read the input, write and sync as many bytes | {t_io:.3f} | | | 1.00 | |")
for name, t, rss in (("cuda", t_gpu, rss_gpu), ("cpu", t_cpu, rss_cpu)):
    print(f"| loramerge --device {name} | {t:.3f} | {t_peft / t:.2f}x faster | {t / t_cat:.2f} | {t / t_io:.2f} | "
          f"{rss} MiB |")
print(f"--device cuda and --device cpu outputs byte-identical: {same}")
print("against PEFT's merged model:", cmp.stdout.strip().splitlines()[-2:] if cmp.stdout else cmp.stderr)
sys.exit(0 if same else 1)
