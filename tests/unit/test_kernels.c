/*
 * test_kernels.c: every CPU path this machine runs (lq_cpu_path: scalar, AVX2, AVX-512), kernel by kernel,
 * against the scalar reference on random and adversarial data: NaN and infinities, subnormals, values on
 * the codebooks' decision thresholds, zero and subnormal-only blocks, negative zeros, tiny negative
 * products, NaN scales with payloads, partial last blocks, every block size and each input type. A path
 * the CPU lacks is said, not passed silently. Whatever LQ_CPU says, these go over all of them.
 */
#include <math.h>
#include <stdlib.h>

#include "lq_internal.h"
#include "test.h"
#include "util.h"

static const struct {
	lq_cpu_path path;
	const char *name;
} paths[] = {{LQ_CPU_AVX2, "avx2"}, {LQ_CPU_AVX512, "avx512"}};

static const lq_dtype dtypes[] = {LQ_DTYPE_BF16, LQ_DTYPE_F16, LQ_DTYPE_F32};
static const int32_t blocksizes[] = {32, 64, 128, 256, 512, 1024, 2048, 4096};

/* Element values that decide codes, for a block whose absmax is 1 (whose reciprocal is 1): the thresholds
 * themselves (a tie: the code below) and their neighbours, and values within three units of the edges of
 * the cells that the vector kernels look NF4 codes up by (lq_nf4_cell: round(15 y) changes at k + 0.5, the
 * edges in [-1, 1]). */
static float threshold_value(uint64_t u)
{
	if ((u >> 12) % 4 == 0) {
		float t = ((float)((u >> 16) % 31) - 16.0f + 0.5f) / 15.0f;
		for (int k = (int)((u >> 24) % 7) - 3; k != 0; k += k > 0 ? -1 : 1)
			t = nextafterf(t, k > 0 ? INFINITY : -INFINITY);
		return t;
	}
	float t = (u & 1) ? lq_nf4_thresholds[(u >> 1) % 15] : lq_fp4_thresholds_sorted[(u >> 1) % 7];
	if ((u >> 8) & 1)
		t = -t;
	switch ((u >> 9) % 3) {
	case 0:
		return t;
	case 1:
		return nextafterf(t, INFINITY);
	default:
		return nextafterf(t, -INFINITY);
	}
}

/* Block `b`'s values by kind: 0 normal, 1 thresholds (with 1.0 in the block), 2 zeros (+0 and -0),
 * 3 subnormals only, 4 subnormals beside normals, 5 tiny negative products (a huge absmax), 6 a NaN or an
 * infinity among normals, 7 wide exponents, 8 subnormals beside an absmax near 2^-120 (where a subnormal
 * input starts to change an NF4 code unless flushed) or one whose reciprocal is flushed to zero. */
static float value(util_rng *r, int kind, int64_t i, int64_t i0)
{
	uint64_t u = util_next(r);
	switch (kind) {
	case 0:
		return util_normal(r, 0.02f);
	case 1:
		return i == i0 ? 1.0f : threshold_value(u);
	case 2:
		return (u & 1) ? -0.0f : 0.0f;
	case 3:
		return (u % 3 == 0) ? -0.0f : util_normal(r, 1e-39f);
	case 4:
		return (u % 4 == 0) ? util_normal(r, 1.0f) : util_normal(r, 1e-39f);
	case 5:
		return i == i0 ? 3e30f : ((u & 1) ? -1e-10f : util_normal(r, 1e-9f));
	case 6:
		if (u % 61 == 0)
			return (u >> 8) % 3 == 0 ? NAN : ((u >> 8) % 3 == 1 ? INFINITY : -INFINITY);
		return util_normal(r, 1.0f);
	case 7:
		return util_normal(r, ldexpf(1.0f, (int)(u % 50) - 30));
	default: {
		static const float top[] = {0x1p-126f, 0x1.8p-125f, 0x1p-121f, 0x1.fffffep-121f, 0x1p-120f, 0x1p-119f,
					    0x1p-100f, 0x1.8p126f, 0x1.fep127f};
		uint64_t h = util_next(r);
		if (i == i0)
			return top[h % (sizeof top / sizeof top[0])] * ((h >> 8) & 1 ? -1.0f : 1.0f);
		return (u % 4 == 0) ? util_normal(r, 1e-39f) * 0.9f : lq_f32_from_bits((uint32_t)(h & 0x807fffffu));
	}
	}
}

static void fill(void *x, lq_dtype dtype, int64_t n, int32_t bs, util_rng *r)
{
	for (int64_t i0 = 0; i0 < n; i0 += bs) {
		int kind = (int)(util_next(r) % 9);
		int64_t i1 = i0 + bs < n ? i0 + bs : n;
		for (int64_t i = i0; i < i1; i++)
			lq_store_f32(x, dtype, i, value(r, kind, i, i0));
	}
}

/* The element sizes per block size: one block, one block and a partial one, several batches of blocks,
 * odd lengths. */
static int64_t length(int32_t bs, int k)
{
	static const int64_t mul[] = {1, 2, 17, 33};
	static const int64_t add[] = {0, 1, 7, 0};
	return mul[k] * bs + add[k] + (k == 3 ? bs / 2 + 3 : 0);
}

TEST(kernels_quantize_every_path_equals_scalar)
{
	util_rng r = {util_seed()};
	const lq_cpu_kernels *ref = lq_cpu_kernels_for(LQ_CPU_SCALAR);
	for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
		const lq_cpu_kernels *k = lq_cpu_kernels_for(paths[p].path);
		if (!k) {
			test_note("%s: not run by this CPU, not tested", paths[p].name);
			continue;
		}
		int cases = 0;
		for (size_t di = 0; di < sizeof dtypes / sizeof *dtypes; di++)
			for (int q = 0; q < 2; q++)
				for (size_t bi = 0; bi < sizeof blocksizes / sizeof *blocksizes; bi++)
					for (int li = 0; li < 4; li++) {
						const lq_dtype dt = dtypes[di];
						const int32_t bs = blocksizes[bi];
						const int64_t n = length(bs, li);
						const int64_t nb = lq_quant_nblocks(n, bs), np = lq_quant_packed_bytes(n);
						test_context("%s: %s %s blocksize %d n %lld", paths[p].name, lq_dtype_torch_name(dt),
							     lq_qtype_name((lq_qtype)q), bs, (long long)n);
						void *x = malloc((size_t)n * 4);
						uint8_t *p0 = calloc((size_t)np, 1), *p1 = calloc((size_t)np, 1);
						float *a0 = calloc((size_t)nb, 4), *a1 = calloc((size_t)nb, 4);
						fill(x, dt, n, bs, &r);
						int64_t bad0 = ref->quantize_range(x, dt, n, (lq_qtype)q, bs, 0, nb, p0, a0);
						/* in two ranges, the second starting past the first block */
						int64_t cut = nb > 1 ? 1 + (int64_t)(util_next(&r) % (uint64_t)(nb - 1)) : nb;
						int64_t bad1 = k->quantize_range(x, dt, n, (lq_qtype)q, bs, 0, cut, p1, a1);
						if (cut < nb) {
							int64_t e = k->quantize_range(x, dt, n, (lq_qtype)q, bs, cut, nb, p1, a1);
							if (bad1 < 0)
								bad1 = e;
						}
						CHECK_INT(bad1, bad0);
						if (memcmp(p0, p1, (size_t)np) != 0) {
							int64_t i = 0;
							while (p0[i] == p1[i])
								i++;
							test_fail(__FILE__, __LINE__, "packed byte %lld: %02x != %02x (reference)",
								  (long long)i, p1[i], p0[i]);
						}
						CHECK(memcmp(a0, a1, (size_t)nb * 4) == 0);
						free(x), free(p0), free(p1), free(a0), free(a1);
						cases++;
					}
		test_note("%s: %d quantize cases", k->name, cases);
	}
}

/* Scales that make dequantizing hard: NaN with payloads, infinities, zeros, subnormals, the smallest
 * normals, negative and huge ones. */
static float scale_value(util_rng *r)
{
	static const uint32_t bits[] = {0x7fffffffu, 0xffffffffu, 0x7f800001u, 0x7fc0ffffu, 0xffc00001u, 0x7fc00000u,
					0x7f800000u, 0xff800000u, 0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu,
					0x00800000u, 0x03800000u, 0x7f7fffffu, 0xbf800000u};
	uint64_t u = util_next(r);
	if (u % 3)
		return util_normal(r, 0.05f);
	return lq_f32_from_bits(bits[(u >> 8) % (sizeof bits / sizeof bits[0])]);
}

TEST(kernels_dequantize_every_path_equals_scalar)
{
	util_rng r = {util_seed() + 1};
	const lq_cpu_kernels *ref = lq_cpu_kernels_for(LQ_CPU_SCALAR);
	for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
		const lq_cpu_kernels *k = lq_cpu_kernels_for(paths[p].path);
		if (!k) {
			test_note("%s: not run by this CPU, not tested", paths[p].name);
			continue;
		}
		int cases = 0;
		for (size_t di = 0; di < sizeof dtypes / sizeof *dtypes; di++)
			for (int q = 0; q < 2; q++)
				for (size_t bi = 0; bi < sizeof blocksizes / sizeof *blocksizes; bi++)
					for (int li = 0; li < 4; li++) {
						const lq_dtype dt = dtypes[di];
						const int32_t bs = blocksizes[bi];
						const int64_t n = length(bs, li);
						const int64_t nb = lq_quant_nblocks(n, bs), np = lq_quant_packed_bytes(n);
						const size_t es = lq_dtype_size(dt);
						test_context("%s: %s %s blocksize %d n %lld", paths[p].name, lq_dtype_torch_name(dt),
							     lq_qtype_name((lq_qtype)q), bs, (long long)n);
						uint8_t *packed = malloc((size_t)np);
						float *absmax = malloc((size_t)nb * 4);
						void *d0 = calloc((size_t)n, es), *d1 = calloc((size_t)n, es);
						for (int64_t i = 0; i < np; i++)
							packed[i] = (uint8_t)util_next(&r);
						for (int64_t b = 0; b < nb; b++)
							absmax[b] = scale_value(&r);
						ref->dequantize_range(packed, absmax, n, (lq_qtype)q, bs, 0, nb, dt, d0);
						int64_t cut = nb > 1 ? 1 + (int64_t)(util_next(&r) % (uint64_t)(nb - 1)) : nb;
						k->dequantize_range(packed, absmax, n, (lq_qtype)q, bs, 0, cut, dt, d1);
						k->dequantize_range(packed, absmax, n, (lq_qtype)q, bs, cut, nb, dt, d1);
						if (memcmp(d0, d1, (size_t)n * es) != 0) {
							int64_t i = 0;
							while (memcmp((char *)d0 + i * (int64_t)es, (char *)d1 + i * (int64_t)es, es) == 0)
								i++;
							uint32_t v0 = 0, v1 = 0;
							memcpy(&v0, (char *)d0 + i * (int64_t)es, es);
							memcpy(&v1, (char *)d1 + i * (int64_t)es, es);
							test_fail(__FILE__, __LINE__, "element %lld (scale %08x): %x != %x (reference)",
								  (long long)i, lq_f32_bits(absmax[i / bs]), v1, v0);
						}
						free(packed), free(absmax), free(d0), free(d1);
						cases++;
					}
		test_note("%s: %d dequantize cases", k->name, cases);
	}
}

/* Adapter values: mostly normal, some zeros, subnormals, huge values whose products overflow, and NaN. */
static float lora_value(util_rng *r, int kind)
{
	uint64_t u = util_next(r);
	if (kind == 0 || u % 8)
		return util_normal(r, 0.1f);
	switch ((u >> 8) % 5) {
	case 0:
		return (u >> 16) & 1 ? -0.0f : 0.0f;
	case 1:
		return util_normal(r, 1e-39f);
	case 2:
		return util_normal(r, 1e30f);
	case 3:
		return NAN;
	default:
		return -INFINITY;
	}
}

/* Equal bits, or both NaN: which NaN operand an FMA passes on depends on the form of the instruction the
 * compiler picks for the reference's fmaf (a merge refuses a NaN result anyway). */
static bool same_float(float a, float b)
{
	return lq_f32_bits(a) == lq_f32_bits(b) || (a != a && b != b);
}

TEST(kernels_delta_rows_every_path_equals_reference)
{
	util_rng r = {util_seed() + 2};
	static const int32_t ranks[] = {1, 2, 3, 7, 8, 16, 17, 64, 65};
	static const int64_t colss[] = {1, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 100, 257};
	const int64_t rows = 37;
	for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
		const lq_cpu_kernels *k = lq_cpu_kernels_for(paths[p].path);
		if (!k || !k->delta_rows) {
			test_note("%s: not run by this CPU (or without FMA), not tested", paths[p].name);
			continue;
		}
		int cases = 0;
		for (int layout = 0; layout < 2; layout++)
			for (size_t ri = 0; ri < sizeof ranks / sizeof *ranks; ri++)
				for (size_t ci = 0; ci < sizeof colss / sizeof *colss; ci++) {
					const int32_t rank = ranks[ri];
					const int64_t cols = colss[ci];
					const int kind = (int)(util_next(&r) % 2);
					lq_lora lora = {.layout = (lq_lora_layout)layout, .rank = rank, .scaling = 0.75f};
					/* ROWS: A [rank, cols], B [rows, rank]; TRANSPOSED: A [rank, rows], B [cols, rank] */
					const int64_t na = rank * (layout == LQ_LORA_ROWS ? cols : rows);
					const int64_t nbv = (layout == LQ_LORA_ROWS ? rows : cols) * rank;
					float *a = malloc((size_t)na * 4), *b = malloc((size_t)nbv * 4), *bt = malloc((size_t)nbv * 4);
					for (int64_t i = 0; i < na; i++)
						a[i] = lora_value(&r, kind);
					for (int64_t i = 0; i < nbv; i++)
						b[i] = lora_value(&r, kind);
					if (layout == LQ_LORA_TRANSPOSED)
						for (int64_t j = 0; j < cols; j++)
							for (int64_t kk = 0; kk < rank; kk++)
								bt[kk * cols + j] = b[j * rank + kk];
					float *want = malloc((size_t)cols * 4), *got = malloc((size_t)(cols * LQ_MERGE_GROUP) * 4);
					for (int64_t row = 0; row < rows;) {
						int nrows = 1 + (int)(util_next(&r) % LQ_MERGE_GROUP);
						if (row + nrows > rows)
							nrows = (int)(rows - row);
						test_context("%s: %s rank %d cols %lld rows %lld + %d, data kind %d", paths[p].name,
							     layout ? "transposed" : "rows", rank, (long long)cols, (long long)row, nrows,
							     kind);
						k->delta_rows(&lora, a, b, bt, rows, cols, row, nrows, got);
						for (int t = 0; t < nrows; t++) {
							lq_lora_delta_row(&lora, a, b, rows, cols, row + t, want);
							for (int64_t j = 0; j < cols; j++)
								if (!same_float(got[t * cols + j], want[j])) {
									test_fail(__FILE__, __LINE__, "row %lld col %lld: %08x != %08x (reference)",
										  (long long)(row + t), (long long)j,
										  lq_f32_bits(got[t * cols + j]), lq_f32_bits(want[j]));
									t = nrows;
									break;
								}
						}
						row += nrows;
					}
					free(a), free(b), free(bt), free(want), free(got);
					cases++;
				}
		test_note("%s: %d delta cases", k->name, cases);
	}
}

TEST(kernels_paths_by_name)
{
	lq_cpu_path p = LQ_CPU_BEST;
	CHECK_INT(lq_cpu_path_from_name("scalar", &p), LQ_OK);
	CHECK_INT(p, LQ_CPU_SCALAR);
	CHECK_INT(lq_cpu_path_from_name("avx512", &p), LQ_OK);
	CHECK_INT(p, LQ_CPU_AVX512);
	CHECK_INT(lq_cpu_path_from_name("avx2", &p), LQ_OK);
	CHECK_INT(p, LQ_CPU_AVX2);
	CHECK_INT(lq_cpu_path_from_name("AVX2", &p), LQ_ERR_ARG);
	CHECK_INT(lq_cpu_path_from_name("", &p), LQ_ERR_ARG);
	CHECK_INT(lq_cpu_path_from_name(NULL, &p), LQ_ERR_ARG);
	CHECK_INT(p, LQ_CPU_AVX2); /* untouched */
	CHECK(lq_cpu_path_supported(LQ_CPU_BEST) && lq_cpu_path_supported(LQ_CPU_SCALAR));
	CHECK(!lq_cpu_path_supported((lq_cpu_path)99));
	/* a path this CPU does not run makes no context: never a silent fallback to another */
	lq_ctx_options o = {.threads = 1, .cpu = (lq_cpu_path)99};
	lq_ctx *ctx = lq_ctx_create(&o);
	CHECK(ctx == NULL);
	lq_ctx_free(ctx);
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		o.cpu = paths[i].path;
		ctx = lq_ctx_create(&o);
		CHECK((ctx != NULL) == lq_cpu_path_supported(paths[i].path));
		if (ctx)
			CHECK_CONTAINS(lq_ctx_backend_name(ctx), paths[i].name);
		lq_ctx_free(ctx);
	}
}

/* Block scales for a double quantization: typical ones, all equal (every difference from the offset 0),
 * zeros and subnormals, values whose codes sit on the dynamic map's midpoints, NaN and infinities. */
static float dq_value(util_rng *r, int kind, int64_t j)
{
	uint64_t u = util_next(r);
	switch (kind) {
	case 0:
		return 0.01f + fabsf(util_normal(r, 0.02f));
	case 1:
		return 0.125f;
	case 2:
		return (u & 1) ? 0.0f : util_normal(r, 1e-39f);
	case 3: { /* the offset is 0.5 (below) and the block's largest |c| 0.5: c / 0.5 on midpoints */
		const float *map = lq_dynamic_map();
		int i = (int)(u % 255);
		float mid = (map[i] + map[i + 1]) * 0.5f;
		return j % 256 == 0 ? 1.0f : 0.5f + mid * 0.5f;
	}
	default:
		return u % 97 == 0 ? ((u >> 8) & 1 ? NAN : INFINITY) : 0.01f + fabsf(util_normal(r, 0.02f));
	}
}

TEST(kernels_double_quant_every_path_equals_reference)
{
	util_rng r = {util_seed() + 3};
	static const int64_t counts[] = {1, 17, 255, 256, 257, 1000, 4096 + 17};
	for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
		const lq_cpu_kernels *k = lq_cpu_kernels_for(paths[p].path);
		if (!k || !k->double_quant_block) {
			test_note("%s: no kernel of its own (or not run by this CPU), not tested", paths[p].name);
			continue;
		}
		int cases = 0;
		for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++)
			for (int kind = 0; kind < 5; kind++) {
				const int64_t nb = counts[ci], nn = lq_quant_nested_blocks(nb);
				test_context("%s: %lld scales, kind %d", paths[p].name, (long long)nb, kind);
				float *a = malloc((size_t)nb * 4), *n0 = calloc((size_t)nn, 4), *n1 = calloc((size_t)nn, 4);
				uint8_t *q0 = calloc((size_t)nb, 1), *q1 = calloc((size_t)nb, 1);
				for (int64_t j = 0; j < nb; j++)
					a[j] = dq_value(&r, kind, j);
				float offset = kind == 3 ? 0.5f : a[nb / 2];
				for (int64_t b = 0; b < nn; b++) {
					lq_double_quant_block(a, nb, offset, b, q0, n0);
					k->double_quant_block(a, nb, offset, b, q1, n1);
				}
				if (memcmp(q0, q1, (size_t)nb) != 0) {
					int64_t j = 0;
					while (q0[j] == q1[j])
						j++;
					test_fail(__FILE__, __LINE__, "code %lld (scale %08x): %d != %d (reference)", (long long)j,
						  lq_f32_bits(a[j]), q1[j], q0[j]);
				}
				CHECK(memcmp(n0, n1, (size_t)nn * 4) == 0);
				free(a), free(n0), free(n1), free(q0), free(q1);
				cases++;
			}
		test_note("%s: %d double-quantization cases", k->name, cases);
	}
}

TEST(kernels_rcp_approx_avx512_equals_reference)
{
	const lq_cpu_kernels *k = lq_cpu_kernels_for(LQ_CPU_AVX512);
	if (!k) {
		test_note("avx512: not run by this CPU, not tested");
		return;
	}
	/* every mantissa at the exponents that bound the result (subnormal reciprocals flushed, 1/0) and one
	 * between, then zeros and subnormals */
	const int64_t n = (int64_t)1 << 23;
	float *x = malloc((size_t)n * 4), *r = malloc((size_t)n * 4);
	static const uint32_t exps[] = {1, 2, 127, 252, 253, 254};
	for (size_t e = 0; e < sizeof exps / sizeof exps[0]; e++) {
		for (int64_t m = 0; m < n; m++)
			x[m] = lq_f32_from_bits(exps[e] << 23 | (uint32_t)m);
		lq_rcp_approx_avx512(x, n - (int64_t)e, r); /* a length that is not a multiple of 16 */
		for (int64_t m = 0; m < n - (int64_t)e; m++)
			if (lq_f32_bits(r[m]) != lq_f32_bits(lq_rcp_approx(x[m])) &&
			    !test_fail(__FILE__, __LINE__, "x=%a: %a != %a", (double)x[m], (double)r[m], (double)lq_rcp_approx(x[m])))
				break;
	}
	for (int64_t m = 0; m < 4096; m++)
		x[m] = lq_f32_from_bits((uint32_t)m * 2047u);
	lq_rcp_approx_avx512(x, 4096, r);
	for (int64_t m = 0; m < 4096; m++)
		CHECK(lq_f32_bits(r[m]) == lq_f32_bits(lq_rcp_approx(x[m])));
	free(x), free(r);
}

/* Double quantization with an offset of 0 and 1.0 in every nested block, so that v = c: every step of the
 * dynamic code and its neighbours, and the edges of the cells the AVX2 and AVX-512 kernels look codes up by. */
TEST(kernels_double_quant_on_every_step)
{
	const lq_step_table *t = lq_dynamic_steps();
	CHECK(t != NULL);
	if (!t)
		return;
	float *a = malloc((size_t)LQ_DYNAMIC_CELLS * 16 * 4);
	int64_t nb = 0;
	for (int32_t c = 0; c < LQ_DYNAMIC_CELLS; c++) {
		if (nb % 256 == 0)
			a[nb++] = 1.0f;
		if (t->first[c] == t->first[c])
			for (int d = -2; d <= 2; d++)
				a[nb++] = lq_f32_from_bits(lq_f32_bits(t->first[c]) + (uint32_t)d);
		/* the cell's edges: sign, exponent and six mantissa bits change */
		const int32_t p = c < LQ_DYNAMIC_CELLS / 2 ? LQ_DYNAMIC_CELLS / 2 - 1 - c : c - LQ_DYNAMIC_CELLS / 2;
		const uint32_t edge = (0x34800000u + ((uint32_t)p << 17)) | (c < LQ_DYNAMIC_CELLS / 2 ? 0x80000000u : 0);
		a[nb++] = lq_f32_from_bits(edge);
		a[nb++] = lq_f32_from_bits(edge - 1);
	}
	const int64_t nn = lq_quant_nested_blocks(nb);
	uint8_t *q0 = calloc((size_t)nb, 1), *q1 = calloc((size_t)nb, 1);
	float *n0 = calloc((size_t)nn, 4), *n1 = calloc((size_t)nn, 4);
	for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
		const lq_cpu_kernels *k = lq_cpu_kernels_for(paths[p].path);
		if (!k || !k->double_quant_block) {
			test_note("%s: no kernel of its own (or not run by this CPU), not tested", paths[p].name);
			continue;
		}
		for (int64_t b = 0; b < nn; b++) {
			lq_double_quant_block(a, nb, 0.0f, b, q0, n0);
			k->double_quant_block(a, nb, 0.0f, b, q1, n1);
		}
		for (int64_t j = 0; j < nb; j++)
			if (q0[j] != q1[j] && !test_fail(__FILE__, __LINE__, "%s: v=%a: %d != %d (reference)", paths[p].name,
							 (double)a[j], q1[j], q0[j]))
				break;
		CHECK(memcmp(n0, n1, (size_t)nn * 4) == 0);
		test_note("%s: %lld values", k->name, (long long)nb);
	}
	free(a), free(q0), free(q1), free(n0), free(n1);
}
