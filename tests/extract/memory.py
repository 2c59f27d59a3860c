"""loraextract's peak memory (issue 16: two weights at a time plus the SVD's workspace), on a model whose
largest tensors are unchanged: a wide vocabulary's embedding and untied lm_head (100000 x 64, 25 MiB a
side as float32) beside one small changed weight. Those are compared a chunk at a time; read whole, and
the lm_head as a pair with its change in double precision, they were 100 MiB and more. The peak RSS of
the extraction must stay within that of a --dry-run (the process, its libraries, the headers) plus the
bound of the weight it factors and a fixed allowance.

    python3 tests/extract/memory.py BUILD_DIR
"""
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile

build = sys.argv[1]
H, V = 64, 100000
ALLOWANCE_MIB = 16  # the compare's chunks (4 MiB), the kept factors, malloc's slack


def bf16(n, seed):
    """n random bf16 values, finite, of magnitude 2^-7 to 2^-6 (sign and mantissa random)."""
    data = bytearray(os.urandom(2 * n)) if seed is None else bytearray((seed * 2654435761 + i) & 0xFF for i in range(2 * n))
    data[1::2] = bytes((b & 0x80) | 0x3C for b in data[1::2])
    return bytes(data)


def write(d, tensors):
    os.makedirs(d, exist_ok=True)
    header, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (shape, data) in tensors.items():
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(f"{d}/model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    json.dump({"architectures": ["LlamaForCausalLM"], "hidden_size": H, "intermediate_size": 2 * H,
               "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 1, "num_key_value_heads": 4,
               "tie_word_embeddings": False, "vocab_size": V, "torch_dtype": "bfloat16"},
              open(f"{d}/config.json", "w"))


def peak_mib(cmd):
    """The peak RSS of cmd (MiB), run in a child of its own so that no other run's counts."""
    code = ("import resource, subprocess, sys\n"
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code] + cmd, check=True, capture_output=True, text=True).stdout
    return int(out) / 1024


with tempfile.TemporaryDirectory() as w:
    embed, head, norm = bf16(V * H, None), bf16(V * H, None), bf16(H, 7)
    base = {"model.embed_tokens.weight": ((V, H), embed), "lm_head.weight": ((V, H), head),
            "model.layers.0.self_attn.q_proj.weight": ((H, H), bf16(H * H, 1)), "model.norm.weight": ((H,), norm)}
    ft = dict(base)
    ft["model.layers.0.self_attn.q_proj.weight"] = ((H, H), bf16(H * H, 2))
    write(f"{w}/base", base)
    write(f"{w}/ft", ft)
    lx = [f"{build}/loraextract", "-q", "--device", "cpu", "--rank", "4", f"{w}/base", f"{w}/ft"]
    dry = peak_mib(lx + ["-n", "-o", f"{w}/dry"])
    run = peak_mib(lx + ["-o", f"{w}/out"])
    # the streaming bound of the q_proj (man loraextract, Memory): two float32 weights, their change and its
    # factors in double precision, LAPACK's workspace
    m = n = k = H
    bound = (8 * m * n + 8 * m * n + 8 * k * (m + n + 1) + 8 * (4 * k * k + 4 * k + m)) / 2**20
    limit = dry + bound + ALLOWANCE_MIB
    print(f"memory: peak RSS {run:.1f} MiB with unchanged {V} x {H} embedding and lm_head; --dry-run {dry:.1f} MiB, "
          f"bound {bound:.2f} MiB + {ALLOWANCE_MIB} MiB allowance: limit {limit:.1f} MiB")
    if run > limit:
        print(f"memory: FAILED: {run:.1f} MiB above {limit:.1f} MiB")
        sys.exit(1)
