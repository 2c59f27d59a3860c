/*
 * stats.c: error statistics (libquant.h, lq_error_sums): each piece of LQ_STATS_PIECE elements summed in
 * element order, in double, with separate multiplications and additions (no fused multiply-add: the
 * build uses -ffp-contract=off, and the CUDA kernel explicit _rn operations), the pieces then added in
 * order on the host, so the GPU gives the CPU's bits.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"

void lq_error_sums_init(lq_error_sums *s)
{
	memset(s, 0, sizeof *s);
	s->max_abs_err_index = -1;
}

void lq_error_piece(const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype, int64_t i0, int64_t n,
		    int64_t first, lq_error_sums *s)
{
	/* the piece widened first, with the type chosen once, so that the summing loop is plain floats */
	float xs[LQ_STATS_PIECE], rs[LQ_STATS_PIECE];
	/* the sums in locals: the loop then runs in registers */
	uint64_t elements = 0, nonfinite = 0, differ = 0;
	double e2 = 0, r2 = 0, x2 = 0, dot = 0, max = 0;
	int64_t at = -1;
	for (int64_t c0 = 0; c0 < n; c0 += LQ_STATS_PIECE) {
		const int64_t m = n - c0 < LQ_STATS_PIECE ? n - c0 : LQ_STATS_PIECE;
		lq_load_f32_n(x, x_dtype, i0 + c0, m, xs);
		lq_load_f32_n(ref, ref_dtype, i0 + c0, m, rs);
		for (int64_t k = 0; k < m; k++) {
			const float xf = xs[k], rf = rs[k];
			differ += lq_f32_bits(xf) != lq_f32_bits(rf);
			if (!isfinite(xf) || !isfinite(rf)) {
				nonfinite++;
				continue;
			}
			const double xv = xf, rv = rf, e = xv - rv;
			elements++;
			e2 += e * e;
			r2 += rv * rv;
			x2 += xv * xv;
			dot += xv * rv;
			const double abs_e = fabs(e);
			if (abs_e > max || at < 0) {
				max = abs_e;
				at = first + i0 + c0 + k;
			}
		}
	}
	*s = (lq_error_sums){.elements = elements, .nonfinite = nonfinite, .differ = differ, .sum_err2 = e2,
			     .sum_ref2 = r2, .sum_x2 = x2, .dot = dot, .max_abs_err = max, .max_abs_err_index = at};
}

void lq_error_sums_merge(lq_error_sums *a, const lq_error_sums *b)
{
	a->elements += b->elements;
	a->nonfinite += b->nonfinite;
	a->differ += b->differ;
	a->sum_err2 += b->sum_err2;
	a->sum_ref2 += b->sum_ref2;
	a->sum_x2 += b->sum_x2;
	a->dot += b->dot;
	if (b->max_abs_err_index >= 0 && (a->max_abs_err_index < 0 || b->max_abs_err > a->max_abs_err)) {
		a->max_abs_err = b->max_abs_err;
		a->max_abs_err_index = b->max_abs_err_index;
	}
}

static bool float_type(lq_dtype d)
{
	return d == LQ_DTYPE_F32 || d == LQ_DTYPE_F16 || d == LQ_DTYPE_BF16;
}

lq_status lq_error_sums_add(lq_ctx *ctx, const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype,
			    int64_t n, int64_t first, lq_error_sums *s)
{
	lq_clear_error(ctx);
	if (n < 0 || (n > 0 && (!x || !ref)) || !float_type(x_dtype) || !float_type(ref_dtype))
		return lq_fail(ctx, LQ_ERR_ARG, "error statistics: invalid arguments");
	if (n == 0)
		return LQ_OK;
	const int64_t npieces = (n + LQ_STATS_PIECE - 1) / LQ_STATS_PIECE;
	lq_error_sums *pieces = malloc((size_t)npieces * sizeof *pieces);
	if (!pieces)
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	lq_status st = LQ_BACKEND(ctx, error_pieces)->error_pieces(ctx, x, x_dtype, ref, ref_dtype, n, first, pieces);
	if (st == LQ_OK)
		for (int64_t p = 0; p < npieces; p++)
			lq_error_sums_merge(s, &pieces[p]);
	free(pieces);
	return st;
}
