"""transformers_load.py: nf4quant's checkpoints load in transformers 4.x and 5.x as nf4quant says.

    transformers_load.py prepare WORK NF4QUANT TOP
        makes the float models under WORK/src (the shipped tiny-llama and tiny-qwen2, a tiny BertModel,
        BertForMaskedLM and Mixtral made here with random weights, the root model of the MiniLM of the PyPI
        package all_minilm_l6_v2), quantizes each with NF4QUANT into WORK/q/NAME (tiny-llama also with
        --exclude, tiny-qwen2 with its head; the BertModel also by loramerge --requantize with a LoRA made
        here), keeps its plan (--dry-run
        --json, or what the file stores) in WORK/NAME.plan.json, and checks that the skip list written
        reads back through nf4quant itself: the float model with that list as its own
        llm_int8_skip_modules plans the same.
    transformers_load.py prepare-check WORK NF4QUANT TOP
        both, in one process.
    transformers_load.py check WORK
        with the transformers found first on sys.path (the driver runs it under 4.57 and 5.x), loads each
        WORK/q/NAME with the Auto class of its architecture, and checks: the modules that are Linear4bit
        are exactly the weights the plan quantizes, every other nn.Linear of the model stays float; each
        Linear4bit's packed weight and quant_state (absmax, quant_map, nested ones, blocksize, shape,
        dtype, offset) equal the file's; a forward pass runs and matches, within TOLERANCE, the float model
        whose quantized weights are replaced by the file's weights dequantized by bitsandbytes.

Exits 1 with a message on the first difference. Run by tests/interop/transformers_load.sh.
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import torch

MODELS = {  # name: (Auto class, the float model it is made from, nf4quant's options)
    "tiny-llama": ("AutoModelForCausalLM", "tiny-llama", []),
    # modules left in float by the user: listed by path
    "tiny-llama-exclude": ("AutoModelForCausalLM", "tiny-llama",
                           ["--exclude", "model.layers.1.mlp.*", "--exclude", "*.layers.0.self_attn.q_proj.weight"]),
    # the head quantized too: nothing left in float, the list is empty and turns off both versions' defaults
    "tiny-qwen2-head": ("AutoModelForCausalLM", "tiny-qwen2", ["--include", "lm_head.weight"]),
    "bert": ("AutoModel", "bert", []),
    # loramerge --requantize of a float base writes the same kind of list
    "bert-requantize": ("AutoModel", "bert", ["loramerge"]),
    "bert-mlm": ("AutoModelForMaskedLM", "bert-mlm", []),
    "minilm": ("AutoModel", "minilm", []),
    # per-expert nn.Linear and an nn.Linear router in 4.x, fused parameters in 5.x: 4.x must be told
    "mixtral": ("AutoModelForCausalLM", "mixtral", []),
}
# Largest difference allowed between the 4-bit model's outputs and the float model's with the dequantized
# weights, relative to the largest output: bitsandbytes' CPU backend dequantizes and multiplies in the
# compute dtype as the reference does, but may sum in another order.
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}


def fail(msg):
    print(f"transformers_load: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


# ------------------------------------------------------------------------------------------ prepare


def make_bert(path, masked_lm, dtype):
    from transformers import BertConfig, BertForMaskedLM, BertModel

    torch.manual_seed(1 if masked_lm else 0)
    cfg = BertConfig(vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=32)
    model = (BertForMaskedLM if masked_lm else BertModel)(cfg).to(dtype)
    model.save_pretrained(path, safe_serialization=True)


def make_mixtral(path):
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(2)
    cfg = MixtralConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                        max_position_embeddings=32, tie_word_embeddings=False)
    MixtralForCausalLM(cfg).to(torch.bfloat16).save_pretrained(path, safe_serialization=True)


def extract_minilm(path):
    """The root model (a BertModel) of the sentence-transformers folder in the package's zip."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # it announces itself
        import all_minilm_l6_v2

    os.makedirs(path)
    with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as z:
        for name in ("config.json", "model.safetensors"):  # the folder's root: the BertModel
            try:
                with z.open(name) as src, open(os.path.join(path, name), "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except KeyError:
                fail(f"all_minilm_l6_v2's zip has no {name} at its root")


def make_adapter(base, path):
    """A LoRA on BertModel's query and value, both factors random (PEFT's own initialization leaves B zero)."""
    from peft import LoraConfig, get_peft_model
    from transformers import BertModel

    torch.manual_seed(3)
    model = get_peft_model(BertModel.from_pretrained(base), LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                                                                     init_lora_weights=False))
    model.save_pretrained(path)


def stored_plan(path):
    """What a checkpoint stores: "quantize" for the weights with a 4-bit group, "copy" for the others."""
    t = file_tensors(path)
    return {k: "quantize" if k + ".absmax" in t else "copy" for k in t
            if not any(k.endswith(s) for s in (".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"))
            and ".quant_state." not in k}


def plan(nf4quant, src, opts=()):
    out = run([nf4quant, "--dry-run", "--json", "-q", *opts, src, "-o", "unused"])
    return {t["name"]: t["action"] for t in json.loads(out)["tensors"]}


def prepare(work, nf4quant, top):
    src = os.path.join(work, "src")
    os.makedirs(os.path.join(work, "q"))
    for shipped in ("tiny-llama", "tiny-qwen2"):
        shutil.copytree(os.path.join(top, "fixtures/models", shipped), os.path.join(src, shipped))
    make_bert(os.path.join(src, "bert"), False, torch.float32)
    make_bert(os.path.join(src, "bert-mlm"), True, torch.bfloat16)
    make_mixtral(os.path.join(src, "mixtral"))
    extract_minilm(os.path.join(src, "minilm"))
    for name, (_, base, opts) in MODELS.items():
        m = os.path.join(src, base)
        q = os.path.join(work, "q", name)
        if opts == ["loramerge"]:
            make_adapter(m, os.path.join(work, "adapter"))
            run([os.path.join(os.path.dirname(nf4quant), "loramerge"), "-q", "--requantize", m,
                 os.path.join(work, "adapter"), "-o", q])
            p, opts = stored_plan(q), []
        else:
            p = plan(nf4quant, m, opts)
            run([nf4quant, "-q", *opts, m, "-o", q])
        json.dump(p, open(os.path.join(work, name + ".plan.json"), "w"))
        qc = json.load(open(os.path.join(q, "config.json")))["quantization_config"]
        skip = qc["llm_int8_skip_modules"]
        if not isinstance(skip, list):
            fail(f"{name}: llm_int8_skip_modules is {skip!r}, not an explicit list")
        # the list read back by nf4quant itself (a top-level llm_int8_skip_modules of the input), with
        # no option: the list alone says which modules stay in float
        back = os.path.join(work, "back-" + name)
        shutil.copytree(m, back)
        cfg = json.load(open(os.path.join(back, "config.json")))
        cfg["llm_int8_skip_modules"] = skip
        json.dump(cfg, open(os.path.join(back, "config.json"), "w"), indent=2)
        if {k: v for k, v in plan(nf4quant, back).items() if k in p} != p:
            fail(f"{name}: with its own skip list {skip} nf4quant plans otherwise")
        print(f"{name}: {sum(a == 'quantize' for a in p.values())} tensors quantized, llm_int8_skip_modules {skip}")


# -------------------------------------------------------------------------------------------- check


def file_tensors(path):
    from safetensors import safe_open

    out = {}
    for f in os.listdir(path):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(path, f), "pt") as s:
                for k in s.keys():
                    out[k] = s.get_tensor(k)
    return out


def quant_state_json(t, w):
    for k in t:
        if k.startswith(w + ".quant_state.bitsandbytes__"):
            return json.loads(bytes(t[k].tolist()).decode())
    fail(f"{w}: no quant_state in the file")


def same(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


def check_quant_state(name, w, m, t):
    qs = m.weight.quant_state
    js = quant_state_json(t, w)
    if not same(m.weight.data.cpu(), t[w]):
        fail(f"{name}: {w}: the packed 4-bit weight loaded differs from the file's")
    checks = [("absmax", qs.absmax, t[w + ".absmax"]), ("quant_map", qs.code, t[w + ".quant_map"])]
    if qs.nested:
        checks += [("nested_absmax", qs.state2.absmax, t[w + ".nested_absmax"]),
                   ("nested_quant_map", qs.state2.code, t[w + ".nested_quant_map"])]
        if qs.state2.blocksize != js["nested_blocksize"] or float(qs.offset) != float(js["nested_offset"]):
            fail(f"{name}: {w}: nested blocksize or offset loaded differ from the file's quant_state")
    for what, got, want in checks:
        if not same(got.cpu(), want):
            fail(f"{name}: {w}: {what} loaded differs from the file's")
    if qs.blocksize != js["blocksize"] or list(qs.shape) != js["shape"] or qs.quant_type != js["quant_type"] \
            or str(qs.dtype).removeprefix("torch.") != js["dtype"]:
        fail(f"{name}: {w}: quant_state {qs.blocksize} {list(qs.shape)} {qs.quant_type} {qs.dtype} loaded, "
             f"the file says {js}")


def load(cls_name, path, dtype, quantized):
    import transformers

    cls = getattr(transformers, cls_name)
    kw = {"dtype": dtype} if int(transformers.__version__.split(".")[0]) >= 5 else {"torch_dtype": dtype}
    if quantized:
        kw["device_map"] = "cpu"
    return cls.from_pretrained(path, **kw)


def check(work):
    import bitsandbytes as bnb
    import transformers

    version = transformers.__version__
    for name, (cls_name, base, _) in MODELS.items():
        q = os.path.join(work, "q", name)
        plan_ = json.load(open(os.path.join(work, name + ".plan.json")))
        cfg = json.load(open(os.path.join(q, "config.json")))
        dtype = getattr(torch, cfg["quantization_config"]["bnb_4bit_compute_dtype"])
        try:
            model = load(cls_name, q, dtype, True)
        except Exception as e:  # the failure this test is for: say which model and version
            fail(f"transformers {version}: {name}: from_pretrained: {type(e).__name__}: {e}")
        t = file_tensors(q)
        n4 = nlin = 0
        for mname, m in model.named_modules():
            if not isinstance(m, torch.nn.Linear):
                continue
            w = mname + ".weight"
            want4 = plan_.get(w) == "quantize"
            is4 = isinstance(m, bnb.nn.Linear4bit)
            if is4 != want4:
                fail(f"transformers {version}: {name}: {mname} is {type(m).__name__}, nf4quant's plan says "
                     f"{plan_.get(w, 'nothing (not in the file)')}")
            if is4:
                n4 += 1
                check_quant_state(name, w, m, t)
                if hasattr(m, "support_avx512bf16_for_cpu"):
                    m.support_avx512bf16_for_cpu = False  # "N must be divisible by block_n" on this CPU
            else:
                nlin += 1
        if n4 != sum(a == "quantize" for a in plan_.values()):
            fail(f"transformers {version}: {name}: {n4} Linear4bit modules, the plan quantizes "
                 f"{sum(a == 'quantize' for a in plan_.values())} tensors")
        # the reference: the float model, each quantized weight replaced by the file's, dequantized
        ref = load(cls_name, os.path.join(work, "src", base), dtype, False)
        mods = dict(model.named_modules())
        with torch.no_grad():
            for mname, m in ref.named_modules():
                if isinstance(mods.get(mname), bnb.nn.Linear4bit):
                    w4 = mods[mname].weight
                    m.weight.copy_(bnb.functional.dequantize_4bit(w4.data, w4.quant_state).to(m.weight.dtype))
            g = torch.Generator().manual_seed(0)
            vocab = cfg["vocab_size"]
            ids = torch.randint(1, vocab, (2, 12), generator=g)
            model.eval()
            ref.eval()
            got = model(input_ids=ids)[0].float()
            want = ref(input_ids=ids)[0].float()
        diff = (got - want).abs().max().item() / max(want.abs().max().item(), 1e-30)
        if not torch.isfinite(got).all() or diff > TOLERANCE[dtype]:
            fail(f"transformers {version}: {name}: the 4-bit model's output differs from the dequantized "
                 f"float model's by {diff:.3g} of the largest output (tolerance {TOLERANCE[dtype]:g})")
        print(f"transformers {version}: {name}: {n4} Linear4bit and {nlin} float Linear modules as planned, "
              f"quant_state as in the file, output within {diff:.2g} of the dequantized model")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] in ("prepare", "prepare-check"):
        prepare(sys.argv[2], sys.argv[3], sys.argv[4])
        if sys.argv[1] == "prepare-check":
            check(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        fail("usage: transformers_load.py prepare|prepare-check WORK NF4QUANT TOP | check WORK")
