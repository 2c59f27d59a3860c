// stats.cuh: error statistics on the GPU, piece by piece as libquant/stats.c sums them.
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

#include "libquant.h"

namespace lq {

// pieces[p] = the sums of elements [p * LQ_STATS_PIECE, ...) of x against ref (count elements in all),
// each piece by one thread in element order, exactly as lq_error_piece; first is the tensor index of
// element 0.
// x and ref of types F32, F16 or BF16.
cudaError_t error_pieces_launch(const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype, int64_t count,
				int64_t first, lq_error_sums *pieces, cudaStream_t stream);

} // namespace lq
