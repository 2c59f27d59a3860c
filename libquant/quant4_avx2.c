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

/* The largest of eight signed 32-bit integers. */
static inline int32_t hmax_epi32(__m256i v)
{
	__m128i m = _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4e));
	m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0xb1));
	return _mm_cvtsi128_si32(m);
}

/* A 16-entry float table (two vectors) at eight int32 indices 0..15. */
static inline __m256 lookup16(__m256 lo, __m256 hi, __m256i idx)
{
	__m256 a = _mm256_permutevar8x32_ps(lo, idx);
	__m256 b = _mm256_permutevar8x32_ps(hi, idx);
	return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

/* NF4 codes of eight products: the number of thresholds each lies strictly above, found by a binary
 * search over the 15 sorted thresholds t0..t14 (NaN compares false at every step: code 0). Step one
 * compares with t7; step two with t3 or t11 (a blend); steps three and four with one of four, then one of
 * eight thresholds (a permute by the code so far). */
static inline __m256i nf4_codes8(__m256 y, __m256 odd4, __m256 even8)
{
	const float *t = lq_nf4_thresholds;
	__m256 gt = _mm256_cmp_ps(y, _mm256_set1_ps(t[7]), _CMP_GT_OQ);
	__m256i c = _mm256_and_si256(_mm256_castps_si256(gt), _mm256_set1_epi32(8));
	__m256 th = _mm256_blendv_ps(_mm256_set1_ps(t[3]), _mm256_set1_ps(t[11]), gt);
	gt = _mm256_cmp_ps(y, th, _CMP_GT_OQ);
	c = _mm256_add_epi32(c, _mm256_and_si256(_mm256_castps_si256(gt), _mm256_set1_epi32(4)));
	th = _mm256_permutevar8x32_ps(odd4, _mm256_srli_epi32(c, 2)); /* t1, t5, t9, t13 */
	gt = _mm256_cmp_ps(y, th, _CMP_GT_OQ);
	c = _mm256_add_epi32(c, _mm256_and_si256(_mm256_castps_si256(gt), _mm256_set1_epi32(2)));
	th = _mm256_permutevar8x32_ps(even8, _mm256_srli_epi32(c, 1)); /* t0, t2, ..., t14 */
	gt = _mm256_cmp_ps(y, th, _CMP_GT_OQ);
	return _mm256_add_epi32(c, _mm256_and_si256(_mm256_castps_si256(gt), _mm256_set1_epi32(1)));
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

/* The codes of eight elements. With no subnormal input in the block the flushes are skipped where they
 * cannot change a code: a subnormal product is within 2^-126 of zero, which NF4 codes as 7 whatever its
 * sign; FP4 still flushes the product, since a tiny negative product and a flushed -0.0 differ in sign. */
static inline __m256i codes8(__m256 x, __m256 r, lq_qtype qtype, bool tiny_inputs, __m256 odd4, __m256 even8)
{
	if (tiny_inputs)
		x = ftz8(x);
	__m256 y = _mm256_mul_ps(x, r);
	if (qtype == LQ_QTYPE_FP4)
		return fp4_codes8(ftz8(y));
	return nf4_codes8(y, odd4, even8);
}

int64_t lq_quantize_range_avx2(const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype, int32_t blocksize,
			       int64_t b0, int64_t b1, uint8_t *packed, float *absmax)
{
	int64_t bad = -1;
	/* the thresholds of the last two search steps */
	const float *t = lq_nf4_thresholds;
	const __m256 odd4 = _mm256_setr_ps(t[1], t[5], t[9], t[13], t[13], t[13], t[13], t[13]);
	const __m256 even8 = _mm256_setr_ps(t[0], t[2], t[4], t[6], t[8], t[10], t[12], t[14]);
	for (int64_t b = b0; b < b1; b++) {
		int64_t i0 = b * blocksize;
		if (i0 + blocksize > n) {
			/* the partial last block: the reference does the same arithmetic one element at a time */
			int64_t e = lq_quantize_range_scalar(src, dtype, n, qtype, blocksize, b, b + 1, packed, absmax);
			if (bad < 0)
				bad = e;
			continue;
		}
		/* The block maximum of |x|: a subnormal is the maximum only when every element is subnormal or
		 * zero, so flushing the maximum equals flushing every element first. */
		__m256i m0 = _mm256_setzero_si256(), m1 = _mm256_setzero_si256();
		__m256i t0 = _mm256_set1_epi32(-1), t1 = _mm256_set1_epi32(-1);
		const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), one = _mm256_set1_epi32(1);
		for (int64_t i = i0; i < i0 + blocksize; i += 16) {
			__m256i a0 = _mm256_and_si256(_mm256_castps_si256(load8(src, dtype, i)), abs_mask);
			__m256i a1 = _mm256_and_si256(_mm256_castps_si256(load8(src, dtype, i + 8)), abs_mask);
			/* non-negative floats order like their bits, NaN and infinity above every finite value */
			m0 = _mm256_max_epi32(m0, a0);
			m1 = _mm256_max_epi32(m1, a1);
			/* the smallest nonzero magnitude: bits - 1 as unsigned puts zero last */
			t0 = _mm256_min_epu32(t0, _mm256_sub_epi32(a0, one));
			t1 = _mm256_min_epu32(t1, _mm256_sub_epi32(a1, one));
		}
		uint32_t maxbits = (uint32_t)hmax_epi32(_mm256_max_epi32(m0, m1));
		if (maxbits >= 0x7f800000u) {
			int64_t e = lq_quantize_range_scalar(src, dtype, n, qtype, blocksize, b, b + 1, packed, absmax);
			if (bad < 0)
				bad = e;
			continue;
		}
		__m256i tmin = _mm256_min_epu32(t0, t1);
		tmin = _mm256_min_epu32(tmin, _mm256_shuffle_epi32(tmin, 0x4e));
		tmin = _mm256_min_epu32(tmin, _mm256_shuffle_epi32(tmin, 0xb1));
		uint32_t lo = (uint32_t)_mm256_extract_epi32(tmin, 0), hi = (uint32_t)_mm256_extract_epi32(tmin, 4);
		bool tiny_inputs = (lo < hi ? lo : hi) < 0x007fffffu; /* a nonzero subnormal */
		/* a subnormal is the block's maximum only when every element is subnormal or zero, so flushing the
		 * maximum is flushing every element first */
		float amax = lq_ftz(lq_f32_from_bits(maxbits));
		absmax[b] = amax;
		__m256 r = _mm256_set1_ps(lq_rcp_approx(amax));
		for (int64_t i = i0; i < i0 + blocksize; i += 32) {
			__m256i c0 = codes8(load8(src, dtype, i), r, qtype, tiny_inputs, odd4, even8);
			__m256i c1 = codes8(load8(src, dtype, i + 8), r, qtype, tiny_inputs, odd4, even8);
			__m256i c2 = codes8(load8(src, dtype, i + 16), r, qtype, tiny_inputs, odd4, even8);
			__m256i c3 = codes8(load8(src, dtype, i + 24), r, qtype, tiny_inputs, odd4, even8);
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
		/* round to nearest even on the bits; a NaN (a NaN scale's product) is quieted and cut, as
		 * lq_bf16_encode does, not rounded: that could carry into the exponent or the sign */
		__m256i u = _mm256_castps_si256(v);
		__m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
		__m256i rounded = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
		__m256i quiet = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
		u = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(quiet),
							 _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
		u = _mm256_srli_epi32(u, 16);
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

/* lq_dynamic_code of eight values that are not NaN, by the cells of step_cells.c (lq_dynamic_cell: 64 a
 * binade of |v| from 2^-22, mirrored for v < 0): one gather of the cell's word, one compare. As the
 * AVX-512 kernel's dynamic_codes16, eight at a time. */
static inline __m256i dynamic_codes8(__m256 v, const lq_step_table *t)
{
	const int32_t half = LQ_DYNAMIC_CELLS / 2;
	const __m256i bits = _mm256_castps_si256(v), neg = _mm256_srai_epi32(bits, 31);
	const __m256i a = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
	__m256i p = _mm256_srli_epi32(_mm256_sub_epi32(_mm256_max_epu32(a, _mm256_set1_epi32(0x34800000)),
						       _mm256_set1_epi32(0x34800000)), 17);
	p = _mm256_min_epu32(p, _mm256_set1_epi32(half - 1));
	const __m256i c = _mm256_blendv_epi8(_mm256_add_epi32(p, _mm256_set1_epi32(half)),
					     _mm256_sub_epi32(_mm256_set1_epi32(half - 1), p), neg);
	const __m256i w = _mm256_i32gather_epi32((const int *)t->word, c, 4);
	/* the low 17 bits of v, inverted for v < 0, against the cell's step (at most 2^17): both below 2^31,
	 * so the signed compare orders them */
	const __m256i low = _mm256_and_si256(_mm256_xor_si256(bits, neg), _mm256_set1_epi32(0x1ffff));
	const __m256i below = _mm256_cmpgt_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x3ffff)), low);
	return _mm256_add_epi32(_mm256_srli_epi32(w, 18), _mm256_add_epi32(below, _mm256_set1_epi32(1)));
}

void lq_double_quant_block_avx2(const float *absmax, int64_t nblocks, float offset, int64_t k, uint8_t *absmax_q,
				float *nested_absmax)
{
	const int64_t j0 = k * LQ_NESTED_BLOCKSIZE, j1 = j0 + LQ_NESTED_BLOCKSIZE;
	if (j1 > nblocks) { /* the partial last */
		lq_double_quant_block(absmax, nblocks, offset, k, absmax_q, nested_absmax);
		return;
	}
	/* c = absmax - offset (IEEE, no flushing), the maximum of |c| flushed: as the reference */
	const __m256 off = _mm256_set1_ps(offset);
	__m256i m = _mm256_setzero_si256();
	for (int64_t j = j0; j < j1; j += 8) {
		const __m256i a = _mm256_castps_si256(_mm256_sub_ps(_mm256_loadu_ps(absmax + j), off));
		m = _mm256_max_epu32(m, _mm256_and_si256(a, _mm256_set1_epi32(0x7fffffff)));
	}
	float rcp; /* the maximum's bits are below 2^31: the signed maximum */
	const lq_step_table *t = lq_double_quant_block_begin(absmax, nblocks, offset, k, (uint32_t)hmax_epi32(m),
							     absmax_q, nested_absmax, &rcp);
	if (!t)
		return;
	const __m256 r = _mm256_set1_ps(rcp);
	for (int64_t j = j0; j < j1; j += 8) {
		const __m256 c = _mm256_sub_ps(_mm256_loadu_ps(absmax + j), off);
		const __m256i codes = dynamic_codes8(ftz8(_mm256_mul_ps(ftz8(c), r)), t);
		/* eight codes (0..255) to eight bytes */
		const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(codes), _mm256_extracti128_si256(codes, 1));
		_mm_storel_epi64((__m128i *)(absmax_q + j), _mm_packus_epi16(w, w));
	}
}

#endif /* __x86_64__ */
