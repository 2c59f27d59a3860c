// stats.cu: the kernel of stats.cuh. One thread sums one piece in element order with explicit IEEE
// operations (no contraction into fused multiply-adds), as libquant/stats.c does on the CPU, so that
// the pieces' sums are the same bits; the host adds the pieces in order.
#include "stats.cuh"

#include <cuda_fp16.h>

namespace lq {

namespace {

// an element as float32, exactly (half and bfloat16 widen without rounding)
__device__ __forceinline__ float load(const void *p, lq_dtype dtype, int64_t i)
{
	if (dtype == LQ_DTYPE_F32)
		return static_cast<const float *>(p)[i];
	const uint16_t h = static_cast<const uint16_t *>(p)[i];
	if (dtype == LQ_DTYPE_BF16)
		return __uint_as_float((uint32_t)h << 16);
	return __half2float(__ushort_as_half(h));
}

__global__ void error_pieces_kernel(const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype, int64_t count,
				    int64_t first, lq_error_sums *pieces, int64_t npieces)
{
	const int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
	if (p >= npieces)
		return;
	const int64_t i0 = p * LQ_STATS_PIECE, i1 = i0 + LQ_STATS_PIECE < count ? i0 + LQ_STATS_PIECE : count;
	lq_error_sums s = {};
	s.max_abs_err_index = -1;
	for (int64_t i = i0; i < i1; i++) {
		const float xf = load(x, x_dtype, i), rf = load(ref, ref_dtype, i);
		s.differ += __float_as_uint(xf) != __float_as_uint(rf);
		if (!isfinite(xf) || !isfinite(rf)) {
			s.nonfinite++;
			continue;
		}
		const double xv = xf, rv = rf, e = __dsub_rn(xv, rv);
		s.elements++;
		s.sum_err2 = __dadd_rn(s.sum_err2, __dmul_rn(e, e));
		s.sum_ref2 = __dadd_rn(s.sum_ref2, __dmul_rn(rv, rv));
		s.sum_x2 = __dadd_rn(s.sum_x2, __dmul_rn(xv, xv));
		s.dot = __dadd_rn(s.dot, __dmul_rn(xv, rv));
		const double a = fabs(e);
		if (a > s.max_abs_err || s.max_abs_err_index < 0) {
			s.max_abs_err = a;
			s.max_abs_err_index = first + i;
		}
	}
	pieces[p] = s;
}

} // namespace

cudaError_t error_pieces_launch(const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype, int64_t count,
				int64_t first, lq_error_sums *pieces, cudaStream_t stream)
{
	const int64_t npieces = (count + LQ_STATS_PIECE - 1) / LQ_STATS_PIECE;
	const int threads = 128;
	error_pieces_kernel<<<(unsigned)((npieces + threads - 1) / threads), threads, 0, stream>>>(x, x_dtype, ref, ref_dtype,
												   count, first, pieces, npieces);
	return cudaGetLastError();
}

} // namespace lq
