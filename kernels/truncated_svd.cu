// truncated_svd.cu: the truncated SVD (truncated_svd.cuh) by cuSOLVER, in double precision, as
// libquant/svd.c by LAPACK.
//
// The routine is cusolverDnXgesvd (QR iteration on the bidiagonal form: LAPACK's dgesvd algorithm), jobs
// 'S' (the thin factors only), in double precision on the float32 matrix, as svd.c's dgesdd: backward
// stable, so its singular values agree with LAPACK's to double rounding and its leading singular vectors
// as far as the gaps between singular values allow, which is what makes the GPU's B·A and singular
// values meet the CPU's within float32 rounding. The others were set aside: gesvdj (Jacobi) costs several
// O(n³) sweeps on the thousands-square deltas here and is slower than gesvd past a few hundred; gesvdp
// (polar decomposition) is faster but documented not to deliver orthonormal vectors for singular values
// near zero, and a combined delta is exactly rank-deficient (at most the sum of the adapters' ranks);
// Xgesvdr (randomized) is approximate by design, its error growing with the spectrum's tail, which
// TIES and magnitude pruning make heavy. gesvd needs at least as many rows as columns: a wide matrix is
// decomposed as its transpose, which is the row-major matrix as it lies in memory read column-major.
#include "truncated_svd.cuh"

#include <cstdio>
#include <cstdlib>

namespace lq {

namespace {

// The buffers of one SVD, freed whatever happens.
struct buffers {
	double *x = nullptr, *hs = nullptr, *hu = nullptr, *hvt = nullptr;
	void *hwork = nullptr;
	double *dx = nullptr, *ds = nullptr, *du = nullptr, *dvt = nullptr;
	void *dwork = nullptr;
	int *dinfo = nullptr;
	~buffers()
	{
		free(x), free(hs), free(hu), free(hvt), free(hwork);
		cudaFree(dx), cudaFree(ds), cudaFree(du), cudaFree(dvt), cudaFree(dwork), cudaFree(dinfo);
	}
};

} // namespace

lq_status svd_truncate(svd_state **state, cudaStream_t stream, const float *m, int64_t rows, int64_t cols,
		       int64_t rank, float *b, float *a, float *s, char *msg, size_t msg_size)
{
	lq_status rs = svd_ready(state, stream, msg, msg_size);
	if (rs != LQ_OK)
		return rs;
	svd_state *st = *state;

	// X = M (rows >= cols) or M transposed (wide): mx >= nx, column-major
	const bool wide = cols > rows;
	const int64_t mx = wide ? cols : rows, nx = wide ? rows : cols, mn = nx;
	const size_t nel = (size_t)rows * (size_t)cols, d = sizeof(double);
	buffers f;
	f.x = static_cast<double *>(malloc(nel * d));
	f.hs = static_cast<double *>(malloc((size_t)rank * d));
	f.hu = static_cast<double *>(malloc((size_t)mx * (size_t)rank * d));
	f.hvt = static_cast<double *>(malloc((size_t)nx * (size_t)rank * d));
	if (!f.x || !f.hs || !f.hu || !f.hvt) {
		snprintf(msg, msg_size, "out of memory");
		return LQ_ERR_NOMEM;
	}
	if (wide)
		for (size_t i = 0; i < nel; i++)
			f.x[i] = (double)m[i];
	else
		for (int64_t i = 0; i < rows; i++)
			for (int64_t j = 0; j < cols; j++)
				f.x[i + j * rows] = (double)m[i * cols + j];
	SVD_CUDA(cudaMalloc(&f.dx, nel * d), "cudaMalloc");
	SVD_CUDA(cudaMalloc(&f.ds, (size_t)mn * d), "cudaMalloc");
	SVD_CUDA(cudaMalloc(&f.du, (size_t)mx * (size_t)mn * d), "cudaMalloc");
	SVD_CUDA(cudaMalloc(&f.dvt, (size_t)mn * (size_t)nx * d), "cudaMalloc");
	SVD_CUDA(cudaMalloc(&f.dinfo, sizeof *f.dinfo), "cudaMalloc");
	size_t dsize = 0, hsize = 0;
	SVD_SOLVER(g_api.gesvd_buffer_size(st->handle, st->params, 'S', 'S', mx, nx, CUDA_R_64F, f.dx, mx, CUDA_R_64F, f.ds,
					   CUDA_R_64F, f.du, mx, CUDA_R_64F, f.dvt, mn, CUDA_R_64F, &dsize, &hsize),
		   "cusolverDnXgesvd_bufferSize");
	SVD_CUDA(cudaMalloc(&f.dwork, dsize ? dsize : 1), "cudaMalloc");
	if (hsize && !(f.hwork = malloc(hsize))) {
		snprintf(msg, msg_size, "out of memory");
		return LQ_ERR_NOMEM;
	}
	SVD_CUDA(cudaMemcpyAsync(f.dx, f.x, nel * d, cudaMemcpyHostToDevice, stream), "copying to the device");
	SVD_SOLVER(g_api.gesvd(st->handle, st->params, 'S', 'S', mx, nx, CUDA_R_64F, f.dx, mx, CUDA_R_64F, f.ds, CUDA_R_64F,
			       f.du, mx, CUDA_R_64F, f.dvt, mn, CUDA_R_64F, f.dwork, dsize, f.hwork, hsize, f.dinfo),
		   "cusolverDnXgesvd");
	// the first rank singular values, columns of U (contiguous) and rows of VT (a strided copy: hvt[j][k])
	int info = 0;
	SVD_CUDA(cudaMemcpyAsync(f.hs, f.ds, (size_t)rank * d, cudaMemcpyDeviceToHost, stream), "copying from the device");
	SVD_CUDA(cudaMemcpyAsync(f.hu, f.du, (size_t)mx * (size_t)rank * d, cudaMemcpyDeviceToHost, stream),
		 "copying from the device");
	SVD_CUDA(cudaMemcpy2DAsync(f.hvt, (size_t)rank * d, f.dvt, (size_t)mn * d, (size_t)rank * d, (size_t)nx,
				   cudaMemcpyDeviceToHost, stream),
		 "copying from the device");
	SVD_CUDA(cudaMemcpyAsync(&info, f.dinfo, sizeof info, cudaMemcpyDeviceToHost, stream), "copying from the device");
	SVD_CUDA(cudaStreamSynchronize(stream), "cusolverDnXgesvd");
	if (info != 0) {
		snprintf(msg, msg_size, "svd: cuSOLVER's gesvd %s (info %d)", info > 0 ? "did not converge" : "refused an argument",
			 info);
		return info > 0 ? LQ_ERR_UNSUPPORTED : LQ_ERR_DEVICE;
	}
	// M = U S Vh; wide: M = VT_X^T S U_X^T, so U[i][k] = hvt[i][k] and Vh[k][j] = hu[j + k * cols]
	for (int64_t i = 0; i < rows; i++)
		for (int64_t k = 0; k < rank; k++)
			b[i * rank + k] = (float)((wide ? f.hvt[i * rank + k] : f.hu[i + k * rows]) * f.hs[k]);
	for (int64_t k = 0; k < rank; k++)
		for (int64_t j = 0; j < cols; j++)
			a[k * cols + j] = (float)(wide ? f.hu[j + k * cols] : f.hvt[j * rank + k]);
	for (int64_t k = 0; s && k < rank; k++)
		s[k] = (float)f.hs[k];
	return LQ_OK;
}

} // namespace lq
