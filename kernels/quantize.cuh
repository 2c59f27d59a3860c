// quantize.cuh: blockwise 4-bit quantization on the GPU (bitsandbytes' kQuantizeBlockwise, exactly).
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

#include "quant4_device.cuh"
#include "quantize_nf4_bf16.cuh"

namespace lq {

// Quantizes elements [0, count) of x (a range of a tensor that starts at a block boundary; `tail` is
// true when the range ends at the tensor's end, so an odd count pads its last byte with the code of 0.0)
// into packed[0, ceil(count/2)) and absmax[0, ceil(count/blocksize)), for dtype F32, F16 or BF16 and
// qtype NF4 or FP4 (cudaErrorInvalidValue for any other). *bad receives the smallest index of a
// non-finite element (initialize it to all ones). Asynchronous on `stream`.
// The general kernel (quantize_launch_general) for now: the bf16 NF4 kernel (quantize_nf4_bf16_launch,
// the same bytes in fewer instructions) waits for its check on a GPU; bench_gpu times and checks one
// against the other.
cudaError_t quantize_launch(const void *x, lq_dtype dtype, int64_t count, lq_qtype qtype, int blocksize, uint8_t *packed,
			    float *absmax, unsigned long long *bad, const tables *t, cudaStream_t stream);
cudaError_t quantize_launch_general(const void *x, lq_dtype dtype, int64_t count, lq_qtype qtype, int blocksize,
				    uint8_t *packed, float *absmax, unsigned long long *bad, const tables *t,
				    cudaStream_t stream);

} // namespace lq
