#!/usr/bin/env python3
"""Ground truth for formats/hf_select.c: which tensors transformers' 4-bit loader quantizes.

For each case: build a tiny random model from its config class (no Hub access), save it as bf16 safetensors,
load it back with BitsAndBytesConfig(load_in_4bit=True, nf4, double quant, compute bf16[, skip modules]),
save that quantized model again, and record for every key of the saved float checkpoint its dtype, shape and
whether transformers stored it quantized. Writes one JSON file (default $OUT/select_truth.json) that
tests/unit/select_truth_test.c replays against hf_select_quantize().

Truth per key: "quantized" is true when the re-saved 4-bit checkpoint holds KEY.quant_state.bitsandbytes__nf4
(what a pre-quantized checkpoint must contain); "params4bit" says whether the loaded model's parameter of the
same name is a bnb Params4bit (null when the loaded model has no parameter of that name, e.g. renamed keys);
"conv1d" whether that Linear4bit replaced a Conv1D, i.e. was transposed to [out, in] (null: not a Params4bit).

Run on the GPU machine:
    PYTHONPATH=... python3 tests/gpu/select_truth.py [--out FILE] [--device cuda] [--only NAME,...]
"""
import argparse
import json
import os
import sys
import tempfile
import time
import traceback

import torch

import transformers
from transformers import BitsAndBytesConfig

import bitsandbytes as bnb
from safetensors import safe_open
from transformers.pytorch_utils import Conv1D

TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=128)


def tiny(cls_name, **kw):
    """A config of class `cls_name` from transformers with keyword overrides."""
    return getattr(transformers, cls_name)(**kw)


def c_llama(**kw):
    return tiny("LlamaConfig", **{**TINY, **kw})


def c_llava():
    vision = tiny("CLIPVisionConfig", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, image_size=32, patch_size=8, projection_dim=32)
    return tiny("LlavaConfig", vision_config=vision, text_config=c_llama(), image_token_id=127)


def c_qwen2_vl():
    text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=128,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2]})
    vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=4, mlp_ratio=2, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2)
    return tiny("Qwen2VLConfig", text_config=text, vision_config=vision, image_token_id=120, video_token_id=121,
                vision_start_token_id=122, vision_end_token_id=123)


def c_gemma3():
    text = tiny("Gemma3TextConfig", **TINY, head_dim=16)
    vision = tiny("SiglipVisionConfig", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, image_size=32, patch_size=8)
    return tiny("Gemma3Config", text_config=text, vision_config=vision, mm_tokens_per_image=4,
                image_token_index=120, boi_token_index=121, eoi_token_index=122)


# name: (model class, config factory, llm_int8_skip_modules or None)
CASES = {
    "llama": ("LlamaForCausalLM", lambda: c_llama(tie_word_embeddings=False), None),
    "llama_tied": ("LlamaForCausalLM", lambda: c_llama(tie_word_embeddings=True), None),
    "llama_seqcls": ("LlamaForSequenceClassification", lambda: c_llama(num_labels=3, pad_token_id=0), None),
    "llama_tokcls": ("LlamaForTokenClassification", lambda: c_llama(num_labels=3, pad_token_id=0), None),
    # With a skip list the default skips (lm_head, tied, last module) are NOT added: lm_head gets quantized.
    "llama_skip": ("LlamaForCausalLM", lambda: c_llama(),
                   ["down_proj", "model.layers.1.self_attn", "model.layers.0.mlp.(gate|up)_proj"]),
    "llama_skip_head": ("LlamaForCausalLM", lambda: c_llama(), ["lm_head", "q_proj"]),
    "olmo_tied": ("OlmoForCausalLM", lambda: tiny("OlmoConfig", **TINY, tie_word_embeddings=True), None),
    "olmo": ("OlmoForCausalLM", lambda: tiny("OlmoConfig", **TINY, tie_word_embeddings=False), None),
    "mistral": ("MistralForCausalLM", lambda: tiny("MistralConfig", **TINY), None),
    "mixtral": ("MixtralForCausalLM", lambda: tiny("MixtralConfig", **TINY, num_local_experts=4,
                                                   num_experts_per_tok=2), None),
    "qwen2": ("Qwen2ForCausalLM", lambda: tiny("Qwen2Config", **TINY), None),
    "qwen2_moe": ("Qwen2MoeForCausalLM", lambda: tiny("Qwen2MoeConfig", **TINY, moe_intermediate_size=32,
                                                      shared_expert_intermediate_size=64, num_experts=4,
                                                      num_experts_per_tok=2), None),
    "qwen3_moe": ("Qwen3MoeForCausalLM", lambda: tiny("Qwen3MoeConfig", **TINY, head_dim=16,
                                                      moe_intermediate_size=32, num_experts=4,
                                                      num_experts_per_tok=2), None),
    "gemma": ("GemmaForCausalLM", lambda: tiny("GemmaConfig", **TINY, head_dim=16), None),
    "gemma2": ("Gemma2ForCausalLM", lambda: tiny("Gemma2Config", **TINY, head_dim=16), None),
    "gemma3_text": ("Gemma3ForCausalLM", lambda: tiny("Gemma3TextConfig", **TINY, head_dim=16), None),
    "phi3": ("Phi3ForCausalLM", lambda: tiny("Phi3Config", **TINY, pad_token_id=0), None),
    "gpt2": ("GPT2LMHeadModel", lambda: tiny("GPT2Config", n_embd=64, n_layer=2, n_head=4, vocab_size=128,
                                             n_positions=64), None),
    "gpt2_untied": ("GPT2LMHeadModel", lambda: tiny("GPT2Config", n_embd=64, n_layer=2, n_head=4, vocab_size=128,
                                                    n_positions=64, tie_word_embeddings=False), None),
    "gpt2_seqcls": ("GPT2ForSequenceClassification", lambda: tiny("GPT2Config", n_embd=64, n_layer=2, n_head=4,
                                                                  vocab_size=128, n_positions=64, num_labels=2,
                                                                  pad_token_id=0), None),
    "gpt_bigcode": ("GPTBigCodeForCausalLM", lambda: tiny("GPTBigCodeConfig", n_embd=64, n_layer=2, n_head=4,
                                                          vocab_size=128, n_positions=64), None),
    "gpt_neox": ("GPTNeoXForCausalLM", lambda: tiny("GPTNeoXConfig", hidden_size=64, intermediate_size=128,
                                                    num_hidden_layers=2, num_attention_heads=4,
                                                    vocab_size=128), None),
    "falcon": ("FalconForCausalLM", lambda: tiny("FalconConfig", hidden_size=64, num_hidden_layers=2,
                                                 num_attention_heads=4, vocab_size=128), None),
    "opt": ("OPTForCausalLM", lambda: tiny("OPTConfig", hidden_size=64, ffn_dim=128, num_hidden_layers=2,
                                           num_attention_heads=4, vocab_size=128, word_embed_proj_dim=64,
                                           max_position_embeddings=64), None),
    "bloom": ("BloomForCausalLM", lambda: tiny("BloomConfig", hidden_size=64, n_layer=2, n_head=4,
                                               vocab_size=128), None),
    "t5": ("T5ForConditionalGeneration", lambda: tiny("T5Config", d_model=64, d_ff=128, d_kv=16, num_layers=2,
                                                      num_decoder_layers=2, num_heads=4, vocab_size=128), None),
    "bert_seqcls": ("BertForSequenceClassification", lambda: tiny("BertConfig", hidden_size=64, num_hidden_layers=2,
                                                                  num_attention_heads=4, intermediate_size=128,
                                                                  vocab_size=128, max_position_embeddings=64,
                                                                  num_labels=3), None),
    "bert_mlm_untied": ("BertForMaskedLM", lambda: tiny("BertConfig", hidden_size=64, num_hidden_layers=2,
                                                        num_attention_heads=4, intermediate_size=128, vocab_size=128,
                                                        max_position_embeddings=64, tie_word_embeddings=False), None),
    "roberta_mlm": ("RobertaForMaskedLM", lambda: tiny("RobertaConfig", hidden_size=64, num_hidden_layers=2,
                                                       num_attention_heads=4, intermediate_size=128,
                                                       vocab_size=128, max_position_embeddings=64), None),
    "whisper": ("WhisperForConditionalGeneration", lambda: tiny(
        "WhisperConfig", d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, vocab_size=128, num_mel_bins=16,
        max_source_positions=32, max_target_positions=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=1, suppress_tokens=[], begin_suppress_tokens=[]), None),
    "gpt_oss": ("GptOssForCausalLM", lambda: tiny("GptOssConfig", **TINY, head_dim=16, num_local_experts=4,
                                                  num_experts_per_tok=2), None),
    "llava": ("LlavaForConditionalGeneration", c_llava, None),
    "llava_skip_vision": ("LlavaForConditionalGeneration", c_llava, ["vision_tower", "multi_modal_projector"]),
    "llava_skip_runtime": ("LlavaForConditionalGeneration", c_llava, ["model.vision_tower", "lm_head"]),
    "qwen2_vl": ("Qwen2VLForConditionalGeneration", c_qwen2_vl, None),
    "qwen2_vl_skip": ("Qwen2VLForConditionalGeneration", c_qwen2_vl, ["visual", "model.language_model.layers.0"]),
    "gemma3_vlm": ("Gemma3ForConditionalGeneration", c_gemma3, None),
}


def header(path):
    """{key: (dtype, shape)} of every tensor in the safetensors files under `path`."""
    out = {}
    for fn in sorted(os.listdir(path)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(path, fn), framework="pt") as f:
                for k in f.keys():
                    s = f.get_slice(k)
                    out[k] = (s.get_dtype(), list(s.get_shape()))
    return out


def run_case(name, cls_name, make_config, skip, device, tmp):
    cls = getattr(transformers, cls_name)
    torch.manual_seed(0)
    model = cls(make_config()).to(torch.bfloat16)
    fdir = os.path.join(tmp, name + "-bf16")
    qdir = os.path.join(tmp, name + "-nf4")
    model.save_pretrained(fdir)
    del model
    with open(os.path.join(fdir, "config.json")) as f:
        config = json.load(f)
    qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                            bnb_4bit_compute_dtype=torch.bfloat16, llm_int8_skip_modules=skip)
    qmodel = cls.from_pretrained(fdir, quantization_config=qc, device_map=device)
    runtime = {n: isinstance(p, bnb.nn.Params4bit) for n, p in qmodel.named_parameters(remove_duplicate=False)}
    # Conv1D modules were transposed to [out, in] before quantizing (Linear4bit.source_cls is Conv1D)
    conv1d = {n + ".weight": issubclass(getattr(m, "source_cls", object), Conv1D)
              for n, m in qmodel.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    qkeys, save_error = None, None
    try:
        qmodel.save_pretrained(qdir)
        qkeys = set(header(qdir))
    except Exception as e:  # keep the runtime view when saving fails
        save_error = f"{type(e).__name__}: {e}"
    del qmodel
    if device != "cpu":
        torch.cuda.empty_cache()

    # What the selector is given: config.json, plus the skip list where this case used one.
    sel_config = dict(config)
    if skip is not None:
        sel_config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True,
                                             "llm_int8_skip_modules": skip}
    tensors = []
    for key, (dtype, shape) in sorted(header(fdir).items()):
        q = (key + ".quant_state.bitsandbytes__nf4") in qkeys if qkeys is not None else runtime.get(key, False)
        tensors.append({"key": key, "dtype": dtype, "shape": shape, "quantized": bool(q),
                        "params4bit": runtime.get(key), "conv1d": conv1d.get(key)})
    saved = {t["key"] for t in tensors}
    unmatched = sorted(n for n, is4 in runtime.items() if is4 and n not in saved)
    return {"name": name, "class": cls_name, "skip_modules": skip, "config": sel_config,
            "truth_source": "resaved" if qkeys is not None else "runtime", "save_error": save_error,
            "unmatched_params4bit": unmatched, "tensors": tensors}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "select_truth.json"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--only", default="", help="comma-separated case names")
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s]
    result = {"transformers": transformers.__version__, "torch": torch.__version__,
              "bitsandbytes": bnb.__version__, "device": args.device, "cases": [], "errors": {}}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (cls_name, make_config, skip) in CASES.items():
            if only and name not in only:
                continue
            t = time.time()
            try:
                case = run_case(name, cls_name, make_config, skip, args.device, tmp)
            except Exception as e:  # one architecture failing must not stop the others
                result["errors"][name] = f"{type(e).__name__}: {e}"
                print(f"{name:20s} ERROR {type(e).__name__}: {e}", flush=True)
                traceback.print_exc(limit=3)
                continue
            result["cases"].append(case)
            nq = sum(t_["quantized"] for t_ in case["tensors"])
            extra = f" save_error={case['save_error']}" if case["save_error"] else ""
            if case["unmatched_params4bit"]:
                extra += f" unmatched_params4bit={len(case['unmatched_params4bit'])}"
            print(f"{name:20s} {cls_name:34s} keys={len(case['tensors']):3d} quantized={nq:3d} "
                  f"{time.time() - t:5.1f}s{extra}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{len(result['cases'])} cases, {len(result['errors'])} errors, {time.time() - t0:.1f}s -> {args.out}")
    return 0 if result["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
