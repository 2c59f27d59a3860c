/*
 * test_quant.c: the fast kernels against the reference on fresh random data of many shapes, for every
 * dtype, code and block size, on one and several threads (STYLE.md: the *_ref implementation is the
 * oracle), plus the codebook helpers the kernels stand on.
 */
#include <math.h>
#include <stdlib.h>

#include "lq_internal.h"
#include "test.h"
#include "util.h"

static const lq_dtype dtypes[] = {LQ_DTYPE_BF16, LQ_DTYPE_F16, LQ_DTYPE_F32};
static const int32_t blocksizes[] = {32, 64, 128, 256, 512, 1024, 2048, 4096};
static const int64_t sizes[] = {1, 2, 15, 16, 17, 31, 33, 63, 64, 65, 127, 1000, 4096, 4097, 12345, 65536 + 96, 300017};

/* Random data with what makes kernels go wrong: spread exponents, zero blocks, subnormals, values on and
 * next to the NF4 thresholds, negative zeros. */
static void fill(void *x, lq_dtype dtype, int64_t n, util_rng *r, int kind)
{
	for (int64_t i = 0; i < n; i++) {
		float v;
		uint64_t u = util_next(r);
		switch (kind) {
		case 0:
			v = util_normal(r, 0.02f);
			break;
		case 1: /* exponents over a wide range (within the type's), some zero runs */
			v = (i / 64) % 7 == 3 ? 0.0f
					      : util_normal(r, ldexpf(1.0f, dtype == LQ_DTYPE_F16 ? (int)(u % 30) - 24
											  : (int)(u % 60) - 40));
			break;
		case 2: /* thresholds times a block scale, nudged */
			v = lq_nf4_thresholds[u % 15] * (1.0f + (float)((u >> 8) % 3) * 1e-7f) * 2.5f;
			if ((u >> 20) % 5 == 0)
				v = ((u >> 24) & 1) ? 2.5f : -2.5f;
			break;
		default: /* subnormals and signed zeros */
			v = (u % 4 == 0) ? -0.0f : util_normal(r, 1e-38f);
			if (u % 97 == 0)
				v = 1.0f;
			break;
		}
		lq_store_f32(x, dtype, i, v);
	}
}

/* On a GPU: tensors larger than the backend's 16M-element pieces, so ranges are split and joined. */
static void large_tensors_equal_reference(lq_ctx *ctx, util_rng *r)
{
	const int64_t n = (16 << 20) * 2 + 64 * 3 + 7;
	uint16_t *x = malloc((size_t)n * 2);
	uint8_t *p0 = malloc((size_t)n / 2 + 1), *p1 = malloc((size_t)n / 2 + 1);
	float *a0 = malloc((size_t)(n / 64 + 1) * 4), *a1 = malloc((size_t)(n / 64 + 1) * 4);
	fill(x, LQ_DTYPE_BF16, n, r, 0);
	test_context("bf16 nf4 blocksize 64, n %lld", (long long)n);
	CHECK_INT(lq_quantize_blocks_ref(x, LQ_DTYPE_BF16, n, LQ_QTYPE_NF4, 64, p0, a0, NULL), LQ_OK);
	CHECK_INT(lq_quantize_blocks(ctx, x, LQ_DTYPE_BF16, n, LQ_QTYPE_NF4, 64, p1, a1, NULL), LQ_OK);
	CHECK(memcmp(p0, p1, (size_t)lq_quant_packed_bytes(n)) == 0);
	CHECK(memcmp(a0, a1, (size_t)lq_quant_nblocks(n, 64) * 4) == 0);
	free(x), free(p0), free(p1), free(a0), free(a1);
}

TEST(quant_fast_equals_reference)
{
	util_rng r = {util_seed()};
	lq_ctx_options o1 = {.threads = 1}, o3 = {.threads = 3};
	lq_ctx *ctx1 = util_ctx(o1.threads), *ctx3 = util_ctx(o3.threads);
	if (!CHECK(ctx1 && ctx3))
		return;
	int cases = 0;
	for (size_t di = 0; di < sizeof dtypes / sizeof *dtypes; di++)
		for (int q = 0; q < 2; q++)
			for (size_t bi = 0; bi < sizeof blocksizes / sizeof *blocksizes; bi++)
				for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
					lq_dtype dt = dtypes[di];
					int32_t bs = blocksizes[bi];
					int64_t n = sizes[si];
					int kind = (int)(util_next(&r) % 4);
					test_context("%s %s blocksize %d n %lld data kind %d", lq_dtype_torch_name(dt),
						     lq_qtype_name((lq_qtype)q), bs, (long long)n, kind);
					void *x = malloc((size_t)n * 4);
					int64_t nb = lq_quant_nblocks(n, bs), np = lq_quant_packed_bytes(n);
					uint8_t *p0 = malloc((size_t)np), *p1 = malloc((size_t)np), *p3 = malloc((size_t)np);
					float *a0 = malloc((size_t)nb * 4), *a1 = malloc((size_t)nb * 4), *a3 = malloc((size_t)nb * 4);
					fill(x, dt, n, &r, kind);
					CHECK_INT(lq_quantize_blocks_ref(x, dt, n, (lq_qtype)q, bs, p0, a0, NULL), LQ_OK);
					CHECK_INT(lq_quantize_blocks(ctx1, x, dt, n, (lq_qtype)q, bs, p1, a1, NULL), LQ_OK);
					CHECK_INT(lq_quantize_blocks(ctx3, x, dt, n, (lq_qtype)q, bs, p3, a3, NULL), LQ_OK);
					CHECK(memcmp(p0, p1, (size_t)np) == 0);
					CHECK(memcmp(p0, p3, (size_t)np) == 0);
					CHECK(memcmp(a0, a1, (size_t)nb * 4) == 0);
					CHECK(memcmp(a0, a3, (size_t)nb * 4) == 0);
					/* double quantization: same bytes and offset on any thread count */
					uint8_t *q0 = malloc((size_t)nb), *q3 = malloc((size_t)nb);
					float *n0 = malloc((size_t)lq_quant_nested_blocks(nb) * 4);
					float *n3 = malloc((size_t)lq_quant_nested_blocks(nb) * 4);
					float off0, off3;
					lq_double_quant_ref(a0, nb, q0, n0, &off0);
					CHECK_INT(lq_double_quant(ctx3, a0, nb, q3, n3, &off3), LQ_OK);
					CHECK(memcmp(q0, q3, (size_t)nb) == 0);
					CHECK(memcmp(n0, n3, (size_t)lq_quant_nested_blocks(nb) * 4) == 0);
					CHECK_INT(lq_f32_bits(off0), lq_f32_bits(off3));
					/* dequantization, fast against reference */
					void *d0 = malloc((size_t)n * 4), *d3 = malloc((size_t)n * 4);
					lq_dequantize_blocks_ref(p0, a0, n, (lq_qtype)q, bs, dt, d0);
					CHECK_INT(lq_dequantize_blocks(ctx3, p0, a0, n, (lq_qtype)q, bs, dt, d3), LQ_OK);
					CHECK(memcmp(d0, d3, (size_t)n * lq_dtype_size(dt)) == 0);
					free(x), free(p0), free(p1), free(p3), free(a0), free(a1), free(a3);
					free(q0), free(q3), free(n0), free(n3), free(d0), free(d3);
					cases++;
				}
	test_note("%d cases, fast kernels: %s", cases, lq_ctx_backend_name(ctx3));
	if (getenv("LQ_TEST_DEVICE"))
		large_tensors_equal_reference(ctx3, &r);
	lq_ctx_free(ctx1);
	lq_ctx_free(ctx3);
}

TEST(quant_nonfinite_reports_first_index)
{
	lq_ctx_options o = {.threads = 4};
	lq_ctx *ctx = util_ctx(o.threads);
	if (!ctx)
		return;
	const int64_t n = 200000;
	float *x = malloc((size_t)n * 4);
	uint8_t *p = malloc((size_t)n / 2);
	float *a = malloc((size_t)n / 32 * 4 + 4);
	util_rng r = {99};
	const float bad[] = {NAN, INFINITY, -INFINITY};
	for (int k = 0; k < 3; k++)
		for (int trial = 0; trial < 4; trial++) {
			for (int64_t i = 0; i < n; i++)
				x[i] = util_normal(&r, 1.0f);
			int64_t first = (int64_t)(util_next(&r) % (uint64_t)n);
			x[first] = bad[k];
			x[n - 1 - (first % 100)] = bad[k]; /* a later one too */
			if (n - 1 - (first % 100) < first)
				first = n - 1 - (first % 100);
			int64_t got = -2, got_ref = -2;
			test_context("value %g at %lld", (double)bad[k], (long long)first);
			CHECK_INT(lq_quantize_blocks(ctx, x, LQ_DTYPE_F32, n, LQ_QTYPE_NF4, 64, p, a, &got), LQ_ERR_NONFINITE);
			CHECK_INT(got, first);
			CHECK_INT(lq_quantize_blocks_ref(x, LQ_DTYPE_F32, n, LQ_QTYPE_NF4, 64, p, a, &got_ref), LQ_ERR_NONFINITE);
			CHECK_INT(got_ref, first);
			CHECK_CONTAINS(lq_ctx_error_string(ctx), k == 0 ? "NaN" : "inf");
		}
	free(x), free(p), free(a);
	lq_ctx_free(ctx);
}

TEST(quant_rejects_bad_arguments)
{
	lq_ctx *ctx = util_ctx(0);
	if (!ctx)
		return;
	float x[64] = {0};
	uint8_t p[32];
	float a[1];
	CHECK_INT(lq_quantize_blocks(ctx, x, LQ_DTYPE_F32, 64, LQ_QTYPE_NF4, 48, p, a, NULL), LQ_ERR_ARG);
	CHECK_INT(lq_quantize_blocks(ctx, x, LQ_DTYPE_F32, 64, LQ_QTYPE_NF4, 8192, p, a, NULL), LQ_ERR_ARG);
	CHECK_INT(lq_quantize_blocks(ctx, x, LQ_DTYPE_U8, 64, LQ_QTYPE_NF4, 64, p, a, NULL), LQ_ERR_ARG);
	CHECK_INT(lq_quantize_blocks(ctx, x, LQ_DTYPE_F32, 0, LQ_QTYPE_NF4, 64, p, a, NULL), LQ_OK);
	CHECK_INT(lq_double_quant(ctx, a, 0, p, a, a), LQ_ERR_ARG);
	CHECK(lq_blocksize_valid(32) && lq_blocksize_valid(4096) && !lq_blocksize_valid(16) && !lq_blocksize_valid(96));
	lq_quant_params dq = {LQ_QTYPE_NF4, 64, true}, plain = {LQ_QTYPE_NF4, 64, false};
	CHECK(fabs(lq_quant_bits_per_param(&dq) - 4.126953125) < 1e-12);
	CHECK(fabs(lq_quant_bits_per_param(&plain) - 4.5) < 1e-12);
	lq_ctx_free(ctx);
}

TEST(codebook_nf4_thresholds_decide)
{
	for (int i = 0; i < 15; i++) {
		float t = lq_nf4_thresholds[i];
		test_context("threshold %d", i);
		CHECK_INT(lq_nf4_code(t), i); /* strictly above counts: t itself stays below */
		CHECK_INT(lq_nf4_code(nextafterf(t, INFINITY)), i + 1);
		CHECK_INT(lq_nf4_code(nextafterf(t, -INFINITY)), i);
	}
	CHECK_INT(lq_nf4_code(NAN), 0);
	CHECK_INT(lq_nf4_code(0.0f), 7);
	CHECK_INT(lq_nf4_code(-0.0f), 7);
	CHECK_INT(lq_nf4_code(1.0f), 15);
	CHECK_INT(lq_nf4_code(-1.0f), 0);
}

/* dQuantizeFP4 as bitsandbytes writes it: a decision tree on the magnitude. */
static uint8_t fp4_tree(float y)
{
	const float T0 = lq_fp4_thresholds_sorted[3], T1 = lq_fp4_thresholds_sorted[5], T2 = lq_fp4_thresholds_sorted[6],
		    T3 = lq_fp4_thresholds_sorted[4], T4 = lq_fp4_thresholds_sorted[1], T5 = lq_fp4_thresholds_sorted[2],
		    T6 = lq_fp4_thresholds_sorted[0];
	uint8_t sign = y < 0 ? 8 : 0;
	float a = fabsf(y);
	uint8_t c = a > T0 ? (a > T1 ? (a > T2 ? 3 : 2) : (a > T3 ? 5 : 4)) : (a > T4 ? (a > T5 ? 7 : 6) : (a > T6 ? 1 : 0));
	return (uint8_t)(sign | c);
}

TEST(codebook_fp4_rank_equals_tree)
{
	util_rng r = {7};
	for (int i = 0; i < 1000000; i++) {
		float y = (float)((double)(util_next(&r) >> 11) / 9007199254740992.0) * 2.2f - 1.1f;
		if (lq_fp4_code(y) != fp4_tree(y) && !test_fail(__FILE__, __LINE__, "y=%a", (double)y))
			break;
	}
	for (int t = 0; t < 7; t++) {
		float v = lq_fp4_thresholds_sorted[t];
		float probe[] = {v, nextafterf(v, 2), nextafterf(v, 0), -v, -nextafterf(v, 2)};
		for (size_t k = 0; k < 5; k++)
			CHECK_INT(lq_fp4_code(probe[k]), fp4_tree(probe[k]));
	}
	CHECK_INT(lq_fp4_code(-0.0f), 0);
	CHECK_INT(lq_fp4_code(NAN), 0);
}

/* bitsandbytes' dQuantize<0> with its lower/upper pivot bookkeeping, literally. */
static uint8_t dynamic_literal(float x)
{
	const float *code = lq_dynamic_map();
	int pivot = 127, upper_pivot = 255, lower_pivot = 0;
	float lower = -1.0f, upper = 1.0f, val = code[pivot];
	for (int i = 64; i > 0; i >>= 1) {
		if (x > val) {
			lower_pivot = pivot;
			lower = val;
			pivot += i;
		} else {
			upper_pivot = pivot;
			upper = val;
			pivot -= i;
		}
		val = code[pivot];
	}
	if (upper_pivot == 255)
		upper = code[upper_pivot];
	if (lower_pivot == 0)
		lower = code[lower_pivot];
	if (x > val) {
		float mid = (upper + val) * 0.5f;
		return (uint8_t)(x > mid ? upper_pivot : pivot);
	}
	float mid = (lower + val) * 0.5f;
	return (uint8_t)(x < mid ? lower_pivot : pivot);
}

TEST(codebook_dynamic_code_equals_literal_search)
{
	const float *code = lq_dynamic_map();
	util_rng r = {11};
	int n = 0;
	for (int i = 0; i < 256; i++) {
		float around[] = {code[i], nextafterf(code[i], 2), nextafterf(code[i], -2),
				  i < 255 ? (code[i] + code[i + 1]) * 0.5f : 1.5f};
		for (int k = 0; k < 4; k++) {
			float m = around[k];
			float probes[] = {m, nextafterf(m, 2), nextafterf(m, -2)};
			for (int j = 0; j < 3; j++, n++)
				if (lq_dynamic_code(probes[j]) != dynamic_literal(probes[j]))
					test_fail(__FILE__, __LINE__, "v=%a: %d != %d", (double)probes[j], lq_dynamic_code(probes[j]),
						  dynamic_literal(probes[j]));
		}
	}
	for (int i = 0; i < 200000; i++, n++) {
		float v = (float)((double)(util_next(&r) >> 11) / 9007199254740992.0) * 2.1f - 1.05f;
		if (lq_dynamic_code(v) != dynamic_literal(v) && !test_fail(__FILE__, __LINE__, "v=%a", (double)v))
			break;
	}
	CHECK_INT(lq_dynamic_code(NAN), dynamic_literal(NAN));
	test_note("%d values", n);
}

/* The code by the tables of step_cells.c. */
static int table_code(const lq_step_table *t, uint32_t cell, float v)
{
	return t->base[cell] + (v >= t->first[cell]);
}

/* The dynamic code by the packed word, as the AVX-512 kernel reads it. */
static int word_code(const lq_step_table *t, float v)
{
	const uint32_t w = t->word[lq_dynamic_cell(v)], b = lq_f32_bits(v);
	const uint32_t low = (b ^ ((b >> 31) ? 0xffffffffu : 0)) & 0x1ffffu;
	return (int)(w >> 18) + (low >= (w & 0x3ffffu));
}

TEST(step_cells_equal_reference_codes)
{
	const lq_step_table *nf4 = lq_nf4_steps(), *dyn = lq_dynamic_steps();
	CHECK(nf4 != NULL && dyn != NULL);
	if (!nf4 || !dyn)
		return;
	int n = 0;
	/* every threshold and cell edge, and three units either side */
	for (int i = 0; i < 15 + 31; i++) {
		float m = i < 15 ? lq_nf4_thresholds[i] : ((float)(i - 15) - 16.0f + 0.5f) / 15.0f;
		for (int k = 0; k < 3; k++)
			m = nextafterf(m, -2);
		for (int k = 0; k < 7; k++, n++, m = nextafterf(m, 2))
			if (table_code(nf4, lq_nf4_cell(m), m) != lq_nf4_code(m))
				test_fail(__FILE__, __LINE__, "nf4 y=%a: %d != %d", (double)m, table_code(nf4, lq_nf4_cell(m), m),
					  lq_nf4_code(m));
	}
	CHECK_INT(table_code(nf4, lq_nf4_cell(NAN), NAN), lq_nf4_code(NAN));
	CHECK_INT(table_code(nf4, lq_nf4_cell(-1.0f), -1.0f), 0);
	CHECK_INT(table_code(nf4, lq_nf4_cell(0x1.000002p0f), 0x1.000002p0f), 15);
	const float *map = lq_dynamic_map();
	for (int i = 0; i < 256 + LQ_DYNAMIC_CELLS; i++) {
		float m = i < 256 ? (i < 255 ? (map[i] + map[i + 1]) * 0.5f : map[i]) : dyn->first[i - 256];
		if (m != m)
			continue;
		for (int k = 0; k < 3; k++)
			m = nextafterf(m, -2);
		for (int k = 0; k < 7; k++, n++, m = nextafterf(m, 2)) {
			const int ref = lq_dynamic_code(m);
			if ((table_code(dyn, lq_dynamic_cell(m), m) != ref || word_code(dyn, m) != ref) &&
			    !test_fail(__FILE__, __LINE__, "dynamic v=%a: %d, %d != %d", (double)m,
				       table_code(dyn, lq_dynamic_cell(m), m), word_code(dyn, m), ref))
				break;
		}
	}
	util_rng r = {17};
	for (int i = 0; i < 1000000; i++, n++) {
		float v = (float)((double)(util_next(&r) >> 11) / 9007199254740992.0) * 2.1f - 1.05f;
		if (i & 1)
			v = ldexpf(v, -(int)(util_next(&r) % 30)); /* the binades near zero */
		const bool nf4_ok = fabsf(v) > 1.03125f || table_code(nf4, lq_nf4_cell(v), v) == lq_nf4_code(v);
		if ((!nf4_ok || word_code(dyn, v) != lq_dynamic_code(v)) &&
		    !test_fail(__FILE__, __LINE__, "v=%a", (double)v))
			break;
	}
	test_note("%d values", n);
}

TEST(rcp_approx_properties)
{
	CHECK_INT(lq_rcp_approx_init(), LQ_OK);
	CHECK(isinf(lq_rcp_approx(0.0f)));
	CHECK(isinf(lq_rcp_approx(1e-40f))); /* subnormal input flushed */
	CHECK(lq_rcp_approx(INFINITY) == 0.0f);
	CHECK(lq_rcp_approx(3e38f) == 0.0f); /* 1/x subnormal: flushed */
	for (int e = -126; e <= 126; e++)
		CHECK(lq_rcp_approx(ldexpf(1.0f, e)) == ldexpf(1.0f, -e));
	/* within one unit of the correctly rounded reciprocal, and differing for some inputs (the table is
	 * not all zeros) */
	util_rng r = {5};
	int differ = 0;
	for (int i = 0; i < 1000000; i++) {
		float x = lq_f32_from_bits(0x00800000u + (uint32_t)(util_next(&r) % (0x7e800000u - 0x00800000u)));
		float a = lq_rcp_approx(x), b = 1.0f / x;
		int64_t d = (int64_t)lq_f32_bits(a) - (int64_t)lq_f32_bits(b);
		if ((d < -1 || d > 1) && !test_fail(__FILE__, __LINE__, "x=%a: %a vs %a", (double)x, (double)a, (double)b))
			break;
		differ += d != 0;
	}
	CHECK(differ > 50000 && differ < 300000);
	test_note("%d of 1000000 random reciprocals differ from IEEE by one unit", differ);
}

TEST(dtype_half_conversions)
{
	/* every half: widening is exact and narrowing it back gives the same bits (NaN payloads quiet) */
	for (uint32_t h = 0; h < 65536; h++) {
		float f = lq_f16_to_f32((uint16_t)h);
		uint16_t back = lq_f32_to_f16(f);
		bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
		if (nan ? !((back & 0x7c00) == 0x7c00 && (back & 0x3ff)) : back != h) {
			test_fail(__FILE__, __LINE__, "half %04x -> %a -> %04x", h, (double)f, back);
			break;
		}
	}
	/* narrowing rounds to nearest even: compare with the compiler's _Float16 */
	util_rng r = {3};
	for (int i = 0; i < 2000000; i++) {
		uint32_t u = (uint32_t)util_next(&r);
		if (i < 1000000) /* concentrate on the half range */
			u = (u & 0x80000000u) | (0x33000000u + u % (0x47800000u - 0x33000000u));
		float f = lq_f32_from_bits(u);
		if (f != f)
			continue;
		_Float16 h = (_Float16)f;
		uint16_t want;
		memcpy(&want, &h, 2);
		if (lq_f32_to_f16(f) != want) {
			test_fail(__FILE__, __LINE__, "%a -> %04x, compiler %04x", (double)f, lq_f32_to_f16(f), want);
			break;
		}
	}
	/* bfloat16: round to nearest even on the bits, exact widening */
	CHECK_INT(lq_f32_to_bf16(1.0f), 0x3f80);
	CHECK_INT(lq_f32_to_bf16(lq_f32_from_bits(0x3f808000u)), 0x3f80); /* tie to even */
	CHECK_INT(lq_f32_to_bf16(lq_f32_from_bits(0x3f818000u)), 0x3f82);
	CHECK_INT(lq_f32_to_bf16(lq_f32_from_bits(0x3f808001u)), 0x3f81);
	CHECK_INT(lq_f32_to_bf16(lq_f32_from_bits(0x7f7fffffu)), 0x7f80); /* overflows to infinity */
	CHECK((lq_f32_to_bf16(NAN) & 0x7fc0) == 0x7fc0);
	for (uint32_t b = 0; b < 65536; b++)
		if ((b & 0x7f80) != 0x7f80 && lq_f32_to_bf16(lq_bf16_to_f32((uint16_t)b)) != b) {
			test_fail(__FILE__, __LINE__, "bf16 %04x does not round-trip", b);
			break;
		}
}

/* bf16 (the GPU's bf16 NF4 kernel takes 32 elements a thread): the first non-finite element, wherever it
 * lies in a thread's 32 and whatever the block size, with a second one after it in the same 32 or later. */
TEST(quant_nonfinite_bf16_reports_first_index)
{
	lq_ctx *ctx = util_ctx(4);
	if (!CHECK(ctx))
		return;
	const int64_t n = 100000 + 17;
	uint16_t *x = malloc((size_t)n * 2);
	uint8_t *p = malloc((size_t)n / 2 + 1);
	float *a = malloc((size_t)(n / 32 + 1) * 4);
	util_rng r = {1234};
	const uint16_t bad[] = {0x7fc0, 0x7f80, 0xff80, 0xffc1};
	const int32_t bs[] = {32, 64, 4096};
	for (int k = 0; k < 4; k++)
		for (int b = 0; b < 3; b++)
			for (int trial = 0; trial < 3; trial++) {
				for (int64_t i = 0; i < n; i++)
					x[i] = lq_f32_to_bf16(util_normal(&r, 0.02f));
				const int64_t first = (int64_t)(util_next(&r) % (uint64_t)(n - 40));
				x[first] = bad[k];
				x[first + 1 + (int64_t)(util_next(&r) % 31)] = bad[(k + 1) % 4];
				x[n - 1] = bad[k];
				int64_t got = -2, got_ref = -2;
				test_context("bits %04x at %lld, blocksize %d", bad[k], (long long)first, bs[b]);
				CHECK_INT(lq_quantize_blocks(ctx, x, LQ_DTYPE_BF16, n, LQ_QTYPE_NF4, bs[b], p, a, &got),
					  LQ_ERR_NONFINITE);
				CHECK_INT(got, first);
				CHECK_INT(lq_quantize_blocks_ref(x, LQ_DTYPE_BF16, n, LQ_QTYPE_NF4, bs[b], p, a, &got_ref),
					  LQ_ERR_NONFINITE);
				CHECK_INT(got_ref, first);
			}
	free(x), free(p), free(a);
	lq_ctx_free(ctx);
}
