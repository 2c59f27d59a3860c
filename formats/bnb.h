/*
 * bnb.h: the bitsandbytes 4-bit tensor group as transformers serializes it (shared/specs/nf4-bnb.md,
 * "Serialized tensors"): the names of its parts, their layout and sizes, and the quant_state JSON. The
 * names' suffixes are written here and nowhere else (out_model.h om_add_group declares a group's parts).
 *
 * The JSON holds one number that is known only after the data is read (nested_offset). So that every
 * output size is known before any data moves, the JSON is written at a fixed length computed from the
 * shape and options, padded with trailing spaces; json.loads accepts that.
 */
#ifndef FORMATS_BNB_H
#define FORMATS_BNB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fmt.h"
#include "safetensors.h"

#define BNB_MAX_DIMS 8
/* The buffer a part's name needs, its NUL included, at most: a longer name is refused. */
#define BNB_NAME_MAX 4200

typedef struct bnb_state {
	lq_qtype qtype;
	int32_t blocksize;
	lq_dtype dtype; /* of the original tensor (and of the dequantized one) */
	int ndim;
	int64_t shape[BNB_MAX_DIMS];
	bool double_quant;
	int32_t nested_blocksize; /* 256 */
	float nested_offset;
} bnb_state;

/* The parts of a quantized weight X: X, X.absmax, X.quant_map, X.nested_absmax, X.nested_quant_map,
 * X.quant_state.bitsandbytes__nf4 (or __fp4). */
typedef enum bnb_part {
	BNB_PART_WEIGHT,
	BNB_PART_ABSMAX,
	BNB_PART_QUANT_MAP,
	BNB_PART_NESTED_ABSMAX,
	BNB_PART_NESTED_QUANT_MAP,
	BNB_PART_QUANT_STATE,
	BNB_NPARTS
} bnb_part;

/* Writes the name of a part of weight `weight` into buf; returns false when it does not fit. */
bool bnb_part_name(char *buf, size_t size, const char *weight, bnb_part part, lq_qtype qtype);

/* Where the quant_state's suffix (".quant_state.bitsandbytes__" and a type) begins in name, or NULL: the
 * mark of a tensor that belongs to a 4-bit group. */
const char *bnb_find_state_suffix(const char *name);

/* Whether the group has that part (the nested ones only with double quantization). */
bool bnb_has_part(const bnb_state *s, bnb_part part);

/* The fixed length reserved for the state's JSON. */
size_t bnb_state_json_size(const bnb_state *s);

/* The safetensors type and shape of part `part` of the group of a weight of n elements with state s, as
 * transformers saves it: the codes [packed bytes, 1] U8, absmax [nblocks] (U8 with double
 * quantization, F32 without), quant_map [16] F32, nested_absmax F32, nested_quant_map [256] F32, and the
 * quant_state [bnb_state_json_size(s)] U8. */
void bnb_part_layout(const bnb_state *s, bnb_part part, int64_t n, st_dtype *dtype, int *ndim, int64_t shape[2]);

/* The bytes of all the parts of that group, as bnb_part_layout lays them out (the quant_state at its
 * reserved length): what the group takes in an output shard. */
uint64_t bnb_group_bytes(const bnb_state *s, int64_t n);

/* Writes the JSON exactly as bitsandbytes' json.dumps writes it, then spaces up to `size` bytes (which
 * must be bnb_state_json_size(s)). Returns false if it does not fit (it always does for that size) or if
 * nested_offset is not finite (json.dumps would write NaN or Infinity, which is not JSON). */
bool bnb_state_json(const bnb_state *s, char *buf, size_t size);

/* Parses a quant_state JSON (as bitsandbytes or we wrote it) into *s; LQ_ERR_CORRUPT with a message, also
 * for a nested_offset that is not a finite float32. */
lq_status bnb_state_parse(const void *json, size_t len, bnb_state *s, char *err);

/* Python's repr() of a double, which is also what json.dumps writes ("0.1787155121564865", "1e-05",
 * "2.6813781250921337e+30"; "NaN", "Infinity" as json.dumps writes those). Returns the length. */
size_t bnb_py_float_repr(double v, char *buf, size_t size);

#endif /* FORMATS_BNB_H */
