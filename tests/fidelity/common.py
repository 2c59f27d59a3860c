"""common.py: what the merge-fidelity scripts of tests/fidelity/ share (issue 14's evidence).

- The two bases and where they are: tiny-llama (fixtures/models/tiny-llama, bf16, and its NF4 checkpoint
  tiny-llama-nf4 that transformers + bitsandbytes saved on an H200) and the real all-MiniLM-L6-v2 of the
  PyPI package all_minilm_l6_v2 (a BertModel in float32), which `prepare_minilm` writes into BUILD/fidelity/
  as a bf16 copy (minilm-bf16: the float base W16) and its NF4 checkpoint (minilm-nf4, made by
  BUILD/nf4quant, whose bytes are bitsandbytes' CUDA quantize_4bit's: the same role as tiny-llama-nf4).
  Adapters are trained against the NF4 checkpoints loaded as they are (pre-quantized), so that the weights
  the adapter saw are exactly the CUDA-made bytes every merge route uses: loading the float base with a
  BitsAndBytesConfig on this CPU would quantize with bitsandbytes' CPU double quantization, whose block
  constants differ from CUDA's on some tensors (peft_bytes.py says how).
- Loading: a 4-bit model on the CPU with bitsandbytes 0.50.2's AVX512-BF16 fast path turned off (it fails
  on some shapes, "N must be divisible by block_n", and repacks the weights in place), a float model.
- The two tasks: what the adapters learn, their inputs (fixtures/fidelity/tasks.json), their logits and
  their "trained answer".
"""
import json
import os
import shutil
import subprocess

import torch

top = os.path.dirname(os.path.abspath(__file__)) + "/../.."
top = os.path.normpath(top)
FIX = f"{top}/fixtures/fidelity"
MODELS = f"{top}/fixtures/models"

# the four adapters: (name, model, learning rate)
ADAPTERS = [("tiny_lr1e-3", "tiny", 1e-3), ("tiny_lr1e-7", "tiny", 1e-7),
            ("minilm_lr5e-4", "minilm", 5e-4), ("minilm_lr1e-7", "minilm", 1e-7)]


def bases(build):
    """{model: (float base W16, 4-bit base Wq)} directories."""
    return {"tiny": (f"{MODELS}/tiny-llama", f"{MODELS}/tiny-llama-nf4"),
            "minilm": (f"{build}/fidelity/minilm-bf16", f"{build}/fidelity/minilm-nf4")}


def prepare_minilm(build):
    """BUILD/fidelity/minilm-bf16 (the package's MiniLM, its float tensors rounded to bf16, position_ids
    buffer left out) and minilm-nf4 (BUILD/nf4quant of it); made once, kept."""
    from safetensors.torch import load_file, save_file
    import all_minilm_l6_v2
    out = f"{build}/fidelity"
    w16, wq = f"{out}/minilm-bf16", f"{out}/minilm-nf4"
    if os.path.exists(f"{wq}/config.json"):
        return w16, wq
    os.makedirs(out, exist_ok=True)
    src = f"{out}/minilm-src"
    if not os.path.exists(f"{src}/all-MiniLM-L6-v2/model.safetensors"):
        all_minilm_l6_v2.extract_model(src)
    src += "/all-MiniLM-L6-v2"
    shutil.rmtree(w16, ignore_errors=True)
    os.makedirs(w16)
    sd = load_file(f"{src}/model.safetensors")
    sd = {k: v.to(torch.bfloat16) for k, v in sd.items() if v.is_floating_point()}
    save_file(sd, f"{w16}/model.safetensors", metadata={"format": "pt"})
    with open(f"{src}/config.json") as f:
        cfg = json.load(f)
    cfg["torch_dtype"] = "bfloat16"
    with open(f"{w16}/config.json", "w") as f:
        json.dump(cfg, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if os.path.exists(f"{src}/{name}"):
            shutil.copy(f"{src}/{name}", w16)
    shutil.rmtree(wq, ignore_errors=True)
    subprocess.run([f"{build}/nf4quant", "-q", w16, "-o", wq], check=True)
    return w16, wq


def model_class(path):
    """The transformers class config.json names (LlamaForCausalLM, BertModel)."""
    import transformers
    with open(f"{path}/config.json") as f:
        return getattr(transformers, json.load(f)["architectures"][0])


def no_avx512bf16(model):
    """Turns bitsandbytes' CPU AVX512-BF16 path off on every 4-bit layer (see the header)."""
    import bitsandbytes as bnb
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
    return model


def load(path):
    """A model directory, 4-bit (pre-quantized, its quantization_config) or float, in bf16, eval mode."""
    model = model_class(path).from_pretrained(path, dtype=torch.bfloat16)
    return no_avx512bf16(model).eval()


def load_peft(path, adapter):
    """The unmerged model: the base at path with the adapter, as trained."""
    from peft import PeftModel
    return no_avx512bf16(PeftModel.from_pretrained(load(path), adapter)).eval()


def tasks():
    with open(f"{FIX}/tasks.json") as f:
        return json.load(f)


def logits(model, kind, task):
    """float32 logits on the trained inputs. tiny: next-token logits [n, L, vocab] of the memorised
    sequences. minilm: 20 * cosine similarity [nq, nk] of the mean-pooled embeddings of the queries and the
    keys (sentence-transformers' pooling; 20 is MultipleNegativesRankingLoss' scale), the logits of a
    classifier that picks each query's key."""
    if kind == "tiny":
        ids = torch.tensor(task["tiny"]["sequences"])
        return model(input_ids=ids).logits.float()
    t = task["minilm"]

    def embed(enc):
        ids, mask = torch.tensor(enc["input_ids"]), torch.tensor(enc["attention_mask"])
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).float()
        e = (h * m).sum(1) / m.sum(1)
        return torch.nn.functional.normalize(e, dim=-1)
    return 20.0 * embed(t["queries"]) @ embed(t["keys"]).T


def answer(kind, task):
    """The trained answer: the argmax each row of the logits should give (tiny: the next token of each
    sequence at every position; minilm: each query's key)."""
    if kind == "tiny":
        return torch.tensor(task["tiny"]["sequences"])[:, 1:]
    return torch.tensor(task["minilm"]["pairing"])


def predicted(kind, lg):
    """The argmax of logits, shaped like answer()."""
    if kind == "tiny":
        return lg[:, :-1].argmax(-1)
    return lg.argmax(-1)


def peft_merge_4bit(base4, adapter):
    """PEFT's own 4-bit merge on this CPU: the unmerged model's merge_and_unload(), each targeted weight
    dequantized, summed with the delta in float32 and quantized again by bitsandbytes' CPU functions."""
    return no_avx512bf16(load_peft(base4, adapter).merge_and_unload()).eval()


def groups_4bit(model, names=None):
    """{tensor name: tensor} of the 4-bit layers of a loaded model as bitsandbytes serializes them (codes,
    then quant_state.as_dict(packed=True)), the layers whose weight is in names (all when None). Written
    with safetensors' save_file, a file reference.py reads as MERGED (transformers 5.25 cannot
    save_pretrained a model loaded from a pre-quantized checkpoint)."""
    import bitsandbytes as bnb
    out = {}
    for mod, m in model.named_modules():
        if isinstance(m, bnb.nn.Linear4bit) and (names is None or mod + ".weight" in names):
            out[mod + ".weight"] = m.weight.data.contiguous()
            for k, v in m.weight.quant_state.as_dict(packed=True).items():
                out[f"{mod}.weight.{k}"] = v.contiguous()
    return out
