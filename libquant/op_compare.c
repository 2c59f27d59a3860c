/*
 * op_compare.c: LQ_OP_COMPARE: how far a tensor (x) is from a reference, as error sums (stats.c), each
 * side read as its lq_tensor_in says (a 4-bit group dequantized exactly first), both streamed chunk by
 * chunk; where the elements that are not finite are, on each side; for a 4-bit x, how many elements have
 * each code, and its scales. Nothing is written: the result goes to the sink's task_done.
 *
 * Chunks are LQ_COMPARE_CHUNK elements, a multiple of LQ_STATS_PIECE and of every block size, so that
 * the sums' pieces, and their bits, depend on the tensor alone.
 */
#include <stdlib.h>

#include "op.h"

#define LQ_COMPARE_CHUNK ((int64_t)4 << 20)

typedef struct compare_side {
	lq_group_side x, ref;
} compare_side;

typedef struct compare_state {
	float *x_absmax, *ref_absmax; /* the scales of a 4-bit side */
	lq_task_result result;
} compare_state;

static bool has_ref(const lq_task *t)
{
	return t->compare.ref_input >= 0;
}

/* Bytes of units [u0, u1) of a side. */
static uint64_t side_bytes(const lq_tensor_in *in, uint64_t u0, uint64_t u1)
{
	if (in->quantized) /* codes are half a byte, the last byte maybe padded */
		return (u1 + 1) / 2 - u0 / 2;
	return (u1 - u0) * lq_dtype_size(in->dtype);
}

static bool side_ok(const lq_tensor_in *in)
{
	return in->dtype != LQ_DTYPE_U8 && lq_dtype_size(in->dtype) != 0 &&
	       (!in->quantized || (lq_blocksize_valid(in->quant.blocksize) && lq_qtype_info(in->quant.qtype)));
}

static lq_status compare_check(lq_ctx *ctx, const lq_task *t)
{
	const lq_compare_args *a = &t->compare;
	if (a->n < 0 || !side_ok(&a->x) || (has_ref(t) && !side_ok(&a->ref)) ||
	    t->nbytes != side_bytes(&a->x, 0, (uint64_t)a->n))
		return lq_fail_tensor(ctx, LQ_ERR_ARG, t->origin, t->name, "invalid comparison");
	return LQ_OK;
}

static uint64_t compare_units(const lq_task *t)
{
	return (uint64_t)t->compare.n;
}

static uint64_t compare_chunk_units(const lq_task *t)
{
	(void)t;
	return (uint64_t)LQ_COMPARE_CHUNK;
}

static uint64_t compare_input_bytes(const lq_task *t, uint64_t u0, uint64_t u1)
{
	return side_bytes(&t->compare.x, u0, u1);
}

static int32_t compare_second_input(const lq_task *t)
{
	return t->compare.ref_input;
}

static uint64_t compare_second_bytes(const lq_task *t, uint64_t u0, uint64_t u1)
{
	return side_bytes(&t->compare.ref, u0, u1);
}

static void compare_side_free(void *p)
{
	compare_side *x = p;
	if (!x)
		return;
	lq_group_side_free(&x->x);
	lq_group_side_free(&x->ref);
	free(x);
}

/* The constants of a 4-bit side. */
static lq_status compare_read_side(const lq_source *source, lq_reuse *reuse, const lq_task *t, void **side,
				 lq_held **whole)
{
	const lq_compare_args *a = &t->compare;
	compare_side *x = calloc(1, sizeof *x);
	if (!x)
		return LQ_ERR_NOMEM;
	lq_status st = LQ_OK;
	/* x's codes first where the source reads them faster so (the reference is streamed: its constants are
	 * read in any order) */
	if (a->x.quantized)
		st = lq_group_side_read(source, &a->x, a->n, &x->x, t->input, t->nbytes, reuse, whole);
	if (st == LQ_OK && has_ref(t) && a->ref.quantized)
		st = lq_group_side_read(source, &a->ref, a->n, &x->ref, -1, 0, NULL, NULL);
	if (st != LQ_OK) {
		compare_side_free(x);
		lq_held_release(*whole);
		*whole = NULL;
		return st;
	}
	*side = x;
	return LQ_OK;
}

static void compare_free(void *p)
{
	compare_state *s = p;
	if (!s)
		return;
	free(s->x_absmax);
	free(s->ref_absmax);
	free(s);
}

static lq_status compare_begin(lq_run *run, const lq_task *t, void *side, lq_held *whole, void **state)
{
	(void)whole;
	const lq_compare_args *a = &t->compare;
	const compare_side *x = side;
	compare_state *s = calloc(1, sizeof *s);
	if (!s)
		return LQ_ERR_NOMEM;
	*state = s;
	lq_error_sums_init(&s->result.sums);
	s->result.first_nonfinite = -1;
	lq_status st = LQ_OK;
	if (a->x.quantized)
		st = lq_group_scales(run->ctx, &a->x, a->n, &x->x, &s->x_absmax);
	if (st == LQ_OK && has_ref(t) && a->ref.quantized)
		st = lq_group_scales(run->ctx, &a->ref, a->n, &x->ref, &s->ref_absmax);
	if (st != LQ_OK && st != LQ_ERR_NOMEM)
		return lq_fail_task(run->ctx, st, t->origin, t->name);
	s->result.x_absmax = s->x_absmax;
	s->result.x_nblocks = a->x.quantized ? lq_quant_nblocks(a->n, a->x.quant.blocksize) : 0;
	return st;
}

/* A side's elements of chunk c in its own float type: as read, or dequantized into buf. */
static lq_status side_values(lq_ctx *ctx, const lq_tensor_in *in, const float *absmax, const unsigned char *bytes,
			     const lq_chunk *c, void *buf, const void **values)
{
	if (!in->quantized) {
		*values = bytes;
		return LQ_OK;
	}
	*values = buf;
	return lq_dequantize_blocks(ctx, bytes, absmax + c->elem0 / in->quant.blocksize, c->nelem, in->quant.qtype,
				    in->quant.blocksize, in->dtype, buf);
}

/* How many of the chunk's n codes (elements elem0.., elem0 even: two codes a byte, the first in the high
 * nibble) have each value. */
static void count_codes(const unsigned char *packed, int64_t n, uint64_t hist[16])
{
	uint64_t pairs[256] = {0};
	for (int64_t i = 0; i < n / 2; i++)
		pairs[packed[i]]++;
	for (int b = 0; b < 256; b++) {
		hist[b >> 4] += pairs[b];
		hist[b & 15] += pairs[b];
	}
	if (n % 2) /* the last byte holds one code */
		hist[packed[n / 2] >> 4]++;
}

/* Where the chunk's elements that are not finite are, on each side. Only for a chunk whose sums found
 * some: a broken tensor's. */
static void find_nonfinite(const void *x, lq_dtype tx, const void *ref, lq_dtype tr, int64_t n, int64_t first,
			   lq_task_result *r)
{
	enum { PIECE = 1024 };
	float xs[PIECE], rs[PIECE];
	const size_t ex = lq_dtype_size(tx), er = lq_dtype_size(tr);
	for (int64_t i0 = 0; i0 < n; i0 += PIECE) {
		const int64_t m = n - i0 < PIECE ? n - i0 : PIECE;
		lq_to_f32((const char *)x + (size_t)i0 * ex, tx, m, xs);
		lq_to_f32((const char *)ref + (size_t)i0 * er, tr, m, rs);
		for (int64_t k = 0; k < m; k++) {
			const bool bx = !lq_is_finite_bits(lq_f32_bits(xs[k])), br = !lq_is_finite_bits(lq_f32_bits(rs[k]));
			r->nonfinite_x += bx;
			r->nonfinite_ref += br;
			if ((bx || br) && r->first_nonfinite < 0)
				r->first_nonfinite = first + i0 + k;
		}
	}
}

static lq_status compare_compute(lq_run *run, const lq_task *t, lq_chunk *c, void *state)
{
	const lq_compare_args *a = &t->compare;
	compare_state *s = state;
	lq_ctx *ctx = run->ctx;
	unsigned char *scratch = run->scratch;
	const void *x, *ref;
	if (a->x.quantized)
		count_codes(c->in, c->nelem, s->result.code_histogram);
	if (!has_ref(t))
		return LQ_OK; /* what x itself tells: its codes (and its scales, from begin) */
	lq_status st = side_values(ctx, &a->x, s->x_absmax, c->in, c, scratch, &x);
	if (st == LQ_OK)
		st = side_values(ctx, &a->ref, s->ref_absmax, c->in2, c, scratch + (size_t)LQ_COMPARE_CHUNK * 4, &ref);
	const uint64_t nonfinite = s->result.sums.nonfinite;
	if (st == LQ_OK)
		st = lq_error_sums_add(ctx, x, a->x.dtype, ref, a->ref.dtype, c->nelem, c->elem0, &s->result.sums);
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	if (s->result.sums.nonfinite > nonfinite)
		find_nonfinite(x, a->x.dtype, ref, a->ref.dtype, c->nelem, c->elem0, &s->result);
	return LQ_OK;
}

static lq_status compare_write(const lq_sink *sink, const lq_task *t, const lq_chunk *c, void *state)
{
	(void)sink, (void)t, (void)c, (void)state;
	return LQ_OK;
}

static const lq_task_result *compare_result(const void *state)
{
	return &((const compare_state *)state)->result;
}

/* Each 4-bit side's constants, as read and as scales. */
static uint64_t compare_state_bytes(const lq_task *t)
{
	const lq_compare_args *a = &t->compare;
	return (a->x.quantized ? lq_group_side_bytes(&a->x, a->n) + t->nbytes : 0) + /* the codes may be read whole */
	       (has_ref(t) && a->ref.quantized ? lq_group_side_bytes(&a->ref, a->n) : 0);
}

const lq_op_impl lq_op_compare = {
	.name = "compare",
	.check = compare_check,
	.units = compare_units,
	.chunk_units = compare_chunk_units,
	.input_bytes = compare_input_bytes,
	.second_input = compare_second_input,
	.second_bytes = compare_second_bytes,
	.read_side = compare_read_side,
	.free_side = compare_side_free,
	.begin = compare_begin,
	.compute = compare_compute,
	.write = compare_write,
	.result = compare_result,
	.free_state = compare_free,
	.state_bytes = compare_state_bytes,
	.scratch_bytes = (size_t)LQ_COMPARE_CHUNK * 4 * 2, /* both sides dequantized, float32 at most */
};
