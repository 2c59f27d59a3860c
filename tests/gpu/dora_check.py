"""loramerge's DoRA merges against PEFT's merge_and_unload() on this GPU, in bf16 and fp32.

    python3 tests/gpu/dora_check.py LORAMERGE STCMP WORKDIR

For each DoRA adapter of fixtures/peft (dora_r8: q_proj, v_proj, down_proj of tiny-llama, norms of rows;
dora_embed_r4: embed_tokens, norms of the embedding's columns, and k_proj; dora_gpt2_r4: GPT-2's Conv1D
c_attn and c_proj, norms of columns), into its base as it is (bf16) and loaded as float32: PEFT merges on
CUDA and saves the model; loramerge merges on the GPU (--device cuda) and on the CPU. The two loramerge
outputs must be byte-identical, and equal to PEFT's by the project's rule (stcmp --ulps 1: one unit in
the last place, at least 99.9 % of the elements identical), in fp32 too: loramerge adds DoRA's norms in
the order of torch's CUDA reduction (libquant/torch_norm.h; tests/gpu/torch_norm_check.py checks the
norms themselves), so what is left is the order of cuBLAS's B @ A, as for plain LoRA. Against PEFT on
the CPU the fp32 merges differ more (man/loramerge.1, tests/cli/cases/lm_golden_dora.sh).

Prints each case's stcmp summary; exit status 0 when all pass, 1 otherwise, 2 when the check could not run.
"""
import os
import subprocess
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

CASES = [("dora_r8", "tiny-llama"), ("dora_embed_r4", "tiny-llama"), ("dora_gpt2_r4", "tiny-gpt2")]


def main():
    if len(sys.argv) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    lm, stcmp, work = sys.argv[1:]
    if not torch.cuda.is_available():
        print("dora_check: no CUDA device", file=sys.stderr)
        return 2
    top = os.path.abspath(os.path.dirname(os.path.abspath(__file__)) + "/../..")
    os.makedirs(work, exist_ok=True)
    failed = 0
    for name, base_name in CASES:
        adapter = f"{top}/fixtures/peft/adapters/{name}"
        for tag, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
            base = f"{top}/fixtures/models/{base_name}"
            if dtype == torch.float32:  # the base upcast exactly, as loramerge's input
                base = f"{work}/{base_name}-fp32"
                if not os.path.isdir(base):
                    AutoModelForCausalLM.from_pretrained(f"{top}/fixtures/models/{base_name}",
                                                         dtype=torch.float32).save_pretrained(base)
            peft_out = f"{work}/peft-{name}-{tag}"
            model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, device_map="cuda")
            PeftModel.from_pretrained(model, adapter).merge_and_unload().save_pretrained(peft_out)
            outs = {}
            for device in ("cuda", "cpu"):
                outs[device] = f"{work}/lm-{name}-{tag}-{device}"
                subprocess.run([lm, "-q", "-f", "--device", device, base, adapter, "-o", outs[device]], check=True)
            same = subprocess.run(["cmp", f"{outs['cuda']}/model.safetensors", f"{outs['cpu']}/model.safetensors"],
                                  capture_output=True).returncode == 0
            r = subprocess.run([stcmp, "--subset", "--ulps", "1", outs["cuda"], peft_out], capture_output=True, text=True)
            summary = " ".join(line for line in r.stdout.splitlines() if line.startswith("float elements"))
            ok = same and r.returncode == 0
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name} {tag}: cuda {'=' if same else '!='} cpu; against PEFT on CUDA: "
                  f"{summary or r.stdout.strip()}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
