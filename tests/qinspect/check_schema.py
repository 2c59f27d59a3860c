"""Every JSON report qinspect writes validates against its schema (tools/qinspect.schema.json), and the
schema itself is valid: reports with and without a reference, with gates passing and failing, of float
and 4-bit checkpoints, a restricted selection, a report with an identical tensor (snr_db null), and
reports with elements that are not finite (every error figure null) on either side and a 4-bit group whose
absmax is not finite (made here); adapter reports (qinspect --adapter of a float and a 4-bit base, with
MERGED, two adapters, erased modules) and loramerge --fidelity's report.

    python3 tests/qinspect/check_schema.py QINSPECT
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import jsonschema

qinspect = sys.argv[1]
top = os.path.normpath(os.path.dirname(os.path.abspath(__file__)) + "/../..")
schema = json.load(open(f"{top}/tools/qinspect.schema.json"))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
m = f"{top}/fixtures/models"
runs = [
    [f"{m}/tiny-llama-nf4", f"{m}/tiny-llama"],
    [f"{m}/tiny-llama-nf4"],
    [f"{m}/tiny-llama"],
    [f"{m}/tiny-llama-fp4", f"{m}/tiny-llama", "--max-rel-err", "0.01", "--min-snr", "10", "--min-cosine", "0.99"],
    [f"{m}/tiny-llama-sharded", f"{m}/tiny-llama", "--tensor", "*.q_proj.*"],
    [f"{top}/fixtures/reference/tensors_ref/ref_q.safetensors"],
    [f"{top}/tests/cli/data/nan_model", f"{top}/tests/cli/data/nan_norm_model", "--max-rel-err", "1"],
    [f"{top}/tests/cli/data/inf_model", f"{top}/tests/cli/data/nan_model"],
]
# a 4-bit group of the reference cases with a block absmax that is NaN
tmp = tempfile.TemporaryDirectory()
with open(f"{top}/fixtures/reference/tensors_ref/ref_q.safetensors", "rb") as f:
    size = f.read(8)
    raw_header = size + f.read(struct.unpack("<Q", size)[0])
    data = bytearray(f.read())
b, e = json.loads(raw_header[8:])["normal_bf16_nodq.weight.absmax"]["data_offsets"]
data[b:b + 4] = struct.pack("<f", float("nan"))
with open(f"{tmp.name}/broken.safetensors", "wb") as f:
    f.write(raw_header + bytes(data))
a = f"{top}/fixtures/peft/adapters"
subprocess.run([os.path.dirname(qinspect) + "/loramerge", "-q", "--requantize", "--fidelity", f"{tmp.name}/lm.json",
                f"{m}/tiny-llama", f"{a}/plain_r8", "-o", f"{tmp.name}/merged"], check=True)
runs += [["--adapter", f"{a}/plain_r8", f"{m}/tiny-llama"],
         ["--adapter", f"{a}/plain_r8:0.01", "--adapter", f"{a}/rslora_r16", f"{m}/tiny-llama-nf4"],
         ["--adapter", f"{a}/plain_r8", f"{m}/tiny-llama", f"{tmp.name}/merged"]]
runs += [[f"{tmp.name}/broken.safetensors"],
         [f"{tmp.name}/broken.safetensors", f"{top}/fixtures/reference/tensors_ref/ref_q.safetensors"]]
failed = 0
for args in runs:
    p = subprocess.run([qinspect, "--json", *args], capture_output=True, text=True)
    report = json.loads(p.stdout)
    errors = sorted(validator.iter_errors(report), key=lambda e: list(e.path))
    for e in errors[:5]:
        print(f"FAIL {' '.join(args)}: {'/'.join(map(str, e.path))}: {e.message[:300]}")
    failed += bool(errors)
    print(f"{'ok  ' if not errors else 'FAIL'} schema 3: qinspect {' '.join(os.path.relpath(a, top) if a.startswith(top) else a for a in args)} (exit {p.returncode})")
lm = json.load(open(f"{tmp.name}/lm.json"))
errors = list(validator.iter_errors(lm))
for e in errors[:5]:
    print(f"FAIL loramerge --fidelity: {'/'.join(map(str, e.path))}: {e.message}")
failed += bool(errors)
print(f"{'ok  ' if not errors else 'FAIL'} schema 3: loramerge --requantize --fidelity")
bad = json.loads(subprocess.run([qinspect, "--json", "--adapter", f"{a}/plain_r8", f"{m}/tiny-llama"],
                                capture_output=True, text=True).stdout)
bad["fidelity"]["modules"][0]["survival"] = "1"
if validator.is_valid(bad):
    print("FAIL the schema accepts a string for survival")
    failed += 1
# a report that breaks the schema is caught (the test can fail)
bad = json.loads(subprocess.run([qinspect, "--json", f"{m}/tiny-llama-nf4"], capture_output=True, text=True).stdout)
bad["tensors"][0]["bits_per_param"] = "16"
if validator.is_valid(bad):
    print("FAIL the schema accepts a string for bits_per_param")
    failed += 1
sys.exit(1 if failed else 0)
