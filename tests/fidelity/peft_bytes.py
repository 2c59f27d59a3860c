"""peft_bytes.py: loramerge --requantize against PEFT's own 4-bit merge on this CPU, on the trained adapters.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python tests/fidelity/peft_bytes.py BUILD

For each adapter of fixtures/fidelity/: PEFT 0.21's merge_and_unload() of the 4-bit base + adapter on the
CPU (bitsandbytes 0.50.2 requantizes float32(Wq) + delta) and BUILD/loramerge --requantize BASE4 ADAPTER,
compared on every merged weight. loramerge reproduces bitsandbytes' CUDA bytes; its CPU backend differs in
the double quantization of the block absmax, in two ways found here: the offset is torch.mean on the CPU
(another order of the float32 additions, so its last bits can differ), and the 8-bit code of a block
absmax that lies near the midpoint of two codes can be the farther one (CUDA's, loramerge's, is the
nearer, in double precision). So the tolerance, checked:
  - the 4-bit codes: equal, every byte;
  - the offset: equal or within 4 units in the last place of float32 (at most 3 measured here); each
    nested absmax (the largest |absmax - offset| of 256 blocks): within the offsets' difference plus one
    unit in its last place; the absmax codes: equal, or where they differ loramerge's is the nearer code
    to (absmax - offset) / nested absmax, absmax as bitsandbytes' CPU quantize_4bit of Y computes it;
  - and, to show where a CPU merge's bytes come from: bitsandbytes' CPU quantize_4bit of Y without
    double quantization gives loramerge's codes, and its absmax, double-quantized with loramerge's offset
    and nested absmax by nearest rounding in double precision, loramerge's absmax codes (all of them).
Prints what differs per adapter; exit 1 when the tolerance fails.
"""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import reference  # noqa: E402

warnings.filterwarnings("ignore")


def st_tensors(path):
    from safetensors.torch import load_file
    return load_file(f"{path}/model.safetensors" if os.path.isdir(path) else path)


def targets(adapter):
    """The checkpoint names of the weights the adapter targets."""
    from safetensors import safe_open
    with safe_open(f"{adapter}/adapter_model.safetensors", framework="pt") as f:
        return sorted({k[len("base_model.model."):-len(".lora_A.weight")] + ".weight"
                       for k in f.keys() if k.endswith(".lora_A.weight")})


def state(sd, n):
    import bitsandbytes.functional as F
    return F.QuantState.from_dict({k[len(n) + 1:]: v for k, v in sd.items() if k.startswith(n + ".")},
                                  device=torch.device("cpu"))


def ulps(a, b):
    """Distance in float32 units in the last place (same sign assumed, as here)."""
    ia = np.asarray(a, np.float32).view(np.int32).astype(np.int64)
    ib = np.asarray(b, np.float32).view(np.int32).astype(np.int64)
    return np.abs(ia - ib)


def nearest_codes(x):
    """The nearest code of bitsandbytes' dynamic 8-bit map to each x (in [-1, 1]), in double precision."""
    import bitsandbytes.functional as F
    code = F.create_dynamic_map().double().numpy()
    order = np.argsort(code)
    c = code[order]
    i = np.clip(np.searchsorted(c, x), 1, len(c) - 1)
    pick = np.where(np.abs(x - c[i - 1]) <= np.abs(x - c[i]), i - 1, i)
    return order[pick]


def compare(ours, peft, names, ys):
    """(ok, report lines) for loramerge's groups (ours) against PEFT's (peft) on the weights named;
    ys: the float32 sums Y by name."""
    import bitsandbytes.functional as F
    code = F.create_dynamic_map().double().numpy()
    codes = am = far = nested = nested_bad = offs = worst_ulp = mdiff = elements = explained = 0
    ok = True
    for n in names:
        qo, qp = state(ours, n), state(peft, n)
        codes += int((ours[n] != peft[n]).sum())
        u = int(ulps(qo.offset.item(), qp.offset.item()))
        offs += int(u != 0)
        worst_ulp = max(worst_ulp, u)
        # a nested absmax is max |absmax - offset| over 256 blocks: it moves with the offset, plus the
        # rounding of the subtraction (one unit in its last place)
        no, np_ = qo.state2.absmax.double().numpy(), qp.state2.absmax.double().numpy()
        nested += int((no != np_).sum())
        slack = abs(qo.offset.item() - qp.offset.item()) + np.spacing(np.maximum(no, np_).astype(np.float32))
        nested_bad += int((np.abs(no - np_) > slack).sum())
        q, st = F.quantize_4bit(ys[n], blocksize=64, compress_statistics=False, quant_type="nf4")
        nb = np.repeat(qo.state2.absmax.double().numpy(), 256)[:st.absmax.numel()]
        x = (st.absmax.double().numpy() - float(qo.offset.item())) / nb
        a_o, a_p = ours[n + ".absmax"].numpy().astype(int), peft[n + ".absmax"].numpy().astype(int)
        d = np.nonzero(a_o != a_p)[0]
        am += len(d)
        near = np.abs(x[d] - code[a_o[d]]) < np.abs(x[d] - code[a_p[d]])
        far += int((~near).sum())
        dt = torch.bfloat16
        mo, mp = F.dequantize_4bit(ours[n], qo).to(dt), F.dequantize_4bit(peft[n], qp).to(dt)
        mdiff += int((mo != mp).sum())
        elements += mo.numel()
        explained += int(torch.equal(q, ours[n]) and np.array_equal(nearest_codes(x), a_o))
    ok = codes == 0 and worst_ulp <= 4 and nested_bad == 0 and far == 0 and explained == len(names)
    return ok, [f"codes {codes} of {elements // 2} bytes differ",
                f"offsets {offs} of {len(names)} differ, by at most {worst_ulp} ulp",
                f"nested absmax {nested} differ, {nested_bad} by more than the offset's difference + 1 ulp",
                f"absmax codes {am} differ, loramerge's the nearer in {am - far}",
                f"M (dequantized, bf16) {mdiff} of {elements} elements differ",
                f"bitsandbytes' CPU codes and nearest absmax codes with loramerge's offset give loramerge's "
                f"bytes for {explained} of {len(names)} weights"]


def ys_of(base4, adapter, names):
    """Y = float32(Wq) + PEFT's delta for each name, Wq from the 4-bit base's bytes."""
    delta = reference.deltas(base4, adapter)
    wq = reference.Checkpoint(base4)
    return {n: wq.dequantized(n)[0].float() + delta[n] for n in names}


def main():
    build = os.path.abspath(sys.argv[1])
    torch.set_num_threads(1)
    common.prepare_minilm(build)
    b = common.bases(build)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="lq-fidelity-") as work:
        for name, kind, _ in common.ADAPTERS:
            base4 = b[kind][1]
            ad = f"{common.FIX}/{name}"
            out = f"{work}/{name}"
            subprocess.run([f"{build}/loramerge", "-q", "--requantize", base4, ad, "-o", out], check=True)
            names = targets(ad)
            peft = common.groups_4bit(common.peft_merge_4bit(base4, ad), set(names))
            ok, lines = compare(st_tensors(out), peft, names, ys_of(base4, ad, names))
            print(f"fidelity: {name}: loramerge --requantize vs PEFT's CPU 4-bit merge, {len(names)} weights: "
                  + "; ".join(lines) + (": ok" if ok else ": FAILED"))
            failed += not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
