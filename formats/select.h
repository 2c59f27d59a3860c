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
 * [out, in]. *reason (never NULL on return; a static string or one owned by s) says why, in a few words
 * for `nf4quant --dry-run -v`: "linear", "embedding", "output embedding (lm_head)",
 * "llm_int8_skip_modules: 'vision'", "not 2-D", "not a floating type", "not a weight",
 * "kept in float32 by t5", ... transpose and reason may be NULL when the caller does not want them. */
bool hf_select_quantize(const hf_select *s, const char *name, int ndim, const int64_t *shape, bool is_float,
			bool *transpose, const char **reason);

#endif
