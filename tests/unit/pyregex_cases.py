"""pyregex_cases.py: writes pyregex_cases.inc, the whole-string matches of Python's re (re.fullmatch) for
patterns of the dialect formats/pyregex.c translates, which test_pyregex.c checks the translation against.

    python3 tests/unit/pyregex_cases.py > tests/unit/pyregex_cases.inc
"""
import re

PATTERNS = ["a.c", "model\\.layers\\.\\d+\\.mlp", "(?:gate|up)_proj", "(?P<n>q|k)_proj", "a{2,3}", "a{,2}b",
            "a{2}", "x*?y", "[^.]+", "[\\d_]+", "[a-c-]+", "[]a]+", "\\w+\\.\\s?", "\\W", "a|b|", "(a|)(b|)c",
            "a{", "a{1,}", "{", "}", "a.b", "\\.", "[.]", "\\Aab\\Z", "^ab$", "a\\-b", "[\\^]", "[a^]", "\\D\\S"]
STRINGS = ["abc", "a\nc", "model.layers.12.mlp", "model.layers.x.mlp", "gate_proj", "up_proj", "k_proj", "aa",
           "aaa", "aaaa", "b", "ab", "aab", "xxy", "y", "q.k", "12_3", "a-c", "]a", "word. ", "!", "", "c", "a{",
           "a.b", ".", "-", "a-b", "^", "x ", "a\nb"]


def cstr(s):
    return '"' + s.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'


print("/* made by pyregex_cases.py: {pattern, string, re.fullmatch(pattern, string) is not None} */")
for p in PATTERNS:
    for s in STRINGS:
        print("{%s, %s, %d}," % (cstr(p), cstr(s), 1 if re.fullmatch(p, s) else 0))
