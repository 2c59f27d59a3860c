// double_quant.cu: see double_quant.cuh. One thread per constant, one thread block per block of 256; the
// batch's thread blocks go through the same function.
#include "double_quant.cuh"

namespace lq {

// Block `k` of 256 constants (all threads of the thread block take part).
__device__ __forceinline__ void double_quant_block(const float *__restrict__ absmax, int64_t nblocks, float offset,
						   uint8_t *__restrict__ absmax_q, float *__restrict__ nested,
						   const float *s_map, float *s_max, int64_t k)
{
	const int64_t j = k * 256 + threadIdx.x;
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
		nested[k] = m;
	if (live)
		absmax_q[j] = (uint8_t)dynamic_code(mul_ftz(c, rcp_approx_ftz(m)), s_map);
}

__global__ void __launch_bounds__(256) double_quant_kernel(const float *__restrict__ absmax, int64_t nblocks,
							   float offset, uint8_t *__restrict__ absmax_q,
							   float *__restrict__ nested, const float *__restrict__ map)
{
	__shared__ float s_map[256];
	__shared__ float s_max[8];
	s_map[threadIdx.x] = map[threadIdx.x];
	double_quant_block(absmax, nblocks, offset, absmax_q, nested, s_map, s_max, blockIdx.x);
}

// Thread block b of the batch: the tensor whose range of blocks holds it (first[i] <= b < first[i + 1]).
__global__ void __launch_bounds__(256) double_quant_batch_kernel(double_quant_batch batch, const float *__restrict__ map)
{
	__shared__ float s_map[256];
	__shared__ float s_max[8];
	s_map[threadIdx.x] = map[threadIdx.x];
	int i = 0;
	while (i + 1 < batch.n && blockIdx.x >= batch.first[i + 1])
		i++;
	const double_quant_job &job = batch.job[i];
	double_quant_block(job.absmax, job.nblocks, job.offset, job.absmax_q, job.nested, s_map, s_max,
			   blockIdx.x - batch.first[i]);
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

cudaError_t double_quant_batch_launch(const double_quant_job *jobs, int n, const float *d_map, cudaStream_t stream)
{
	double_quant_batch batch = {};
	int64_t total = 0;
	for (int i = 0; i < n; i++) {
		if (jobs[i].nblocks <= 0)
			continue;
		if (batch.n == kDoubleQuantBatch)
			return cudaErrorInvalidValue;
		batch.first[batch.n] = (uint32_t)total;
		batch.job[batch.n++] = jobs[i];
		total += (jobs[i].nblocks + 255) / 256;
		if (total >= ((int64_t)1 << 31))
			return cudaErrorInvalidValue;
	}
	if (batch.n == 0)
		return cudaSuccess;
	double_quant_batch_kernel<<<(unsigned)total, 256, 0, stream>>>(batch, d_map);
	return cudaGetLastError();
}

} // namespace lq
