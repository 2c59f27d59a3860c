/*
 * merge_avx2.c: the delta rows of merge.c with AVX2 and FMA3, as a register-tiled rank-r update: a tile
 * of up to four rows by sixteen columns is eight accumulators that stay in registers while k runs over the
 * rank. The column tiles go outermost, so a tile's vectors of A (or of B transposed), loaded from memory
 * for its first rows, are in the L1 cache for the other rows of the group (LQ_MERGE_GROUP): A is read
 * from memory once per group, not once per four rows. Every element is still the same sequence of fused
 * multiply-adds over k as the scalar reference, so the results are equal. Built with -mavx2 -mfma and
 * called only when the CPU has both.
 */
#include <math.h>

#include "lq_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TILE_ROWS 4

/* Rows 0 .. nrows - 1 (a constant where inlined) of the tile at column j, nv vectors of eight columns
 * (1 or 2): x [rank, cols] the per-column operand, y(t, k) = y[t * ys_t + k * ys_k] the per-row one. */
static inline __attribute__((always_inline)) void tile(const float *x, const float *y, int64_t ys_t, int64_t ys_k,
							 int64_t r, int64_t cols, int64_t j, int nv, int nrows, __m256 s,
							 float *out)
{
	__m256 acc[TILE_ROWS][2];
	for (int t = 0; t < nrows; t++)
		acc[t][0] = acc[t][1] = _mm256_setzero_ps();
	for (int64_t k = 0; k < r; k++) {
		const float *xk = x + k * cols + j;
		const __m256 x0 = _mm256_loadu_ps(xk), x1 = nv == 2 ? _mm256_loadu_ps(xk + 8) : x0;
		const float *yk = y + k * ys_k;
		for (int t = 0; t < nrows; t++) {
			const __m256 yv = _mm256_set1_ps(yk[t * ys_t]);
			acc[t][0] = _mm256_fmadd_ps(yv, x0, acc[t][0]);
			if (nv == 2)
				acc[t][1] = _mm256_fmadd_ps(yv, x1, acc[t][1]);
		}
	}
	for (int t = 0; t < nrows; t++) {
		_mm256_storeu_ps(out + t * cols + j, _mm256_mul_ps(acc[t][0], s));
		if (nv == 2)
			_mm256_storeu_ps(out + t * cols + j + 8, _mm256_mul_ps(acc[t][1], s));
	}
}

static inline __attribute__((always_inline)) void tile_rows(const float *x, const float *y, int64_t ys_t,
							      int64_t ys_k, int64_t r, int64_t cols, int64_t j,
							      int nv, int nrows, __m256 s, float *out)
{
	switch (nrows) {
	case 1:
		tile(x, y, ys_t, ys_k, r, cols, j, nv, 1, s, out);
		break;
	case 2:
		tile(x, y, ys_t, ys_k, r, cols, j, nv, 2, s, out);
		break;
	case 3:
		tile(x, y, ys_t, ys_k, r, cols, j, nv, 3, s, out);
		break;
	default:
		tile(x, y, ys_t, ys_k, r, cols, j, nv, 4, s, out);
		break;
	}
}

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
	for (; j + 8 <= cols; j += 16) {
		const int nv = j + 16 <= cols ? 2 : 1;
		for (int t0 = 0; t0 < nrows; t0 += TILE_ROWS) {
			const int nt = nrows - t0 < TILE_ROWS ? nrows - t0 : TILE_ROWS;
			if (nv == 2 && nt == TILE_ROWS)
				tile(x, y + t0 * ys_t, ys_t, ys_k, r, cols, j, 2, TILE_ROWS, s, out + t0 * cols);
			else if (nv == 2)
				tile_rows(x, y + t0 * ys_t, ys_t, ys_k, r, cols, j, 2, nt, s, out + t0 * cols);
			else
				tile_rows(x, y + t0 * ys_t, ys_t, ys_k, r, cols, j, 1, nt, s, out + t0 * cols);
		}
	}
	if (j > cols)
		j -= 8; /* the last step had one vector */
	for (int t = 0; t < nrows; t++)
		for (int64_t jj = j; jj < cols; jj++) {
			float acc = 0.0f;
			for (int64_t k = 0; k < r; k++)
				acc = fmaf(y[t * ys_t + k * ys_k], x[k * cols + jj], acc);
			out[t * cols + jj] = acc * lora->scaling;
		}
}
#endif
