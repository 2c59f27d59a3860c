// thin_svd.cuh: loraextract's thin SVD on the GPU, by cuSOLVER (thin_svd.cu).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>

#include "cusolver_loader.cuh"
#include "libquant.h"

namespace lq {

// The thin SVD of m (rows x cols, row-major, double precision, host; read only, whatever the signature
// says) on the current device, on `stream`, as libquant/svd.c's lq_svd_thin by LAPACK: s[k], and the keep
// leading singular vectors, u[rows x keep] and vt[keep x cols] row-major, k = min(rows, cols), the only
// host memory it writes (besides cuSOLVER's host workspace, hsize bytes, which LQ_SVD_TRACE prints). By
// gesvdp, again by gesvd where gesvdp's result is not accurate (thin_svd.cu). LQ_ERR_UNSUPPORTED when
// cuSOLVER's library cannot be loaded or the SVD does not converge, LQ_ERR_DEVICE for a CUDA or cuSOLVER
// failure, LQ_ERR_ARG for an invalid LQ_SVD_GPU, LQ_ERR_NOMEM; msg says which.
lq_status svd_thin(svd_state **state, cudaStream_t stream, double *m, int64_t rows, int64_t cols, int64_t keep,
		   double *s, double *u, double *vt, char *msg, size_t msg_size);

} // namespace lq
