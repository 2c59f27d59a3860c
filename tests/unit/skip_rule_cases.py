"""skip_rule_cases.py: writes skip_rule_cases.inc: whether each transformers version keeps a module out
for an llm_int8_skip_modules entry (formats/skiplist.h S2, S3), computed by the versions' own code, copied
below; test_skiplist.c checks hf_skip_entry_matches against it.

    python3 tests/unit/skip_rule_cases.py > tests/unit/skip_rule_cases.inc
"""
import re


def v4(key, path):
    """transformers 4.57.6 integrations/bitsandbytes.py _replace_with_bnb_linear, for one entry."""
    name = path.rsplit(".", 1)[-1]
    return key == name or (key + ".") in path or key == path


def v5_prefix(key, name):
    """transformers 5.17.0 quantizers/quantizers_utils.py should_convert_module, for one pattern."""
    return bool(re.match(f"{key}\\.", name) or re.match(f"{key}", name) or name.endswith(key))


def v5(key, name):
    """transformers 5.25.0 quantizers/quantizers_utils.py should_convert_module, for one pattern."""
    boundary = r"(?:(?<=\.)|(?=\.|$))"
    return bool(re.match(rf"(?:{key}){boundary}", name) or name.endswith(key))


ENTRIES = ["lm_head", "model.layers.1", "model.layers.1.", "q_proj", "self_attn.q_proj", "layers.0", "fc", "proj",
           "model\\.layers\\.0\\.fc$", "lm_head$", "", ".", ".*", "model.layers.\\d+.mlp",
           "model.layers.(0|1).self_attn", "(?:model|lm)_?head", "model.layers.0$", "m.*fc", "[^.]+_head", "a\\Z",
           "model.layers.1.mlp.up_proj$", "experts", "mlp.experts", "model\\.norm", "x{0,2}lm_head",
           "(model|vision)\\.", "\\w+\\.layers"]
PATHS = ["lm_head", "model.lm_head", "xlm_head", "model.layers.1.mlp.up_proj", "model.layers.10.mlp.up_proj",
         "model.layers.0.self_attn.q_proj", "model.layers.0.fc", "model.layers.0.fc2", "a", "model.norm",
         "model.layers.0.mlp.experts.3.w1", "model.layers.0.mlp.shared_experts.gate_proj", "model.layers.0",
         "vision.x"]


def cstr(s):
    return '"' + s.replace("\\", "\\\\") + '"'


print("/* made by skip_rule_cases.py: {entry, module path, 4.57, 5.17, 5.25} */")
for e in ENTRIES:
    for p in PATHS:
        print("{%s, %s, %d, %d, %d}," % (cstr(e), cstr(p), v4(e, p), v5_prefix(e, p), v5(e, p)))
