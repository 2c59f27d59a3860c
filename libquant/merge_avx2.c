/*
 * merge_avx2.c: the delta rows of merge.c with AVX2 and FMA3, up to LQ_MERGE_GROUP rows and sixteen
 * columns at a time: each column of A (or of B transposed) is loaded once for the group's rows, and
 * every element is still the same sequence of fused multiply-adds over k as the scalar reference, so
 * the results are equal. Built with -mavx2 -mfma and called only when the CPU has both.
 */
#include <math.h>

#include "lq_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

void lq_delta_rows_avx2(const lq_lora *lora, const float *a, const float *b, const float *bt, int64_t rows,
			int64_t cols, int64_t row, int nrows, float *out)
{
	const int64_t r = lora->rank;
	/* x [rank, cols]: the per-column operand; y(t, k) = y[t * ys_t + k * ys_k]: the per-row one, B's row
	 * (LQ_LORA_ROWS) or A's column (transposed) of row `row + t` */
	const bool by_rows = lora->layout == LQ_LORA_ROWS;
	const float *x = by_rows ? a : bt;
	const float *y = by_rows ? b + row * r : a + row;
	const int64_t ys_t = by_rows ? r : 1, ys_k = by_rows ? 1 : rows;
	const __m256 s = _mm256_set1_ps(lora->scaling);
	int64_t j = 0;
	if (nrows == LQ_MERGE_GROUP) {
		for (; j + 16 <= cols; j += 16) {
			__m256 acc[LQ_MERGE_GROUP][2];
			for (int t = 0; t < LQ_MERGE_GROUP; t++)
				acc[t][0] = acc[t][1] = _mm256_setzero_ps();
			for (int64_t k = 0; k < r; k++) {
				const __m256 x0 = _mm256_loadu_ps(x + k * cols + j), x1 = _mm256_loadu_ps(x + k * cols + j + 8);
				for (int t = 0; t < LQ_MERGE_GROUP; t++) {
					const __m256 yv = _mm256_set1_ps(y[t * ys_t + k * ys_k]);
					acc[t][0] = _mm256_fmadd_ps(yv, x0, acc[t][0]);
					acc[t][1] = _mm256_fmadd_ps(yv, x1, acc[t][1]);
				}
			}
			for (int t = 0; t < LQ_MERGE_GROUP; t++) {
				_mm256_storeu_ps(out + t * cols + j, _mm256_mul_ps(acc[t][0], s));
				_mm256_storeu_ps(out + t * cols + j + 8, _mm256_mul_ps(acc[t][1], s));
			}
		}
	}
	for (int t = 0; t < nrows; t++) {
		int64_t jj = j;
		for (; jj + 8 <= cols; jj += 8) {
			__m256 acc = _mm256_setzero_ps();
			for (int64_t k = 0; k < r; k++)
				acc = _mm256_fmadd_ps(_mm256_set1_ps(y[t * ys_t + k * ys_k]),
						      _mm256_loadu_ps(x + k * cols + jj), acc);
			_mm256_storeu_ps(out + t * cols + jj, _mm256_mul_ps(acc, s));
		}
		for (; jj < cols; jj++) {
			float acc = 0.0f;
			for (int64_t k = 0; k < r; k++)
				acc = fmaf(y[t * ys_t + k * ys_k], x[k * cols + jj], acc);
			out[t * cols + jj] = acc * lora->scaling;
		}
	}
}
#endif
