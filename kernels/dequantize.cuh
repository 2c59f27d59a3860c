// dequantize.cuh: blockwise 4-bit dequantization on the GPU (bitsandbytes' kDequantizeBlockwise).
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

#include "quant4_device.cuh"

namespace lq {

// out[i] = dtype(code[nibble i] * absmax[i / blocksize]) for i < count (a range starting at a block
// boundary): packed holds ceil(count/2) bytes; dtype F32, F16 or BF16. Async on `stream`.
cudaError_t dequantize_launch(const uint8_t *packed, const float *absmax, int64_t count, lq_qtype qtype, int blocksize,
			      lq_dtype dtype, void *out, const tables *t, cudaStream_t stream);

// absmax[j] = float32(float32(map[q[j]] * nested[j / 256]) + offset): the constants of a
// double-quantized tensor back to float32 (bitsandbytes' dequantize_blockwise, then torch's addition).
cudaError_t dequantize_absmax_launch(const uint8_t *q, const float *nested, float offset, int64_t nblocks,
				     float *absmax, const float *d_map, cudaStream_t stream);

} // namespace lq
