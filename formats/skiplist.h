/*
 * skiplist.h: transformers' llm_int8_skip_modules: how each transformers version matches an entry against
 * a module path, and the list a 4-bit checkpoint carries so that every version converts exactly the
 * modules it stores quantized.
 *
 * Facts, from the transformers 4.57.6 and 5.25.0 sources (PyPI wheels) and 5.17.0 for the rule between:
 *
 * S1 A list, even an empty one, replaces the version's default skips; null keeps them (4.57 and 5.x
 *    quantizers/base.py get_modules_to_not_convert: `if skip_modules is None` decides; BitsAndBytesConfig
 *    keeps [] as []). The defaults differ: 4.57 integrations/bitsandbytes.py get_keys_to_not_convert
 *    removes ".weight" and ".bias" from the model's last parameter, so a model whose last parameter is a
 *    bias (BERT's pooler.dense.bias) keeps that module in float; 5.x removes only ".weight" (a bias names
 *    no module: nothing is kept) and adds both ends of every tied weight. A checkpoint whose list is null
 *    therefore loads differently in the two, and one of them fails on it. _keep_in_fp32_modules is added
 *    in both, list or not.
 * S2 4.57 _replace_with_bnb_linear converts a module when `isinstance(module, (nn.Linear, Conv1D))` (Linear
 *    subclasses too, and the per-expert nn.Linear and router nn.Linear of the 4.x MoE classes) unless, for
 *    some entry e: e equals the module's name (the last segment of its path), e equals its path, or
 *    e + "." occurs anywhere in its path. Plain strings: no regex.
 * S3 5.x converts `type(module) is nn.Linear` or Conv1D (hf_select.c F1) unless should_convert_module says
 *    no. 5.25 (quantizers/quantizers_utils.py): re.match(rf"(?:{e})(?:(?<=\.)|(?=\.|$))", path) or
 *    path.endswith(e): e is a Python regex matched from the start of the path up to a module boundary
 *    ("layers.1" catches "layers.1.mlp", not "layers.10.mlp"), or a plain suffix, with no boundary ("proj"
 *    catches "q_proj"). 5.17 and the 5.x before it: re.match(e + r"\."), re.match(e) or path.endswith(e),
 *    a prefix with no boundary ("fc" catches "fc2").
 */
#ifndef FORMATS_SKIPLIST_H
#define FORMATS_SKIPLIST_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "libquant.h"
#include "pyregex.h"

typedef enum hf_skip_rule {
	HF_SKIP_V4,        /* S2, transformers 4.x */
	HF_SKIP_V5_PREFIX, /* S3 before the boundary, transformers 5.0 to 5.17 at least */
	HF_SKIP_V5,        /* S3, transformers 5.25 */
} hf_skip_rule;

/* One entry, ready to be matched. An entry made only of printable ASCII literals, `.` (any character but
 * a newline), escaped punctuation and a final `$` (what hf_skip_list_make writes, and most lists) is
 * matched without regcomp; any other goes through pyregex.h. */
typedef struct hf_skip_entry {
	char *text;
	size_t len;
	char *units;   /* the literal form: a character, or HF_SKIP_ANY for `.`; NULL when it has none */
	size_t nunits;
	bool anchored; /* the literal form ends with `$` */
	regex_t re;    /* "^(" ERE ")$", when there is no literal form */
	bool compiled;
	regex_t re_prefix; /* the same for proper prefixes of a path: its `$` matches nowhere (PYRE_NO_END) */
	bool compiled_prefix; /* else re serves for both */
} hf_skip_entry;

#define HF_SKIP_ANY '\x7f'

/* Makes e from text (copied). PYRE_OK; PYRE_REFUSED: a regex pyregex.h refuses, e then matches only under
 * HF_SKIP_V4 (plain strings there) and must still be freed; PYRE_NOMEM. *size (may be NULL): the atoms of
 * its regex, 0 for an entry with a literal form. */
pyre_status hf_skip_entry_init(hf_skip_entry *e, const char *text, uint64_t *size);
void hf_skip_entry_free(hf_skip_entry *e); /* a zeroed or freed entry is a no-op */

/* Whether transformers, by rule, keeps out the module at `path` (a run-time module path) for entry e. A
 * refused entry matches nothing under the 5.x rules. */
bool hf_skip_entry_matches(const hf_skip_entry *e, const char *path, hf_skip_rule rule);

/* A module of the model, as the list maker sees it. */
typedef struct hf_skip_module {
	const char *path; /* its run-time path (hf_select.h hf_select_linear_module) */
	bool quantized;   /* stored 4-bit in the checkpoint */
	bool linear5;     /* transformers 5 converts it unless kept out (S3) */
	bool linear4;     /* transformers 4 may convert it (S2): every linear5 module, and Linear subclasses,
			   * per-expert Linears and routers, which 5.x leaves alone */
	bool absent;      /* not in the checkpoint, maybe not in the model (a tied output head): kept out when an
			   * entry can say so without catching a quantized module, else left out silently */
} hf_skip_module;

typedef struct hf_skip_list {
	char **entries;   /* the list, in order */
	size_t n;
	char **warnings;  /* one per module no entry keeps out under some version's rule without catching a
			   * quantized module there: "'PATH': transformers 4.x ..." (the module's path raw) */
	size_t nwarnings;
} hf_skip_list;

/*
 * The llm_int8_skip_modules for a checkpoint holding mods: entries that, under every rule of
 * hf_skip_rule, keep out each module left in float that the version could convert (linear4 under S2,
 * linear5 under S3), and catch no quantized module. Each module's own path is written where it is safe
 * under every rule; else its name, an ancestor, or a pair: the path escaped and anchored
 * ("model\.fc$", which 4.x never matches) for 5.x and a 4.x spelling that 5.x cannot misread; modules
 * only 4.x converts (per-expert Linears) are grouped under their shortest safe ancestor ("mlp.experts").
 * What no spelling can do is a warning, with the versions that will not load the checkpoint; the
 * entries then favour 5.25, then 4.x. Every entry is in the literal form of hf_skip_entry. An empty list
 * is a valid answer (S1: it disables every version's defaults). LQ_OK or LQ_ERR_NOMEM; l is then
 * freed with hf_skip_list_free either way.
 */
lq_status hf_skip_list_make(const hf_skip_module *mods, size_t n, hf_skip_list *l);
void hf_skip_list_free(hf_skip_list *l);

#endif /* FORMATS_SKIPLIST_H */
