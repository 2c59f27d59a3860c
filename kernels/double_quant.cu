// double_quant.cu: see double_quant.cuh. One thread per constant, one thread block per block of 256.
#include "double_quant.cuh"

namespace lq {

__global__ void __launch_bounds__(256) double_quant_kernel(const float *__restrict__ absmax, int64_t nblocks,
							   float offset, uint8_t *__restrict__ absmax_q,
							   float *__restrict__ nested, const float *__restrict__ map)
{
	__shared__ float s_map[256];
	__shared__ float s_max[8];
	s_map[threadIdx.x] = map[threadIdx.x];
	const int64_t j = (int64_t)blockIdx.x * 256 + threadIdx.x;
	const bool live = j < nblocks;
	// torch's subtraction: IEEE, no flushing; then bitsandbytes' kernel, with fast math
	const float c = live ? sub_ieee(absmax[j], offset) : 0.0f;
	float m = abs_ftz(c);
	for (int off = 16; off > 0; off >>= 1)
		m = max_ftz(m, __shfl_xor_sync(0xffffffffu, m, off));
	if ((threadIdx.x & 31) == 0)
		s_max[threadIdx.x / 32] = m;
	__syncthreads();
	m = s_max[0];
	for (int w = 1; w < 8; w++)
		m = max_ftz(m, s_max[w]);
	if (threadIdx.x == 0)
		nested[blockIdx.x] = m;
	if (live)
		absmax_q[j] = (uint8_t)dynamic_code(mul_ftz(c, rcp_approx_ftz(m)), s_map);
}

cudaError_t double_quant_launch(const float *absmax, int64_t nblocks, float offset, uint8_t *absmax_q,
				float *nested_absmax, const float *d_map, cudaStream_t stream)
{
	if (nblocks <= 0)
		return cudaSuccess;
	const unsigned grid = (unsigned)((nblocks + 255) / 256);
	double_quant_kernel<<<grid, 256, 0, stream>>>(absmax, nblocks, offset, absmax_q, nested_absmax, d_map);
	return cudaGetLastError();
}

} // namespace lq
