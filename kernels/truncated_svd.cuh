// truncated_svd.cuh: the truncated SVD of loramerge --combine's *_svd types on the GPU, by cuSOLVER
// (truncated_svd.cu).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>

#include "cusolver_loader.cuh"
#include "libquant.h"

namespace lq {

// The rank-`rank` factors of the SVD of m (rows x cols float32, row-major, host), computed in double
// precision on the current device, on `stream`: b[rows x rank] = float32(U[:, :rank] * S[:rank]),
// a[rank x cols] = float32(Vh[:rank, :]), s[rank] = float32(S[:rank]) (s may be nullptr), as libquant/svd.c
// rounds LAPACK's. LQ_ERR_UNSUPPORTED when cuSOLVER's library cannot be loaded or does not converge,
// LQ_ERR_DEVICE for a CUDA or cuSOLVER failure, LQ_ERR_NOMEM; msg says which.
lq_status svd_truncate(svd_state **state, cudaStream_t stream, const float *m, int64_t rows, int64_t cols,
		       int64_t rank, float *b, float *a, float *s, char *msg, size_t msg_size);

} // namespace lq
