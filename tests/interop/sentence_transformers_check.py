"""sentence_transformers_check.py FLOAT QUANTIZED [FLOAT QUANTIZED]...: each QUANTIZED model directory
loads with SentenceTransformer(path) (bitsandbytes 4-bit layers on the CPU), with the modules of the float
model at FLOAT before it (a Dense module's weights equal to the float model's: they are copied, not
quantized), and embeds the sentences below within cosine similarity MIN_COSINE of it, each embedding of
unit length (its Normalize module ran). Exit status 1 and a message otherwise."""
import sys
import warnings

import torch
from sentence_transformers import SentenceTransformer

MIN_COSINE = 0.95
SENTENCES = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog.",
    "Quantization keeps four bits per weight.",
    "Where is the train station?",
    "Sentence embeddings map text to vectors.",
    "It rained all day in Lisbon.",
]


def linear4bit_without_avx512bf16(model):
    """bitsandbytes' CPU path for bf16 on AVX-512 machines refuses some shapes ("N must be divisible by
    block_n"): the plain path instead."""
    import bitsandbytes as bnb

    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit) and hasattr(m, "support_avx512bf16_for_cpu"):
            m.support_avx512bf16_for_cpu = False


def embed(model):
    try:
        return model.encode(SENTENCES, convert_to_tensor=True)
    except RuntimeError as e:
        if "divisible by block_n" not in str(e):
            raise
        linear4bit_without_avx512bf16(model)
        return model.encode(SENTENCES, convert_to_tensor=True)


def main():
    warnings.simplefilter("ignore")
    failed = False
    refs = {}
    for float_path, path in zip(sys.argv[1::2], sys.argv[2::2]):
        if float_path not in refs:
            ref = SentenceTransformer(float_path, device="cpu")
            refs[float_path] = (ref, embed(ref).float())
        ref, want = refs[float_path]
        model = SentenceTransformer(path, device="cpu")
        kinds = [type(m).__name__ for m in model]
        if kinds != [type(m).__name__ for m in ref]:
            print(f"sentence-transformers: FAILED: {path}: modules {kinds}, the float model's "
                  f"{[type(m).__name__ for m in ref]}", file=sys.stderr)
            failed = True
            continue
        for mine, theirs in zip(model, ref):
            if type(mine).__name__ == "Dense" and not torch.equal(mine.linear.weight, theirs.linear.weight):
                print(f"sentence-transformers: FAILED: {path}: the Dense module's weights differ", file=sys.stderr)
                failed = True
        n4 = sum(1 for m in model.modules() if type(m).__name__ == "Linear4bit")
        if n4 == 0:
            print(f"sentence-transformers: FAILED: {path}: no 4-bit layer was loaded", file=sys.stderr)
            failed = True
        got = embed(model).float()
        cos = torch.nn.functional.cosine_similarity(want, got, dim=1)
        norms = got.norm(dim=1)
        print(f"{path}: {n4} 4-bit layers; cosine to the float model per sentence: "
              + ", ".join(f"{c:.4f}" for c in cos.tolist()))
        if cos.min().item() < MIN_COSINE or (norms - 1).abs().max().item() > 1e-3:
            print(f"sentence-transformers: FAILED: {path}: cosine {cos.min().item():.4f} < {MIN_COSINE} or "
                  f"norms {norms.tolist()} not 1", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
