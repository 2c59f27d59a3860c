"""Helpers of the nf4quant -d cases (tests/cli/cases/deq_*.sh), Python's standard library only.

  deq_tool.py cmp GOT REF [SUFFIX]   every tensor NAME of REF equals tensor NAME+SUFFIX of GOT (dtype, shape,
                                     bytes); GOT has no other tensor. Exit 1 with the differences said.
  deq_tool.py same GOT REF NAME...   those tensors are equal in both (dtype, shape, bytes).
  deq_tool.py widen GOT REF          every float tensor of GOT is its tensor of REF (BF16 or F16) widened
                                     exactly to F32 (GOT F32) or REF itself (same type).
  deq_tool.py drop IN OUT NAME       IN without tensor NAME, written as OUT.
  deq_tool.py shrink IN OUT NAME     IN with tensor NAME one element shorter (its last dropped).
  deq_tool.py replace IN OUT NAME TEXT   IN with tensor NAME's bytes replaced by TEXT (a U8 tensor).
"""
import json
import math
import struct
import sys


def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", None)
    return meta, {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
                  for k, v in h.items()}


def save(path, meta, tensors):
    h, data = {}, b""
    if meta is not None:
        h["__metadata__"] = meta
    for k, (dt, shape, raw) in tensors.items():
        h[k] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    hb = json.dumps(h).encode()
    hb += b" " * (-len(hb) % 8)
    open(path, "wb").write(struct.pack("<Q", len(hb)) + hb + data)


def f32_of(dt, raw):
    if dt == "BF16":
        return b"".join(b"\0\0" + raw[i:i + 2] for i in range(0, len(raw), 2))
    if dt == "F16":
        return struct.pack(f"<{len(raw) // 2}f", *struct.unpack(f"<{len(raw) // 2}e", raw))
    return raw


def main(argv):
    cmd = argv[1]
    if cmd == "cmp":
        got, ref, suffix = load(argv[2])[1], load(argv[3])[1], argv[4] if len(argv) > 4 else ""
        bad = [k for k, v in ref.items() if got.get(k + suffix) != v]
        extra = sorted(set(got) - {k + suffix for k in ref})
        for k in bad:
            g = got.get(k + suffix)
            print(f"differs: {k}: {None if g is None else g[:2]} against {ref[k][:2]}", file=sys.stderr)
        if extra:
            print(f"not in the reference: {extra}", file=sys.stderr)
        print(f"{len(ref) - len(bad)} of {len(ref)} tensors equal")
        return 1 if bad or extra else 0
    if cmd == "same":
        got, ref = load(argv[2])[1], load(argv[3])[1]
        bad = [k for k in argv[4:] if k not in got or got.get(k) != ref.get(k)]
        for k in bad:
            print(f"differs: {k}", file=sys.stderr)
        return 1 if bad else 0
    if cmd == "widen":
        got, ref = load(argv[2])[1], load(argv[3])[1]
        bad = 0
        for k, (dt, shape, raw) in ref.items():
            g = got[k]
            want = (dt, shape, raw) if g[0] == dt else ("F32", shape, f32_of(dt, raw))
            if dt in ("BF16", "F16", "F32") and g != want:
                bad += 1
                print(f"differs: {k}: {g[:2]} against {want[:2]}", file=sys.stderr)
        return 1 if bad else 0
    meta, t = load(argv[2])
    name = argv[4]
    if cmd == "drop":
        del t[name]
    elif cmd == "shrink":
        dt, shape, raw = t[name]
        size = len(raw) // max(1, math.prod(shape))
        t[name] = (dt, [shape[0] - 1] + shape[1:], raw[:-size])
    elif cmd == "replace":
        t[name] = ("U8", [len(argv[5])], argv[5].encode())
    save(argv[3], meta, t)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
