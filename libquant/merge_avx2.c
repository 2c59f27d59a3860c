/*
 * merge_avx2.c: the delta rows of merge.c eight columns at a time with AVX2 and FMA3: each column is
 * the same sequence of fused multiply-adds over k as the scalar reference, so the results are equal.
 * Built with -mavx2 -mfma and called only when the CPU has both.
 */
#include <math.h>

#include "lq_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

void lq_delta_row_avx2(const lq_lora *lora, const float *a, const float *b, const float *bt, int64_t rows,
		       int64_t cols, int64_t row, float *out)
{
	const int64_t r = lora->rank;
	const __m256 s = _mm256_set1_ps(lora->scaling);
	int64_t j = 0;
	if (lora->layout == LQ_LORA_ROWS) {
		const float *brow = b + row * r;
		for (; j + 8 <= cols; j += 8) {
			__m256 acc = _mm256_setzero_ps();
			for (int64_t k = 0; k < r; k++)
				acc = _mm256_fmadd_ps(_mm256_set1_ps(brow[k]), _mm256_loadu_ps(a + k * cols + j), acc);
			_mm256_storeu_ps(out + j, _mm256_mul_ps(acc, s));
		}
		for (; j < cols; j++) {
			float acc = 0.0f;
			for (int64_t k = 0; k < r; k++)
				acc = fmaf(brow[k], a[k * cols + j], acc);
			out[j] = acc * lora->scaling;
		}
	} else {
		/* bt is B transposed, [rank, cols], so that consecutive columns are consecutive in memory */
		for (; j + 8 <= cols; j += 8) {
			__m256 acc = _mm256_setzero_ps();
			for (int64_t k = 0; k < r; k++)
				acc = _mm256_fmadd_ps(_mm256_loadu_ps(bt + k * cols + j), _mm256_set1_ps(a[k * rows + row]), acc);
			_mm256_storeu_ps(out + j, _mm256_mul_ps(acc, s));
		}
		for (; j < cols; j++) {
			float acc = 0.0f;
			for (int64_t k = 0; k < r; k++)
				acc = fmaf(bt[k * cols + j], a[k * rows + row], acc);
			out[j] = acc * lora->scaling;
		}
	}
}
#endif
