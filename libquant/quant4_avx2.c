/*
 * quant4_avx2.c: the block kernels with AVX2 and F16C, eight elements per instruction. Built with
 * -mavx2 -mf16c and called only after cpu_kernels.c has seen both at run time. Same bytes as the
 * reference (quant4_ref.c): the same float32 operations in the same order, only eight at a time, and the
 * flush-to-zero of bitsandbytes' fast math done with explicit masks rather than the MXCSR, so that no
 * global state is touched.
 */
#include "lq_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Eight elements as float32. */
static inline __m256 load8(const void *src, lq_dtype dtype, int64_t i)
{
	switch (dtype) {
	case LQ_DTYPE_BF16: {
		__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)src + i));
		return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
	}
	case LQ_DTYPE_F16:
		return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)src + i)));
	default:
		return _mm256_loadu_ps((const float *)src + i);
	}
}

/* Lanes whose exponent field is zero (zero or subnormal), as an all-ones mask. */
static inline __m256 tiny_mask(__m256 x)
{
	__m256i bits = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7f800000));
	return _mm256_castsi256_ps(_mm256_cmpeq_epi32(bits, _mm256_setzero_si256()));
}

/* x with subnormals replaced by a zero of the same sign. */
static inline __m256 ftz8(__m256 x)
{
	return _mm256_blendv_ps(x, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)), tiny_mask(x));
}

static inline __m256 abs8(__m256 x)
{
	return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}

/* Lanes whose exponent field is all ones (NaN or infinity). */
static inline int nonfinite8(__m256 x)
{
	__m256i e = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7f800000));
	return _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(e, _mm256_set1_epi32(0x7f800000))));
}

static inline float hmax8(__m256 v)
{
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}

/* NF4 codes of eight products: the number of thresholds each lies strictly above (NaN: none, code 0). */
static inline __m256i nf4_codes8(__m256 y)
{
	__m256i acc = _mm256_setzero_si256();
	for (int t = 0; t < 15; t++) {
		__m256 gt = _mm256_cmp_ps(y, _mm256_set1_ps(lq_nf4_thresholds[t]), _CMP_GT_OQ);
		acc = _mm256_sub_epi32(acc, _mm256_castps_si256(gt));
	}
	return acc;
}

/* FP4 codes: sign bit 8 when y < 0 (so -0.0 is positive), magnitude code by rank of |y|. */
static inline __m256i fp4_codes8(__m256 y)
{
	__m256 a = abs8(y);
	__m256i rank = _mm256_setzero_si256();
	for (int t = 0; t < 7; t++) {
		__m256 gt = _mm256_cmp_ps(a, _mm256_set1_ps(lq_fp4_thresholds_sorted[t]), _CMP_GT_OQ);
		rank = _mm256_sub_epi32(rank, _mm256_castps_si256(gt));
	}
	const __m256i by_rank = _mm256_setr_epi32(lq_fp4_code_by_rank[0], lq_fp4_code_by_rank[1],
						  lq_fp4_code_by_rank[2], lq_fp4_code_by_rank[3],
						  lq_fp4_code_by_rank[4], lq_fp4_code_by_rank[5],
						  lq_fp4_code_by_rank[6], lq_fp4_code_by_rank[7]);
	__m256i code = _mm256_permutevar8x32_epi32(by_rank, rank);
	__m256 neg = _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_LT_OQ);
	return _mm256_or_si256(code, _mm256_and_si256(_mm256_castps_si256(neg), _mm256_set1_epi32(8)));
}

/* 32 codes (int32, elements 0..31 in c0..c3) to 16 bytes, element 2k in the high nibble of byte k. */
static inline __m128i pack_nibbles(__m256i c0, __m256i c1, __m256i c2, __m256i c3)
{
	/* packs works within 128-bit lanes: after both steps the 4-byte groups are in the order
	 * 0 2 4 6 | 1 3 5 7, which the permute puts back. */
	__m256i b = _mm256_packs_epi16(_mm256_packs_epi32(c0, c1), _mm256_packs_epi32(c2, c3));
	b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
	__m256i even = _mm256_and_si256(b, _mm256_set1_epi16(0x00ff));
	__m256i odd = _mm256_srli_epi16(b, 8);
	__m256i pairs = _mm256_or_si256(_mm256_slli_epi16(even, 4), odd);
	__m256i bytes = _mm256_packus_epi16(pairs, pairs);
	return _mm256_castsi256_si128(_mm256_permute4x64_epi64(bytes, 0x08));
}

static inline __m256i codes8(__m256 x, __m256 r, lq_qtype qtype)
{
	__m256 y = ftz8(_mm256_mul_ps(ftz8(x), r));
	return qtype == LQ_QTYPE_FP4 ? fp4_codes8(y) : nf4_codes8(y);
}

int64_t lq_quantize_range_avx2(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype, int32_t blocksize,
			       int64_t b0, int64_t b1, uint8_t *packed, float *absmax)
{
	int64_t bad = -1;
	for (int64_t b = b0; b < b1; b++) {
		int64_t i0 = b * blocksize;
		if (i0 + blocksize > n) {
			/* the partial last block: the reference does the same arithmetic one element at a time */
			int64_t e = lq_quantize_range_scalar(src, dtype, n, qtype, blocksize, b, b + 1, packed, absmax);
			if (bad < 0)
				bad = e;
			continue;
		}
		__m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
		int nonfinite = 0;
		for (int64_t i = i0; i < i0 + blocksize; i += 16) {
			__m256 x0 = load8(src, dtype, i), x1 = load8(src, dtype, i + 8);
			nonfinite |= nonfinite8(x0) | nonfinite8(x1);
			m0 = _mm256_max_ps(m0, ftz8(abs8(x0)));
			m1 = _mm256_max_ps(m1, ftz8(abs8(x1)));
		}
		if (nonfinite) {
			int64_t e = lq_quantize_range_scalar(src, dtype, n, qtype, blocksize, b, b + 1, packed, absmax);
			if (bad < 0)
				bad = e;
			continue;
		}
		float amax = hmax8(_mm256_max_ps(m0, m1));
		absmax[b] = amax;
		__m256 r = _mm256_set1_ps(lq_rcp_approx(amax));
		for (int64_t i = i0; i < i0 + blocksize; i += 32) {
			__m256i c0 = codes8(load8(src, dtype, i), r, qtype);
			__m256i c1 = codes8(load8(src, dtype, i + 8), r, qtype);
			__m256i c2 = codes8(load8(src, dtype, i + 16), r, qtype);
			__m256i c3 = codes8(load8(src, dtype, i + 24), r, qtype);
			_mm_storeu_si128((__m128i *)(packed + i / 2), pack_nibbles(c0, c1, c2, c3));
		}
	}
	return bad;
}

/* Eight float32 values to dtype at element i of out. */
static inline void store8(void *out, lq_dtype dtype, int64_t i, __m256 v)
{
	switch (dtype) {
	case LQ_DTYPE_BF16: {
		/* round to nearest even on the bits; the values are finite, so no NaN case */
		__m256i u = _mm256_castps_si256(v);
		__m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
		u = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
		__m256i h = _mm256_permute4x64_epi64(_mm256_packus_epi32(u, u), 0x08);
		_mm_storeu_si128((__m128i *)((uint16_t *)out + i), _mm256_castsi256_si128(h));
		break;
	}
	case LQ_DTYPE_F16:
		_mm_storeu_si128((__m128i *)((uint16_t *)out + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
		break;
	default:
		_mm256_storeu_ps((float *)out + i, v);
		break;
	}
}

/* The code table at eight int32 indices 0..15. */
static inline __m256 lookup16(__m256 lo, __m256 hi, __m256i idx)
{
	__m256 a = _mm256_permutevar8x32_ps(lo, idx);
	__m256 b = _mm256_permutevar8x32_ps(hi, idx);
	return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

void lq_dequantize_range_avx2(const uint8_t *packed, const float *absmax, int64_t n, lq_qtype qtype,
			      int32_t blocksize, int64_t b0, int64_t b1, lq_dtype dtype, void *out)
{
	const float *table = lq_code_table(qtype);
	const __m256 lo = _mm256_loadu_ps(table), hi = _mm256_loadu_ps(table + 8);
	for (int64_t b = b0; b < b1; b++) {
		int64_t i0 = b * blocksize;
		if (i0 + blocksize > n) {
			lq_dequantize_range_scalar(packed, absmax, n, qtype, blocksize, b, b + 1, dtype, out);
			continue;
		}
		const __m256 scale = ftz8(_mm256_set1_ps(absmax[b]));
		for (int64_t i = i0; i < i0 + blocksize; i += 32) {
			__m128i p = _mm_loadu_si128((const __m128i *)(packed + i / 2));
			__m128i high = _mm_and_si128(_mm_srli_epi16(p, 4), _mm_set1_epi8(0x0f));
			__m128i low = _mm_and_si128(p, _mm_set1_epi8(0x0f));
			__m128i e0 = _mm_unpacklo_epi8(high, low); /* elements 0..15 */
			__m128i e1 = _mm_unpackhi_epi8(high, low); /* elements 16..31 */
			__m128i parts[4] = {e0, _mm_srli_si128(e0, 8), e1, _mm_srli_si128(e1, 8)};
			for (int k = 0; k < 4; k++) {
				__m256 v = lookup16(lo, hi, _mm256_cvtepu8_epi32(parts[k]));
				store8(out, dtype, i + 8 * k, ftz8(_mm256_mul_ps(v, scale)));
			}
		}
	}
}

#endif /* __x86_64__ */
