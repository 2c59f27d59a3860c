// quantize_nf4_bf16.cu: quantize.cu's kernel for bf16 to NF4, the weights' common case, in fewer
// instructions per element (bench/gpu.md: the general kernel is issue-bound, not memory-bound), with the
// same bytes: the same products (mul.ftz by rcp.approx.ftz of the same absmax) and the same codes.
//   - One thread takes 32 elements (four 16-byte loads, one 16-byte store), so the per-thread work (the
//     block maximum's shuffles, the absmax store, the indices) is spread over twice as many elements, and
//     the block size enters as a shift, not a division.
//   - The block maximum of |x| on the bf16 bits, two per instruction: |x| is x & 0x7fff, and non-negative
//     bf16 bit patterns order like their values (NaN above infinity above every finite value), as the
//     float32 bits the general kernel compares are the bf16 bits shifted left by 16. Three words at a time
//     (max.u16x2 twice, one VIMNMX3 on sm_90).
//   - The code by nf4_code_cell (quant4_device.cuh): fma, and-or, one 8-byte shared load (no bank
//     conflicts: a copy of the table for each lane of a half-warp, 8 KB), multiply-add, and a funnel shift
//     that packs it, instead of fma, convert, byte load, address, threshold load, compare, select, add, and
//     the shifts and ors of the packing.
// nf4_code_cell needs |y| <= 1.96 and no NaN. y = x * (1 / absmax) is within 1 + 2^-22 of zero when the
// absmax is a finite normal float (rcp.approx's error is below 2^-23); a block whose absmax is 0 (every
// element zero or subnormal: y is NaN, 0 * inf) or not finite (y is 0 or NaN) takes nf4_code, the binary
// search the tables are checked against, with the same products.
#include "quantize.cuh"

namespace lq {

namespace {

// what the kernel reads of `tables`, so that its parameters are 0.6 KB, not the whole 2 KB
struct cell_args {
	uint32_t cell[LQ_NF4_ZCELLS][2];
	float thresholds[16];
};

constexpr int kThreads = 256;
constexpr int kPerThread = 32; // 8192 elements a thread block: a whole number of blocks of any size up to 4096

// max(a, b, c) of each 16-bit half
__device__ __forceinline__ uint32_t max3_u16x2(uint32_t a, uint32_t b, uint32_t c)
{
	return __vimax3_u16x2(a, b, c);
}

// float32 of the bf16 in the low (k even) or high half of w: its bits, shifted
__device__ __forceinline__ float bf16_half(uint32_t w, int k)
{
	return __uint_as_float(k % 2 == 0 ? w << 16 : w & 0xffff0000u);
}

__global__ void __launch_bounds__(kThreads) quantize_nf4_bf16_kernel(const uint16_t *__restrict__ x, uint32_t count,
								     int log2_blocksize, uint8_t *__restrict__ packed,
								     float *__restrict__ absmax,
								     unsigned long long *bad, cell_args tab)
{
	__shared__ uint2 s_rows[LQ_NF4_ZCELLS * 16];
	__shared__ float s_thr[16];
	__shared__ uint32_t s_warp_max[kThreads / 32];
	fill_cell_rows(s_rows, tab.cell);
	if (threadIdx.x < 16)
		s_thr[threadIdx.x] = tab.thresholds[threadIdx.x];
	__syncthreads();

	// a launch covers fewer than 2^31 elements (quantize_launch checks), so 32-bit indices do
	const uint32_t t = blockIdx.x * kThreads + threadIdx.x;
	const uint32_t e = t * kPerThread;
	const bool live = e < count;
	uint32_t w[kPerThread / 2]; // the bf16 pairs: element 2i in the low half of w[i]
	uint32_t m = 0;             // the thread's maximum of |x|, as float32 bits
	if (live) {
		if (e + kPerThread <= count) {
			const uint4 *p = reinterpret_cast<const uint4 *>(x + e);
#pragma unroll
			for (int i = 0; i < kPerThread / 8; i++) {
				const uint4 raw = __ldg(p + i);
				w[4 * i] = raw.x, w[4 * i + 1] = raw.y, w[4 * i + 2] = raw.z, w[4 * i + 3] = raw.w;
			}
		} else {
			// zeros past the end: a zero never raises a block's absmax and is what pads an odd last byte
#pragma unroll
			for (int i = 0; i < kPerThread / 2; i++) {
				const uint32_t lo = e + 2 * i < count ? x[e + 2 * i] : 0u;
				const uint32_t hi = e + 2 * i + 1 < count ? x[e + 2 * i + 1] : 0u;
				w[i] = lo | hi << 16;
			}
		}
		uint32_t h = 0;
#pragma unroll
		for (int i = 0; i < kPerThread / 2; i += 2)
			h = max3_u16x2(h, w[i] & 0x7fff7fffu, w[i + 1] & 0x7fff7fffu);
		m = max(h << 16, h & 0xffff0000u);
		if (m >= 0x7f800000u) { // a NaN or infinity: report the first one
#pragma unroll
			for (int k = kPerThread - 1; k >= 0; k--)
				if (nonfinite(bf16_half(w[k / 2], k)))
					m = (uint32_t)k | 0x80000000u;
			atomicMin(bad, (unsigned long long)(e + (m & 0xffu)));
			m = 0x7f800000u;
		}
	}
	// the block's maximum: groups of `group` consecutive threads (a power of two) share one block
	const int group = 1 << (log2_blocksize - 5);
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
		for (int j = 1; j < warps; j++)
			m = max(m, s_warp_max[w0 + j]);
	}
	if (!live)
		return;
	const float amax = m < 0x00800000u ? 0.0f : __uint_as_float(m);
	if ((t & (uint32_t)(group - 1)) == 0)
		absmax[e >> log2_blocksize] = amax;
	const float r = rcp_approx_ftz(amax);
	// element 2j in the high nibble of byte j; bytes little-endian in the words
	uint32_t out[kPerThread / 8];
	if (m - 0x00800000u < 0x7f000000u) { // absmax normal and finite: the cell table
		const uint32_t lane8 = threadIdx.x % 16 * 8;
#pragma unroll
		for (int o = 0; o < kPerThread / 8; o++) {
			// nibbles from the top: elements 6, 7, 4, 5, 2, 3, 0, 1 of the word's eight
			uint32_t word = 0;
#pragma unroll
			for (int k = 0; k < 8; k++) {
				const int j = 6 - 2 * (k / 2) + k % 2;
				word = pack_nibble(word, nf4_code_cell(mul_ftz(bf16_half(w[4 * o + j / 2], j), r), s_rows, lane8));
			}
			out[o] = word;
		}
	} else {
#pragma unroll
		for (int o = 0; o < kPerThread / 8; o++) {
			uint32_t word = 0;
#pragma unroll
			for (int k = 0; k < 8; k++) {
				const uint32_t c = nf4_code(mul_ftz(bf16_half(w[4 * o + k / 2], k), r), s_thr);
				word |= c << (k % 2 == 0 ? 8 * (k / 2) + 4 : 8 * (k / 2));
			}
			out[o] = word;
		}
	}
	const uint32_t byte0 = e / 2;
	const uint32_t nbytes = (count + 1) / 2;
	if (byte0 + kPerThread / 2 <= nbytes) {
		*reinterpret_cast<uint4 *>(packed + byte0) = make_uint4(out[0], out[1], out[2], out[3]);
	} else {
		for (uint32_t j = 0; j < kPerThread / 2 && byte0 + j < nbytes; j++)
			packed[byte0 + j] = (uint8_t)(out[j / 4] >> (8 * (j % 4)));
	}
}

} // namespace

bool quantize_nf4_bf16_suits(const void *x, int64_t count, int blocksize, const uint8_t *packed)
{
	return count > 0 && count < ((int64_t)1 << 31) && blocksize >= 32 && blocksize <= 4096 &&
	       (blocksize & (blocksize - 1)) == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)packed % 16 == 0;
}

cudaError_t quantize_nf4_bf16_launch(const void *x, int64_t count, int blocksize, uint8_t *packed, float *absmax,
				     unsigned long long *bad, const tables *t, cudaStream_t stream)
{
	if (!quantize_nf4_bf16_suits(x, count, blocksize, packed))
		return cudaErrorInvalidValue;
	int log2_blocksize = 0;
	while ((1 << log2_blocksize) < blocksize)
		log2_blocksize++;
	const int64_t threads = (count + kPerThread - 1) / kPerThread;
	const unsigned grid = (unsigned)((threads + kThreads - 1) / kThreads);
	cell_args args;
	memcpy(args.cell, t->nf4_cell, sizeof args.cell);
	memcpy(args.thresholds, t->nf4_thresholds, sizeof args.thresholds);
	quantize_nf4_bf16_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint16_t *>(x), (uint32_t)count,
								log2_blocksize, packed, absmax, bad, args);
	return cudaGetLastError();
}

} // namespace lq
