// merge.cuh: LoRA merges on the GPU, the same floating-point steps as libquant/merge.c so that the bytes
// are the CPU's: delta = fused multiply-adds over k in order, times scaling; W rounded after each adapter;
// DoRA's row norm replayed in torch's order (libquant/torch_norm.h, the same code) by one thread per row,
// DoRA's column factors found by the CPU before the merge.
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

#include "libquant.h"
#include "torch_norm.h"

namespace lq {

// One adapter for a chunk of rows [row0, row0 + nrows) of W [rows, cols]. The delta of element (i, j) is
// sum over k of y(i, k) * x(k, j): x is [rank, cols] (A for LQ_LORA_ROWS, B transposed for
// LQ_LORA_TRANSPOSED); y(i, k) is B[i * rank + k] (ROWS) or A[k * rows + i] (TRANSPOSED).
struct merge_lora {
	int transposed;
	int rank;
	float scaling;
	int round_delta;
	const float *x;
	const float *y;
	const float *magnitude;  // [rows] or null (DoRA on rows)
	const float *col_factor; // [cols] or null (DoRA on columns: magnitude / norm of each column)
};

// The largest rank the kernel takes (its rows of y live in shared memory); larger ones stay on the CPU.
constexpr int kMergeMaxRank = 1024;

// w[nrows * cols] (float32) from `in` (of in_dtype), rounded to `wtype`
// when round_input (a dequantized 4-bit base), as merge.c loads it.
cudaError_t merge_load(const void *in, lq_dtype in_dtype, int round_input, lq_dtype wtype, int64_t n, float *w,
		       cudaStream_t stream);

// One adapter applied to w in place: w = wtype(w + delta) (DoRA: scaled by magnitude / row norm, or by
// the column's factor, first); the float32 sum kept unrounded when keep_unrounded. v is scratch of
// nrows * cols floats, factor of nrows (DoRA on rows only); plan orders the row norms.
cudaError_t merge_apply(float *w, float *v, float *factor, const merge_lora &l, int64_t rows, int64_t cols,
			int64_t row0, int64_t nrows, lq_dtype wtype, int keep_unrounded, const lq_torch_norm_plan &plan,
			cudaStream_t stream);

// out = out_dtype(w) (float32 copied as is); *bad (set to ~0 by the caller) becomes the smallest index of an
// element of out that is NaN or infinite, as the CPU finds it (libquant/dtype.c lq_first_nonfinite).
cudaError_t merge_store(const float *w, int64_t n, lq_dtype out_dtype, void *out, unsigned long long *bad,
			cudaStream_t stream);

} // namespace lq
