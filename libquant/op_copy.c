/*
 * op_copy.c: LQ_OP_COPY: the input's bytes to out_data unchanged, a chunk at a time, straight from the
 * slot's input buffer (no compute, no state).
 */
#include "op.h"

static lq_status copy_check(lq_ctx *ctx, const lq_task *t)
{
	(void)ctx;
	(void)t;
	return LQ_OK;
}

static uint64_t copy_units(const lq_task *t)
{
	return t->nbytes;
}

static uint64_t copy_chunk_units(const lq_task *t)
{
	(void)t;
	return LQ_CHUNK_BYTES;
}

static uint64_t copy_input_bytes(const lq_task *t, uint64_t u0, uint64_t u1)
{
	(void)t;
	return u1 - u0;
}

static lq_status copy_write(const lq_sink *sink, const lq_task *t, const lq_chunk *c, void *state)
{
	(void)state;
	return lq_sink_put(sink, t->out_data, c->offset, c->in, c->len);
}

static uint64_t copy_state_bytes(const lq_task *t)
{
	(void)t;
	return 0;
}

const lq_op_impl lq_op_copy = {
	.name = "copy",
	.check = copy_check,
	.units = copy_units,
	.chunk_units = copy_chunk_units,
	.input_bytes = copy_input_bytes,
	.write = copy_write,
	.state_bytes = copy_state_bytes,
};
