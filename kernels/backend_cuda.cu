// backend_cuda.cu: the CUDA backend behind libquant's dispatch (lq_cuda.h): a device, a stream and
// staging buffers; each operation copies its input in, runs its kernel and copies the results out.
// Every CUDA call is checked; a failure becomes LQ_ERR_DEVICE with cudaGetErrorString() in the message.
#include "lq_cuda.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#include "dequantize.cuh"
#include "double_quant.cuh"
#include "quantize.cuh"

// A range is processed in pieces of at most this many elements (64 MiB of float32), which bounds the
// device memory the backend holds whatever the tensor.
static const int64_t kPieceElements = (int64_t)16 << 20;

struct lq_cuda {
	int device;
	cudaStream_t stream;
	char name[256];
	lq::tables tab;
	float *d_map;
	void *d_in;
	size_t cap_in;
	uint8_t *d_bytes; // packed codes, or 8-bit constants
	size_t cap_bytes;
	float *d_absmax;
	size_t cap_absmax;
	float *d_nested;
	size_t cap_nested;
	unsigned long long *d_bad;
	unsigned long long *h_bad; // pinned
};

// The cell tables of nf4_code_lut / fp4_code_lut (quant4_device.cuh): for each cell, how many thresholds
// lie in earlier cells. Exact only when no cell holds two thresholds, which is checked here.
static bool build_lut(const float *t, int nt, float offset, int cells, uint32_t *lut)
{
	uint32_t tc[16];
	for (int i = 0; i < nt; i++) {
		tc[i] = lq::cell_of(t[i], offset);
		if ((i > 0 && tc[i] <= tc[i - 1]) || tc[i] >= (uint32_t)cells)
			return false;
	}
	memset(lut, 0, (size_t)(cells + 3) / 4 * sizeof(uint32_t));
	for (int c = 0; c < cells; c++) {
		uint32_t below = 0;
		for (int i = 0; i < nt; i++)
			below += tc[i] < (uint32_t)c;
		lut[c / 4] |= below << (8 * (c % 4));
	}
	return true;
}

bool lq::make_tables(const lq_cuda_tables *in, lq::tables *out)
{
	memset(out, 0, sizeof *out);
	memcpy(out->nf4_thresholds, in->nf4_thresholds, 15 * sizeof(float));
	memcpy(out->fp4_thresholds, in->fp4_thresholds, 7 * sizeof(float));
	out->nf4_thresholds[15] = __builtin_inff();
	out->fp4_thresholds[7] = __builtin_inff();
	for (int r = 0; r < 8; r++)
		out->fp4_by_rank |= (uint32_t)in->fp4_code_by_rank[r] << (4 * r);
	memcpy(out->code[0], in->code[0], 16 * sizeof(float));
	memcpy(out->code[1], in->code[1], 16 * sizeof(float));
	memcpy(out->dynamic_map, in->dynamic_map, 256 * sizeof(float));
	return build_lut(out->nf4_thresholds, 15, 64.0f, LQ_NF4_CELLS, out->nf4_lut) &&
	       build_lut(out->fp4_thresholds, 7, 0.0f, LQ_FP4_CELLS, out->fp4_lut);
}

static lq_status fail(char *msg, size_t size, const char *what, cudaError_t e)
{
	snprintf(msg, size, "CUDA error in %s: %s", what, cudaGetErrorString(e));
	return LQ_ERR_DEVICE;
}

#define CUDA_TRY(call, what)                                                                           \
	do {                                                                                           \
		cudaError_t e_ = (call);                                                               \
		if (e_ != cudaSuccess)                                                                 \
			return fail(msg, msg_size, what, e_);                                          \
	} while (0)

// Grows a device buffer to at least `need` bytes (contents not kept).
static cudaError_t ensure(void **p, size_t *cap, size_t need)
{
	if (*cap >= need)
		return cudaSuccess;
	if (*p)
		cudaFree(*p);
	*p = nullptr;
	*cap = 0;
	size_t size = need + need / 4; // some headroom: the next tensor is often a little larger
	cudaError_t e = cudaMalloc(p, size);
	if (e == cudaSuccess)
		*cap = size;
	return e;
}

int lq_cuda_device_count(char *msg, size_t msg_size)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess) {
		snprintf(msg, msg_size, "no CUDA device: %s", cudaGetErrorString(e));
		cudaGetLastError(); // clear
		return 0;
	}
	if (n == 0)
		snprintf(msg, msg_size, "no CUDA device");
	return n;
}

lq_status lq_cuda_open(int index, const lq_cuda_tables *tables, lq_cuda **out, char *msg, size_t msg_size)
{
	*out = nullptr;
	lq_cuda *g = static_cast<lq_cuda *>(calloc(1, sizeof *g));
	if (!g) {
		snprintf(msg, msg_size, "out of memory");
		return LQ_ERR_NOMEM;
	}
	g->device = index;
	lq_status st = LQ_OK;
	cudaDeviceProp prop;
	cudaError_t e = cudaSetDevice(index);
	if (e == cudaSuccess)
		e = cudaGetDeviceProperties(&prop, index);
	if (e == cudaSuccess)
		e = cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking);
	if (e == cudaSuccess)
		e = cudaMalloc(&g->d_map, 256 * sizeof(float));
	if (e == cudaSuccess)
		e = cudaMalloc(&g->d_bad, sizeof *g->d_bad);
	if (e == cudaSuccess)
		e = cudaMallocHost(&g->h_bad, sizeof *g->h_bad);
	if (e == cudaSuccess)
		e = cudaMemcpy(g->d_map, tables->dynamic_map, 256 * sizeof(float), cudaMemcpyHostToDevice);
	if (e != cudaSuccess) {
		st = fail(msg, msg_size, "opening the device", e);
		lq_cuda_close(g);
		return st;
	}
	snprintf(g->name, sizeof g->name, "%s", prop.name);
	if (!lq::make_tables(tables, &g->tab)) {
		snprintf(msg, msg_size, "the code tables put two thresholds in one cell");
		lq_cuda_close(g);
		return LQ_ERR_DEVICE;
	}
	*out = g;
	return LQ_OK;
}

void lq_cuda_close(lq_cuda *g)
{
	if (!g)
		return;
	cudaSetDevice(g->device);
	cudaFree(g->d_map);
	cudaFree(g->d_in);
	cudaFree(g->d_bytes);
	cudaFree(g->d_absmax);
	cudaFree(g->d_nested);
	cudaFree(g->d_bad);
	cudaFreeHost(g->h_bad);
	if (g->stream)
		cudaStreamDestroy(g->stream);
	free(g);
}

const char *lq_cuda_name(const lq_cuda *g)
{
	return g->name;
}

void *lq_cuda_host_alloc(size_t size)
{
	void *p = nullptr;
	return cudaMallocHost(&p, size) == cudaSuccess ? p : nullptr;
}

void lq_cuda_host_free(void *p)
{
	if (p)
		cudaFreeHost(p);
}

static int64_t ceil_div(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

lq_status lq_cuda_quantize_blocks(lq_cuda *g, const void *src, lq_dtype dtype, int64_t n, lq_qtype qtype,
				  int32_t blocksize, int64_t b0, int64_t b1, uint8_t *packed, float *absmax,
				  int64_t *bad_index, char *msg, size_t msg_size)
{
	*bad_index = -1;
	const size_t esize = lq_dtype_size(dtype);
	const int64_t end = b1 * (int64_t)blocksize < n ? b1 * (int64_t)blocksize : n;
	const int64_t piece = kPieceElements / blocksize * blocksize;
	CUDA_TRY(cudaSetDevice(g->device), "cudaSetDevice");
	for (int64_t e = b0 * (int64_t)blocksize; e < end; e += piece) {
		const int64_t count = end - e < piece ? end - e : piece;
		const size_t nbytes = (size_t)((count + 1) / 2), nconst = (size_t)ceil_div(count, blocksize);
		CUDA_TRY(ensure(&g->d_in, &g->cap_in, (size_t)count * esize), "cudaMalloc");
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_bytes), &g->cap_bytes, nbytes), "cudaMalloc");
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_absmax), &g->cap_absmax, nconst * sizeof(float)),
			 "cudaMalloc");
		CUDA_TRY(cudaMemcpyAsync(g->d_in, static_cast<const char *>(src) + (size_t)e * esize, (size_t)count * esize,
					 cudaMemcpyHostToDevice, g->stream),
			 "copying to the device");
		CUDA_TRY(cudaMemsetAsync(g->d_bad, 0xff, sizeof *g->d_bad, g->stream), "cudaMemset");
		CUDA_TRY(lq::quantize_launch(g->d_in, (int)dtype, count, (int)qtype, blocksize, g->d_bytes, g->d_absmax,
					     g->d_bad, &g->tab, g->stream),
			 "the quantize kernel");
		CUDA_TRY(cudaMemcpyAsync(packed + e / 2, g->d_bytes, nbytes, cudaMemcpyDeviceToHost, g->stream),
			 "copying from the device");
		CUDA_TRY(cudaMemcpyAsync(absmax + e / blocksize, g->d_absmax, nconst * sizeof(float),
					 cudaMemcpyDeviceToHost, g->stream),
			 "copying from the device");
		CUDA_TRY(cudaMemcpyAsync(g->h_bad, g->d_bad, sizeof *g->h_bad, cudaMemcpyDeviceToHost, g->stream),
			 "copying from the device");
		CUDA_TRY(cudaStreamSynchronize(g->stream), "the quantize kernel");
		if (*g->h_bad != ~0ull) {
			*bad_index = e + (int64_t)*g->h_bad;
			snprintf(msg, msg_size, "element %lld is not finite", (long long)*bad_index);
			return LQ_ERR_NONFINITE;
		}
	}
	return LQ_OK;
}

lq_status lq_cuda_double_quant(lq_cuda *g, const float *absmax, int64_t nblocks, float offset, uint8_t *absmax_q,
			       float *nested_absmax, char *msg, size_t msg_size)
{
	const int64_t nn = ceil_div(nblocks, 256);
	CUDA_TRY(cudaSetDevice(g->device), "cudaSetDevice");
	CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_absmax), &g->cap_absmax, (size_t)nblocks * sizeof(float)),
		 "cudaMalloc");
	CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_bytes), &g->cap_bytes, (size_t)nblocks), "cudaMalloc");
	CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_nested), &g->cap_nested, (size_t)nn * sizeof(float)),
		 "cudaMalloc");
	CUDA_TRY(cudaMemcpyAsync(g->d_absmax, absmax, (size_t)nblocks * sizeof(float), cudaMemcpyHostToDevice,
				 g->stream),
		 "copying to the device");
	CUDA_TRY(lq::double_quant_launch(g->d_absmax, nblocks, offset, g->d_bytes, g->d_nested, g->d_map, g->stream),
		 "the double-quantization kernel");
	CUDA_TRY(cudaMemcpyAsync(absmax_q, g->d_bytes, (size_t)nblocks, cudaMemcpyDeviceToHost, g->stream),
		 "copying from the device");
	CUDA_TRY(cudaMemcpyAsync(nested_absmax, g->d_nested, (size_t)nn * sizeof(float), cudaMemcpyDeviceToHost,
				 g->stream),
		 "copying from the device");
	CUDA_TRY(cudaStreamSynchronize(g->stream), "the double-quantization kernel");
	return LQ_OK;
}

lq_status lq_cuda_dequantize_blocks(lq_cuda *g, const uint8_t *packed, const float *absmax, int64_t n,
				    lq_qtype qtype, int32_t blocksize, int64_t b0, int64_t b1, lq_dtype dtype,
				    void *out, char *msg, size_t msg_size)
{
	const size_t esize = lq_dtype_size(dtype);
	const int64_t end = b1 * (int64_t)blocksize < n ? b1 * (int64_t)blocksize : n;
	const int64_t piece = kPieceElements / blocksize * blocksize;
	CUDA_TRY(cudaSetDevice(g->device), "cudaSetDevice");
	for (int64_t e = b0 * (int64_t)blocksize; e < end; e += piece) {
		const int64_t count = end - e < piece ? end - e : piece;
		const size_t nbytes = (size_t)((count + 1) / 2), nconst = (size_t)ceil_div(count, blocksize);
		CUDA_TRY(ensure(&g->d_in, &g->cap_in, (size_t)count * esize), "cudaMalloc");
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_bytes), &g->cap_bytes, nbytes), "cudaMalloc");
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_absmax), &g->cap_absmax, nconst * sizeof(float)),
			 "cudaMalloc");
		CUDA_TRY(cudaMemcpyAsync(g->d_bytes, packed + e / 2, nbytes, cudaMemcpyHostToDevice, g->stream),
			 "copying to the device");
		CUDA_TRY(cudaMemcpyAsync(g->d_absmax, absmax + e / blocksize, nconst * sizeof(float),
					 cudaMemcpyHostToDevice, g->stream),
			 "copying to the device");
		CUDA_TRY(lq::dequantize_launch(g->d_bytes, g->d_absmax, count, (int)qtype, blocksize, (int)dtype, g->d_in,
					       &g->tab, g->stream),
			 "the dequantize kernel");
		CUDA_TRY(cudaMemcpyAsync(static_cast<char *>(out) + (size_t)e * esize, g->d_in, (size_t)count * esize,
					 cudaMemcpyDeviceToHost, g->stream),
			 "copying from the device");
		CUDA_TRY(cudaStreamSynchronize(g->stream), "the dequantize kernel");
	}
	return LQ_OK;
}
