/*
 * op.h: what the streaming executor (executor.c) and its operations (op_*.c) share.
 *
 * The executor moves every task through three stages over a ring of staging slots (reader thread,
 * compute on the caller's thread and the pool, writer thread) and knows nothing of what an operation
 * does: it asks the task's op, an lq_op_impl, how many units the input holds, how they are cut into
 * chunks and how many bytes a chunk is, and hands each stage's work to the op's functions. An operation
 * is one file and one entry of the table in executor.c (ARCHITECTURE.md, "A new operation").
 */
#ifndef LQ_BUILDING
#error "op.h is internal to libquant"
#endif
#ifndef LQ_OP_H
#define LQ_OP_H

#include <stdatomic.h>

#include "lq_internal.h"

/* Input bytes of a chunk at most, and so of a slot's input buffers. */
#define LQ_CHUNK_BYTES ((size_t)16 << 20)

/* A buffer shared by the reader and the compute stage, freed by whichever lets go last: given back to the
 * context's reuse pool (lq_reuse) when it came from there, so that a whole weight read for every task
 * does not fault in and zero fresh pages each time. */
typedef struct lq_held {
	atomic_int refs;
	unsigned char *data;
	lq_reuse *reuse;   /* where data came from and goes back to, or NULL (malloc'd) */
	size_t capacity;   /* of data, as the pool gave it */
} lq_held;

lq_held *lq_held_new(void);          /* one reference, data NULL; NULL when memory runs out */
/* A new buffer of `bytes` from `reuse` (NULL: malloc), input `input` read into it. */
lq_status lq_held_read(const lq_source *source, lq_reuse *reuse, int32_t input, uint64_t bytes, lq_held **out);
void lq_held_retain(lq_held *h);
void lq_held_release(lq_held *h);    /* NULL is a no-op */

/* What the compute stage's functions see of the run. */
typedef struct lq_run {
	lq_ctx *ctx;
	void *scratch; /* the largest scratch_bytes of the run's ops, for the compute stage only */
} lq_run;

/* One chunk of a task: units [elem0, elem0 + nelem) of its input (elements; bytes for a copy). */
typedef struct lq_chunk {
	int64_t elem0, nelem;
	bool first, last;
	const unsigned char *in; /* the main input's bytes of the chunk: len of them, from byte offset */
	uint64_t offset;
	size_t len;
	const unsigned char *in2; /* a second input streamed with it (op->second_input), or NULL */
	size_t len2;
	unsigned char *out;      /* the output staging buffer (op->out_bytes): compute fills out_len bytes */
	size_t out_len;
	unsigned char *aux;      /* the slot's buffer of op->aux_bytes (or NULL): compute leaves in it what
				  * measure reads */
} lq_chunk;

typedef struct lq_op_impl {
	const char *name;
	/* The task's arguments are sound (LQ_ERR_ARG with a message naming the tensor otherwise). */
	lq_status (*check)(lq_ctx *ctx, const lq_task *t);
	/* The units of the main input, how many make a chunk (at most LQ_CHUNK_BYTES of input), and the input
	 * bytes of units [u0, u1). */
	uint64_t (*units)(const lq_task *t);
	uint64_t (*chunk_units)(const lq_task *t);
	uint64_t (*input_bytes)(const lq_task *t, uint64_t u0, uint64_t u1);
	/* A second input read chunk by chunk with the main one (NULL: none): its source id (-1: none for this
	 * task) and its bytes of units [u0, u1). */
	int32_t (*second_input)(const lq_task *t);
	uint64_t (*second_bytes)(const lq_task *t, uint64_t u0, uint64_t u1);
	/* Reader thread, before the first chunk: the side inputs, read whole (NULL: none). An op that needs its
	 * main input whole before the first chunk is computed reads it into *whole (one reference, handed
	 * over): the reader then serves the chunks from it, since a stream cannot be read twice. */
	lq_status (*read_side)(const lq_source *source, lq_reuse *reuse, const lq_task *t, void **side, lq_held **whole);
	void (*free_side)(void *side);
	/* Compute stage, first chunk: the state the task keeps until its last write, from the side inputs
	 * (NULL: the op keeps none). */
	lq_status (*begin)(lq_run *run, const lq_task *t, void *side, lq_held *whole, void **state);
	/* Compute stage, every chunk (NULL: nothing to compute, write takes the input as it is). */
	lq_status (*compute)(lq_run *run, const lq_task *t, lq_chunk *c, void *state);
	/* Writer thread: the chunk's bytes to the sink; on the last chunk `state` is the task's (the writer
	 * owns it then), the task's constants go out too; before, state is NULL. */
	lq_status (*write)(const lq_sink *sink, const lq_task *t, const lq_chunk *c, void *state);
	/* Measure thread, every chunk of a task that `measures` (NULL: none), after its compute and before its
	 * write: figures of the chunk (its in, out and aux) added to the state's result, beside the compute of
	 * the chunks after it. It must not use the pool (the compute stage's) nor touch what compute writes;
	 * the state's figures are the measure's until the writer reads the result after the last chunk. */
	bool (*measures)(const lq_task *t);
	lq_status (*measure)(lq_ctx *ctx, const lq_task *t, const lq_chunk *c, void *state);
	/* Bytes of each slot's aux buffer that a task needs (NULL: none). */
	size_t (*aux_bytes)(const lq_task *t);
	/* What the sink's task_done receives, from the last chunk's state (NULL: nothing). */
	const lq_task_result *(*result)(const void *state);
	void (*free_state)(void *state);
	/* Memory, for lq_execute_memory_bound: the state and side inputs of the task at most, the output bytes
	 * of a chunk (a slot's output buffer) and the scratch the compute stage uses. */
	uint64_t (*state_bytes)(const lq_task *t);
	size_t out_bytes;
	size_t scratch_bytes;
} lq_op_impl;

extern const lq_op_impl lq_op_copy, lq_op_quantize4, lq_op_merge, lq_op_compare;

/* ------------------------------------------------------------------- helpers the ops share */

/* sink->write of len bytes at offset, nothing when len is 0 or output is -1. */
lq_status lq_sink_put(const lq_sink *sink, int32_t output, uint64_t offset, const void *p, size_t len);

/* Reads a whole side input of `bytes` bytes into a new buffer (*out, freed by the caller). */
lq_status lq_read_whole(const lq_source *source, int32_t input, uint64_t bytes, void **out);

/* "NaN", "+inf" or "-inf", for a value that is not finite. */
const char *lq_nonfinite_name(float v);

/* Refuses element elem0 + i of task t (src[i], of dtype, not finite): "origin: tensor 'x': element [3, 7]
 * (flat index 451) is NaN; refusing to quantize it". Returns LQ_ERR_NONFINITE. */
lq_status lq_fail_unquantizable(lq_ctx *ctx, const lq_task *t, const void *src, lq_dtype dtype, int64_t elem0,
				int64_t i);

uint64_t lq_gcd_u64(uint64_t a, uint64_t b);

/* A 4-bit input (lq_tensor_in with quantized): its constants as read, and as float32 scales. */
typedef struct lq_group_side {
	void *absmax, *nested;
} lq_group_side;

/* Reads the constants of a group of n elements (reader thread). With `main` (the group's codes, input `input`
 * of `bytes` bytes) not NULL: when the source reads the codes faster before a constant (lq_source.order, a
 * compressed archive read forward), the codes are read first, whole, into *main (one reference), for the
 * executor to serve the chunks from; else *main stays NULL. */
lq_status lq_group_side_read(const lq_source *source, const lq_tensor_in *in, int64_t n, lq_group_side *side,
			     int32_t input, uint64_t bytes, lq_reuse *reuse, lq_held **main);
void lq_group_side_free(lq_group_side *side);
/* Bytes of the constants of a group of n elements: as read and as float32 scales. */
uint64_t lq_group_side_bytes(const lq_tensor_in *in, int64_t n);
/* The float32 scale of every block (malloc'd into *absmax), double quantization undone. */
lq_status lq_group_scales(lq_ctx *ctx, const lq_tensor_in *in, int64_t n, const lq_group_side *side, float **absmax);

/* A 4-bit output (lq_group_out): the block scales of the whole tensor, quantized chunk by chunk; on the
 * last chunk, the double quantization. */
typedef struct lq_group_state {
	int64_t nblocks;
	float *absmax;
	uint8_t *absmax_q;
	float *nested_absmax;
	float offset;
} lq_group_state;

lq_status lq_group_out_begin(const lq_group_out *out, int64_t n, lq_group_state *g);
void lq_group_out_free(lq_group_state *g);
/* Bytes of the state of a group of n elements. */
uint64_t lq_group_out_bytes(const lq_group_out *out, int64_t n);
/* Quantizes the chunk's nelem elements of src (dtype) into c->out, their scales into g; LQ_ERR_NONFINITE
 * with the chunk's first such element in *bad (the caller says where it is). */
lq_status lq_group_out_quantize(lq_ctx *ctx, const lq_group_out *out, lq_group_state *g, const void *src,
				lq_dtype dtype, lq_chunk *c, int64_t *bad);
/* The last chunk's step: the double quantization of the scales, refused when its offset overflows or a
 * scale does not come back finite (the message names the task's tensor). */
lq_status lq_group_out_finish(lq_ctx *ctx, const lq_task *t, const lq_group_out *out, lq_group_state *g);
/* The writer's last step: the scales (or their codes and nested scales) to the sink. */
lq_status lq_group_out_write(const lq_sink *sink, const lq_group_out *out, const lq_group_state *g);

#endif /* LQ_OP_H */
