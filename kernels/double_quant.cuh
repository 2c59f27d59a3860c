// double_quant.cuh: double quantization of the block constants on the GPU (bitsandbytes'
// quantize_blockwise of absmax - offset, in blocks of 256, with its signed dynamic 8-bit map).
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

#include "quant4_device.cuh"

namespace lq {

// absmax_q[j] = the 8-bit code of (absmax[j] - offset) / nested_absmax[j / 256], j < nblocks;
// nested_absmax[k] = max |absmax[j] - offset| over block k. The offset (torch.mean of absmax) is computed
// by the caller; d_map is the dynamic map in device memory. Asynchronous on `stream`.
cudaError_t double_quant_launch(const float *absmax, int64_t nblocks, float offset, uint8_t *absmax_q,
				float *nested_absmax, const float *d_map, cudaStream_t stream);

} // namespace lq
