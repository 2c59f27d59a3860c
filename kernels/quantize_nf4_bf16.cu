// quantize_nf4_bf16.cu: quantize.cu's kernel for bf16 to NF4, the weights' common case, in fewer
// instructions per element (bench/gpu.md: the general kernel is issue-bound, not memory-bound), with the
// same bytes: the same products (mul.ftz by rcp.approx.ftz of the same absmax) and the same codes.
//   - One thread takes 32 elements (four 16-byte loads, one 16-byte store), so the per-thread work (the
//     block maximum's shuffles, the absmax store, the indices) is spread over twice as many elements, and
//     the block size enters as a shift, not a division.
//   - The block maximum of |x| on the bf16 bits, two per instruction (bf16x32_max_abs_bits).
//   - The code by nf4_code_cell (quant4_device.cuh): fma, and-or, one 8-byte shared load (no bank
//     conflicts: a copy of the table for each lane of a half-warp, 8 KB), multiply-add, and a funnel shift
//     that packs it, instead of fma, convert, byte load, address, threshold load, compare, select, add, and
//     the shifts and ors of the packing (nf4_pack8).
// nf4_code_cell needs |y| <= 1.96 and no NaN. y = x * (1 / absmax) is within 1 + 2^-22 of zero when the
// absmax is a finite normal float (rcp.approx's error is below 2^-23); a block whose absmax is 0 (every
// element zero or subnormal: y is NaN, 0 * inf) or not finite (y is 0 or NaN) takes nf4_code, the binary
// search the tables are checked against, with the same products.
#include "quantize_nf4_bf16.cuh"

namespace lq {

namespace {

// what the kernel reads of `tables`, so that its parameters are 0.6 KB, not the whole 2 KB
struct cell_args {
	uint32_t cell[LQ_NF4_ZCELLS][2];
	float thresholds[16];
};

constexpr int kThreads = 256;
constexpr int kPerThread = 32; // 8192 elements a thread block: a whole number of blocks of any size up to 4096

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
		m = bf16x32_max_abs_bits(w);
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
		const auto code = [&](float y) { return nf4_code_cell(y, s_rows, lane8); };
#pragma unroll
		for (int o = 0; o < kPerThread / 8; o++)
			out[o] = nf4_pack8(w + 4 * o, r, code);
	} else {
		const auto code = [&](float y) { return nf4_code(y, s_thr) << 28; };
#pragma unroll
		for (int o = 0; o < kPerThread / 8; o++)
			out[o] = nf4_pack8(w + 4 * o, r, code);
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
