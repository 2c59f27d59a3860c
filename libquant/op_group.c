/*
 * op_group.c: what the operations share (op.h): bitsandbytes 4-bit groups read and written chunk by
 * chunk, side inputs read whole, buffers the reader and the compute stage both hold.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "op.h"

lq_held *lq_held_new(void)
{
	lq_held *h = calloc(1, sizeof *h);
	if (h)
		atomic_init(&h->refs, 1);
	return h;
}

void lq_held_retain(lq_held *h)
{
	atomic_fetch_add(&h->refs, 1);
}

void lq_held_release(lq_held *h)
{
	if (h && atomic_fetch_sub(&h->refs, 1) == 1) {
		if (h->reuse)
			lq_reuse_give(h->reuse, h->data, h->capacity);
		else
			free(h->data);
		free(h);
	}
}

lq_status lq_held_read(const lq_source *source, lq_reuse *reuse, int32_t input, uint64_t bytes, lq_held **out)
{
	lq_held *h = lq_held_new();
	if (!h)
		return LQ_ERR_NOMEM;
	const size_t want = bytes ? (size_t)bytes : 1;
	h->reuse = reuse;
	h->data = reuse ? lq_reuse_take(reuse, want, &h->capacity) : malloc(want);
	*out = h;
	if (!h->data)
		return LQ_ERR_NOMEM;
	return bytes ? source->read(source->self, input, 0, h->data, (size_t)bytes) : LQ_OK;
}

lq_status lq_sink_put(const lq_sink *sink, int32_t output, uint64_t offset, const void *p, size_t len)
{
	if (len == 0 || output < 0)
		return LQ_OK;
	return sink->write(sink->self, output, offset, p, len);
}

lq_status lq_read_whole(const lq_source *source, int32_t input, uint64_t bytes, void **out)
{
	*out = malloc(bytes ? (size_t)bytes : 1);
	if (!*out)
		return LQ_ERR_NOMEM;
	return bytes ? source->read(source->self, input, 0, *out, (size_t)bytes) : LQ_OK;
}

const char *lq_nonfinite_name(float v)
{
	return v != v ? "NaN" : (v > 0 ? "+inf" : "-inf");
}

lq_status lq_fail_unquantizable(lq_ctx *ctx, const lq_task *t, const void *src, lq_dtype dtype, int64_t elem0,
				int64_t i)
{
	char where[256];
	lq_format_index(where, sizeof where, t->shape, t->ndim, elem0 + i);
	return lq_fail_tensor(ctx, LQ_ERR_NONFINITE, t->origin, t->name, "element %s (flat index %" PRId64 ") is %s; "
			      "refusing to quantize it", where, elem0 + i, lq_nonfinite_name(lq_load_f32(src, dtype, i)));
}

uint64_t lq_gcd_u64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* ------------------------------------------------------------------------------- 4-bit inputs */

lq_status lq_group_side_read(const lq_source *source, const lq_tensor_in *in, int64_t n, lq_group_side *side,
			     int32_t input, uint64_t bytes, lq_reuse *reuse, lq_held **main)
{
	*side = (lq_group_side){0};
	const uint64_t nb = (uint64_t)lq_quant_nblocks(n, in->quant.blocksize);
	lq_status st = LQ_OK;
	if (main && !*main && source->order &&
	    (source->order(source->self, input, in->absmax_input) < 0 ||
	     (in->quant.double_quant && source->order(source->self, input, in->nested_input) < 0))) {
		st = lq_held_read(source, reuse, input, bytes, main);
	}
	if (st == LQ_OK)
		st = lq_read_whole(source, in->absmax_input, in->quant.double_quant ? nb : nb * 4, &side->absmax);
	if (st == LQ_OK && in->quant.double_quant)
		st = lq_read_whole(source, in->nested_input, (uint64_t)lq_quant_nested_blocks((int64_t)nb) * 4,
				   &side->nested);
	if (st != LQ_OK)
		lq_group_side_free(side);
	return st;
}

void lq_group_side_free(lq_group_side *side)
{
	free(side->absmax);
	free(side->nested);
	*side = (lq_group_side){0};
}

uint64_t lq_group_side_bytes(const lq_tensor_in *in, int64_t n)
{
	const uint64_t nb = (uint64_t)lq_quant_nblocks(n, in->quant.blocksize);
	return nb * 8; /* as read (at most 4 bytes a block) and as float32 */
}

lq_status lq_group_scales(lq_ctx *ctx, const lq_tensor_in *in, int64_t n, const lq_group_side *side, float **absmax)
{
	const int64_t nb = lq_quant_nblocks(n, in->quant.blocksize);
	*absmax = malloc((size_t)nb * 4 + 4);
	if (!*absmax)
		return LQ_ERR_NOMEM;
	if (!in->quant.double_quant) {
		lq_load_f32_n(side->absmax, LQ_DTYPE_F32, 0, nb, *absmax);
		return LQ_OK;
	}
	lq_status st = lq_dequantize_absmax(ctx, side->absmax, side->nested, in->offset, nb, *absmax);
	if (st != LQ_OK) {
		free(*absmax);
		*absmax = NULL;
	}
	return st;
}

/* ------------------------------------------------------------------------------ 4-bit outputs */

lq_status lq_group_out_begin(const lq_group_out *out, int64_t n, lq_group_state *g)
{
	*g = (lq_group_state){.nblocks = lq_quant_nblocks(n, out->quant.blocksize)};
	g->absmax = malloc((size_t)g->nblocks * sizeof(float));
	if (out->quant.double_quant) {
		g->absmax_q = malloc((size_t)g->nblocks);
		g->nested_absmax = malloc((size_t)lq_quant_nested_blocks(g->nblocks) * sizeof(float));
	}
	if (!g->absmax || (out->quant.double_quant && (!g->absmax_q || !g->nested_absmax))) {
		lq_group_out_free(g);
		return LQ_ERR_NOMEM;
	}
	return LQ_OK;
}

void lq_group_out_free(lq_group_state *g)
{
	free(g->absmax);
	free(g->absmax_q);
	free(g->nested_absmax);
	*g = (lq_group_state){0};
}

uint64_t lq_group_out_bytes(const lq_group_out *out, int64_t n)
{
	const uint64_t nb = (uint64_t)lq_quant_nblocks(n, out->quant.blocksize);
	return nb * 4 + (out->quant.double_quant ? nb + (uint64_t)lq_quant_nested_blocks((int64_t)nb) * 4 : 0);
}

lq_status lq_group_out_quantize(lq_ctx *ctx, const lq_group_out *out, lq_group_state *g, const void *src,
				lq_dtype dtype, lq_chunk *c, int64_t *bad)
{
	lq_status st = lq_quantize_blocks(ctx, src, dtype, c->nelem, out->quant.qtype, out->quant.blocksize, c->out,
					  g->absmax + c->elem0 / out->quant.blocksize, bad);
	if (st == LQ_OK)
		c->out_len = (size_t)lq_quant_packed_bytes(c->nelem);
	return st;
}

/* bitsandbytes takes the offset as the mean of the scales in float32: scales near the float32 maximum
 * overflow it, and scales that do not come back finite from the 8-bit codes would make a checkpoint that
 * loads as infinities. Both are refused rather than written (the quant_state JSON cannot even hold an
 * infinite offset). */
lq_status lq_group_out_finish(lq_ctx *ctx, const lq_task *t, const lq_group_out *out, lq_group_state *g)
{
	if (!out->quant.double_quant)
		return LQ_OK;
	lq_status st = lq_double_quant(ctx, g->absmax, g->nblocks, g->absmax_q, g->nested_absmax, &g->offset);
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	if (!lq_is_finite_bits(lq_f32_bits(g->offset)))
		return lq_fail_tensor(ctx, LQ_ERR_NONFINITE, t->origin, t->name, "the mean of its block scales (the "
				      "double-quantization offset) overflows float32; refusing to write it (quantize it without "
				      "double quantization)");
	/* the scales as a loader dequantizes them, into the float32 scales, which are not written */
	lq_dequantize_absmax_ref(g->absmax_q, g->nested_absmax, g->offset, g->nblocks, g->absmax);
	int64_t bad = lq_first_nonfinite(g->absmax, LQ_DTYPE_F32, 0, g->nblocks);
	if (bad >= 0)
		return lq_fail_tensor(ctx, LQ_ERR_NONFINITE, t->origin, t->name, "the scale of block %" PRId64 " dequantizes "
				      "to %s after double quantization; refusing to write it (quantize it without double "
				      "quantization)", bad, lq_nonfinite_name(g->absmax[bad]));
	return LQ_OK;
}

lq_status lq_group_out_write(const lq_sink *sink, const lq_group_out *out, const lq_group_state *g)
{
	if (!out->quant.double_quant)
		return lq_sink_put(sink, out->out_absmax, 0, g->absmax, (size_t)g->nblocks * 4);
	lq_status st = lq_sink_put(sink, out->out_absmax, 0, g->absmax_q, (size_t)g->nblocks);
	if (st == LQ_OK)
		st = lq_sink_put(sink, out->out_nested_absmax, 0, g->nested_absmax,
				 (size_t)lq_quant_nested_blocks(g->nblocks) * 4);
	return st;
}
