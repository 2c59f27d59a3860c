// cusolver_loader.cu: cuSOLVER (cusolver_loader.cuh) for the SVDs on the GPU, loaded with dlopen.
//
// cuSOLVER's library (with cuBLAS, cuSPARSE and nvJitLink under it, hundreds of MB) is loaded with
// dlopen on the first SVD, not linked: the programs link the CUDA runtime statically and run on machines
// that have a driver and no toolkit, where the SVD then falls back to LAPACK (LQ_ERR_UNSUPPORTED).
#include "cusolver_loader.cuh"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <mutex>

namespace lq {

cusolver_api g_api;

namespace {

#define LQ_SVD_STR2(x) #x
#define LQ_SVD_STR(x) LQ_SVD_STR2(x)
// the soname of the cuSOLVER this was compiled against ("libcusolver.so.12" for CUDA 13.0)
const char kLibrary[] = "libcusolver.so." LQ_SVD_STR(CUSOLVER_VER_MAJOR);

bool g_loaded;
char g_error[512];
std::once_flag g_once;

bool sym(void *lib, const char *name, void *field, size_t size)
{
	void *p = dlsym(lib, name);
	if (!p) {
		snprintf(g_error, sizeof g_error, "%s has no %s", kLibrary, name);
		return false;
	}
	memcpy(field, &p, size);
	return true;
}

void load()
{
	void *lib = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *e = dlerror();
		snprintf(g_error, sizeof g_error, "cannot load cuSOLVER: %s", e ? e : kLibrary);
		return;
	}
	cusolver_api a;
#define LQ_SVD_SYM(field, name) sym(lib, name, &a.field, sizeof a.field)
	g_loaded = LQ_SVD_SYM(create, "cusolverDnCreate") && LQ_SVD_SYM(destroy, "cusolverDnDestroy") &&
		   LQ_SVD_SYM(set_stream, "cusolverDnSetStream") && LQ_SVD_SYM(create_params, "cusolverDnCreateParams") &&
		   LQ_SVD_SYM(destroy_params, "cusolverDnDestroyParams") &&
		   LQ_SVD_SYM(gesvd_buffer_size, "cusolverDnXgesvd_bufferSize") && LQ_SVD_SYM(gesvd, "cusolverDnXgesvd") &&
		   LQ_SVD_SYM(gesvdp_buffer_size, "cusolverDnXgesvdp_bufferSize") && LQ_SVD_SYM(gesvdp, "cusolverDnXgesvdp");
#undef LQ_SVD_SYM
	if (g_loaded)
		g_api = a;
	else
		dlclose(lib);
}

} // namespace

lq_status cuda_fail(char *msg, size_t size, const char *what, cudaError_t e)
{
	snprintf(msg, size, "CUDA error in %s: %s", what, cudaGetErrorString(e));
	return LQ_ERR_DEVICE;
}

lq_status solver_fail(char *msg, size_t size, const char *what, cusolverStatus_t e)
{
	snprintf(msg, size, "cuSOLVER error %d in %s", (int)e, what);
	return LQ_ERR_DEVICE;
}

lq_status svd_ready(svd_state **state, cudaStream_t stream, char *msg, size_t msg_size)
{
	std::call_once(g_once, load);
	if (!g_loaded) {
		snprintf(msg, msg_size, "%s", g_error);
		return LQ_ERR_UNSUPPORTED;
	}
	if (!*state) {
		svd_state *st = static_cast<svd_state *>(calloc(1, sizeof *st));
		if (!st) {
			snprintf(msg, msg_size, "out of memory");
			return LQ_ERR_NOMEM;
		}
		cusolverStatus_t e = g_api.create(&st->handle);
		if (e == CUSOLVER_STATUS_SUCCESS && (e = g_api.create_params(&st->params)) != CUSOLVER_STATUS_SUCCESS)
			g_api.destroy(st->handle);
		if (e != CUSOLVER_STATUS_SUCCESS) {
			free(st);
			return solver_fail(msg, msg_size, "cusolverDnCreate", e);
		}
		*state = st;
	}
	SVD_SOLVER(g_api.set_stream((*state)->handle, stream), "cusolverDnSetStream");
	return LQ_OK;
}

void svd_free(svd_state *state)
{
	if (!state)
		return;
	g_api.destroy_params(state->params);
	g_api.destroy(state->handle);
	free(state);
}

} // namespace lq
