// dequantize.cu: see dequantize.cuh. One thread makes 16 elements from 8 bytes of codes.
#include "dequantize.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace lq {

constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v)
{
	return v;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v)
{
	return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v)
{
	return __float2bfloat16_rn(v);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) dequantize_kernel(const uint8_t *__restrict__ packed,
							      const float *__restrict__ absmax, int64_t count,
							      int blocksize, T *__restrict__ out, tables tab, lq_qtype qtype)
{
	__shared__ float s_code[16];
	if (threadIdx.x < 16)
		s_code[threadIdx.x] = tab.code[qtype][threadIdx.x];
	__syncthreads();
	const int64_t e = ((int64_t)blockIdx.x * kThreads + threadIdx.x) * 16;
	if (e >= count)
		return;
	const float scale = absmax[e / blocksize];
	uint2 raw;
	if (e + 16 <= count) {
		raw = *reinterpret_cast<const uint2 *>(packed + e / 2);
	} else {
		uint8_t b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		for (int j = 0; j < 8 && e + 2 * j < count; j++)
			b[j] = packed[e / 2 + j];
		raw = make_uint2(b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24,
				 b[4] | b[5] << 8 | b[6] << 16 | (uint32_t)b[7] << 24);
	}
	alignas(16) T v[16];
#pragma unroll
	for (int k = 0; k < 16; k++) {
		uint32_t word = k < 8 ? raw.x : raw.y;
		uint32_t byte = word >> (8 * ((k / 2) % 4));
		uint32_t c = (k % 2 ? byte : byte >> 4) & 15u;
		v[k] = from_f32<T>(mul_ftz(s_code[c], scale));
	}
	if (e + 16 <= count) {
		constexpr int kVec = 16 / sizeof(T);
		uint4 *dst = reinterpret_cast<uint4 *>(out + e);
#pragma unroll
		for (int i = 0; i < 16 / kVec; i++)
			dst[i] = reinterpret_cast<const uint4 *>(v)[i];
	} else {
		for (int k = 0; k < 16 && e + k < count; k++)
			out[e + k] = v[k];
	}
}

cudaError_t dequantize_launch(const uint8_t *packed, const float *absmax, int64_t count, lq_qtype qtype, int blocksize,
			      lq_dtype dtype, void *out, const tables *t, cudaStream_t stream)
{
	if (count <= 0)
		return cudaSuccess;
	const unsigned grid = (unsigned)(((count + 15) / 16 + kThreads - 1) / kThreads);
	if (qtype != LQ_QTYPE_NF4 && qtype != LQ_QTYPE_FP4)
		return cudaErrorInvalidValue; // a 4-bit type whose codes the tables do not hold
	switch (dtype) {
	case LQ_DTYPE_F32:
		dequantize_kernel<float><<<grid, kThreads, 0, stream>>>(packed, absmax, count, blocksize,
								      static_cast<float *>(out), *t, qtype);
		break;
	case LQ_DTYPE_F16:
		dequantize_kernel<__half><<<grid, kThreads, 0, stream>>>(packed, absmax, count, blocksize,
								       static_cast<__half *>(out), *t, qtype);
		break;
	case LQ_DTYPE_BF16:
		dequantize_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(packed, absmax, count, blocksize,
									      static_cast<__nv_bfloat16 *>(out), *t,
									      qtype);
		break;
	default:
		return cudaErrorInvalidValue;
	}
	return cudaGetLastError();
}

__global__ void dequantize_absmax_kernel(const uint8_t *__restrict__ q, const float *__restrict__ nested, float offset,
					 int64_t nblocks, float *__restrict__ absmax, const float *__restrict__ map)
{
	const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (j < nblocks)
		absmax[j] = add_ieee(mul_ftz(map[q[j]], nested[j / 256]), offset);
}

cudaError_t dequantize_absmax_launch(const uint8_t *q, const float *nested, float offset, int64_t nblocks,
				     float *absmax, const float *d_map, cudaStream_t stream)
{
	if (nblocks <= 0)
		return cudaSuccess;
	dequantize_absmax_kernel<<<(unsigned)((nblocks + 255) / 256), 256, 0, stream>>>(q, nested, offset, nblocks,
											   absmax, d_map);
	return cudaGetLastError();
}

} // namespace lq
