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

// Several tensors' double quantizations in one launch (a layer's, for one launch instead of one each;
// bench_gpu): job i is double_quant_launch(absmax, nblocks, offset, absmax_q, nested), with the same bytes.
// At most kDoubleQuantBatch jobs with nblocks > 0 (more: cudaErrorInvalidValue; none: nothing to launch).
struct double_quant_job {
	const float *absmax;
	int64_t nblocks;
	float offset;
	uint8_t *absmax_q;
	float *nested;
};
constexpr int kDoubleQuantBatch = 16;
struct double_quant_batch {
	int n;
	uint32_t first[kDoubleQuantBatch]; // job i's first thread block
	double_quant_job job[kDoubleQuantBatch];
};
cudaError_t double_quant_batch_launch(const double_quant_job *jobs, int n, const float *d_map, cudaStream_t stream);

} // namespace lq
