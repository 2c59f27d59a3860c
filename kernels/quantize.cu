// quantize.cu: see quantize.cuh. One thread quantizes 16 consecutive elements (16-byte loads, one 8-byte
// store of codes); the threads of a block of `blocksize` elements find its absmax together (warp
// shuffles, and shared memory when a block spans warps).
#include "quantize.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace lq {

constexpr int kThreads = 256; // 4096 elements: a whole number of blocks of any size up to 4096
constexpr int kPerThread = 16;

template <typename T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<float>(float v)
{
	return v;
}
template <>
__device__ __forceinline__ float to_f32<__half>(__half v)
{
	return __half2float(v);
}
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v)
{
	return __bfloat162float(v);
}

// Loads 16 elements from x + e as float32: vector loads when all are in range, else one by one with
// zeros past the end (a zero never raises a block's absmax and is what pads an odd last byte).
template <typename T>
__device__ __forceinline__ void load16(const T *__restrict__ x, int64_t e, int64_t count, float v[kPerThread])
{
	if (e + kPerThread <= count) {
		constexpr int kVec = 16 / sizeof(T); // elements per 16-byte load
		const uint4 *p = reinterpret_cast<const uint4 *>(x + e);
#pragma unroll
		for (int i = 0; i < kPerThread / kVec; i++) {
			uint4 raw = __ldg(p + i);
			const T *r = reinterpret_cast<const T *>(&raw);
#pragma unroll
			for (int k = 0; k < kVec; k++)
				v[i * kVec + k] = to_f32<T>(r[k]);
		}
	} else {
#pragma unroll
		for (int k = 0; k < kPerThread; k++)
			v[k] = e + k < count ? to_f32<T>(x[e + k]) : 0.0f;
	}
}

template <typename T, lq_qtype QTYPE>
__global__ void __launch_bounds__(kThreads) quantize_kernel(const T *__restrict__ x, int64_t count, int blocksize,
							    uint8_t *__restrict__ packed, float *__restrict__ absmax,
							    unsigned long long *bad, tables tab)
{
	// the code tables, where lanes can index them freely: 32 words of cell counts (one bank each) and
	// 16 thresholds
	__shared__ uint32_t s_lut[33]; // read as bytes
	__shared__ float s_thr[16];
	__shared__ uint32_t s_warp_max[kThreads / 32];
	if (threadIdx.x < 33)
		s_lut[threadIdx.x] = QTYPE == LQ_QTYPE_NF4 ? tab.nf4_lut[threadIdx.x] : (threadIdx.x < 17 ? tab.fp4_lut[threadIdx.x] : 0);
	const uint8_t *lut = reinterpret_cast<const uint8_t *>(s_lut);
	if (threadIdx.x < 16)
		s_thr[threadIdx.x] = QTYPE == LQ_QTYPE_NF4 ? tab.nf4_thresholds[threadIdx.x]
						: (threadIdx.x < 8 ? tab.fp4_thresholds[threadIdx.x] : 0.0f);
	__syncthreads();

	// a launch covers fewer than 2^31 elements (quantize_launch checks), so 32-bit indices do
	const uint32_t t = blockIdx.x * kThreads + threadIdx.x;
	const uint32_t e = t * kPerThread;
	const bool live = e < count;
	float v[kPerThread];
	// The block maximum of |x| on the bits: non-negative floats order like their bit patterns, NaN and
	// infinity above every finite value. A subnormal is the maximum only when every element is subnormal
	// or zero, so flushing the maximum equals flushing every element first (abs.ftz and max.ftz).
	uint32_t m = 0;
	if (live) {
		load16<T>(x, e, count, v);
#pragma unroll
		for (int k = 0; k < kPerThread; k++)
			m = max(m, __float_as_uint(v[k]) & 0x7fffffffu);
		if (m >= 0x7f800000u) { // a NaN or infinity: report the first one
			for (int k = kPerThread - 1; k >= 0; k--)
				if (nonfinite(v[k]))
					m = (uint32_t)k | 0x80000000u;
			atomicMin(bad, (unsigned long long)(e + (m & 0xffu)));
			m = 0x7f800000u;
		}
	}
	// the block's maximum: groups of `group` consecutive threads (a power of two) share one block
	const int group = blocksize / kPerThread;
	const int lanes = group < 32 ? group : 32;
	for (int off = 1; off < lanes; off <<= 1)
		m = max(m, __shfl_xor_sync(0xffffffffu, m, off));
	if (group > 32) {
		const int warp = threadIdx.x / 32, warps = group / 32;
		if ((threadIdx.x & 31) == 0)
			s_warp_max[warp] = m;
		__syncthreads();
		const int w0 = warp / warps * warps;
		m = s_warp_max[w0];
		for (int w = 1; w < warps; w++)
			m = max(m, s_warp_max[w0 + w]);
	}
	if (!live)
		return;
	const float amax = m < 0x00800000u ? 0.0f : __uint_as_float(m);
	if (t % (uint32_t)group == 0)
		absmax[e / (uint32_t)blocksize] = amax;
	const float r = rcp_approx_ftz(amax);
	uint32_t code[kPerThread];
#pragma unroll
	for (int k = 0; k < kPerThread; k++) {
		float y = mul_ftz(v[k], r);
		code[k] = QTYPE == LQ_QTYPE_NF4 ? nf4_code_lut(y, lut, s_thr) : fp4_code_lut(y, lut, s_thr, tab.fp4_by_rank);
	}
	// element 2j in the high nibble of byte j; bytes little-endian in the two words
	uint32_t word[2];
#pragma unroll
	for (int w = 0; w < 2; w++) {
		const uint32_t *c = code + 8 * w;
		word[w] = ((c[0] << 4) | c[1]) | ((c[2] << 4) | c[3]) << 8 | ((c[4] << 4) | c[5]) << 16 |
			  ((c[6] << 4) | c[7]) << 24;
	}
	const uint32_t lo = word[0], hi = word[1];
	const uint32_t byte0 = e / 2;
	const uint32_t nbytes = (uint32_t)((count + 1) / 2);
	if (byte0 + 8 <= nbytes) {
		*reinterpret_cast<uint2 *>(packed + byte0) = make_uint2(lo, hi);
	} else {
		for (uint32_t j = 0; j < 8 && byte0 + j < nbytes; j++)
			packed[byte0 + j] = (uint8_t)((j < 4 ? lo : hi) >> (8 * (j % 4)));
	}
}

template <typename T>
static cudaError_t launch(const void *x, int64_t count, lq_qtype qtype, int blocksize, uint8_t *packed, float *absmax,
			  unsigned long long *bad, const tables *t, cudaStream_t stream)
{
	const int64_t threads = (count + kPerThread - 1) / kPerThread;
	const unsigned grid = (unsigned)((threads + kThreads - 1) / kThreads);
	switch (qtype) {
	case LQ_QTYPE_NF4:
		quantize_kernel<T, LQ_QTYPE_NF4><<<grid, kThreads, 0, stream>>>(static_cast<const T *>(x), count, blocksize,
									      packed, absmax, bad, *t);
		return cudaSuccess;
	case LQ_QTYPE_FP4:
		quantize_kernel<T, LQ_QTYPE_FP4><<<grid, kThreads, 0, stream>>>(static_cast<const T *>(x), count, blocksize,
									      packed, absmax, bad, *t);
		return cudaSuccess;
	}
	return cudaErrorInvalidValue; // a 4-bit type these kernels do not have
}

cudaError_t quantize_launch(const void *x, lq_dtype dtype, int64_t count, lq_qtype qtype, int blocksize, uint8_t *packed,
			    float *absmax, unsigned long long *bad, const tables *t, cudaStream_t stream)
{
	// The bf16 NF4 kernel (quantize_nf4_bf16.cu, the same bytes by construction in about half the
	// instructions) is not taken here until a GPU has checked its bytes against the CPU's
	// (tests/gpu/quant_speed.sh): no GPU was lent since it was written. bench_gpu times and checks it.
	return quantize_launch_general(x, dtype, count, qtype, blocksize, packed, absmax, bad, t, stream);
}

cudaError_t quantize_launch_general(const void *x, lq_dtype dtype, int64_t count, lq_qtype qtype, int blocksize,
				    uint8_t *packed, float *absmax, unsigned long long *bad, const tables *t,
				    cudaStream_t stream)
{
	if (count <= 0)
		return cudaSuccess;
	if (count >= ((int64_t)1 << 31))
		return cudaErrorInvalidValue; // callers split larger ranges
	cudaError_t e;
	switch (dtype) {
	case LQ_DTYPE_F32:
		e = launch<float>(x, count, qtype, blocksize, packed, absmax, bad, t, stream);
		break;
	case LQ_DTYPE_F16:
		e = launch<__half>(x, count, qtype, blocksize, packed, absmax, bad, t, stream);
		break;
	case LQ_DTYPE_BF16:
		e = launch<__nv_bfloat16>(x, count, qtype, blocksize, packed, absmax, bad, t, stream);
		break;
	default:
		e = cudaErrorInvalidValue;
	}
	return e != cudaSuccess ? e : cudaGetLastError();
}

} // namespace lq
