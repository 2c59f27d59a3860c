/*
 * fidelity.c: the merge-fidelity sums (libquant.h, lq_fidelity_sums) of a range of a weight's elements.
 * Each piece of LQ_STATS_PIECE elements is summed in double with separate multiplications and additions
 * (-ffp-contract=off) in eight interleaved lanes, its sides read in place (bfloat16 or float32 values, or
 * 4-bit codes decoded in registers) or, for other types, widened to float32 first (a 4-bit side
 * dequantized and rounded to its type, as the merge reads it); the pieces' sums are then added in order,
 * so that every backend and thread count gives the same bits. The merge hands its float32 result, computed
 * by either backend, to these sums on the host. */
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

/* The lanes' sums (each lane adds its own elements in order, as separate loops would): D = y - w,
 * delta2 += D^2, dot += (m - w) D, residual2 += (m - y)^2, noise2 += (a - b)^2. The same bits whichever
 * instruction set the clone that runs was compiled for (no contraction, no reassociation:
 * -ffp-contract=off). */
typedef struct lanes_acc {
	lanes_f64 d2, dt, r2, n2;
} lanes_acc;

/* The lane group of floats at v as doubles, lane by lane. Written out rather than with
 * __builtin_convertvector, which GCC 12 lowers to two half-width conversions and an insertion where one
 * instruction converts the whole group. */
static inline __attribute__((always_inline)) void lanes_wide(const float *v, lanes_f64 *out)
{
	*out = (lanes_f64){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
}

static inline __attribute__((always_inline)) void lanes_add_wide(lanes_acc *s, const lanes_f64 *y, const lanes_f64 *w,
								const lanes_f64 *m, const lanes_f64 *a, const lanes_f64 *b)
{
	const lanes_f64 d = *y - *w, e = *m - *y, q = *a - *b;
	s->d2 += d * d;
	s->dt += (*m - *w) * d;
	s->r2 += e * e;
	s->n2 += q * q;
}

static inline __attribute__((always_inline)) void lanes_add(lanes_acc *s, const lanes_f32 *yf, const lanes_f32 *wf,
							   const lanes_f32 *mf, const lanes_f32 *af, const lanes_f32 *bf)
{
	lanes_f64 yk, wk, mk, ak, bk;
	lanes_wide((const float *)yf, &yk);
	lanes_wide((const float *)wf, &wk);
	lanes_wide((const float *)mf, &mk);
	lanes_wide((const float *)af, &ak);
	lanes_wide((const float *)bf, &bk);
	lanes_add_wide(s, &yk, &wk, &mk, &ak, &bk);
}

/* The sums stay in registers, stored once at the end (summed through the pointers, which may alias, every
 * lane was loaded and stored at each step, each addition waiting on the last store). */
static void lanes_store(const lanes_acc *s, double *delta2, double *dot, double *residual2, double *noise2)
{
	memcpy(delta2, &s->d2, sizeof s->d2);
	memcpy(dot, &s->dt, sizeof s->dt);
	memcpy(residual2, &s->r2, sizeof s->r2);
	memcpy(noise2, &s->n2, sizeof s->n2);
}

/* The lanes' sums of a piece widened to float32 and padded with zeros to whole lanes, every term in one
 * pass. */
LQ_CLONES static void
lanes_sums(const float *y, const float *w, const float *m, const float *a, const float *b, int64_t padded,
	   double *delta2, double *dot, double *residual2, double *noise2)
{
	lanes_acc s = {0};
	for (int64_t k = 0; k < padded; k += LANES) {
		lanes_f32 yf, wf, mf, af, bf;
		memcpy(&yf, y + k, sizeof yf);
		memcpy(&wf, w + k, sizeof wf);
		memcpy(&mf, m + k, sizeof mf);
		memcpy(&af, a + k, sizeof af);
		memcpy(&bf, b + k, sizeof bf);
		lanes_add(&s, &yf, &wf, &mf, &af, &bf);
	}
	lanes_store(&s, delta2, dot, residual2, noise2);
}

/* ------------------------------------------------------------ sides read in place (the common case) */

/* The sides of the common merges, bfloat16 or float32 values, or 4-bit codes dequantized to either, are
 * loaded two lane groups at a time straight from their bytes, in registers: no widened copy of the piece
 * (which cost more than the sums). The same values as widen() gives, bit for bit: the code's value times
 * the block's scale with subnormals flushed (lq_mul_ftz), rounded to bfloat16 as lq_bf16_encode does. */

/* 2^-100: its product with a table value other than zero (each at least 2^-8 in magnitude, at most 1) is a
 * normal float */
#define SAFE_SCALE 0x1p-100f

/* How a side's lanes are read: its kind, fixed for a piece (SIDE_OTHER: widened, not read in place). */
enum side_kind { SIDE_BF16, SIDE_F32, SIDE_CODES_BF16, SIDE_CODES_F32, SIDE_OTHER };

static enum side_kind kind_of(const lq_fidelity_side *s)
{
	if (s->dtype != LQ_DTYPE_BF16 && s->dtype != LQ_DTYPE_F32)
		return SIDE_OTHER;
	if (s->codes)
		return s->dtype == LQ_DTYPE_BF16 ? SIDE_CODES_BF16 : SIDE_CODES_F32;
	return s->dtype == LQ_DTYPE_BF16 ? SIDE_BF16 : SIDE_F32;
}

/* Sides are read two lane groups at a time (a pair: 16 elements, within one block, every block size being
 * a power of two of at least LQ_BLOCKSIZE_MIN), each step of the decoding one operation on the pair. */
#define PAIR (2 * LANES)
typedef float pair_f32 __attribute__((vector_size(PAIR * sizeof(float))));
typedef uint32_t pair_u32 __attribute__((vector_size(PAIR * sizeof(uint32_t))));
typedef uint16_t pair_u16 __attribute__((vector_size(PAIR * sizeof(uint16_t))));

/* A side as read in place: its bytes, and for codes the table (16 values) and log2 of the block size. */
typedef struct side_reader {
	const void *values;
	const uint8_t *codes;
	const float *absmax;
	pair_f32 table;
	int block_shift;
} side_reader;

static void side_reader_init(side_reader *r, const lq_fidelity_side *s)
{
	*r = (side_reader){.values = s->values, .codes = s->codes, .absmax = s->absmax};
	if (s->codes) {
		memcpy(&r->table, lq_code_table(s->qtype), sizeof r->table);
		while (((int64_t)1 << r->block_shift) < s->blocksize)
			r->block_shift++;
	}
}

/* The pair of lane groups of a side at element i (a multiple of PAIR), by its kind (a constant where the
 * caller specializes). */
static inline __attribute__((always_inline)) void side_pair(const side_reader *r, enum side_kind kind, int64_t i,
							    pair_f32 *f)
{
	pair_u32 u;
	if (kind == SIDE_CODES_BF16 || kind == SIDE_CODES_F32) {
		/* the pair's two words of codes, each in its group's lanes; element i's code is the high nibble of
		 * byte i / 2 when i is even */
		uint32_t word[2];
		memcpy(word, r->codes + i / 2, sizeof word);
		const pair_u32 words = {word[0], word[0], word[0], word[0], word[0], word[0], word[0], word[0],
					word[1], word[1], word[1], word[1], word[1], word[1], word[1], word[1]};
		const pair_u32 shift = {4, 0, 12, 8, 20, 16, 28, 24, 4, 0, 12, 8, 20, 16, 28, 24};
		const pair_u32 code = (words >> shift) & 15;
		const float scale = lq_ftz(r->absmax[i >> r->block_shift]);
		pair_f32 v;
#if defined(__GNUC__) && !defined(__clang__)
		v = __builtin_shuffle(r->table, code);
#else
		for (int k = 0; k < PAIR; k++)
			v[k] = r->table[code[k]];
#endif
		v *= scale; /* a table value is normal or zero: lq_ftz leaves it */
		memcpy(&u, &v, sizeof u);
		/* A scale of zero, or of a magnitude from SAFE_SCALE to the largest float, makes no product
		 * subnormal and none a NaN: the flush and the NaN's case would change nothing, and are left out
		 * of the common blocks. */
		const float mag = __builtin_fabsf(scale);
		if (!(mag == 0 || (mag >= SAFE_SCALE && mag <= __FLT_MAX__))) {
			const pair_u32 sub = (u & 0x7f800000u) == 0; /* the product flushed */
			u = (u & ~sub) | (u & 0x80000000u & sub);
			if (kind == SIDE_CODES_BF16) {
				const pair_u32 nan = (u & 0x7fffffffu) > 0x7f800000u;
				u = (((u >> 16) | 0x40) << 16 & nan) | ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16 << 16 & ~nan);
			}
		} else if (kind == SIDE_CODES_BF16) {
			u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
		}
	} else if (kind == SIDE_BF16) {
		pair_u16 h;
		memcpy(&h, (const uint16_t *)r->values + i, sizeof h);
		/* widened lane by lane, as in lanes_wide: one instruction */
		u = (pair_u32){h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]}
		    << 16;
	} else {
		memcpy(&u, (const float *)r->values + i, sizeof u);
	}
	memcpy(f, &u, sizeof *f);
}

/* The lanes' sums of elements [i0, i0 + n) (a whole number of pairs) read in place: W, M (y for it where
 * m is NULL), the noise's sides a, b (either W itself). The kinds are constants where the caller
 * specializes the loop for the common merges. */
static inline __attribute__((always_inline)) void
sums_in_place(const float *y, const side_reader *w, enum side_kind wk, const side_reader *m, enum side_kind mk,
	      const side_reader *a, enum side_kind ak, const side_reader *b, enum side_kind bk, int64_t i0, int64_t n,
	      double *delta2, double *dot, double *residual2, double *noise2)
{
	lanes_acc s = {0};
	for (int64_t k = i0; k < i0 + n; k += PAIR) {
		pair_f32 yf, wf, mf, af, bf;
		memcpy(&yf, y + k, sizeof yf);
		side_pair(w, wk, k, &wf);
		if (m)
			side_pair(m, mk, k, &mf);
		else
			mf = yf;
		if (a == w)
			af = wf;
		else
			side_pair(a, ak, k, &af);
		if (b == w)
			bf = wf;
		else
			side_pair(b, bk, k, &bf);
		/* the first group, then the second: each lane's elements in order */
		for (int g = 0; g < 2; g++) {
			lanes_f64 yd, wd, md, ad, bd;
			lanes_wide((const float *)&yf + g * LANES, &yd);
			lanes_wide((const float *)&wf + g * LANES, &wd);
			lanes_wide((const float *)&mf + g * LANES, &md);
			lanes_wide((const float *)&af + g * LANES, &ad);
			lanes_wide((const float *)&bf + g * LANES, &bd);
			lanes_add_wide(&s, &yd, &wd, &md, &ad, &bd);
		}
	}
	lanes_store(&s, delta2, dot, residual2, noise2);
}

/* The sums of a piece read in place: the loop specialized for a float bfloat16 base measured against its
 * 4-bit form (a float merge: M its values), else general. */
LQ_CLONES static void
lanes_sums_in_place(const float *y, const lq_fidelity_side *w, const lq_fidelity_side *m, const lq_fidelity_side *a,
		    const lq_fidelity_side *b, int64_t i0, int64_t n, double *delta2, double *dot, double *residual2,
		    double *noise2)
{
	side_reader rw, rm, ra, rb;
	side_reader_init(&rw, w);
	side_reader_init(&rm, m ? m : w);
	side_reader_init(&ra, a);
	side_reader_init(&rb, b);
	const side_reader *pa = a == w ? &rw : &ra, *pb = b == w ? &rw : &rb, *pm = m ? &rm : NULL;
	const enum side_kind wk = kind_of(w), mk = m ? kind_of(m) : wk, ak = kind_of(a), bk = kind_of(b);
	if (wk == SIDE_BF16 && pb == &rw && ak == SIDE_CODES_BF16 && pa != &rw && mk == SIDE_BF16)
		sums_in_place(y, &rw, SIDE_BF16, pm, SIDE_BF16, pa, SIDE_CODES_BF16, pb, SIDE_BF16, i0, n, delta2, dot,
			      residual2, noise2);
	else if (wk == SIDE_CODES_BF16 && pb == &rw && ak == SIDE_BF16 && pa != &rw && pm && mk == SIDE_CODES_BF16)
		sums_in_place(y, &rw, SIDE_CODES_BF16, pm, SIDE_CODES_BF16, pa, SIDE_BF16, pb, SIDE_CODES_BF16, i0, n,
			      delta2, dot, residual2, noise2);
	else
		sums_in_place(y, &rw, wk, pm, mk, pa, ak, pb, bk, i0, n, delta2, dot, residual2, noise2);
}

/* The sums of a piece through widened float32 copies of its sides: any type. */
static void piece_widened(const fidelity_job *j, int64_t i0, int64_t n, bool w16_is_w, bool wq_is_w, double *delta2,
			  double *dot, double *residual2, double *noise2)
{
	const lq_fidelity_range *r = j->r;
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
	const float *a = w16_is_w ? w : w16, *b = wq_is_w ? w : wq;
	if (r->noise && !w16_is_w)
		widen(j->ctx, &r->w16, i0, n, w16);
	if (r->noise && !wq_is_w)
		widen(j->ctx, &r->wq, i0, n, wq);
	for (int64_t k = n; k < padded; k++)
		w[k] = ytail[k] = m[k] = w16[k] = wq[k] = 0;
	/* without M or without the noise, the terms that need them are computed on stand-ins and left out; the
	 * noise's sides swapped so that W is the second where it is one of them ((a - b)^2 = (b - a)^2 exactly) */
	const float *na = r->noise ? (a == w ? b : a) : w, *nb = r->noise ? (a == w ? a : b) : w;
	lanes_sums(y, w, r->match ? m : y, na, nb, padded, delta2, dot, residual2, noise2);
}

/* The sums of piece p of the job's range into *out. */
static void piece_sums(const fidelity_job *j, int64_t p, lq_fidelity_sums *out)
{
	const lq_fidelity_range *r = j->r;
	const int64_t i0 = p * LQ_STATS_PIECE, n = j->n - i0 < LQ_STATS_PIECE ? j->n - i0 : LQ_STATS_PIECE;
	/* W16 is W itself when the float base is what was merged, and Wq is W when its 4-bit form was */
	const bool w16_is_w = same_side(&r->w16, &r->w), wq_is_w = same_side(&r->wq, &r->w);
	double delta2[LANES], dot[LANES], residual2[LANES], noise2[LANES];
	/* in place where at most two sides are codes (a requantization's M and the base's Wq): decoded lane
	 * group by lane group, they cost less than the dequantization kernel's pass into widened copies */
	const int codes = (r->w.codes != NULL) + (r->match && r->m.codes) + (r->noise && !w16_is_w && r->w16.codes) +
			  (r->noise && !wq_is_w && r->wq.codes);
	if (n % PAIR == 0 && codes <= 2 && kind_of(&r->w) != SIDE_OTHER && (!r->match || kind_of(&r->m) != SIDE_OTHER) &&
	    (!r->noise || ((w16_is_w || kind_of(&r->w16) != SIDE_OTHER) && (wq_is_w || kind_of(&r->wq) != SIDE_OTHER)))) {
		/* the noise's sides as below: W the second where it is one of them */
		const lq_fidelity_side *a = w16_is_w ? &r->w : &r->w16, *b = wq_is_w ? &r->w : &r->wq;
		const lq_fidelity_side *na = r->noise ? (w16_is_w ? b : a) : &r->w, *nb = r->noise ? (w16_is_w ? a : b) : &r->w;
		lanes_sums_in_place(r->y, &r->w, r->match ? &r->m : NULL, na, nb, i0, n, delta2, dot, residual2, noise2);
	} else {
		piece_widened(j, i0, n, w16_is_w, wq_is_w, delta2, dot, residual2, noise2);
	}
	*out = (lq_fidelity_sums){.elements = r->delta ? (uint64_t)n : 0,
				  .delta2 = r->delta ? lanes_total(delta2) : 0, .dot = r->match ? lanes_total(dot) : 0,
				  .residual2 = r->match ? lanes_total(residual2) : 0, .noise2 = lanes_total(noise2)};
}

static void piece_item(void *arg, int64_t p)
{
	const fidelity_job *j = arg;
	piece_sums(j, p, &j->pieces[p]);
}

void lq_fidelity_sums_add(lq_fidelity_sums *a, const lq_fidelity_sums *b)
{
	a->elements += b->elements;
	a->delta2 += b->delta2;
	a->dot += b->dot;
	a->residual2 += b->residual2;
	a->noise2 += b->noise2;
	a->has_noise |= b->has_noise;
}

void lq_fidelity_piece(const lq_ctx *ctx, const lq_fidelity_range *r, int64_t n, int64_t p, lq_fidelity_sums *out)
{
	const fidelity_job j = {.ctx = ctx, .r = r, .n = n};
	piece_sums(&j, p, out);
}

void lq_fidelity_add_here(const lq_ctx *ctx, const lq_fidelity_range *r, int64_t n, lq_fidelity_sums *s)
{
	const fidelity_job j = {.ctx = ctx, .r = r, .n = n};
	for (int64_t p = 0; p * LQ_STATS_PIECE < n; p++) {
		lq_fidelity_sums piece;
		piece_sums(&j, p, &piece);
		lq_fidelity_sums_add(s, &piece);
	}
	s->has_noise |= r->noise;
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
	for (int64_t p = 0; p < npieces; p++)
		lq_fidelity_sums_add(s, &j.pieces[p]);
	s->has_noise |= r->noise;
	free(j.pieces);
	return LQ_OK;
}
