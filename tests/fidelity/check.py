"""check.py: the merge-fidelity tests on the trained adapters of fixtures/fidelity/ (run.sh runs it).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python tests/fidelity/check.py BUILD [--update-figures]

For each adapter (tiny-llama and MiniLM, learning rates normal and 1e-7; bases in common.py):
 1. loramerge --requantize against PEFT's own 4-bit merge on the CPU, within peft_bytes.py's tolerance
    (codes equal; the double quantization's constants as bitsandbytes' CPU backend differs from CUDA's).
 2. reference.py two ways must agree: M computed (bitsandbytes' CPU quantize_4bit of Y) and M read from
    PEFT's CPU 4-bit merge (its Linear4bit groups written to a file): the reference's own M is PEFT's.
 3. the float merge into Wq: reference.py --output float against BUILD/loramerge BASE4 ADAPTER's bf16
    output read as MERGED (loramerge's float merge is PEFT's, so they must agree).
 4. the float base route (W16 --base-kind float --wq-from BASE4) against the 4-bit route with --w16.
 5. reference.py with MERGED = loramerge --requantize's output against fixtures/fidelity/figures.json
    (written by --update-figures from this very step), and what the data says about `erased`: every
    module of the 1e-7 adapters erased, none of tiny_lr1e-3's, every one of minilm_lr5e-4's (its change
    is about a tenth of a 4-bit step per element: survival 0.02-0.30; the 4-bit merge loses the trained
    answer, see logits_table.py).
 6. when BUILD/loramerge --help names --fidelity: its report of `--requantize --fidelity REPORT` from the
    4-bit base and from the float base against reference.py on the same inputs, with MERGED = the
    output it wrote (the C side's M; reference.py's own is bitsandbytes' CPU one), compare.py's tolerance.
 7. when BUILD/qinspect --help names --adapter: `qinspect --adapter ADAPTER BASE` (M computed by qinspect)
    from both bases against the same references as 6 (its M is loramerge's, byte for byte), and
    `qinspect --adapter ADAPTER BASE4 PEFT_MERGE` (M read from PEFT's own CPU 4-bit merge, a file no tool
    of ours wrote) against reference.py given the same file.
Comparisons use compare.compare with rtol 1e-9. Prints one line per check; exit 1 if any fails.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import compare  # noqa: E402
import peft_bytes  # noqa: E402
import reference  # noqa: E402

warnings.filterwarnings("ignore")
RTOL = 1e-9
failures = 0


def verdict(label, diffs):
    global failures
    if diffs:
        failures += 1
        print(f"fidelity: {label}: FAILED")
        for d in diffs[:20]:
            print(f"fidelity:   {d}")
    else:
        print(f"fidelity: {label}: ok")


def loramerge(build, args):
    r = subprocess.run([f"{build}/loramerge", "-q", *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"check.py: loramerge {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")


def qinspect(build, args):
    """qinspect --json --adapter ADAPTER BASE [MERGED]'s report."""
    r = subprocess.run([f"{build}/qinspect", "--json", "--adapter", *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"check.py: qinspect --adapter {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def portable(fig):
    """The figures without this machine's paths (as stored in figures.json)."""
    i = fig["inputs"]
    return dict(fig, inputs={"min_survival": i["min_survival"], "max_residual": i["max_residual"],
                             "merged": "loramerge --requantize BASE4 ADAPTER", "w16": "the float base"})


def expected_erased(name, fig):
    erased = [m["erased"] for m in fig["modules"]]
    want = {"tiny_lr1e-3": False}.get(name, True)
    return [] if all(e is want for e in erased) else [
        f"{sum(erased)} of {len(erased)} modules erased, expected {'all' if want else 'none'}"]


def main():
    build = os.path.abspath(sys.argv[1])
    update = "--update-figures" in sys.argv[2:]
    torch.set_num_threads(1)
    common.prepare_minilm(build)
    bases = common.bases(build)
    fidelity = "--fidelity" in subprocess.run([f"{build}/loramerge", "--help"], capture_output=True,
                                              text=True).stdout
    adapter = "--adapter" in subprocess.run([f"{build}/qinspect", "--help"], capture_output=True, text=True).stdout
    figs_path = f"{common.FIX}/figures.json"
    stored = {}
    if os.path.exists(figs_path):
        with open(figs_path) as f:
            stored = json.load(f)
    new = {}
    from safetensors.torch import save_file
    with tempfile.TemporaryDirectory(prefix="lq-fidelity-") as work:
        for name, kind, _ in common.ADAPTERS:
            w16, base4 = bases[kind]
            ad = f"{common.FIX}/{name}"
            names = peft_bytes.targets(ad)
            req = f"{work}/{name}-req"
            loramerge(build, ["--requantize", base4, ad, "-o", req])
            peft = common.groups_4bit(common.peft_merge_4bit(base4, ad), set(names))
            ok, lines = peft_bytes.compare(peft_bytes.st_tensors(req), peft, names,
                                           peft_bytes.ys_of(base4, ad, names))
            verdict(f"{name}: loramerge --requantize vs PEFT's CPU 4-bit merge ({'; '.join(lines)})",
                    [] if ok else ["outside the tolerance of peft_bytes.py"])
            peft_file = f"{work}/{name}-peft.safetensors"
            save_file(peft, peft_file)
            q = ["--base-kind", "4bit", "--w16", w16]
            computed = reference.run([base4, ad, *q])
            verdict(f"{name}: reference, M computed vs M of PEFT's CPU merge",
                    compare.compare(computed, reference.run([base4, ad, peft_file, *q]), RTOL))
            wqm = f"{work}/{name}-wq"
            loramerge(build, [base4, ad, "-o", wqm])
            verdict(f"{name}: reference --output float vs loramerge's bf16 merge into Wq",
                    compare.compare(reference.run([base4, ad, "--output", "float", *q]),
                                    reference.run([base4, ad, wqm, *q]), RTOL))
            verdict(f"{name}: reference, float base (--wq-from) vs 4-bit base (--w16)",
                    compare.compare(computed, reference.run([w16, ad, "--base-kind", "float", "--wq-from", base4]),
                                    RTOL))
            fig = portable(reference.run([base4, ad, req, *q]))
            new[name] = fig
            if not update:
                verdict(f"{name}: figures of loramerge --requantize's output vs fixtures/fidelity/figures.json",
                        compare.compare(stored[name], fig, RTOL) if name in stored else ["not in figures.json"])
            o = fig["overall"]
            verdict(f"{name}: erased {o['erased_modules']} of {o['modules']} modules (survival {o['survival']:.4f}, "
                    f"residual {o['residual']:.4f}, base_ratio {o['base_ratio']:.4g})", expected_erased(name, fig))
            if fidelity:
                for label, base, extra in (("4-bit base", base4, ["--base-kind", "4bit"]),
                                           ("float base", w16, ["--base-kind", "float", "--wq-from", base4])):
                    rep, out = f"{work}/{name}-{kind}.fidelity.json", f"{work}/{name}-fid"
                    loramerge(build, ["-f", "--requantize", "--fidelity", rep, base, ad, "-o", out])
                    with open(rep) as f:
                        report = json.load(f)
                    want = reference.run([base, ad, out, *extra])
                    verdict(f"{name}: loramerge --fidelity ({label}) vs reference",
                            compare.compare(want, report, RTOL))
                    if adapter:
                        verdict(f"{name}: qinspect --adapter ({label}) vs reference",
                                compare.compare(want, qinspect(build, [ad, base]), RTOL))
            if adapter:
                verdict(f"{name}: qinspect --adapter with PEFT's CPU 4-bit merge as MERGED vs reference",
                        compare.compare(reference.run([base4, ad, peft_file, "--base-kind", "4bit"]),
                                        qinspect(build, [ad, base4, peft_file]), RTOL))
        if not fidelity:
            print("fidelity: loramerge --fidelity: SKIP: not built (loramerge --help does not name it)")
        if not adapter:
            print("fidelity: qinspect --adapter: SKIP: not built (qinspect --help does not name it)")
    if update:
        with open(figs_path, "w") as f:
            json.dump(new, f, indent=1)
            f.write("\n")
        print(f"fidelity: wrote {figs_path}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
