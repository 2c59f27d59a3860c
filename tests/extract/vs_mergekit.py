"""vs_mergekit.py BUILD BASE FT WORK RANK [REGEX]: loraextract and mergekit's mergekit-extract-lora side by
side on one model pair, one run each: seconds, peak RSS, and every common module's error ||dW - s B A|| /
||dW|| (float64, from the files, s = lora_alpha / r of the module) against the Eckart-Young optimum of its
rank. loraextract runs as `--rank R --split sqrt --keep-other` (mergekit's defaults: the square roots of
the singular values on both factors, the other changed tensors saved whole); mergekit as
`--max-rank R` on the CPU (REGEX: its --include-regex, for a pair where only those modules differ).
Prints a Markdown table. Not part of `make check` or CI: mergekit is installed by hand, e.g.

    pip install --no-deps --target /tmp/mk mergekit immutables   # its other needs are in ./setup's .venv
    MERGEKIT_PATH=/tmp/mk .venv/bin/python tests/extract/vs_mergekit.py build BASE FT /tmp/w 16

Says SKIP and exits 0 when mergekit cannot be imported.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file


def timed(cmd, env):
    """(seconds, peak RSS MiB) of cmd, under GNU time when present."""
    t = time.time()
    if os.path.exists("/usr/bin/time"):
        r = subprocess.run(["/usr/bin/time", "-f", "RSS %M", *cmd], env=env, capture_output=True, text=True)
        rss = int([x for x in r.stderr.splitlines() if x.startswith("RSS ")][-1].split()[1]) // 1024
    else:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        rss = -1
    if r.returncode != 0:
        raise SystemExit(f"{cmd[0]}: exit {r.returncode}: {r.stderr[-2000:]}")
    return time.time() - t, rss


def weights(path):
    files = [f for f in os.listdir(path) if f.endswith(".safetensors")]
    out = {}
    for f in files:
        out.update({k: v.double().numpy() for k, v in load_file(f"{path}/{f}").items()})
    return out


def products(adapter):
    """{module: scale * B @ A} of a PEFT LoRA adapter directory (Linear modules)."""
    cfg = json.load(open(f"{adapter}/adapter_config.json"))
    t = {k: v.double().numpy() for k, v in load_file(f"{adapter}/adapter_model.safetensors").items()}
    out = {}
    for k, a in t.items():
        if not k.endswith(".lora_A.weight"):
            continue
        name = k[:-len(".lora_A.weight")].replace("base_model.model.", "", 1)
        b = t[k.replace("lora_A", "lora_B")]
        r = a.shape[0]
        short = name.rsplit(".", 1)[-1]
        alpha = cfg.get("alpha_pattern", {}).get(name, cfg.get("alpha_pattern", {}).get(short, cfg["lora_alpha"]))
        rank = cfg.get("rank_pattern", {}).get(name, cfg.get("rank_pattern", {}).get(short, cfg["r"]))
        assert rank == r, f"{name}: rank {r}, config {rank}"
        out[name] = (alpha / r) * (b @ a)
    return out


def main():
    build, base, ft, work, rank = sys.argv[1:6]
    regex = sys.argv[6] if len(sys.argv) > 6 else None
    mk = os.environ.get("MERGEKIT_PATH", "")
    env = dict(os.environ, PYTHONPATH=mk + (":" + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if subprocess.run([sys.executable, "-c", "import mergekit.scripts.extract_lora"], env=env,
                      capture_output=True).returncode != 0:
        print("vs_mergekit: SKIP: mergekit cannot be imported (MERGEKIT_PATH)")
        return 0
    version = subprocess.run([sys.executable, "-c", "import importlib.metadata as m; print(m.version('mergekit'))"],
                             env=env, capture_output=True, text=True).stdout.strip()
    os.makedirs(work, exist_ok=True)
    lx_out, mk_out = f"{work}/loraextract", f"{work}/mergekit"
    lx_cmd = [f"{build}/loraextract", "-q", "-f", "--rank", rank, "--split", "sqrt", "--keep-other", base, ft,
              "-o", lx_out]
    mk_cmd = [sys.executable, "-c", "from mergekit.scripts.extract_lora import main; main()", "--model", ft,
              "--base-model", base, "--out-path", mk_out, "--max-rank", rank, "--quiet"]
    if regex:
        mk_cmd += ["--include-regex", regex]
    runs = {"loraextract": timed(lx_cmd, env), f"mergekit {version}": timed(mk_cmd, env)}
    t_import, _ = timed([sys.executable, "-c", "import mergekit.scripts.extract_lora"], env)
    wb, wf = weights(base), weights(ft)
    prods = {"loraextract": products(lx_out), f"mergekit {version}": products(mk_out)}
    common = sorted(set.intersection(*(set(p) for p in prods.values())))
    rows = []
    for tool, (sec, rss) in runs.items():
        excess, errs = [], []
        for name in common:
            d = wf[name + ".weight"] - wb[name + ".weight"]
            s = np.linalg.svd(d, compute_uv=False)
            k = prods[tool][name]
            rk = int(rank) if int(rank) < len(s) else len(s)
            nrm = np.linalg.norm(d)
            err = np.linalg.norm(d - k) / nrm
            opt = np.sqrt(np.sum(s[rk:] ** 2)) / nrm
            errs.append(err)
            excess.append((err - opt) / opt if opt > 0 else err)
        rows.append(f"| {tool} | {sec:.2f} | {rss} | {len(common)} | {max(excess):.2e} | {np.median(errs):.4f} |")
    print(f"Rank {rank}; {len(common)} modules in both adapters; mergekit's import alone: {t_import:.2f} s; "
          f"torch {torch.__version__} (mergekit's SVD: torch.linalg.svd in float32 on the CPU, "
          f"{torch.get_num_threads()} threads).\n")
    print("| tool | seconds | peak RSS (MiB) | modules | worst error excess over Eckart-Young (relative) | "
          "median error |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nloraextract: `{' '.join(lx_cmd)}`  \nmergekit: `mergekit-extract-lora {' '.join(mk_cmd[3:])}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
