/*
 * hf_select.h: which tensors of a Hugging Face checkpoint transformers' bitsandbytes 4-bit loader quantizes.
 *
 * transformers (5.17, BitsAndBytesConfig(load_in_4bit=True)) decides on the model's modules, not on the
 * checkpoint: it swaps every module whose type is exactly nn.Linear (or GPT-2's Conv1D) for a Linear4bit,
 * except the modules it keeps out (output embedding, tied weights, the last module, _keep_in_fp32_modules,
 * or llm_int8_skip_modules when given). A pre-quantized checkpoint must store quantized exactly the
 * weights of the modules so swapped, no more and no fewer. A checkpoint does not say which modules are
 * nn.Linear, so the decision here comes from the tensor's name, shape and dtype and the model's
 * config.json, by rules written down at the top of hf_select.c.
 */
#ifndef FORMATS_HF_SELECT_H
#define FORMATS_HF_SELECT_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "skiplist.h"

typedef struct hf_select hf_select;

/* Rules for one model, from its parsed config.json (NULL: a plain safetensors file, name rules only).
 * The skip list is read from quantization_config.llm_int8_skip_modules, or from a top-level
 * llm_int8_skip_modules; a list there (even an empty one) replaces transformers' default skips, as it
 * does in transformers; null or absent keeps them. Its entries are matched as transformers 5.25 matches
 * them (skiplist.h S3). An entry that cannot be followed is left out and reported by hf_select_refused:
 * a Python regex pyregex.h refuses, regexes beyond SKIP_MAX_ATOMS (4096) atoms together, an entry past
 * the 65536th, or one that is not a string. The config is not referenced after the call. Returns NULL
 * only when memory runs out. */
hf_select *hf_select_create(const cJSON *config);
void hf_select_free(hf_select *s); /* NULL is a no-op */

/* Why the config's skip list cannot be followed (a static phrase: "a Python regex this tool cannot match
 * as transformers does (...)", "not a string (transformers fails on it)", ...), or NULL when it can. The
 * first such entry's text goes to *entry (may be NULL; "" for one that is not a string; valid until
 * hf_select_free). The decisions of hf_select_quantize then ignore that entry: which modules it keeps
 * out is not known, and a wrong guess gives a checkpoint transformers cannot load. A tool must not
 * write one on such decisions, except for modules whose fate the user chose. */
const char *hf_select_refused(const hf_select *s, const char **entry);

/* Whether transformers' 4-bit loader converts the module that owns tensor `name` (a tensor of the
 * checkpoint with this shape; is_float: F32/F16/BF16), i.e. whether a pre-quantized checkpoint stores
 * it quantized. *transpose is set for weights stored [in, out] (Conv1D) that bitsandbytes quantizes as
 * [out, in]. *reason (never NULL on return; a static string, valid after hf_select_free) says why, in a
 * few words for `nf4quant --dry-run -v`: "linear", "linear (Conv1D, transposed)", "embedding",
 * "output embedding (lm_head)", "in llm_int8_skip_modules", "not 2-D", "not a floating type",
 * "not a weight", "kept in float32 by t5 (wo)", "MoE expert (fused 3-D parameter in transformers 5)", ...
 * transpose and reason may be NULL when the caller does not want them. s may be used from several
 * threads at once. */
bool hf_select_quantize(const hf_select *s, const char *name, int ndim, const int64_t *shape, bool is_float,
			bool *transpose, const char **reason);

/* When tensor `name` is the weight of a module that transformers may convert unless it is kept out, writes
 * that module's path as transformers names it at run time (what llm_int8_skip_modules entries are matched
 * against) into buf and returns buf; else (an embedding, not a 2-D float weight, a name longer than the
 * rules take or than size) returns NULL. *linear5 (may be NULL) is set to whether transformers 5 converts
 * it (an nn.Linear or Conv1D by the rules of hf_select.c, whatever the skip patterns say); when false, the
 * module is one only transformers 4 may convert (skiplist.h S2: a Linear subclass, a per-expert Linear, an
 * MoE router), or none does. */
const char *hf_select_linear_module(const hf_select *s, const char *name, int ndim, bool is_float, bool *linear5,
				    char *buf, size_t size);

/* The run-time paths of the modules transformers keeps out by default as the output embedding (F3 of
 * hf_select.c) for this model type, i = 0, 1, ...; NULL past the last. A checkpoint whose output head is tied
 * lacks its weight, but the model has the module: a skip list must name it. */
const char *hf_select_output_head(const hf_select *s, size_t i);

/* A tensor of a checkpoint, for hf_select_skip_list. */
typedef struct hf_select_tensor {
	const char *name;
	int ndim;
	bool is_float;  /* F32, F16, BF16 */
	bool quantized; /* stored 4-bit */
} hf_select_tensor;

/* The llm_int8_skip_modules to write into the quantization_config of a checkpoint of this model holding
 * t[0, n): hf_skip_list_make (skiplist.h) over the modules of hf_select_linear_module and the output heads
 * of hf_select_output_head that the checkpoint lacks (tied: the model has them), so that transformers 4.x
 * and 5.x convert exactly the modules stored quantized. LQ_OK or LQ_ERR_NOMEM; l is to be freed with
 * hf_skip_list_free either way. */
lq_status hf_select_skip_list(const hf_select *s, const hf_select_tensor *t, size_t n, hf_skip_list *l);

#endif
