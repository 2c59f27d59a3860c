"""nf4quant end to end on the GPU machine, page cache warm: against `cat` of the input and against reading
the input and writing (and syncing) as many bytes as the output has; --device cuda and --device cpu
outputs compared byte for byte; peak memory of the GPU run.

    python3 tests/gpu/bench_e2e.py NF4QUANT MODEL_DIR WORK
"""
import filecmp
import os
import resource
import subprocess
import sys
import time

nq, model, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
src = f"{model}/model.safetensors"
in_bytes = os.path.getsize(src)


def median_s(fn, runs):
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def run(*args):
    subprocess.run([nq, "-q", "-f", *args], check=True)


def cat():
    with open(src, "rb") as f:
        while f.read(1 << 24):
            pass


cat()
t_cat = median_s(cat, 5)
run("--device", "cuda", model, "-o", f"{work}/gpu")
out_bytes = sum(os.path.getsize(f"{work}/gpu/{f}") for f in os.listdir(f"{work}/gpu"))


def io():
    with open(src, "rb") as f, open(f"{work}/io.tmp", "wb") as g:
        left = out_bytes
        while True:
            b = f.read(1 << 24)
            if not b:
                break
            if left > 0:
                g.write(b[:left])
                left -= len(b[:left])
        g.flush()
        os.fsync(g.fileno())
    os.remove(f"{work}/io.tmp")


t_io = median_s(io, 3)
t_gpu = median_s(lambda: run("--device", "cuda", model, "-o", f"{work}/gpu"), 3)
t_cpu = median_s(lambda: run("--device", "cpu", model, "-o", f"{work}/cpu"), 3)
before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
run("--device", "cuda", model, "-o", f"{work}/gpu")
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
same = all(filecmp.cmp(f"{work}/gpu/{f}", f"{work}/cpu/{f}", shallow=False) for f in os.listdir(f"{work}/gpu"))
print(f"nf4quant end to end: {in_bytes} bytes of bf16 in, {out_bytes} out, {os.cpu_count()} CPU cores")
print("| run | seconds | GB/s of input | vs cat | vs read + write |\n|---|---|---|---|---|")
print(f"| cat of the input | {t_cat:.3f} | {in_bytes / t_cat / 1e9:.2f} | 1.00 | |")
print(f"| read input, write and sync the output's bytes | {t_io:.3f} | | | 1.00 |")
for name, t in (("cuda", t_gpu), ("cpu", t_cpu)):
    print(f"| nf4quant --device {name} | {t:.3f} | {in_bytes / t / 1e9:.2f} | {t / t_cat:.2f} | {t / t_io:.2f} |")
print(f"peak RSS of the children so far: {rss // 1024} MiB (before the last run: {before // 1024} MiB)")
print(f"--device cuda and --device cpu outputs byte-identical: {same}")
sys.exit(0 if same else 1)
