"""qinspect's figures against values computed here, independently, in double precision.

    python3 tests/qinspect/check_figures.py QINSPECT

1. fixtures/models/tiny-llama-nf4 and -fp4 (transformers + bitsandbytes saved them) against tiny-llama:
   the 4-bit weights are dequantized here with numpy from their own tensors (code table, absmax, nested
   constants and offset), rounded to bf16 as bitsandbytes returns them.
2. The reference tensor cases: fixtures/reference/tensors_ref/ref_q.safetensors (bitsandbytes' quantize_4bit
   of each case, serialized) against the cases' inputs, with bitsandbytes' own dequantize_4bit output
   (ref_deq.safetensors) as the dequantized values, so that not even the dequantization is ours.
3. Elements that are not finite (NaN or infinite), in inputs made here: a float tensor partly and one
   wholly non-finite, one non-finite only in the reference, one with the same NaN on both sides (identical,
   still broken), and 4-bit groups cut from the reference cases with a block absmax set to infinity and to
   NaN, a nested absmax set to infinity, and one scaled so that its float16 values overflow. Every error
   figure of such a tensor and of the totals that hold it must be null (unbounded), never a figure of the
   other elements; the counts say where they are (each side, the first one); every gate fails them.
Checked per tensor: elements, differing elements, elements not finite (on each side), RMSE, relative
error, SNR, cosine, the largest error and its index, the code histogram and its entropy, absmax
min/mean/max and the blocks whose absmax is not finite, bytes and bits per parameter (exact), and 4.127
bits per parameter in codes and block constants for NF4 + double quantization at blocksize 64; then the
summary's sums, over every tensor and over the 4-bit ones, and its worst list (only tensors with an
error). Tolerance 1e-9 relative for the sums (qinspect adds in another order) and exact for counts and
sizes.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

qinspect = sys.argv[1]
top = os.path.dirname(os.path.abspath(__file__)) + "/../.."
failures = 0
checked = 0


def read_st(path):
    """A safetensors file as {name: (dtype, shape, raw bytes)}, and its data size, read by hand."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], data[b:e])
    return out


def floats(entry):
    """float32 values of a BF16/F16/F32 tensor."""
    dt, _, raw = entry
    if dt == "BF16":
        return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
    if dt == "F16":
        return np.frombuffer(raw, np.float16).astype(np.float32)
    return np.frombuffer(raw, np.float32).copy()


def to_bf16(x):
    """float32 -> bfloat16 (round to nearest even) -> float32."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def dequantize(st, name):
    """A 4-bit group of a checkpoint, dequantized as bitsandbytes does, in the tensor's own type."""
    qs_key = [k for k in st if k.startswith(name + ".quant_state.bitsandbytes__")][0]
    state = json.loads(st[qs_key][2])
    n = int(np.prod(state["shape"]))
    bs = state["blocksize"]
    codes = np.frombuffer(st[name][2], np.uint8)
    idx = np.empty(codes.size * 2, np.uint8)
    idx[0::2] = codes >> 4
    idx[1::2] = codes & 15
    qmap = floats(st[name + ".quant_map"])
    if "nested_offset" in state:
        nested_map = floats(st[name + ".nested_quant_map"])
        nested = floats(st[name + ".nested_absmax"])
        q = np.frombuffer(st[name + ".absmax"][2], np.uint8)
        absmax = (nested_map[q] * np.repeat(nested, 256)[: q.size]).astype(np.float32) + np.float32(state["nested_offset"])
        absmax = absmax.astype(np.float32)
    else:
        absmax = floats(st[name + ".absmax"])
    with np.errstate(invalid="ignore"):  # 0 times an infinite absmax is NaN, as in the tensor
        vals = (qmap[idx[:n]] * np.repeat(absmax, bs)[:n]).astype(np.float32)
    dt = state["dtype"]
    if dt == "bfloat16":
        vals = to_bf16(vals)
    elif dt == "float16":
        with np.errstate(over="ignore"):  # a value past float16 is infinite, as in the tensor
            vals = vals.astype(np.float16).astype(np.float32)
    return vals, idx[:n], absmax, state


def close(a, b, rel=1e-9):
    if a is None or b is None:
        return a is b
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def check(label, got, want, rel=None):
    global failures, checked
    checked += 1
    ok = (got == want) if rel is None else close(got, want, rel)
    if not ok:
        failures += 1
        print(f"FAIL {label}: qinspect {got!r}, expected {want!r}")


def expected_error(x, ref):
    x64, r64 = x.astype(np.float64), ref.astype(np.float64)
    fin = np.isfinite(x64) & np.isfinite(r64)
    with np.errstate(invalid="ignore"):
        e = (x64 - r64)[fin]
        absd = np.where(fin, np.abs(x64 - r64), -1.0)
    e2, r2, x2 = float(np.sum(e * e)), float(np.sum(r64[fin] ** 2)), float(np.sum(x64[fin] ** 2))
    dot = float(np.sum(x64[fin] * r64[fin]))
    n = int(fin.sum())
    bad = int((~fin).sum())
    want = {
        "elements": n,
        "differ": int(np.sum(x.view(np.uint32) != ref.view(np.uint32))),
        "nonfinite": bad,
        "nonfinite_checkpoint": int((~np.isfinite(x64)).sum()),
        "nonfinite_reference": int((~np.isfinite(r64)).sum()),
        "rmse": math.sqrt(e2 / n) if n else 0.0,
        "rel_err": math.sqrt(e2 / r2) if r2 > 0 else (0.0 if e2 == 0 else None),
        "snr_db": 10 * math.log10(r2 / e2) if e2 > 0 else None,
        "cosine": dot / math.sqrt(x2 * r2) if x2 > 0 and r2 > 0 else None,
        "max_abs_err": float(absd.max()),
        "max_abs_err_index": int(np.argmax(absd)),
        "_sums": (e2, r2, x2, dot, n, bad),
    }
    if bad:
        # an element that is not finite is an error without bound: no figure, whatever the others are;
        # the index is the first such element
        for k in ("rmse", "rel_err", "snr_db", "cosine", "max_abs_err"):
            want[k] = None
        want["max_abs_err_index"] = int(np.argmax(~fin))
    return want


def expected_total(sums):
    """A total's figures from its tensors' sums (null, all of them, when an element is not finite)."""
    e2, r2, x2, dot, n, bad = sums
    if bad:
        return {"elements": n, "nonfinite": bad, "rel_err": None, "snr_db": None, "cosine": None, "rmse": None,
                "max_abs_err": None}
    return {"elements": n, "nonfinite": 0, "rel_err": math.sqrt(e2 / r2), "snr_db": 10 * math.log10(r2 / e2),
            "cosine": dot / math.sqrt(x2 * r2), "rmse": math.sqrt(e2 / n)}


def run(*args, status=0):
    p = subprocess.run([qinspect, "--json", *args], capture_output=True, text=True)
    if p.returncode != status:
        print(p.stderr)
        raise SystemExit(f"FAIL qinspect {' '.join(args)}: exit status {p.returncode}, expected {status}")
    return json.loads(p.stdout)


def check_report(label, report, ckpt_files, ref_values, dequant):
    """ckpt_files: the checkpoint's tensors {name: entry}; ref_values(name) -> float32 reference;
    dequant(name) -> float32 dequantized values of a 4-bit tensor."""
    totals, qtotals = [0.0, 0.0, 0.0, 0.0, 0, 0], [0.0, 0.0, 0.0, 0.0, 0, 0]
    for t in report["tensors"]:
        name = t["name"]
        w = f"{label}: {name}"
        ref = ref_values(name)
        if t["storage"]["quantized"]:
            x, idx, absmax, state = dequant(name)
            hist = np.bincount(idx, minlength=16)
            check(w + " code_histogram", t["code_histogram"], [int(v) for v in hist])
            p = hist[hist > 0] / idx.size
            check(w + " code_entropy", t["code_entropy"], float(-(p * np.log2(p)).sum()), 1e-12)
            bad_blocks = int((~np.isfinite(absmax)).sum())
            check(w + " absmax.nonfinite", t["absmax"]["nonfinite"], bad_blocks)
            if bad_blocks:  # the other blocks' figures would hide the broken ones
                for k in ("min", "max", "mean"):
                    check(f"{w} absmax.{k}", t["absmax"][k], None)
            else:
                check(w + " absmax.min", t["absmax"]["min"], float(absmax.min()), 0)
                check(w + " absmax.max", t["absmax"]["max"], float(absmax.max()), 0)
                check(w + " absmax.mean", t["absmax"]["mean"], float(absmax.astype(np.float64).mean()), 1e-12)
            parts = [k for k in ckpt_files if k == name or k.startswith(name + ".")]
            nbytes = sum(len(ckpt_files[k][2]) for k in parts)
            blocks = sum(len(ckpt_files[k][2]) for k in parts if k == name or k.endswith((".absmax", ".nested_absmax")))
            n = int(np.prod(state["shape"]))
            check(w + " bytes", t["bytes"], nbytes)
            check(w + " bits_per_param", t["bits_per_param"], 8 * nbytes / n, 1e-15)
            check(w + " bits_per_param_blocks", t["bits_per_param_blocks"], 8 * blocks / n, 1e-15)
            if state["blocksize"] == 64 and "nested_offset" in state and n % (64 * 256) == 0:
                check(w + " bits_per_param_blocks = 4.127", round(t["bits_per_param_blocks"], 3), 4.127)
                check(w + " bits_per_param_blocks exactly", t["bits_per_param_blocks"], 4 + 8 / 64 + 32 / (64 * 256))
        else:
            x = floats(ckpt_files[name])
            check(w + " bits_per_param", t["bits_per_param"], 8 * len(ckpt_files[name][2]) / x.size, 1e-15)
        want = expected_error(x, ref)
        got = t["error"]
        for k in ("elements", "differ", "nonfinite", "nonfinite_checkpoint", "nonfinite_reference", "max_abs_err_index"):
            check(f"{w} {k}", got[k], want[k])
        for k in ("rmse", "rel_err", "snr_db", "cosine", "max_abs_err"):
            check(f"{w} {k}", got[k], want[k], 1e-9)
        if report["gates"]:  # an element that is not finite fails every gate
            check(f"{w} gate_failed", t["gate_failed"] or not want["nonfinite"], True)
        totals = [a + b for a, b in zip(totals, want["_sums"])]
        if t["storage"]["quantized"]:
            qtotals = [a + b for a, b in zip(qtotals, want["_sums"])]
    for what, got, sums in (("summary", report["summary"]["error"], totals),
                            ("summary.quantized", report["summary"]["quantized"]["error"], qtotals)):
        if got is None and what == "summary.quantized":
            check(f"{label} {what}: no 4-bit tensor", sum(t["storage"]["quantized"] for t in report["tensors"]), 0)
            continue
        for k, v in expected_total(sums).items():
            check(f"{label} {what} {k}", got[k], v, None if k in ("elements", "nonfinite") else 1e-9)
    # the worst list: the tensors with an error, worst first (unbounded ones before every other)
    ranked = sorted((t for t in report["tensors"] if t["error"]["nonfinite"] or t["error"]["rel_err"]),
                    key=lambda t: -math.inf if t["error"]["rel_err"] is None else -t["error"]["rel_err"])
    check(label + " worst", [w["name"] for w in report["summary"]["worst"]], [t["name"] for t in ranked][:10])
    print(f"ok   {label}: {len(report['tensors'])} tensors")


# 1. tiny-llama in NF4 and FP4 against its bf16 weights
base = read_st(f"{top}/fixtures/models/tiny-llama/model.safetensors")
for q in ("nf4", "fp4"):
    ckpt = read_st(f"{top}/fixtures/models/tiny-llama-{q}/model.safetensors")
    rep = run(f"{top}/fixtures/models/tiny-llama-{q}", f"{top}/fixtures/models/tiny-llama")
    check_report(f"tiny-llama-{q}", rep, ckpt, lambda n: floats(base[n]), lambda n, c=ckpt: dequantize(c, n))

# 2. the reference cases: bitsandbytes' quantization against the inputs, its own dequantization as values
ref_q = read_st(f"{top}/fixtures/reference/tensors_ref/ref_q.safetensors")
ref_deq = read_st(f"{top}/fixtures/reference/tensors_ref/ref_deq.safetensors")
inputs = read_st(f"{top}/fixtures/reference/tensors/inputs.safetensors")
with tempfile.TemporaryDirectory() as tmp:
    # the inputs under the checkpoint's names ("case.weight"), written by hand
    header, blob = {}, b""
    for k, (dt, shape, raw) in sorted(inputs.items()):
        header[k + ".weight"] = {"dtype": dt, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(f"{tmp}/inputs.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)
    rep = run(f"{top}/fixtures/reference/tensors_ref/ref_q.safetensors", f"{tmp}/inputs.safetensors")

    def bnb_dequant(name):
        _, idx, absmax, state = dequantize(ref_q, name)
        return floats(ref_deq[name[: -len(".weight")]]), idx, absmax, state

    check_report("reference cases", rep, ref_q, lambda n: floats(inputs[n[: -len(".weight")]]), bnb_dequant)

# 3. elements that are not finite, in inputs made here
def st_bytes(tensors):
    """A safetensors file of {name: (dtype, shape, raw bytes)}."""
    header, blob = {}, b""
    for k, (dt, shape, raw) in sorted(tensors.items()):
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def f32(a):
    return ("F32", list(a.shape), a.astype(np.float32).tobytes())


def bf16(a):
    return ("BF16", list(a.shape), (to_bf16(a.astype(np.float32)).view(np.uint32) >> 16).astype(np.uint16).tobytes())


rng = np.random.default_rng(12)
ref_t, ckpt_t = {}, {}
r = rng.normal(0, 0.02, (16, 64)).astype(np.float32)
x = r + rng.normal(0, 0.001, r.shape).astype(np.float32)
x[1, 2], x[3, 4], x[5, 6] = np.nan, np.inf, -np.inf
ref_t["f.part.weight"], ckpt_t["f.part.weight"] = f32(r), f32(x)  # partly, in the checkpoint
r = rng.normal(0, 0.02, (8, 64)).astype(np.float32)
ref_t["f.all.weight"], ckpt_t["f.all.weight"] = bf16(r), bf16(np.full(r.shape, np.nan, np.float32))  # wholly
r = rng.normal(0, 0.02, (8, 64)).astype(np.float32)
x = r + rng.normal(0, 0.001, r.shape).astype(np.float32)
r[0, 7], r[2, 0] = np.inf, np.nan
ref_t["f.refonly.weight"], ckpt_t["f.refonly.weight"] = f32(r), f32(x)  # only in the reference
r = rng.normal(0, 0.02, (4, 64)).astype(np.float32)
r[1, 1] = np.nan
ref_t["f.same.weight"], ckpt_t["f.same.weight"] = f32(r), f32(r)  # identical, NaN on both sides
r = rng.normal(0, 0.02, (4, 64)).astype(np.float32)
ref_t["f.fine.weight"], ckpt_t["f.fine.weight"] = f32(r), f32(r + np.float32(1e-3))  # all finite
# 4-bit groups of the reference cases, broken: their reference is the case's input
groups = {"normal_bf16_nodq": None, "nested_partial": None, "fp4_fp16": None, "ties_fp32": None}
for case in groups:
    for k, v in ref_q.items():
        if k == case + ".weight" or k.startswith(case + ".weight."):
            ckpt_t[k] = v
    ref_t[case + ".weight"] = inputs[case]


def patch(name, fn):
    dt, shape, raw = ckpt_t[name]
    a = np.frombuffer(raw, np.float32).copy()
    fn(a)
    ckpt_t[name] = (dt, shape, a.tobytes())


def set_blocks(a):
    a[3], a[10] = np.inf, np.nan


def nested_inf(a):
    a[1] = np.inf


def overflow(a):
    a[:] = a * np.float32(1e8)


patch("normal_bf16_nodq.weight.absmax", set_blocks)    # a block absmax infinite, another NaN
patch("nested_partial.weight.nested_absmax", nested_inf)  # the absmax of blocks 256.. infinite
patch("fp4_fp16.weight.nested_absmax", overflow)        # finite absmax, float16 values that overflow
with tempfile.TemporaryDirectory() as tmp:
    open(f"{tmp}/broken.safetensors", "wb").write(st_bytes(ckpt_t))
    open(f"{tmp}/ref.safetensors", "wb").write(st_bytes(ref_t))
    # every gate, with limits any finite tensor meets: only the elements that are not finite fail them
    gates = ["--max-rel-err", "1e300", "--max-rmse", "1e300", "--max-abs-err", "1e300", "--min-snr", "-1e300",
             "--min-cosine", "-2"]
    rep = run(f"{tmp}/broken.safetensors", f"{tmp}/ref.safetensors", *gates, status=1)
    broken = read_st(f"{tmp}/broken.safetensors")
    refs = read_st(f"{tmp}/ref.safetensors")
    check_report("not finite", rep, broken, lambda n: floats(refs[n]), lambda n: dequantize(broken, n))
    failed = sorted(t["name"] for t in rep["tensors"] if t["gate_failed"])
    check("not finite: the tensors that fail the gates", failed,
          sorted(t["name"] for t in rep["tensors"] if t["error"]["nonfinite"]))
    check("not finite: f.fine.weight passes", "f.fine.weight" in failed, False)
    check("not finite: passed", rep["passed"], False)
    check("not finite: f.same.weight is identical", rep["tensors"][[t["name"] for t in rep["tensors"]].index(
        "f.same.weight")]["error"]["identical"], True)
    # described without a reference: the blocks whose absmax is not finite are counted there too
    desc = run(f"{tmp}/broken.safetensors")
    nf = {t["name"]: t["absmax"]["nonfinite"] for t in desc["tensors"] if t["storage"]["quantized"]}
    check("not finite, described: absmax blocks", nf,
          {"normal_bf16_nodq.weight": 2, "nested_partial.weight": 300 - 256, "fp4_fp16.weight": 0,
           "ties_fp32.weight": 0})
    check("not finite, described: summary", desc["summary"]["quantized"]["absmax_nonfinite"], 2 + 44)
    print(f"ok   not finite, described: {len(desc['tensors'])} tensors")
print(f"qinspect figures: {checked} checks, {failures} failed")
sys.exit(1 if failures else 0)
