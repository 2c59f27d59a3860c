/*
 * hf_tensors.h: a checkpoint's logical tensors: every float (or other) tensor as it is, and every
 * bitsandbytes 4-bit group (codes, absmax, quant_map, nested constants, quant_state; shared/specs/nf4-bnb.md)
 * as one tensor with its parsed state, its parts found wherever the shards put them, and every part
 * checked against what the state says (type, shape, size) before anyone reads data.
 */
#ifndef FORMATS_HF_TENSORS_H
#define FORMATS_HF_TENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bnb.h"
#include "hf_model.h"

typedef struct hf_ref {
	st_file *f;
	const st_tensor *t;
} hf_ref;

typedef struct hf_tensor {
	const char *name;          /* the tensor's name; a group's is its weight's ("...q_proj.weight") */
	size_t shard;              /* the shard that holds its data (a group's codes) */
	hf_ref data;               /* the tensor, or a group's codes */
	bool quantized;            /* a 4-bit group */
	bnb_state state;           /* quantized: the parsed quant_state */
	hf_ref parts[BNB_NPARTS];  /* quantized: every part ({NULL, NULL} for those it has not) */
	lq_dtype dtype;            /* a float tensor's type, a group's dequantized type; LQ_DTYPE_U8 for any
				    * other tensor (integers, booleans, fp8...), copied as bytes */
	int ndim;                  /* the logical shape: a group's from its state */
	int64_t shape[BNB_MAX_DIMS];
	uint64_t nelem;
	uint64_t bytes;            /* bytes of data on disk: every part of a group */
} hf_tensor;

typedef struct hf_tensors {
	hf_tensor *v;              /* in shard order, then header order */
	size_t n;
	bool any_quantized;
} hf_tensors;

/* Lists m's logical tensors into ts. LQ_ERR_CORRUPT (a part without its group, a group without a part,
 * a part whose type or shape disagrees with the state, an unreadable quant_state), LQ_ERR_UNSUPPORTED (a
 * stored quant_map or nested_quant_map that is not, bit for bit, the standard map the kernels decode
 * with: bitsandbytes would decode with the stored one), with a message naming the file and tensor, or
 * LQ_ERR_NOMEM. */
lq_status hf_tensors_list(const hf_model *m, hf_tensors *ts, char *err);
void hf_tensors_free(hf_tensors *ts);

/* The tensor of that name, or NULL. */
const hf_tensor *hf_tensors_find(const hf_tensors *ts, const char *name);

/* Reads a whole part or tensor into a malloc'd buffer (*len its size). */
lq_status hf_ref_read(const hf_ref *r, void **out, size_t *len, char *err);

/* The transformer layer a tensor's name puts it in ("model.layers.7.mlp..." is 7: the number after a
 * "layers.", "layer.", "h.", "blocks." or "block." component), or -1. */
int hf_layer_of(const char *name);

#endif /* FORMATS_HF_TENSORS_H */
