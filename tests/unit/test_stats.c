/*
 * test_stats.c: the error statistics (lq_error_sums) against sums written here from their definition:
 * per piece of LQ_STATS_PIECE elements in element order, pieces added in order (the same bits are
 * required), and against long double sums in any order (a tolerance of 1e-12 relative: the order of a
 * few million double additions moves the last bits only). Non-finite elements, ties of the largest error,
 * signed zeros, a call split in chunks. With LQ_TEST_DEVICE=cuda, the GPU's pieces.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"
#include "test.h"
#include "util.h"

static void expected_sums(const float *x, const float *ref, int64_t n, int64_t first, lq_error_sums *s)
{
	lq_error_sums_init(s);
	for (int64_t p0 = 0; p0 < n; p0 += LQ_STATS_PIECE) {
		double e2 = 0, r2 = 0, x2 = 0, d = 0;
		for (int64_t i = p0; i < n && i < p0 + LQ_STATS_PIECE; i++) {
			uint32_t a, b;
			memcpy(&a, &x[i], 4);
			memcpy(&b, &ref[i], 4);
			s->differ += a != b;
			if (!isfinite(x[i]) || !isfinite(ref[i])) {
				s->nonfinite++;
				continue;
			}
			double e = (double)x[i] - (double)ref[i];
			s->elements++;
			e2 += e * e;
			r2 += (double)ref[i] * (double)ref[i];
			x2 += (double)x[i] * (double)x[i];
			d += (double)x[i] * (double)ref[i];
			if (s->max_abs_err_index < 0 || fabs(e) > s->max_abs_err) {
				s->max_abs_err = fabs(e);
				s->max_abs_err_index = first + i;
			}
		}
		s->sum_err2 += e2;
		s->sum_ref2 += r2;
		s->sum_x2 += x2;
		s->dot += d;
	}
}

static bool same_sums(const lq_error_sums *a, const lq_error_sums *b)
{
	return a->elements == b->elements && a->nonfinite == b->nonfinite && a->differ == b->differ &&
	       a->sum_err2 == b->sum_err2 && a->sum_ref2 == b->sum_ref2 && a->sum_x2 == b->sum_x2 && a->dot == b->dot &&
	       a->max_abs_err == b->max_abs_err && a->max_abs_err_index == b->max_abs_err_index;
}

TEST(error_sums_match_their_definition)
{
	lq_ctx *ctx = util_ctx(3);
	if (!ctx)
		return;
	util_rng rng = {util_seed()};
	const int64_t sizes[] = {1, 7, LQ_STATS_PIECE - 1, LQ_STATS_PIECE, LQ_STATS_PIECE + 1, 3 * LQ_STATS_PIECE + 77,
				 (int64_t)5 << 20};
	for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
		const int64_t n = sizes[c];
		float *x = malloc((size_t)n * 4), *ref = malloc((size_t)n * 4);
		for (int64_t i = 0; i < n; i++) {
			ref[i] = util_normal(&rng, 0.02f);
			x[i] = util_next(&rng) % 5 == 0 ? ref[i] : ref[i] + util_normal(&rng, 0.001f);
		}
		if (n > 100) { /* the awkward elements: non-finite, signed zeros, a tie for the largest error */
			x[3] = NAN;
			ref[5] = INFINITY;
			x[9] = -0.0f;
			ref[9] = 0.0f;
			ref[20] = ref[n - 1] = 0.25f;
			x[20] = x[n - 1] = 0.75f;
		}
		test_context("n = %lld", (long long)n);
		lq_error_sums got, want;
		lq_error_sums_init(&got);
		CHECK(lq_error_sums_add(ctx, x, LQ_DTYPE_F32, ref, LQ_DTYPE_F32, n, 1000, &got) == LQ_OK);
		expected_sums(x, ref, n, 1000, &want);
		CHECK(same_sums(&got, &want));
		if (n > 100) {
			CHECK_INT(got.nonfinite, 2);
			CHECK_INT(got.max_abs_err_index, 1020); /* the first of the tie */
		}
		/* long double sums in plain order: the same within rounding */
		long double e2 = 0;
		for (int64_t i = 0; i < n; i++)
			if (isfinite(x[i]) && isfinite(ref[i]))
				e2 += ((long double)x[i] - ref[i]) * ((long double)x[i] - ref[i]);
		CHECK(fabsl(e2 - got.sum_err2) <= 1e-12L * e2);
		/* split in two calls at a piece boundary: the sums of the pieces are the same */
		if (n > 2 * LQ_STATS_PIECE) {
			lq_error_sums split;
			lq_error_sums_init(&split);
			CHECK(lq_error_sums_add(ctx, x, LQ_DTYPE_F32, ref, LQ_DTYPE_F32, LQ_STATS_PIECE, 1000, &split) == LQ_OK);
			CHECK(lq_error_sums_add(ctx, x + LQ_STATS_PIECE, LQ_DTYPE_F32, ref + LQ_STATS_PIECE, LQ_DTYPE_F32,
						n - LQ_STATS_PIECE, 1000 + LQ_STATS_PIECE, &split) == LQ_OK);
			CHECK(same_sums(&split, &want));
		}
		/* typed inputs: the same sums as their float32 values */
		uint16_t *xb = malloc((size_t)n * 2), *rh = malloc((size_t)n * 2);
		float *xf = malloc((size_t)n * 4), *rf = malloc((size_t)n * 4);
		for (int64_t i = 0; i < n; i++) {
			xb[i] = lq_f32_to_bf16(x[i]);
			rh[i] = lq_f32_to_f16(ref[i]);
			xf[i] = lq_bf16_to_f32(xb[i]);
			rf[i] = lq_f16_to_f32(rh[i]);
		}
		lq_error_sums typed, as_f32;
		lq_error_sums_init(&typed);
		CHECK(lq_error_sums_add(ctx, xb, LQ_DTYPE_BF16, rh, LQ_DTYPE_F16, n, 0, &typed) == LQ_OK);
		expected_sums(xf, rf, n, 0, &as_f32);
		CHECK(same_sums(&typed, &as_f32));
		free(xb), free(rh), free(xf), free(rf);
		free(x);
		free(ref);
	}
	lq_ctx_free(ctx);
}

/* The fidelity sums of one range written here from their contract (fidelity.c): per piece of
 * LQ_STATS_PIECE elements, element k to lane k % 8, each lane in element order, the lanes added in lane
 * order, the pieces in order. */
static void expected_fidelity(const float *y, const float *w, const float *m, const float *a, const float *b,
			      int64_t n, lq_fidelity_sums *s)
{
	memset(s, 0, sizeof *s);
	for (int64_t p0 = 0; p0 < n; p0 += LQ_STATS_PIECE) {
		double d2[8] = {0}, dt[8] = {0}, r2[8] = {0}, n2[8] = {0};
		for (int64_t i = p0; i < n && i < p0 + LQ_STATS_PIECE; i++) {
			const int l = (int)((i - p0) % 8);
			const double d = (double)y[i] - (double)w[i], e = (double)m[i] - (double)y[i],
				     q = (double)a[i] - (double)b[i];
			d2[l] += d * d;
			dt[l] += ((double)m[i] - (double)w[i]) * d;
			r2[l] += e * e;
			n2[l] += q * q;
		}
		double t[4] = {0};
		for (int l = 0; l < 8; l++) {
			t[0] += d2[l];
			t[1] += dt[l];
			t[2] += r2[l];
			t[3] += n2[l];
		}
		s->elements += (uint64_t)(n - p0 < LQ_STATS_PIECE ? n - p0 : LQ_STATS_PIECE);
		s->delta2 += t[0];
		s->dot += t[1];
		s->residual2 += t[2];
		s->noise2 += t[3];
	}
	s->has_noise = true;
}

static bool same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

/* Every term in one pass, the noise's sides in either role (W as the float base or as its 4-bit form, or
 * neither), lengths that end inside a piece and inside a lane: the same bits as the contract's order. */
TEST(fidelity_sums_keep_their_order)
{
	lq_ctx *ctx = util_ctx(3);
	if (!ctx)
		return;
	util_rng rng = {util_seed()};
	const int64_t sizes[] = {1, 13, LQ_STATS_PIECE, 3 * LQ_STATS_PIECE + 77};
	for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
		const int64_t n = sizes[c];
		float *y = malloc((size_t)n * 4), *w = malloc((size_t)n * 4), *m = malloc((size_t)n * 4),
		      *o = malloc((size_t)n * 4);
		for (int64_t i = 0; i < n; i++) {
			w[i] = util_normal(&rng, 0.02f);
			y[i] = w[i] + util_normal(&rng, 0.001f);
			m[i] = y[i] + util_normal(&rng, 0.002f);
			o[i] = w[i] + util_normal(&rng, 0.003f);
		}
		const lq_fidelity_side W = {.values = w, .dtype = LQ_DTYPE_F32}, O = {.values = o, .dtype = LQ_DTYPE_F32},
				       M = {.values = m, .dtype = LQ_DTYPE_F32};
		/* w16 = W (a float base merged as it is), wq = W (its 4-bit form merged), neither */
		const lq_fidelity_side w16s[3] = {W, O, O}, wqs[3] = {O, W, M};
		const float *as[3] = {w, o, o}, *bs[3] = {o, w, m};
		for (int k = 0; k < 3; k++) {
			test_context("n = %lld, noise sides %d", (long long)n, k);
			const lq_fidelity_range r = {.w = W, .m = M, .w16 = w16s[k], .wq = wqs[k], .y = y, .delta = true,
						     .match = true, .noise = true};
			lq_fidelity_sums got = {0}, want;
			CHECK_INT(lq_fidelity_add(ctx, &r, n, &got), LQ_OK);
			expected_fidelity(y, w, m, as[k], bs[k], n, &want);
			CHECK_INT((long long)got.elements, (long long)want.elements);
			CHECK(same_bits(got.delta2, want.delta2));
			CHECK(same_bits(got.dot, want.dot));
			CHECK(same_bits(got.residual2, want.residual2));
			CHECK(same_bits(got.noise2, want.noise2));
			CHECK(got.has_noise);
		}
		free(y);
		free(w);
		free(m);
		free(o);
	}
	lq_ctx_free(ctx);
}

/* A side of bfloat16 values, or of 4-bit codes dequantized to bfloat16 or float32, is read in place by
 * the sums (fidelity.c, side_lanes): the same bits as the contract on the values widened by the reference
 * (lq_dequantize_blocks_ref, then loaded), both 4-bit types and block sizes, a length whose last piece falls
 * back to widening; and alone, a block whose scale flushes the products (subnormal) or rounds its largest
 * values past bfloat16's (huge). */
TEST(fidelity_sums_read_sides_in_place)
{
	lq_ctx *ctx = util_ctx(2);
	if (!ctx)
		return;
	util_rng rng = {util_seed()};
	const int64_t n = 2 * LQ_STATS_PIECE + 64 * 5 + 8; /* ends inside a piece, on a lane */
	const lq_qtype qtypes[] = {LQ_QTYPE_NF4, LQ_QTYPE_FP4};
	const int32_t blocksizes[] = {64, 256};
	float *w = malloc((size_t)n * 4), *y = malloc((size_t)n * 4), *m = malloc((size_t)n * 4),
	      *wq = malloc((size_t)n * 4), *absmax = malloc((size_t)n * 4);
	uint16_t *wb = malloc((size_t)n * 2), *mb = malloc((size_t)n * 2), *deq = malloc((size_t)n * 4);
	uint8_t *codes = malloc((size_t)n / 2 + 1), *mcodes = malloc((size_t)n / 2 + 1);
	float *mabsmax = malloc((size_t)n * 4), *mq = malloc((size_t)n * 4);
	for (size_t qt = 0; qt < 2; qt++)
		for (size_t bsi = 0; bsi < 2; bsi++)
			for (int deq_f32 = 0; deq_f32 < 2; deq_f32++) {
				const int32_t bs = blocksizes[bsi];
				const lq_dtype dt = deq_f32 ? LQ_DTYPE_F32 : LQ_DTYPE_BF16;
				test_context("%s, blocksize %d, codes as %s", qt ? "fp4" : "nf4", bs, deq_f32 ? "f32" : "bf16");
				for (int64_t i = 0; i < n; i++) {
					wb[i] = lq_bf16_encode(util_normal(&rng, 0.02f));
					w[i] = lq_bf16_decode(wb[i]);
					y[i] = w[i] + util_normal(&rng, 0.001f);
					mb[i] = lq_bf16_encode(y[i] + util_normal(&rng, 0.002f));
					m[i] = lq_bf16_decode(mb[i]);
				}
				CHECK_INT(lq_quantize_blocks_ref(w, LQ_DTYPE_F32, n, qtypes[qt], bs, codes, absmax, NULL), LQ_OK);
				lq_dequantize_blocks_ref(codes, absmax, n, qtypes[qt], bs, dt, deq);
				for (int64_t i = 0; i < n; i++)
					wq[i] = lq_load_f32(deq, dt, i);
				const lq_fidelity_side W = {.values = wb, .dtype = LQ_DTYPE_BF16},
						       M = {.values = mb, .dtype = LQ_DTYPE_BF16},
						       Q = {.codes = codes, .absmax = absmax, .qtype = qtypes[qt], .blocksize = bs,
							    .dtype = dt};
				/* W16 = W, Wq its codes (a float base measured); and W the codes, M values */
				const lq_fidelity_range r1 = {.w = W, .m = M, .w16 = W, .wq = Q, .y = y, .delta = true,
							      .match = true, .noise = true},
							r2 = {.w = Q, .m = M, .w16 = W, .wq = Q, .y = y, .delta = true,
							      .match = true, .noise = true};
				lq_fidelity_sums got = {0}, want;
				CHECK_INT(lq_fidelity_add(ctx, &r1, n, &got), LQ_OK);
				expected_fidelity(y, w, m, wq, w, n, &want);
				CHECK(same_bits(got.delta2, want.delta2) && same_bits(got.dot, want.dot) &&
				      same_bits(got.residual2, want.residual2) && same_bits(got.noise2, want.noise2));
				got = (lq_fidelity_sums){0};
				CHECK_INT(lq_fidelity_add(ctx, &r2, n, &got), LQ_OK);
				expected_fidelity(y, wq, m, w, wq, n, &want);
				CHECK(same_bits(got.delta2, want.delta2) && same_bits(got.dot, want.dot) &&
				      same_bits(got.residual2, want.residual2) && same_bits(got.noise2, want.noise2));
				/* W and M both codes, W16 values (a requantization measured after its last chunk) */
				CHECK_INT(lq_quantize_blocks_ref(m, LQ_DTYPE_F32, n, qtypes[qt], bs, mcodes, mabsmax, NULL), LQ_OK);
				lq_dequantize_blocks_ref(mcodes, mabsmax, n, qtypes[qt], bs, dt, deq);
				for (int64_t i = 0; i < n; i++)
					mq[i] = lq_load_f32(deq, dt, i);
				const lq_fidelity_side MQ = {.codes = mcodes, .absmax = mabsmax, .qtype = qtypes[qt],
							     .blocksize = bs, .dtype = dt};
				const lq_fidelity_range r3 = {.w = Q, .m = MQ, .w16 = W, .wq = Q, .y = y, .delta = true,
							      .match = true, .noise = true};
				got = (lq_fidelity_sums){0};
				CHECK_INT(lq_fidelity_add(ctx, &r3, n, &got), LQ_OK);
				expected_fidelity(y, wq, mq, w, wq, n, &want);
				CHECK(same_bits(got.delta2, want.delta2) && same_bits(got.dot, want.dot) &&
				      same_bits(got.residual2, want.residual2) && same_bits(got.noise2, want.noise2));
				/* one block of codes in a range of zeros, with a scale that any other term would swamp */
				/* subnormal (flushed first); normal, its products subnormal (flushed after); past bfloat16's
				 * largest value; 1 + 3/256, whose product with the code 1.0 is a tie that rounds to even;
				 * the least scale read without the flush (2^-100) and the float below it; infinite; NaN */
				const float special[] = {1e-39f, -1e-39f, 3.4e38f, 2e-38f, 1.01171875f, 0x1p-100f,
							 0x1.fffffep-101f, INFINITY, NAN};
				for (size_t k = 0; k < sizeof special / sizeof special[0]; k++) {
					const float scale = special[k];
					const lq_fidelity_side Qs = {.codes = codes, .absmax = &scale, .qtype = qtypes[qt],
								     .blocksize = bs, .dtype = dt};
					memset(wb, 0, (size_t)bs * 2);
					memset(y, 0, (size_t)bs * 4);
					lq_dequantize_blocks_ref(codes, &scale, bs, qtypes[qt], bs, dt, deq);
					for (int64_t i = 0; i < bs; i++) {
						wq[i] = lq_load_f32(deq, dt, i);
						w[i] = 0;
					}
					const lq_fidelity_range rs = {.w = W, .m = W, .w16 = W, .wq = Qs, .y = y, .delta = true,
								      .match = true, .noise = true};
					got = (lq_fidelity_sums){0};
					CHECK_INT(lq_fidelity_add(ctx, &rs, bs, &got), LQ_OK);
					expected_fidelity(y, w, w, wq, w, bs, &want);
					CHECK(isnan(want.noise2) ? isnan(got.noise2) : same_bits(got.noise2, want.noise2));
					/* flushed; the largest code past bfloat16's largest value (infinite), or float32's own */
					CHECK(k < 2 ? got.noise2 == 0 : k != 2 || (deq_f32 ? isfinite(got.noise2) && got.noise2 > 1e76 : isinf(got.noise2)));
					/* the same block as both code sides, against bfloat16 values */
					const lq_fidelity_range rq = {.w = Qs, .m = Qs, .w16 = W, .wq = Qs, .y = y, .delta = true,
								      .match = true, .noise = true};
					got = (lq_fidelity_sums){0};
					CHECK_INT(lq_fidelity_add(ctx, &rq, bs, &got), LQ_OK);
					expected_fidelity(y, wq, wq, w, wq, bs, &want);
					CHECK(isnan(want.noise2) ? isnan(got.noise2) && isnan(got.delta2)
								 : same_bits(got.noise2, want.noise2) && same_bits(got.delta2, want.delta2) &&
									   same_bits(got.dot, want.dot) &&
									   same_bits(got.residual2, want.residual2));
				}
			}
	free(w), free(y), free(m), free(wq), free(absmax), free(wb), free(mb), free(deq), free(codes), free(mcodes),
		free(mabsmax), free(mq);
	lq_ctx_free(ctx);
}
