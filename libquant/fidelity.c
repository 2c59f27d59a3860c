/*
 * fidelity.c: the merge-fidelity sums (libquant.h, lq_fidelity_sums) of a range of a weight's elements.
 * Each piece of LQ_STATS_PIECE elements is widened to float32 (a 4-bit side dequantized and rounded to
 * its type, as the merge reads it), summed in double with separate multiplications and additions
 * (-ffp-contract=off) in eight interleaved lanes (piece_item), on the pool; the pieces' sums are then
 * added in order, so that every
 * backend and thread count gives the same bits. The merge hands its float32 result, computed by either
 * backend, to these sums on the host.
 */
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"

/* Widens elements [i0, i0 + n) of a side into dst (float32), n <= LQ_STATS_PIECE. */
static void widen(const lq_ctx *ctx, const lq_fidelity_side *s, int64_t i0, int64_t n, float *dst)
{
	if (!s->codes) {
		lq_load_f32_n(s->values, s->dtype, i0, n, dst);
		return;
	}
	/* a piece starts at a multiple of LQ_STATS_PIECE from the start of the range, and every block size
	 * divides LQ_STATS_PIECE: the piece is whole blocks, starting on a byte */
	const int32_t bs = s->blocksize;
	ctx->cpu->dequantize_range(s->codes + i0 / 2, s->absmax + i0 / bs, n, s->qtype, bs, 0, (n + bs - 1) / bs,
				   LQ_DTYPE_F32, dst);
	/* as dequantized to the type itself: the float32 product rounded once to it */
	if (s->dtype != LQ_DTYPE_F32)
		lq_round_to_n(s->dtype, dst, n, dst);
}

typedef struct fidelity_job {
	const lq_ctx *ctx;
	const lq_fidelity_range *r;
	int64_t n;
	lq_fidelity_sums *pieces;
} fidelity_job;

/* Element k of a piece goes to lane k % LANES, each lane summed in element order, the lanes then added in
 * lane order: a fixed order still, and one the compiler can keep in vector registers (the four sums of a
 * serial loop would wait on each addition's latency). */
#define LANES 8

static double lanes_total(const double *v)
{
	double t = 0;
	for (int l = 0; l < LANES; l++)
		t += v[l];
	return t;
}

static bool same_side(const lq_fidelity_side *a, const lq_fidelity_side *b)
{
	return a->values == b->values && a->codes == b->codes && a->absmax == b->absmax && a->dtype == b->dtype;
}

/* A lane group: LANES doubles (or floats), one lane an element; the operators act lane by lane (GCC and
 * Clang vector extensions), as LANES scalar operations would, on whatever registers the clone has. */
typedef double lanes_f64 __attribute__((vector_size(LANES * sizeof(double))));
typedef float lanes_f32 __attribute__((vector_size(LANES * sizeof(float))));

/* The lanes' sums of a piece widened to float32 and padded with zeros to whole lanes, every term in one
 * pass: D = y - w, delta2 += D^2, dot += (m - w) D, residual2 += (m - y)^2, noise2 += (a - b)^2. Each lane
 * adds its own elements in order, as separate loops would: the same bits whichever instruction set the
 * clone that runs was compiled for (no contraction, no reassociation: -ffp-contract=off). The sums stay in
 * registers, stored once at the end (summed through the pointers, which may alias, every lane was loaded
 * and stored at each step, each addition waiting on the last store). b is w itself where the caller can
 * make it so (one side of the noise is the base as merged): w is then widened to double once. */
LQ_CLONES static void
lanes_sums(const float *y, const float *w, const float *m, const float *a, const float *b, int64_t padded,
	   double *delta2, double *dot, double *residual2, double *noise2)
{
	lanes_f64 d2 = {0}, dt = {0}, r2 = {0}, n2 = {0};
	const bool b_is_w = b == w;
	for (int64_t k = 0; k < padded; k += LANES) {
		lanes_f32 yf, wf, mf, af, bf;
		memcpy(&yf, y + k, sizeof yf);
		memcpy(&wf, w + k, sizeof wf);
		memcpy(&mf, m + k, sizeof mf);
		memcpy(&af, a + k, sizeof af);
		const lanes_f64 yk = __builtin_convertvector(yf, lanes_f64), wk = __builtin_convertvector(wf, lanes_f64),
				mk = __builtin_convertvector(mf, lanes_f64), d = yk - wk, e = mk - yk;
		lanes_f64 q;
		if (b_is_w) {
			q = __builtin_convertvector(af, lanes_f64) - wk;
		} else {
			memcpy(&bf, b + k, sizeof bf);
			q = __builtin_convertvector(af, lanes_f64) - __builtin_convertvector(bf, lanes_f64);
		}
		d2 += d * d;
		dt += (mk - wk) * d;
		r2 += e * e;
		n2 += q * q;
	}
	memcpy(delta2, &d2, sizeof d2);
	memcpy(dot, &dt, sizeof dt);
	memcpy(residual2, &r2, sizeof r2);
	memcpy(noise2, &n2, sizeof n2);
}

static void piece_item(void *arg, int64_t p)
{
	const fidelity_job *j = arg;
	const lq_fidelity_range *r = j->r;
	const int64_t i0 = p * LQ_STATS_PIECE, n = j->n - i0 < LQ_STATS_PIECE ? j->n - i0 : LQ_STATS_PIECE;
	/* the piece widened first (zeros past its end, which add nothing), then one loop over every term */
	float w[LQ_STATS_PIECE], ytail[LQ_STATS_PIECE], m[LQ_STATS_PIECE], w16[LQ_STATS_PIECE], wq[LQ_STATS_PIECE];
	const int64_t padded = (n + LANES - 1) / LANES * LANES;
	widen(j->ctx, &r->w, i0, n, w);
	/* y as it is, but for a last piece of a length that is not a whole number of lanes */
	const float *y = r->y + i0;
	if (padded != n) {
		memcpy(ytail, y, (size_t)n * 4);
		y = ytail;
	}
	if (r->match)
		widen(j->ctx, &r->m, i0, n, m);
	/* W16 is W itself when the float base is what was merged, and Wq is W when its 4-bit form was */
	const bool w16_is_w = same_side(&r->w16, &r->w), wq_is_w = same_side(&r->wq, &r->w);
	const float *a = w16_is_w ? w : w16, *b = wq_is_w ? w : wq;
	if (r->noise && !w16_is_w)
		widen(j->ctx, &r->w16, i0, n, w16);
	if (r->noise && !wq_is_w)
		widen(j->ctx, &r->wq, i0, n, wq);
	for (int64_t k = n; k < padded; k++)
		w[k] = ytail[k] = m[k] = w16[k] = wq[k] = 0;
	/* without M or without the noise, the terms that need them are computed on stand-ins and left out; the
	 * noise's sides swapped so that W is the second where it is one of them ((a - b)^2 = (b - a)^2 exactly) */
	double delta2[LANES], dot[LANES], residual2[LANES], noise2[LANES];
	const float *na = r->noise ? (a == w ? b : a) : w, *nb = r->noise ? (a == w ? a : b) : w;
	lanes_sums(y, w, r->match ? m : y, na, nb, padded, delta2, dot, residual2, noise2);
	j->pieces[p] = (lq_fidelity_sums){.elements = r->delta ? (uint64_t)n : 0,
					  .delta2 = r->delta ? lanes_total(delta2) : 0, .dot = r->match ? lanes_total(dot) : 0,
					  .residual2 = r->match ? lanes_total(residual2) : 0, .noise2 = lanes_total(noise2)};
}

lq_status lq_fidelity_add(lq_ctx *ctx, const lq_fidelity_range *r, int64_t n, lq_fidelity_sums *s)
{
	const int64_t npieces = (n + LQ_STATS_PIECE - 1) / LQ_STATS_PIECE;
	if (npieces < 1)
		return LQ_OK;
	fidelity_job j = {.ctx = ctx, .r = r, .n = n, .pieces = malloc((size_t)npieces * sizeof *j.pieces)};
	if (!j.pieces)
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	lq_pool_run(ctx->pool, npieces, piece_item, &j);
	for (int64_t p = 0; p < npieces; p++) {
		s->elements += j.pieces[p].elements;
		s->delta2 += j.pieces[p].delta2;
		s->dot += j.pieces[p].dot;
		s->residual2 += j.pieces[p].residual2;
		s->noise2 += j.pieces[p].noise2;
	}
	s->has_noise |= r->noise;
	free(j.pieces);
	return LQ_OK;
}
