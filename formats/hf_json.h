/*
 * hf_json.h: the JSON files of a Hugging Face model directory as transformers writes them, byte for byte:
 * the shard index, config.json edited in place (a member inserted, replaced or removed, the rest kept as
 * it was), the quantization_config of a bitsandbytes 4-bit checkpoint, and Python's json.dumps of a string.
 */
#ifndef FORMATS_HF_JSON_H
#define FORMATS_HF_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fmt.h"

/* model.safetensors.index.json as transformers writes it (indent 2, sorted keys, newline at the end).
 * names[i] is in shard file shard_files[shard_of[i]]. The string is malloc'd. */
char *hf_index_json(uint64_t total_parameters, uint64_t total_size, char *const *names, const size_t *shard_of,
		    size_t n, char *const *shard_files);

/* config.json with `member` ("\"key\": value" in JSON, multi-line allowed, written with a two-space
 * indent as transformers does) inserted as a top-level member, in sorted position when the existing keys
 * are sorted, at the end otherwise; an existing member of that key is replaced. With member NULL, the
 * member `key` is removed instead (nothing changes when there is none). Everything else is kept byte for
 * byte. Returns a malloc'd string (its length in *out_len), or NULL with a message in err
 * (LQ_ERR_CORRUPT: text is not a JSON object; out of memory). */
char *hf_config_edit(const char *text, size_t len, const char *key, const char *member, size_t *out_len, char *err);

/* Python json.dumps(s) of a string (ASCII only, \uXXXX escapes), appended to a malloc'd buffer. */
char *hf_py_json_string(const char *s);

/* The quantization_config member of config.json ("\"quantization_config\": {...}") as transformers writes
 * it for bitsandbytes 4-bit (sorted keys, indent 2); llm_int8_skip_modules is null when skip is NULL, [] when
 * nskip is 0.
 * Returns a malloc'd string, NULL when out of memory. */
char *hf_quantization_config(lq_qtype qtype, bool double_quant, lq_dtype compute, char *const *skip, size_t nskip);

#endif /* FORMATS_HF_JSON_H */
