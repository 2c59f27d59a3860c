/*
 * op_quantize4.c: LQ_OP_QUANTIZE4: a float tensor to a bitsandbytes 4-bit group, bit-identical to
 * quantize_4bit on CUDA. Chunks are whole blocks; the scales of every block are kept to the last chunk,
 * which double-quantizes them; the writer then puts them out with the offset in the task's result.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "op.h"

typedef struct quantize_state {
	lq_group_state group;
	lq_task_result result;
} quantize_state;

static lq_status quantize_check(lq_ctx *ctx, const lq_task *t)
{
	const lq_quantize4_args *a = &t->quantize4;
	size_t es = lq_dtype_size(a->dtype);
	if (a->dtype == LQ_DTYPE_U8 || es == 0 || t->nbytes % es != 0 || t->nbytes == 0)
		return lq_fail_tensor(ctx, LQ_ERR_ARG, t->origin, t->name, "cannot quantize %" PRIu64 " bytes of %s", t->nbytes,
			       lq_dtype_torch_name(a->dtype));
	if (!lq_blocksize_valid(a->out.quant.blocksize) || !lq_qtype_info(a->out.quant.qtype))
		return lq_fail_tensor(ctx, LQ_ERR_ARG, t->origin, t->name, "invalid blocksize %d", (int)a->out.quant.blocksize);
	return LQ_OK;
}

static uint64_t quantize_units(const lq_task *t)
{
	return t->nbytes / lq_dtype_size(t->quantize4.dtype);
}

static uint64_t quantize_chunk_units(const lq_task *t)
{
	uint64_t bs = (uint64_t)t->quantize4.out.quant.blocksize;
	uint64_t units = LQ_CHUNK_BYTES / lq_dtype_size(t->quantize4.dtype) / bs * bs;
	return units ? units : bs;
}

static uint64_t quantize_input_bytes(const lq_task *t, uint64_t u0, uint64_t u1)
{
	return (u1 - u0) * lq_dtype_size(t->quantize4.dtype);
}

static lq_status quantize_begin(lq_run *run, const lq_task *t, void *side, lq_held *whole, void **state)
{
	(void)run;
	(void)side;
	(void)whole;
	quantize_state *q = calloc(1, sizeof *q);
	if (!q || lq_group_out_begin(&t->quantize4.out, (int64_t)quantize_units(t), &q->group) != LQ_OK) {
		free(q);
		return LQ_ERR_NOMEM;
	}
	*state = q;
	return LQ_OK;
}

static lq_status quantize_compute(lq_run *run, const lq_task *t, lq_chunk *c, void *state)
{
	quantize_state *q = state;
	const lq_quantize4_args *a = &t->quantize4;
	lq_ctx *ctx = run->ctx;
	int64_t bad = -1;
	lq_status st = lq_group_out_quantize(ctx, &a->out, &q->group, c->in, a->dtype, c, &bad);
	if (st == LQ_ERR_NONFINITE)
		return lq_fail_unquantizable(ctx, t, c->in, a->dtype, c->elem0, bad);
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	if (!c->last)
		return LQ_OK;
	st = lq_group_out_finish(ctx, t, &a->out, &q->group);
	q->result.nested_offset = q->group.offset;
	return st;
}

static lq_status quantize_write(const lq_sink *sink, const lq_task *t, const lq_chunk *c, void *state)
{
	lq_status st = lq_sink_put(sink, t->out_data, (uint64_t)c->elem0 / 2, c->out, c->out_len);
	if (st == LQ_OK && state)
		st = lq_group_out_write(sink, &t->quantize4.out, &((quantize_state *)state)->group);
	return st;
}

static const lq_task_result *quantize_result(const void *state)
{
	return &((const quantize_state *)state)->result;
}

static void quantize_free(void *state)
{
	quantize_state *q = state;
	if (q)
		lq_group_out_free(&q->group);
	free(q);
}

static uint64_t quantize_state_bytes(const lq_task *t)
{
	return lq_group_out_bytes(&t->quantize4.out, (int64_t)quantize_units(t));
}

const lq_op_impl lq_op_quantize4 = {
	.name = "quantize4",
	.check = quantize_check,
	.units = quantize_units,
	.chunk_units = quantize_chunk_units,
	.input_bytes = quantize_input_bytes,
	.begin = quantize_begin,
	.compute = quantize_compute,
	.write = quantize_write,
	.result = quantize_result,
	.free_state = quantize_free,
	.state_bytes = quantize_state_bytes,
	.out_bytes = LQ_CHUNK_BYTES / 4, /* 4-bit codes are a quarter of bf16 input at most */
};
