// cusolver_loader.cuh: cuSOLVER, loaded with dlopen on the first SVD (cusolver_loader.cu), and a device's
// handle of it: what the truncated SVD (truncated_svd.cu) and the thin SVD (thin_svd.cu) share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include "libquant.h"

namespace lq {

// The cuSOLVER functions the SVDs call, found in the library loaded.
struct cusolver_api {
	decltype(&cusolverDnCreate) create;
	decltype(&cusolverDnDestroy) destroy;
	decltype(&cusolverDnSetStream) set_stream;
	decltype(&cusolverDnCreateParams) create_params;
	decltype(&cusolverDnDestroyParams) destroy_params;
	decltype(&cusolverDnXgesvd_bufferSize) gesvd_buffer_size;
	decltype(&cusolverDnXgesvd) gesvd;
	decltype(&cusolverDnXgesvdp_bufferSize) gesvdp_buffer_size;
	decltype(&cusolverDnXgesvdp) gesvdp;
};

// The table, whose pointers are null until svd_ready has first returned LQ_OK.
extern cusolver_api g_api;

// A device's cuSOLVER state (its handle), made on the first SVD; nullptr until then.
struct svd_state {
	cusolverDnHandle_t handle;
	cusolverDnParams_t params;
};

// cuSOLVER loaded (on the first call of the process) and the device's handle made (on the first SVD,
// into *state), set to work on `stream`. LQ_ERR_UNSUPPORTED when the library cannot be loaded or lacks a
// function, LQ_ERR_DEVICE for a cuSOLVER failure, LQ_ERR_NOMEM; msg says which.
lq_status svd_ready(svd_state **state, cudaStream_t stream, char *msg, size_t msg_size);

// Frees the state (nullptr is a no-op).
void svd_free(svd_state *state);

// msg = the call `what` that failed and why (CUDA's words for e, cuSOLVER's status number); LQ_ERR_DEVICE.
lq_status cuda_fail(char *msg, size_t size, const char *what, cudaError_t e);
lq_status solver_fail(char *msg, size_t size, const char *what, cusolverStatus_t e);

// A CUDA or cuSOLVER call whose failure returns LQ_ERR_DEVICE from a function with msg and msg_size.
#define SVD_CUDA(call, what)                                                                           \
	do {                                                                                           \
		cudaError_t e_ = (call);                                                               \
		if (e_ != cudaSuccess)                                                                 \
			return cuda_fail(msg, msg_size, what, e_);                                     \
	} while (0)
#define SVD_SOLVER(call, what)                                                                         \
	do {                                                                                           \
		cusolverStatus_t e_ = (call);                                                          \
		if (e_ != CUSOLVER_STATUS_SUCCESS)                                                     \
			return solver_fail(msg, msg_size, what, e_);                                   \
	} while (0)

} // namespace lq
