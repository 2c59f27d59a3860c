"""bitsandbytes' own quantize_4bit / dequantize_4bit on the shapes of one Llama-7B layer, timed like
tests/bench/bench_gpu.cu (CUDA events, median of 20 after 3 warm-ups), for the same table.

    PYTHONPATH=<bitsandbytes> python3 tests/gpu/bench_bnb.py
"""
import torch
import bitsandbytes.functional as F

shapes = [(4096, 4096)] * 4 + [(11008, 4096), (11008, 4096), (4096, 11008)]
ws = [(torch.randn(*s, device="cuda") * 0.02).to(torch.bfloat16) for s in shapes]
p = sum(w.numel() for w in ws)


def median_ms(fn):
    ts = []
    for i in range(23):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        if i >= 3:
            ts.append(a.elapsed_time(b))
    return sorted(ts)[len(ts) // 2]


q = [F.quantize_4bit(w, blocksize=64, compress_statistics=True, quant_type="nf4") for w in ws]
t_q = median_ms(lambda: [F.quantize_4bit(w, blocksize=64, compress_statistics=True, quant_type="nf4") for w in ws])
t_d = median_ms(lambda: [F.dequantize_4bit(a, s) for a, s in q])
eff = p * 2 + p / 2 + p / 64
print(f"bitsandbytes {__import__('bitsandbytes').__version__}, one Llama-7B layer ({p / 1e6:.0f} M parameters, bf16)")
print("| operation | ms | Gparam/s | effective TB/s |\n|---|---|---|---|")
print(f"| bitsandbytes quantize_4bit NF4 + double quant | {t_q:.3f} | {p / t_q / 1e6:.0f} | {eff / t_q / 1e9:.2f} |")
print(f"| bitsandbytes dequantize_4bit | {t_d:.3f} | {p / t_d / 1e6:.0f} | {eff / t_d / 1e9:.2f} |")
