/*
 * quant4_avx512.c: the block kernels with AVX-512 (F, BW, VL, DQ), 32 elements per step: the even
 * elements of a step in one register and the odd ones in another, which is how a bf16 vector splits for
 * free and how the packed bytes pair them (element 2k in the high nibble of byte k). Built with
 * AVX512_FLAGS and called only after cpu_kernels.c has seen all of it at run time. Same bytes as the
 * reference (quant4_ref.c): the same float32 operations on each element, and the flush-to-zero of
 * bitsandbytes' fast math done with masks rather than the MXCSR, so that no global state is touched.
 */
#include <math.h>

#include "lq_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Blocks whose maxima are found before any is coded: their reciprocals (a table of 2 MB, lq_rcp_approx)
 * are then looked up together, the cache misses overlapping instead of one per block. */
#define BATCH 16

/* Elements i .. i + 31 as float32: the even ones (i + 2k in lane k) in *e, the odd ones in *o. */
static inline void load32(const void *src, lq_dtype dtype, int64_t i, __m512 *e, __m512 *o)
{
	switch (dtype) {
	case LQ_DTYPE_BF16: {
		__m512i x = _mm512_loadu_si512((const uint16_t *)src + i);
		*e = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
		*o = _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32((int)0xffff0000u)));
		break;
	}
	case LQ_DTYPE_F16: {
		__m512i x = _mm512_loadu_si512((const uint16_t *)src + i);
		*e = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(x));
		*o = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(x, 16)));
		break;
	}
	default: {
		const __m512 a = _mm512_loadu_ps((const float *)src + i), b = _mm512_loadu_ps((const float *)src + i + 16);
		const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
		*e = _mm512_permutex2var_ps(a, even, b);
		*o = _mm512_permutex2var_ps(a, _mm512_add_epi32(even, _mm512_set1_epi32(1)), b);
		break;
	}
	}
}

/* x with subnormals replaced by a zero of the same sign. */
static inline __m512 ftz16(__m512 x)
{
	__mmask16 tiny = _mm512_testn_epi32_mask(_mm512_castps_si512(x), _mm512_set1_epi32(0x7f800000));
	return _mm512_castsi512_ps(_mm512_mask_and_epi32(_mm512_castps_si512(x), tiny, _mm512_castps_si512(x),
							 _mm512_set1_epi32((int)0x80000000u)));
}

/* The thresholds of a binary search over sorted thresholds t, as tables indexed by the code found so
 * far: step[s][c] is the threshold the step with bit `1 << (nsteps - 1 - s)` compares with when the
 * higher bits are c, t[c + bit - 1]. */
typedef struct search {
	__m512 step[3]; /* the steps after the first, whose threshold is a constant */
	__m512 first;
} search;

static search search_tables(const float *t, int nsteps)
{
	search s;
	int top = 1 << (nsteps - 1);
	s.first = _mm512_set1_ps(t[top - 1]);
	for (int k = 1; k < nsteps; k++) {
		int bit = top >> k;
		float lanes[16];
		for (int c = 0; c < 16; c++) {
			int idx = (c & ~(2 * bit - 1)) + bit - 1; /* the higher bits of c, then this step's */
			lanes[c] = t[idx < (1 << nsteps) - 1 ? idx : (1 << nsteps) - 2];
		}
		s.step[k - 1] = _mm512_loadu_ps(lanes);
	}
	return s;
}

/* The number of thresholds v lies strictly above (NaN: none), by binary search: the reference's count of
 * comparisons, since the thresholds ascend. */
static inline __m512i search16(__m512 v, const search *s, int nsteps)
{
	int bit = 1 << (nsteps - 1);
	__m512i c = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(v, s->first, _CMP_GT_OQ), _mm512_set1_epi32(bit));
	for (int k = 1; k < nsteps; k++) {
		bit >>= 1;
		__m512 th = _mm512_permutexvar_ps(c, s->step[k - 1]);
		c = _mm512_mask_or_epi32(c, _mm512_cmp_ps_mask(v, th, _CMP_GT_OQ), c, _mm512_set1_epi32(bit));
	}
	return c;
}

typedef struct coder {
	lq_qtype qtype;
	search fp4;
	__m512i fp4_by_rank;
	__m512i nf4_base[2]; /* lq_nf4_steps: cells 0..15 and 16..31 */
	__m512 nf4_first[2];
} coder;

/* lq_nf4_code of sixteen y in [-1.0625, 1.03125] or NaN, by the cells of step_cells.c: lq_nf4_cell's fused
 * multiply-add leaves the cell in the low five bits, which is all a two-table permute reads of an index. */
static inline __m512i nf4_codes16(__m512 y, const coder *k)
{
	const __m512i c = _mm512_castps_si512(_mm512_fmadd_ps(y, _mm512_set1_ps(15.0f), _mm512_set1_ps(0x1.8p23f + 16.0f)));
	const __m512i base = _mm512_permutex2var_epi32(k->nf4_base[0], c, k->nf4_base[1]);
	const __m512 first = _mm512_permutex2var_ps(k->nf4_first[0], c, k->nf4_first[1]);
	return _mm512_mask_add_epi32(base, _mm512_cmp_ps_mask(y, first, _CMP_GE_OQ), base, _mm512_set1_epi32(1));
}

/* The codes of sixteen elements x, times r (|x| <= absmax, so |y| <= 1 but for the reciprocal's last unit).
 * With no subnormal input in the block the input flush is skipped; the product's flush matters for FP4
 * only, where it decides the sign of a tiny negative product (a flushed -0.0 is positive): the sign bit is
 * set for y <= -FLT_MIN, the negative normal products. NF4 codes a subnormal product as 7 whatever its
 * sign. */
static inline __m512i codes16(__m512 x, __m512 r, bool tiny_inputs, const coder *k)
{
	if (tiny_inputs)
		x = ftz16(x);
	__m512 y = _mm512_mul_ps(x, r);
	if (k->qtype == LQ_QTYPE_NF4)
		return nf4_codes16(y, k);
	__m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(y), _mm512_set1_epi32(0x7fffffff)));
	__m512i code = _mm512_permutexvar_epi32(search16(a, &k->fp4, 3), k->fp4_by_rank);
	__mmask16 neg = _mm512_cmp_ps_mask(y, _mm512_set1_ps(-0x1p-126f), _CMP_LE_OQ);
	return _mm512_mask_or_epi32(code, neg, code, _mm512_set1_epi32(8));
}

/* The largest and the smallest nonzero magnitude of block b's elements, as float32 bits: a step's
 * magnitudes (16-bit types: as 16-bit integers, which order like their values) go into running maxima,
 * and bits - 1 as unsigned into running minima (a zero wraps to the largest value). */
static void block_range(const void *src, lq_dtype dtype, int64_t i0, int32_t blocksize, uint32_t *max_bits,
			uint32_t *min_bits)
{
	if (dtype == LQ_DTYPE_F32) {
		const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), one = _mm512_set1_epi32(1);
		__m512i m = _mm512_setzero_si512(), t = _mm512_set1_epi32(-1);
		for (int64_t i = i0; i < i0 + blocksize; i += 16) {
			__m512i a = _mm512_and_si512(_mm512_loadu_si512((const float *)src + i), abs_mask);
			m = _mm512_max_epu32(m, a);
			t = _mm512_min_epu32(t, _mm512_sub_epi32(a, one));
		}
		*max_bits = _mm512_reduce_max_epu32(m);
		*min_bits = _mm512_reduce_min_epu32(t) + 1u;
		return;
	}
	const __m512i abs_mask = _mm512_set1_epi16(0x7fff), one = _mm512_set1_epi16(1);
	__m512i m = _mm512_setzero_si512(), t = _mm512_set1_epi32(-1);
	for (int64_t i = i0; i < i0 + blocksize; i += 32) {
		__m512i a = _mm512_and_si512(_mm512_loadu_si512((const uint16_t *)src + i), abs_mask);
		m = _mm512_max_epu16(m, a);
		t = _mm512_min_epu16(t, _mm512_sub_epi16(a, one));
	}
	m = _mm512_max_epu16(m, _mm512_srli_epi32(m, 16));
	t = _mm512_min_epu16(t, _mm512_srli_epi32(t, 16));
	uint16_t hmax = (uint16_t)_mm512_reduce_max_epu32(_mm512_and_si512(m, _mm512_set1_epi32(0xffff)));
	uint16_t hmin = (uint16_t)(_mm512_reduce_min_epu32(_mm512_and_si512(t, _mm512_set1_epi32(0xffff))) + 1u);
	if (dtype == LQ_DTYPE_BF16) {
		*max_bits = (uint32_t)hmax << 16;
		*min_bits = (uint32_t)hmin << 16;
	} else { /* a half's value is a normal float32 or zero, never a subnormal one */
		*max_bits = lq_f32_bits(fabsf(lq_f16_to_f32(hmax)));
		*min_bits = hmin ? 0x00800000u : 0;
	}
}

/* The largest magnitude of each of sixteen bf16 blocks from x (blocks from `count` on: 0), as float32 bits
 * in lane j for block j: each block's magnitudes in one register of 16-bit maxima, then the sixteen
 * registers halved into one, two blocks at a time, by a tree of shuffles (the transpose of a 4 x 4 grid of
 * blocks; `leaf` places block j where the tree's last step leaves it in lane j). */
static inline __m512i bf16_maxima16(const uint16_t *x, int32_t blocksize, int count)
{
	const __m512i abs_mask = _mm512_set1_epi16(0x7fff);
	__m512i v[16];
	for (int p = 0; p < 16; p++) {
		const int j = 4 * (p % 4) + p / 4; /* leaf p holds block j */
		__m512i m = _mm512_setzero_si512();
		if (j < count)
			for (int32_t i = 0; i < blocksize; i += 32)
				m = _mm512_max_epu16(m, _mm512_and_si512(_mm512_loadu_si512(x + (int64_t)j * blocksize + i), abs_mask));
		v[p] = m;
	}
	for (int p = 0; p < 8; p++) /* 256-bit halves: leaf 2p in 128-bit lanes 0, 1, leaf 2p + 1 in 2, 3 */
		v[p] = _mm512_max_epu16(_mm512_shuffle_i64x2(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
					_mm512_shuffle_i64x2(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
	for (int p = 0; p < 4; p++) /* 128-bit lane L: leaf 4p + L */
		v[p] = _mm512_max_epu16(_mm512_shuffle_i64x2(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(2, 0, 2, 0)),
					_mm512_shuffle_i64x2(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(3, 1, 3, 1)));
	for (int p = 0; p < 2; p++) /* 64-bit half h of lane L: leaf 8p + 4h + L */
		v[p] = _mm512_max_epu16(_mm512_unpacklo_epi64(v[2 * p], v[2 * p + 1]),
					_mm512_unpackhi_epi64(v[2 * p], v[2 * p + 1]));
	/* 32-bit word k of lane L: leaf L + 4k, which holds block 4L + k */
	__m512i z = _mm512_max_epu16(
		_mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(v[0]), _mm512_castsi512_ps(v[1]), _MM_SHUFFLE(2, 0, 2, 0))),
		_mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(v[0]), _mm512_castsi512_ps(v[1]), _MM_SHUFFLE(3, 1, 3, 1))));
	return _mm512_slli_epi32(_mm512_max_epu16(z, _mm512_srli_epi32(z, 16)), 16);
}

/* lq_rcp_approx of sixteen absmax values given as bits (zero or normal), with the same table: the IEEE
 * reciprocal of the mantissa, its difference from the GPU's, the exponent put back, a subnormal result
 * flushed, and 1/0 = +inf. */
static inline __m512 rcp16(__m512i b, const uint8_t *deltas)
{
	const __m512i m = _mm512_and_si512(b, _mm512_set1_epi32(0x7fffff));
	const __m512 mant = _mm512_castsi512_ps(_mm512_or_si512(m, _mm512_set1_epi32(0x3f800000)));
	const __m512i ieee = _mm512_castps_si512(_mm512_div_ps(_mm512_set1_ps(1.0f), mant));
	/* the 32-bit word holding mantissa m's two bits: bytes m / 4 rounded down to a multiple of 4, all in the table */
	const __m512i word = _mm512_i32gather_epi32(_mm512_srli_epi32(m, 4), deltas, 4);
	const __m512i two_bits = _mm512_srlv_epi32(word, _mm512_slli_epi32(_mm512_and_si512(m, _mm512_set1_epi32(15)), 1));
	const __m512i delta = _mm512_sub_epi32(_mm512_and_si512(two_bits, _mm512_set1_epi32(3)), _mm512_set1_epi32(1));
	const __m512i r1 = _mm512_add_epi32(ieee, delta);
	/* re = (r1 >> 23) - (exponent of b - 127) */
	const __m512i re = _mm512_sub_epi32(_mm512_add_epi32(_mm512_srli_epi32(r1, 23), _mm512_set1_epi32(127)),
					    _mm512_srli_epi32(b, 23));
	__m512i r = _mm512_or_si512(_mm512_slli_epi32(re, 23), _mm512_and_si512(r1, _mm512_set1_epi32(0x7fffff)));
	r = _mm512_maskz_mov_epi32(_mm512_cmpgt_epi32_mask(re, _mm512_setzero_si512()), r);
	r = _mm512_mask_mov_epi32(r, _mm512_cmplt_epu32_mask(b, _mm512_set1_epi32(0x00800000)), _mm512_set1_epi32(0x7f800000));
	return _mm512_castsi512_ps(r);
}

void lq_rcp_approx_avx512(const float *x, int64_t n, float *r)
{
	const uint8_t *deltas = lq_rcp_approx_deltas();
	for (int64_t i = 0; i < n; i += 16) {
		const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffffu : (1u << (n - i)) - 1);
		const __m512i b = _mm512_maskz_loadu_epi32(m, x + i);
		const __m512i flushed = _mm512_maskz_mov_epi32(_mm512_cmpge_epu32_mask(b, _mm512_set1_epi32(0x00800000)), b);
		_mm512_mask_storeu_ps(r + i, m, rcp16(flushed, deltas));
	}
}

/* The packed codes of one bf16 block of NF4 with no input to flush: the coding loop of the common case
 * alone, with no test of the type or of the flush in it. */
static inline void nf4_bf16_block(const uint16_t *x, int32_t blocksize, __m512 r, const coder *k, uint8_t *out)
{
	for (int32_t i = 0; i < blocksize; i += 32) {
		const __m512i v = _mm512_loadu_si512(x + i);
		const __m512 e = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
		const __m512 o = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));
		const __m512i ce = nf4_codes16(_mm512_mul_ps(e, r), k), co = nf4_codes16(_mm512_mul_ps(o, r), k);
		_mm_storeu_si128((__m128i *)(out + i / 2), _mm512_cvtepi32_epi8(_mm512_or_si512(_mm512_slli_epi32(ce, 4), co)));
	}
}

int64_t lq_quantize_range_avx512(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype, int32_t blocksize,
				 int64_t b0, int64_t b1, uint8_t *packed, float *absmax)
{
	const lq_step_table *nf4 = lq_nf4_steps();
	const uint8_t *deltas = lq_rcp_approx_deltas();
	if (!nf4 || !deltas)
		return lq_quantize_range_scalar(src, dtype, n, qtype, blocksize, b0, b1, packed, absmax);
	int64_t bad = -1;
	coder k = {.qtype = qtype, .fp4 = search_tables(lq_fp4_thresholds_sorted, 3)};
	int32_t by_rank[16] = {0};
	for (int c = 0; c < 8; c++)
		by_rank[c] = lq_fp4_code_by_rank[c];
	k.fp4_by_rank = _mm512_loadu_si512(by_rank);
	for (int h = 0; h < 2; h++) {
		k.nf4_base[h] = _mm512_loadu_si512(nf4->base + 16 * h);
		k.nf4_first[h] = _mm512_loadu_ps(nf4->first + 16 * h);
	}
	for (int64_t bb = b0; bb < b1; bb += BATCH) {
		const int count = (int)(bb + BATCH < b1 ? BATCH : b1 - bb);
		/* the whole blocks of the batch, the partial last block after them */
		const int whole = bb + count < n / blocksize ? count : (int)(n / blocksize - bb);
		uint32_t max_bits[BATCH], min_bits[BATCH] = {0};
		__m512i maxv;
		if (dtype == LQ_DTYPE_BF16 && qtype == LQ_QTYPE_NF4) {
			maxv = bf16_maxima16((const uint16_t *)src + bb * blocksize, blocksize, whole);
		} else {
			for (int j = 0; j < whole; j++)
				block_range(src, dtype, (bb + j) * blocksize, blocksize, &max_bits[j], &min_bits[j]);
			for (int j = whole; j < BATCH; j++)
				max_bits[j] = 0;
			maxv = _mm512_loadu_si512(max_bits);
		}
		/* the partial last block: the reference's */
		maxv = _mm512_mask_mov_epi32(maxv, (__mmask16)(0xffffu << whole), _mm512_set1_epi32(-1));
		_mm512_storeu_si512(max_bits, maxv);
		/* a subnormal is the block's maximum only when every element is subnormal or zero, so flushing
		 * the maximum is flushing every element first */
		const __m512i amax = _mm512_maskz_mov_epi32(_mm512_cmpge_epu32_mask(maxv, _mm512_set1_epi32(0x00800000)), maxv);
		_mm512_mask_storeu_epi32(absmax + bb, (__mmask16)((1u << count) - 1), amax);
		float r[BATCH];
		_mm512_storeu_ps(r, rcp16(amax, deltas));
		for (int j = 0; j < count; j++) {
			const int64_t b = bb + j, i0 = b * blocksize;
			if (max_bits[j] >= 0x7f800000u) {
				/* a NaN or infinity, or the partial last block: the reference, one element at a time */
				int64_t e = lq_quantize_range_scalar(src, dtype, n, qtype, blocksize, b, b + 1, packed, absmax);
				if (bad < 0)
					bad = e;
				continue;
			}
			/* NF4: a subnormal x gives |y| < 2^-6 (code 7, as its flushed zero) unless the absmax is below
			 * 2^-120; FP4 codes its sign, so any subnormal input is flushed */
			const bool tiny_inputs = qtype == LQ_QTYPE_NF4 ? max_bits[j] < 0x03800000u
								      : min_bits[j] != 0 && min_bits[j] < 0x00800000u;
			const __m512 rv = _mm512_set1_ps(r[j]);
			if (dtype == LQ_DTYPE_BF16 && qtype == LQ_QTYPE_NF4 && !tiny_inputs) {
				nf4_bf16_block((const uint16_t *)src + i0, blocksize, rv, &k, packed + i0 / 2);
				continue;
			}
			for (int64_t i = i0; i < i0 + blocksize; i += 32) {
				__m512 e, o;
				load32(src, dtype, i, &e, &o);
				__m512i ce = codes16(e, rv, tiny_inputs, &k), co = codes16(o, rv, tiny_inputs, &k);
				__m512i bytes = _mm512_or_si512(_mm512_slli_epi32(ce, 4), co);
				_mm_storeu_si128((__m128i *)(packed + i / 2), _mm512_cvtepi32_epi8(bytes));
			}
		}
	}
	return bad;
}

/* 32 float32 values, the even elements in e and the odd ones in o, to dtype at element i of out. */
static inline void store32(void *out, lq_dtype dtype, int64_t i, __m512 e, __m512 o)
{
	switch (dtype) {
	case LQ_DTYPE_BF16: {
		/* round to nearest even on the bits (a NaN: quieted and cut, as lq_bf16_encode), the result in
		 * the high half of each lane; the even element goes to the low half */
		const __m512i quiet = _mm512_set1_epi32(0x00400000), half = _mm512_set1_epi32(0x7fff);
		const __m512i one = _mm512_set1_epi32(1);
		__m512i ue = _mm512_castps_si512(e), uo = _mm512_castps_si512(o);
		__m512i re = _mm512_add_epi32(_mm512_add_epi32(ue, half), _mm512_and_si512(_mm512_srli_epi32(ue, 16), one));
		__m512i ro = _mm512_add_epi32(_mm512_add_epi32(uo, half), _mm512_and_si512(_mm512_srli_epi32(uo, 16), one));
		re = _mm512_mask_or_epi32(re, _mm512_cmp_ps_mask(e, e, _CMP_UNORD_Q), ue, quiet);
		ro = _mm512_mask_or_epi32(ro, _mm512_cmp_ps_mask(o, o, _CMP_UNORD_Q), uo, quiet);
		__m512i w = _mm512_or_si512(_mm512_srli_epi32(re, 16),
					    _mm512_and_si512(ro, _mm512_set1_epi32((int)0xffff0000u)));
		_mm512_storeu_si512((uint16_t *)out + i, w);
		break;
	}
	case LQ_DTYPE_F16: {
		__m512i he = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(e, _MM_FROUND_TO_NEAREST_INT));
		__m512i ho = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(o, _MM_FROUND_TO_NEAREST_INT));
		_mm512_storeu_si512((uint16_t *)out + i, _mm512_or_si512(he, _mm512_slli_epi32(ho, 16)));
		break;
	}
	default: {
		const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
		_mm512_storeu_ps((float *)out + i, _mm512_permutex2var_ps(e, lo, o));
		_mm512_storeu_ps((float *)out + i + 16,
				 _mm512_permutex2var_ps(e, _mm512_add_epi32(lo, _mm512_set1_epi32(8)), o));
		break;
	}
	}
}

void lq_dequantize_range_avx512(const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
				int32_t blocksize, int64_t b0, int64_t b1, lq_dtype dtype, void *out)
{
	const __m512 table = _mm512_loadu_ps(lq_code_table(qtype));
	for (int64_t b = b0; b < b1; b++) {
		int64_t i0 = b * blocksize;
		if (i0 + blocksize > n) {
			lq_dequantize_range_scalar(packed, absmax, n, qtype, blocksize, b, b + 1, dtype, out);
			continue;
		}
		const float s = lq_ftz(absmax[b]);
		const __m512 scale = _mm512_set1_ps(s);
		/* every nonzero code value is at least 2^-8 in magnitude: a product can be subnormal only for a
		 * scale below 2^-118 (or a NaN scale, which the flush leaves alone) */
		const bool flush = !(fabsf(s) >= 0x1p-100f);
		for (int64_t i = i0; i < i0 + blocksize; i += 32) {
			__m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(packed + i / 2)));
			__m512 e = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table), scale);
			__m512 o = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_and_si512(v, _mm512_set1_epi32(15)), table),
						 scale);
			if (flush)
				e = ftz16(e), o = ftz16(o);
			store32(out, dtype, i, e, o);
		}
	}
}

#endif /* __x86_64__ */

#if defined(__x86_64__)
/* lq_dynamic_code of sixteen values that are not NaN, by the cells of step_cells.c (lq_dynamic_cell: 64 a
 * binade of |v| from 2^-22, mirrored for v < 0): one gather of the cell's word, one compare. */
static inline __m512i dynamic_codes16(__m512 v, const lq_step_table *t)
{
	const int32_t half = LQ_DYNAMIC_CELLS / 2;
	const __m512i a = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff));
	__m512i p = _mm512_srli_epi32(_mm512_sub_epi32(_mm512_max_epu32(a, _mm512_set1_epi32(0x34800000)),
						       _mm512_set1_epi32(0x34800000)), 17);
	p = _mm512_min_epu32(p, _mm512_set1_epi32(half - 1));
	const __m512i c = _mm512_mask_sub_epi32(_mm512_add_epi32(p, _mm512_set1_epi32(half)), _mm512_movepi32_mask(_mm512_castps_si512(v)),
						_mm512_set1_epi32(half - 1), p);
	const __m512i w = _mm512_i32gather_epi32(c, t->word, 4);
	/* the low 17 bits of v, inverted for v < 0 */
	const __m512i low = _mm512_ternarylogic_epi32(_mm512_castps_si512(v), _mm512_srai_epi32(_mm512_castps_si512(v), 31),
						      _mm512_set1_epi32(0x1ffff), 0x28); /* (a ^ b) & c */
	const __m512i base = _mm512_srli_epi32(w, 18);
	const __mmask16 up = _mm512_cmpge_epu32_mask(low, _mm512_and_si512(w, _mm512_set1_epi32(0x3ffff)));
	return _mm512_mask_add_epi32(base, up, base, _mm512_set1_epi32(1));
}

void lq_double_quant_block_avx512(const float *absmax, int64_t nblocks, float offset, int64_t k, uint8_t *absmax_q,
				  float *nested_absmax)
{
	const int64_t j0 = k * LQ_NESTED_BLOCKSIZE, j1 = j0 + LQ_NESTED_BLOCKSIZE;
	if (j1 > nblocks) { /* the partial last */
		lq_double_quant_block(absmax, nblocks, offset, k, absmax_q, nested_absmax);
		return;
	}
	/* c = absmax - offset (IEEE, no flushing), the maximum of |c| flushed: as the reference */
	const __m512 off = _mm512_set1_ps(offset);
	__m512i m = _mm512_setzero_si512();
	for (int64_t j = j0; j < j1; j += 16) {
		__m512i a = _mm512_castps_si512(_mm512_sub_ps(_mm512_loadu_ps(absmax + j), off));
		m = _mm512_max_epu32(m, _mm512_and_si512(a, _mm512_set1_epi32(0x7fffffff)));
	}
	float rcp;
	const lq_step_table *t = lq_double_quant_block_begin(absmax, nblocks, offset, k, _mm512_reduce_max_epu32(m),
							     absmax_q, nested_absmax, &rcp);
	if (!t)
		return;
	const __m512 r = _mm512_set1_ps(rcp);
	for (int64_t j = j0; j < j1; j += 16) {
		__m512 c = _mm512_sub_ps(_mm512_loadu_ps(absmax + j), off);
		__m512 v = ftz16(_mm512_mul_ps(ftz16(c), r));
		_mm_storeu_si128((__m128i *)(absmax_q + j), _mm512_cvtepi32_epi8(dynamic_codes16(v, t)));
	}
}
#endif
