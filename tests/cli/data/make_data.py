#!/usr/bin/env python3
"""Writes the small inputs of the command-line tests (tests/cli/cases), byte for byte the same on every
run (fixed values, no randomness, standard library only):

- mixed.safetensors: a plain tensor file (no config.json) with a 2-D BF16, a 1-D F32, a 2-D F16, an
  I64 and an empty F32 tensor: --include '*' quantizes the three floating ones and copies the others.
- short.safetensors: 5 bytes, shorter than the 8-byte header length.
- header_past_end.safetensors: a header length of 4096 in a file of 100 bytes.
- overlap.safetensors: tensor 'b' begins inside tensor 'a'.
- gap.safetensors: four bytes between 'a' and 'b' that belong to no tensor.
- wrong_size.safetensors: tensor 'a' (F32 [2, 2], 16 bytes) given 12 bytes of data_offsets.
- unknown_dtype.safetensors: tensor 'b' has dtype "Q7".
- not_json.safetensors: a header that is not JSON.
- two_shards/: a sharded model whose tensor 'model.norm.weight' is in both shards.
- nan_model/: a Llama-like model whose model.layers.0.mlp.up_proj.weight (BF16 [8, 16]) holds a NaN
  at [3, 7].
- inf_model/: the same in F32 with +Inf at [5, 2].
- nan_norm_model/: NaN in model.norm.weight only, a tensor that is copied, never quantized.
- bad_group.safetensors: a 4-bit group 'w.weight' (NF4, [4, 64], blocksize 64, no double
  quantization) whose absmax holds 3 floats where its quant_state says 4 blocks.

Run from the top of the tree: python3 tests/cli/data/make_data.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 16,
    "intermediate_size": 8,
    "model_type": "llama",
    "num_hidden_layers": 1,
    "tie_word_embeddings": False,
    "vocab_size": 4,
}


def values(n, scale=1.0):
    """n finite, non-zero, deterministic values in [-scale, scale]."""
    return [scale * (((i * 37 + 11) % 97) - 48) / 48.0 or 0.5 for i in range(n)]


def encode(dtype, vals):
    if dtype == "F32":
        return struct.pack("<%df" % len(vals), *vals)
    if dtype == "F16":
        return struct.pack("<%de" % len(vals), *vals)
    if dtype == "BF16":
        return b"".join(struct.pack("<f", v)[2:] for v in vals)  # the upper half of the float32
    if dtype == "I64":
        return struct.pack("<%dq" % len(vals), *[int(v * 100) for v in vals])
    raise ValueError(dtype)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def tensor(dtype, shape, vals=None):
    return (dtype, shape, encode(dtype, vals if vals is not None else values(numel(shape))))


def safetensors_bytes(tensors, header_extra=None, raw_header=None):
    """A file as the official writer lays it out: tensors in name order, header padded to 8 bytes."""
    header = {"__metadata__": {"format": "pt"}}
    data = b""
    for name in sorted(tensors):
        dtype, shape, buf = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(buf)]}
        data += buf
    for name, fields in (header_extra or {}).items():
        header[name].update(fields)
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def write(path, data):
    path = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_model(dirname, tensors, config=CONFIG):
    write(os.path.join(dirname, "config.json"), (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    write(os.path.join(dirname, "model.safetensors"), safetensors_bytes(tensors))


def llama(up_dtype="BF16", up_vals=None, norm_vals=None):
    return {
        "model.embed_tokens.weight": tensor("BF16", [4, 16]),
        "model.layers.0.mlp.up_proj.weight": tensor(up_dtype, [8, 16], up_vals),
        "model.norm.weight": tensor("BF16", [16], norm_vals),
        "lm_head.weight": tensor("BF16", [4, 16]),
    }


def main():
    ab = {"a": tensor("F32", [2, 2]), "b": tensor("F32", [4])}

    write("mixed.safetensors", safetensors_bytes({
        "w2d": tensor("BF16", [4, 64]),
        "b1d": tensor("F32", [64]),
        "h2d": tensor("F16", [2, 32]),
        "ids": tensor("I64", [4]),
        "empty": tensor("F32", [0]),
    }))
    write("short.safetensors", b"\x10\x00\x00\x00\x00")
    write("header_past_end.safetensors", struct.pack("<Q", 4096) + b"{" + b" " * 91)
    # a: [0, 16], b: [8, 24] (16 bytes, as F32 [4] needs), 24 data bytes in the file
    write("overlap.safetensors", safetensors_bytes(ab, {"b": {"data_offsets": [8, 24]}})[:-8])
    # a: [0, 16], b: [20, 36], 36 data bytes in the file
    write("gap.safetensors", safetensors_bytes(ab, {"b": {"data_offsets": [20, 36]}}) + b"\0" * 4)
    # a: [0, 12], b: [12, 28], 28 data bytes in the file
    write("wrong_size.safetensors", safetensors_bytes(ab, {"a": {"data_offsets": [0, 12]},
                                                          "b": {"data_offsets": [12, 28]}})[:-4])
    write("unknown_dtype.safetensors", safetensors_bytes(ab, {"b": {"dtype": "Q7"}}))
    write("not_json.safetensors", safetensors_bytes(ab, raw_header=b"this is not JSON at all"))

    # two_shards: a -> shard 1, model.norm.weight -> shard 2, but shard 1 holds model.norm.weight too
    shard1 = {"model.layers.0.mlp.up_proj.weight": tensor("BF16", [8, 16]),
              "model.norm.weight": tensor("BF16", [16])}
    shard2 = {"model.norm.weight": tensor("BF16", [16])}
    index = {"metadata": {"total_size": 320},
             "weight_map": {"model.layers.0.mlp.up_proj.weight": "model-00001-of-00002.safetensors",
                            "model.norm.weight": "model-00002-of-00002.safetensors"}}
    write("two_shards/config.json", (json.dumps(CONFIG, indent=2, sort_keys=True) + "\n").encode())
    write("two_shards/model-00001-of-00002.safetensors", safetensors_bytes(shard1))
    write("two_shards/model-00002-of-00002.safetensors", safetensors_bytes(shard2))
    write("two_shards/model.safetensors.index.json", (json.dumps(index, indent=2) + "\n").encode())

    nan_up = values(8 * 16)
    nan_up[3 * 16 + 7] = float("nan")
    write_model("nan_model", llama(up_vals=nan_up))
    inf_up = values(8 * 16)
    inf_up[5 * 16 + 2] = float("inf")
    write_model("inf_model", llama(up_dtype="F32", up_vals=inf_up))
    nan_norm = values(16)
    nan_norm[9] = float("nan")
    write_model("nan_norm_model", llama(norm_vals=nan_norm))

    state = json.dumps({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 64]}).encode()
    write("bad_group.safetensors", safetensors_bytes({
        "w.weight": ("U8", [128, 1], bytes(range(128))),
        "w.weight.absmax": tensor("F32", [3]),
        "w.weight.quant_map": tensor("F32", [16]),
        "w.weight.quant_state.bitsandbytes__nf4": ("U8", [len(state)], state),
    }))


if __name__ == "__main__":
    main()
