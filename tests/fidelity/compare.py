"""compare.py: a merge-fidelity report (loramerge --fidelity, qinspect --adapter) against reference.py's.

    python3 tests/fidelity/compare.py REFERENCE.json REPORT.json [--rtol 1e-9]

Both are {"modules": [{"name", figures...}], "layers": [{"layer" (or "index"), figures...}], "overall":
{figures...}} (a report's, under its "fidelity" key); fields the comparison does not know are ignored, so the report may carry more. Compared:
the set of module names, the set of layers, and for each entry the figures adapter_norm,
quant_noise_norm, base_ratio, survival, residual (where the reference has a figure the report must have
it; null must meet null) and erased. The tolerance, for rtol (default 1e-9): both sides sum the same
float64 terms in another order, and the terms themselves are equal (D, Y and M are exact float32/bf16
values; PEFT's delta on the CPU equals a sequential fused multiply-add, as loramerge computes it, on every
element of the fixtures), so each sum agrees to a few units of 1e-16 times the number of terms:
  norms and ratios of norms (adapter_norm, quant_noise_norm, base_ratio, residual): relative rtol;
  survival = <M - Wq, D> / |D|^2: the dot can cancel, so its error is bounded by |M - Wq| |D| rather than
  by itself, and |M - Wq| / |D| <= residual + 1: absolute rtol * max(|survival|, residual + 1);
  erased: equal, unless a side's survival or residual lies within that tolerance of its threshold.
Exit status 1 and one line per difference when they differ. compare() is what tests/fidelity/check.py calls.
"""
import json
import math
import sys

FIGURES = ("adapter_norm", "quant_noise_norm", "base_ratio", "survival", "residual")


def _layer_key(e):
    for k in ("layer", "index"):
        if k in e:
            return e[k]
    return e.get("name")


def _close(a, b, tol):
    return abs(a - b) <= tol


def compare_entry(where, ref, rep, rtol, min_survival=0.5, max_residual=1.0):
    """The differences (strings) between one reference entry and one report entry."""
    out = []
    for f in FIGURES:
        if f not in ref:
            continue
        r = ref[f]
        if f not in rep:
            if r is not None:
                out.append(f"{where}: {f}: missing from the report (reference {r!r})")
            continue
        p = rep[f]
        if r is None or p is None:
            if r is not p:
                out.append(f"{where}: {f}: reference {r!r}, report {p!r}")
            continue
        if not (isinstance(p, (int, float)) and math.isfinite(p)):
            out.append(f"{where}: {f}: report {p!r} is not a finite number")
            continue
        if f == "survival":
            scale = max(abs(r), (ref.get("residual") or 0.0) + 1.0)
        else:
            scale = max(abs(r), abs(p))
        if not _close(r, p, rtol * scale):
            out.append(f"{where}: {f}: reference {r!r}, report {p!r} (relative {abs(r - p) / (scale or 1):.3g})")
    if "erased" in ref and ref["erased"] is not None:
        if rep.get("erased") is not ref["erased"]:
            s, res = ref.get("survival"), ref.get("residual")
            tol_s = rtol * max(abs(s), (res or 0.0) + 1.0) if s is not None else 0.0
            near = (s is not None and abs(s - min_survival) <= tol_s) or \
                   (res is not None and abs(res - max_residual) <= rtol * max(res, max_residual))
            if not near:
                out.append(f"{where}: erased: reference {ref['erased']!r}, report {rep.get('erased')!r}")
    return out


def compare(ref, rep, rtol=1e-9):
    """The differences between a reference (reference.py's JSON) and a report; [] when they agree."""
    out = []
    rep = rep.get("fidelity", rep)  # a whole report (loramerge --fidelity, qinspect --adapter --json)
    ms, mt = ref.get("inputs", {}).get("min_survival", 0.5), ref.get("inputs", {}).get("max_residual", 1.0)
    rm = {m["name"]: m for m in ref["modules"]}
    pm = {m["name"]: m for m in rep.get("modules", [])}
    for n in sorted(set(rm) ^ set(pm)):
        out.append(f"module {n}: only in the {'reference' if n in rm else 'report'}")
    for n in sorted(set(rm) & set(pm)):
        out += compare_entry(f"module {n}", rm[n], pm[n], rtol, ms, mt)
    rl = {_layer_key(e): e for e in ref.get("layers", [])}
    pl = {_layer_key(e): e for e in rep.get("layers", [])}
    for k in sorted(set(rl) ^ set(pl), key=str):
        out.append(f"layer {k}: only in the {'reference' if k in rl else 'report'}")
    for k in sorted(set(rl) & set(pl), key=str):
        out += compare_entry(f"layer {k}", rl[k], pl[k], rtol, ms, mt)
    if "overall" not in rep:
        out.append("overall: missing from the report")
    else:
        out += compare_entry("overall", ref["overall"], rep["overall"], rtol, ms, mt)
    return out


def main():
    args = sys.argv[1:]
    rtol = 1e-9
    if "--rtol" in args:
        i = args.index("--rtol")
        rtol = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit("usage: compare.py REFERENCE.json REPORT.json [--rtol X]")
    with open(args[0]) as f:
        ref = json.load(f)
    with open(args[1]) as f:
        rep = json.load(f)
    diffs = compare(ref, rep, rtol)
    for d in diffs:
        print(d)
    if diffs:
        sys.exit(1)
    print(f"{len(ref['modules'])} modules, {len(ref.get('layers', []))} layers and overall agree (rtol {rtol:g})")


if __name__ == "__main__":
    main()
