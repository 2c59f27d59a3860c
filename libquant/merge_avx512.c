/*
 * merge_avx512.c: the delta rows of merge.c with AVX-512 (F, VL), as a register-tiled rank-r update: a
 * tile of up to eight rows by 32 columns is sixteen accumulators that stay in registers while k runs over
 * the rank, each step two vectors of A (or of B transposed) and one broadcast per row. The column tiles go
 * outermost, so a tile's vectors of A, loaded from memory for its first rows, are in the L1 cache for
 * the other rows of the group (LQ_MERGE_GROUP): A is read from memory once per group, not once per row.
 * Every element is still the reference's sequence of fused multiply-adds over k from k = 0, then the
 * product by the scaling, so the results are equal (merge.c); a tail of fewer than 32 columns runs the
 * same vectors under a mask. Built with AVX512_FLAGS and called only when the CPU has them.
 */
#include "lq_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TILE_ROWS 8

/* Rows 0 .. nrows - 1 (nrows <= TILE_ROWS, a constant where inlined) of the tile at column j of nv
 * vectors (1 or 2), the lanes of mask m of the last one: x [rank, cols] the per-column operand, y(t, k) =
 * y[t * ys_t + k * ys_k] the per-row one. */
static inline __attribute__((always_inline)) void tile(const float *x, const float *y, int64_t ys_t, int64_t ys_k,
							 int64_t r, int64_t cols, int64_t j, int nv, __mmask16 m,
							 int nrows, __m512 s, float *out)
{
	__m512 acc[TILE_ROWS][2];
	for (int t = 0; t < nrows; t++)
		acc[t][0] = acc[t][1] = _mm512_setzero_ps();
	for (int64_t k = 0; k < r; k++) {
		const float *xk = x + k * cols + j;
		__m512 x0, x1 = _mm512_setzero_ps();
		if (nv == 2) {
			x0 = _mm512_loadu_ps(xk);
			x1 = _mm512_maskz_loadu_ps(m, xk + 16);
		} else {
			x0 = _mm512_maskz_loadu_ps(m, xk);
		}
		const float *yk = y + k * ys_k;
		for (int t = 0; t < nrows; t++) {
			const __m512 yv = _mm512_set1_ps(yk[t * ys_t]);
			acc[t][0] = _mm512_fmadd_ps(yv, x0, acc[t][0]);
			if (nv == 2)
				acc[t][1] = _mm512_fmadd_ps(yv, x1, acc[t][1]);
		}
	}
	for (int t = 0; t < nrows; t++) {
		float *o = out + t * cols + j;
		if (nv == 2) {
			_mm512_storeu_ps(o, _mm512_mul_ps(acc[t][0], s));
			_mm512_mask_storeu_ps(o + 16, m, _mm512_mul_ps(acc[t][1], s));
		} else {
			_mm512_mask_storeu_ps(o, m, _mm512_mul_ps(acc[t][0], s));
		}
	}
}

/* The tile for any nrows, each count with its own unrolled copy. */
static inline __attribute__((always_inline)) void tile_rows(const float *x, const float *y, int64_t ys_t,
							      int64_t ys_k, int64_t r, int64_t cols, int64_t j,
							      int nv, __mmask16 m, int nrows, __m512 s, float *out)
{
	switch (nrows) {
#define ROWS(n)                                                            \
	case n:                                                            \
		tile(x, y, ys_t, ys_k, r, cols, j, nv, m, n, s, out);      \
		break;
		ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8)
#undef ROWS
	}
}

void lq_delta_rows_avx512(const lq_lora *lora, const float *a, const float *b, const float *bt, int64_t rows,
			  int64_t cols, int64_t row, int nrows, float *out)
{
	const int64_t r = lora->rank;
	/* x [rank, cols]: the per-column operand; y: the per-row one, B's row (LQ_LORA_ROWS) or A's column
	 * (transposed) of row `row + t` */
	const bool by_rows = lora->layout == LQ_LORA_ROWS;
	const float *x = by_rows ? a : bt;
	const float *y = by_rows ? b + row * r : a + row;
	const int64_t ys_t = by_rows ? r : 1, ys_k = by_rows ? 1 : rows;
	const __m512 s = _mm512_set1_ps(lora->scaling);
	for (int64_t j = 0; j < cols; j += 32) {
		const int64_t w = cols - j < 32 ? cols - j : 32;
		const int nv = w > 16 ? 2 : 1;
		const __mmask16 m = (__mmask16)(w % 16 ? (1u << (w % 16)) - 1 : 0xffffu);
		for (int t0 = 0; t0 < nrows; t0 += TILE_ROWS) {
			const int nt = nrows - t0 < TILE_ROWS ? nrows - t0 : TILE_ROWS;
			const float *yt = y + t0 * ys_t;
			float *ot = out + t0 * cols;
			if (nv == 2 && nt == TILE_ROWS)
				tile(x, yt, ys_t, ys_k, r, cols, j, 2, m, TILE_ROWS, s, ot); /* the common case */
			else if (nv == 2)
				tile_rows(x, yt, ys_t, ys_k, r, cols, j, 2, m, nt, s, ot);
			else
				tile_rows(x, yt, ys_t, ys_k, r, cols, j, 1, m, nt, s, ot);
		}
	}
}
#endif
