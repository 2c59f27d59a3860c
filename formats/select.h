/*
 * select.h: which tensors of a Hugging Face checkpoint transformers' bitsandbytes 4-bit loader quantizes.
 *
 * transformers (5.17, BitsAndBytesConfig(load_in_4bit=True)) decides on the model's modules, not on the
 * checkpoint: it swaps every module whose type is exactly nn.Linear (or GPT-2's Conv1D) for a Linear4bit,
 * except the modules it keeps out (output embedding, tied weights, the last module, _keep_in_fp32_modules,
 * or llm_int8_skip_modules when given). A pre-quantized checkpoint must store quantized exactly the
 * weights of the modules so swapped, no more and no fewer. A checkpoint does not say which modules are
 * nn.Linear, so the decision here comes from the tensor's name, shape and dtype and the model's
 * config.json, by rules written down at the top of select.c.
 */
#ifndef FORMATS_SELECT_H
#define FORMATS_SELECT_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct hf_select hf_select;

/* Rules for one model, from its parsed config.json (NULL: a plain safetensors file, name rules only).
 * The skip list is read from quantization_config.llm_int8_skip_modules, or from a top-level
 * llm_int8_skip_modules; a list there (even an empty one) replaces transformers' default skips, as it
 * does in transformers; null or absent keeps them. The config is not referenced after the call.
 * Returns NULL only when memory runs out. */
hf_select *hf_select_create(const cJSON *config);
void hf_select_free(hf_select *s); /* NULL is a no-op */

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

/* When tensor `name` is the weight of a module that transformers converts unless it is kept out (an
 * nn.Linear or Conv1D by the rules of select.c, whatever the skip patterns say), writes that module's path
 * as transformers names it at run time (what llm_int8_skip_modules entries are matched against) into buf
 * and returns buf; else returns NULL. */
const char *hf_select_linear_module(const hf_select *s, const char *name, int ndim, bool is_float, char *buf,
				    size_t size);

#endif
