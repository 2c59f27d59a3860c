// thin_svd.cu: loraextract's whole thin SVD (thin_svd.cuh) by cuSOLVER, double in and out, as
// libquant/svd.c's lq_svd_thin by LAPACK.
//
// The routine is cusolverDnXgesvdp, not the Xgesvd of loramerge --combine (truncated_svd.cu): the
// polar decomposition (QDWH, Halley's iteration made of QR factorizations and matrix products) and then
// cusolverDnXsyevd of the Hermitian factor, which NVIDIA's cuSOLVER documentation describes as much faster
// than Xgesvd's QR iteration; its work is in matrix products, where a GPU's double precision is fast,
// rather than in the bidiagonal QR's sequential sweeps. The same documentation warns that the polar
// decomposition may not deliver unitary factors for a singular or nearly singular matrix, and gesvdp
// reports an error estimate (h_err_sigma): beyond 1e-10 of the largest singular value (a fine-tune's
// delta is not singular, but an exactly low-rank one, a merged LoRA's, is), or when it does not converge,
// the matrix is decomposed again by Xgesvd, whose factors are orthonormal whatever the rank. The bound
// leaves room above the n eps sigma_1 (about 1e-12 at these widths) of any backward-stable SVD, gesvd's
// included, and is far below what loraextract's criterion notices (1e-4 relative of the optimum's error);
// the GPU check (tests/gpu/extract_gpu.sh) prints each SVD's estimate and which routine finished it.
// LQ_SVD_GPU=gesvd or gesvdp forces one (the GPU check compares them), LQ_SVD_TRACE=1 says on standard
// error which ran, its h_err_sigma and its time.
#include "thin_svd.cuh"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lq {

namespace {

// The device buffers of one thin SVD, freed whatever happens.
struct thin_buffers {
	double *dx = nullptr, *ds = nullptr, *du = nullptr, *dv = nullptr;
	void *dwork = nullptr, *hwork = nullptr;
	int *dinfo = nullptr;
	size_t dsize = 0, hsize = 0;
	~thin_buffers()
	{
		cudaFree(dx), cudaFree(ds), cudaFree(du), cudaFree(dv), cudaFree(dwork), cudaFree(dinfo);
		free(hwork);
	}
};

double seconds_since(std::chrono::steady_clock::time_point t0)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The process's peak and current resident memory in MiB (/proc/self/status), for LQ_SVD_TRACE.
void host_memory(long *hwm, long *rss)
{
	*hwm = *rss = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return;
	char line[128];
	while (fgets(line, sizeof line, f)) {
		long kb;
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			*hwm = kb / 1024;
		else if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			*rss = kb / 1024;
	}
	fclose(f);
}

// dst (column-major nc x nr, leading dimension ldd) = the transpose of src (column-major nr x nc, lds),
// through 32 x 32 tiles in shared memory: copies, exact.
__global__ void transpose_kernel(const double *src, int64_t lds, double *dst, int64_t ldd, int64_t nr, int64_t nc)
{
	__shared__ double tile[32][33];
	const int64_t i0 = (int64_t)blockIdx.x * 32, j0 = (int64_t)blockIdx.y * 32;
	for (int y = threadIdx.y; y < 32; y += blockDim.y) {
		const int64_t i = i0 + threadIdx.x, j = j0 + y;
		if (i < nr && j < nc)
			tile[y][threadIdx.x] = src[i + j * lds];
	}
	__syncthreads();
	for (int y = threadIdx.y; y < 32; y += blockDim.y) {
		const int64_t j = j0 + threadIdx.x, i = i0 + y;
		if (i < nr && j < nc)
			dst[j + i * ldd] = tile[threadIdx.x][y];
	}
}

cudaError_t transpose(const double *src, int64_t lds, double *dst, int64_t ldd, int64_t nr, int64_t nc,
		      cudaStream_t stream)
{
	const dim3 grid((unsigned)((nr + 31) / 32), (unsigned)((nc + 31) / 32)), block(32, 8);
	transpose_kernel<<<grid, block, 0, stream>>>(src, lds, dst, ldd, nr, nc);
	return cudaGetLastError();
}

} // namespace

// The workspaces grown to dsize bytes on the device (one at least: never a null pointer) and hsize on the
// host.
static lq_status grow(thin_buffers &f, size_t dsize, size_t hsize, char *msg, size_t msg_size)
{
	if (dsize > f.dsize || !f.dwork) {
		cudaFree(f.dwork);
		f.dwork = nullptr, f.dsize = 0;
		dsize = dsize ? dsize : 1;
		SVD_CUDA(cudaMalloc(&f.dwork, dsize), "cudaMalloc");
		f.dsize = dsize;
	}
	if (hsize > f.hsize) {
		free(f.hwork);
		f.hsize = 0;
		if (!(f.hwork = malloc(hsize))) {
			snprintf(msg, msg_size, "out of memory");
			return LQ_ERR_NOMEM;
		}
		f.hsize = hsize;
	}
	return LQ_OK;
}

lq_status svd_thin(svd_state **state, cudaStream_t stream, double *m, int64_t rows, int64_t cols, int64_t keep,
		   double *s, double *u, double *vt, char *msg, size_t msg_size)
{
	const char *force = getenv("LQ_SVD_GPU");
	if (force && *force && strcmp(force, "gesvd") != 0 && strcmp(force, "gesvdp") != 0) {
		snprintf(msg, msg_size, "LQ_SVD_GPU: '%.32s' is not gesvd or gesvdp", force);
		return LQ_ERR_ARG;
	}
	const bool only_gesvd = force && strcmp(force, "gesvd") == 0, only_gesvdp = force && strcmp(force, "gesvdp") == 0;
	const char *trace = getenv("LQ_SVD_TRACE");
	const bool tracing = trace && *trace && strcmp(trace, "0") != 0;
	lq_status rs = svd_ready(state, stream, msg, msg_size);
	if (rs != LQ_OK)
		return rs;
	svd_state *st = *state;
	// X, column-major mx x nx with mx >= nx: m itself read column-major (M transposed) when M is not tall,
	// else M, transposed on the device (m copied into du, transposed into dx): the host holds nothing but
	// m, s and the kept vectors (u rows x keep, vt keep x cols), and cuSOLVER's host workspace (hsize,
	// which LQ_SVD_TRACE prints with the process's peak resident memory). At 4096 x 11008, rank 64: m
	// 344 MiB (the caller's change), u and vt 7.4 MiB; before, the whole thin factors came back, 472 MiB,
	// and u held the tall matrix's transpose.
	const bool tall = rows > cols;
	const int64_t mx = tall ? rows : cols, nx = tall ? cols : rows;
	const size_t nel = (size_t)rows * (size_t)cols, d = sizeof(double);
	thin_buffers f;
	SVD_CUDA(cudaMalloc(&f.dx, nel * d), "cudaMalloc");
	SVD_CUDA(cudaMalloc(&f.ds, (size_t)nx * d), "cudaMalloc");
	SVD_CUDA(cudaMalloc(&f.du, (size_t)mx * (size_t)nx * d), "cudaMalloc");
	SVD_CUDA(cudaMalloc(&f.dv, (size_t)nx * (size_t)nx * d), "cudaMalloc");
	SVD_CUDA(cudaMalloc(&f.dinfo, sizeof *f.dinfo), "cudaMalloc");
	// X into dx (again for gesvd after gesvdp, which overwrote it)
	auto upload = [&]() -> cudaError_t {
		if (!tall)
			return cudaMemcpyAsync(f.dx, m, nel * d, cudaMemcpyHostToDevice, stream);
		cudaError_t e = cudaMemcpyAsync(f.du, m, nel * d, cudaMemcpyHostToDevice, stream);
		return e != cudaSuccess ? e : transpose(f.du, cols, f.dx, rows, cols, rows, stream);
	};
	const auto t0 = std::chrono::steady_clock::now();
	bool polar = !only_gesvd;
	if (polar) {
		// gesvdp: U (mx x nx) and V (nx x nx, not V^T), column-major. A cuSOLVER status other than success
		// (a shape it does not take) leaves the matrix to gesvd, as an inaccurate result does.
		SVD_CUDA(upload(), "copying to the device");
		size_t dsize = 0, hsize = 0;
		int info = 0;
		double err_sigma = 0, sigma1 = 0;
		cusolverStatus_t e = g_api.gesvdp_buffer_size(st->handle, st->params, CUSOLVER_EIG_MODE_VECTOR, 1, mx, nx,
							      CUDA_R_64F, f.dx, mx, CUDA_R_64F, f.ds, CUDA_R_64F, f.du, mx,
							      CUDA_R_64F, f.dv, nx, CUDA_R_64F, &dsize, &hsize);
		if (e == CUSOLVER_STATUS_SUCCESS) {
			if ((rs = grow(f, dsize, hsize, msg, msg_size)) != LQ_OK)
				return rs;
			e = g_api.gesvdp(st->handle, st->params, CUSOLVER_EIG_MODE_VECTOR, 1, mx, nx, CUDA_R_64F, f.dx, mx,
					 CUDA_R_64F, f.ds, CUDA_R_64F, f.du, mx, CUDA_R_64F, f.dv, nx, CUDA_R_64F, f.dwork,
					 f.dsize, f.hwork, f.hsize, f.dinfo, &err_sigma);
		}
		if (e != CUSOLVER_STATUS_SUCCESS) {
			if (only_gesvdp)
				return solver_fail(msg, msg_size, "cusolverDnXgesvdp", e);
			if (tracing)
				fprintf(stderr, "svd: gesvdp %lld x %lld: cuSOLVER status %d: again by gesvd\n", (long long)rows,
					(long long)cols, (int)e);
			polar = false;
		} else {
			SVD_CUDA(cudaMemcpyAsync(&info, f.dinfo, sizeof info, cudaMemcpyDeviceToHost, stream),
				 "copying from the device");
			SVD_CUDA(cudaMemcpyAsync(&sigma1, f.ds, d, cudaMemcpyDeviceToHost, stream), "copying from the device");
			SVD_CUDA(cudaStreamSynchronize(stream), "cusolverDnXgesvdp");
			if (info < 0) {
				snprintf(msg, msg_size, "svd: cuSOLVER's gesvdp refused an argument (info %d)", info);
				return LQ_ERR_DEVICE;
			}
			const bool accurate = info == 0 && err_sigma <= 1e-10 * sigma1;
			if (tracing) {
				long hwm, rss;
				host_memory(&hwm, &rss);
				fprintf(stderr, "svd: gesvdp %lld x %lld: %.3f s, info %d, h_err_sigma %.3g, sigma_1 %.6g, "
					"workspace %zu MiB device, %zu KiB host; host peak %ld MiB, now %ld MiB%s\n",
					(long long)rows, (long long)cols, seconds_since(t0), info, err_sigma, sigma1, dsize >> 20,
					hsize >> 10, hwm, rss, accurate || only_gesvdp ? "" : ": again by gesvd");
			}
			if (only_gesvdp && info > 0) {
				snprintf(msg, msg_size, "svd: cuSOLVER's gesvdp did not converge (info %d)", info);
				return LQ_ERR_UNSUPPORTED;
			}
			polar = accurate || only_gesvdp;
		}
	}
	if (!polar) {
		// gesvd: U (mx x nx) and V^T (nx x nx), column-major
		const auto t1 = std::chrono::steady_clock::now();
		size_t dsize = 0, hsize = 0;
		int info = 0;
		SVD_CUDA(upload(), "copying to the device");
		SVD_SOLVER(g_api.gesvd_buffer_size(st->handle, st->params, 'S', 'S', mx, nx, CUDA_R_64F, f.dx, mx, CUDA_R_64F,
						   f.ds, CUDA_R_64F, f.du, mx, CUDA_R_64F, f.dv, nx, CUDA_R_64F, &dsize, &hsize),
			   "cusolverDnXgesvd_bufferSize");
		if ((rs = grow(f, dsize, hsize, msg, msg_size)) != LQ_OK)
			return rs;
		SVD_SOLVER(g_api.gesvd(st->handle, st->params, 'S', 'S', mx, nx, CUDA_R_64F, f.dx, mx, CUDA_R_64F, f.ds,
				       CUDA_R_64F, f.du, mx, CUDA_R_64F, f.dv, nx, CUDA_R_64F, f.dwork, f.dsize, f.hwork,
				       f.hsize, f.dinfo),
			   "cusolverDnXgesvd");
		SVD_CUDA(cudaMemcpyAsync(&info, f.dinfo, sizeof info, cudaMemcpyDeviceToHost, stream), "copying from the device");
		SVD_CUDA(cudaStreamSynchronize(stream), "cusolverDnXgesvd");
		if (tracing) {
			long hwm, rss;
			host_memory(&hwm, &rss);
			fprintf(stderr, "svd: gesvd %lld x %lld: %.3f s, info %d, workspace %zu MiB device, %zu KiB host; "
				"host peak %ld MiB, now %ld MiB\n", (long long)rows, (long long)cols, seconds_since(t1), info,
				dsize >> 20, hsize >> 10, hwm, rss);
		}
		if (info != 0) {
			snprintf(msg, msg_size, "svd: cuSOLVER's gesvd %s (info %d)",
				 info > 0 ? "did not converge" : "refused an argument", info);
			return info > 0 ? LQ_ERR_UNSUPPORTED : LQ_ERR_DEVICE;
		}
	}
	// M = U S Vt; the keep leading vectors come back. Not tall (X = M^T = U_x S V_x^T): Vt = U_x^T, whose
	// rows are U_x's leading columns (contiguous), and U = V_x, row-major its transpose: gesvd's V^T's
	// leading rows (a strided copy), gesvdp's V's leading columns transposed (on the device, into dx, free
	// now). Tall (X = M): U = U_x, row-major its leading columns transposed (on the device, into dx), and
	// Vt = V_x^T: gesvdp's V's leading columns as they lie, gesvd's V^T's leading rows transposed (into du).
	SVD_CUDA(cudaMemcpyAsync(s, f.ds, (size_t)nx * d, cudaMemcpyDeviceToHost, stream), "copying from the device");
	if (!tall) {
		SVD_CUDA(cudaMemcpyAsync(vt, f.du, (size_t)cols * (size_t)keep * d, cudaMemcpyDeviceToHost, stream),
			 "copying from the device");
		if (polar) {
			SVD_CUDA(transpose(f.dv, nx, f.dx, keep, nx, keep, stream), "transposing on the device");
			SVD_CUDA(cudaMemcpyAsync(u, f.dx, (size_t)keep * (size_t)rows * d, cudaMemcpyDeviceToHost, stream),
				 "copying from the device");
		} else {
			SVD_CUDA(cudaMemcpy2DAsync(u, (size_t)keep * d, f.dv, (size_t)nx * d, (size_t)keep * d, (size_t)rows,
						   cudaMemcpyDeviceToHost, stream),
				 "copying from the device");
		}
	} else {
		SVD_CUDA(transpose(f.du, rows, f.dx, keep, rows, keep, stream), "transposing on the device");
		SVD_CUDA(cudaMemcpyAsync(u, f.dx, (size_t)keep * (size_t)rows * d, cudaMemcpyDeviceToHost, stream),
			 "copying from the device");
		// gesvd's V^T transposed into du, read by the first transpose before (the stream orders them)
		const double *vsrc = f.dv;
		if (!polar) {
			SVD_CUDA(transpose(f.dv, nx, f.du, nx, keep, nx, stream), "transposing on the device");
			vsrc = f.du;
		}
		SVD_CUDA(cudaMemcpyAsync(vt, vsrc, (size_t)cols * (size_t)keep * d, cudaMemcpyDeviceToHost, stream),
			 "copying from the device");
	}
	SVD_CUDA(cudaStreamSynchronize(stream), "copying from the device");
	return LQ_OK;
}

} // namespace lq
