// quantize_nf4_bf16.cuh: the bf16 to NF4 kernel of quantize_nf4_bf16.cu: its launch, and the arithmetic of
// one thread's 32 elements, written once for the device and the host (bench_gpu --verify-tables runs it on
// the CPU against the reference, libquant/quant4_ref.c).
#pragma once

#include <cstdint>
#include <cstring>
#include <cuda_runtime.h>

#include "quant4_device.cuh"

// #pragma unroll in code the host compiler sees too
#ifdef __CUDA_ARCH__
#define LQ_UNROLL _Pragma("unroll")
#else
#define LQ_UNROLL
#endif

namespace lq {

// quantize_launch for bf16 x and NF4 codes, where quantize_nf4_bf16_suits: 0 < count < 2^31, a valid block
// size, and x and packed 16-byte aligned (any other call: cudaErrorInvalidValue).
bool quantize_nf4_bf16_suits(const void *x, int64_t count, int blocksize, const uint8_t *packed);
cudaError_t quantize_nf4_bf16_launch(const void *x, int64_t count, int blocksize, uint8_t *packed, float *absmax,
				     unsigned long long *bad, const tables *t, cudaStream_t stream);

// float32 of the bf16 in the low (k even) or high half of w: its bits, shifted
__host__ __device__ __forceinline__ float bf16_half(uint32_t w, int k)
{
	const uint32_t u = k % 2 == 0 ? w << 16 : w & 0xffff0000u;
#ifdef __CUDA_ARCH__
	return __uint_as_float(u);
#else
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
#endif
}

// The largest |x| of 32 bf16 (element 2i in the low half of w[i]) as float32 bits, two at a time: |x| is
// x & 0x7fff, and non-negative bf16 bit patterns order like their values (NaN above infinity above every
// finite value), as the float32 bits the general kernel compares are the bf16 bits shifted left by 16.
// Three words an instruction on sm_90 (VIMNMX3.U16x2).
__host__ __device__ __forceinline__ uint32_t bf16x32_max_abs_bits(const uint32_t w[16])
{
	uint32_t h = 0;
LQ_UNROLL
	for (int i = 0; i < 16; i += 2)
		h = __vimax3_u16x2(h, w[i] & 0x7fff7fffu, w[i + 1] & 0x7fff7fffu);
	const uint32_t lo = h << 16, hi = h & 0xffff0000u;
	return lo > hi ? lo : hi;
}

// One byte-word of codes: the 8 elements of w[0..3] times r (mul.ftz), coded by `code` (the code in its
// top 4 bits, as nf4_code_cell gives it), element 2j in the high nibble of byte j, bytes little-endian:
// the nibbles from the top are elements 6, 7, 4, 5, 2, 3, 0, 1.
// (`code` is host code in the host's tests: nv_exec_check_disable lets the template call either.)
#pragma nv_exec_check_disable
template <typename Code>
__host__ __device__ __forceinline__ uint32_t nf4_pack8(const uint32_t w[4], float r, Code code)
{
	uint32_t word = 0;
LQ_UNROLL
	for (int k = 0; k < 8; k++) {
		const int j = 6 - 2 * (k / 2) + k % 2;
		word = pack_nibble(word, code(mul_ftz(bf16_half(w[j / 2], j), r)));
	}
	return word;
}

} // namespace lq
