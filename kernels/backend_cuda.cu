// backend_cuda.cu: the CUDA backend behind libquant's dispatch (lq_cuda.h): a device, a stream and
// staging buffers; each operation copies its input in, runs its kernel and copies the results out.
// Every CUDA call is checked; a failure becomes LQ_ERR_DEVICE with cudaGetErrorString() in the message.
#include "lq_cuda.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#include "cusolver_loader.cuh"
#include "dequantize.cuh"
#include "double_quant.cuh"
#include "merge.cuh"
#include "quantize.cuh"
#include "stats.cuh"
#include "thin_svd.cuh"
#include "truncated_svd.cuh"

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
	// merges: the rows as float32, DoRA's scratch, and the task's side inputs (kept while its key lasts)
	float *d_w;
	size_t cap_w;
	float *d_v;
	size_t cap_v;
	float *d_factor;
	size_t cap_factor;
	float *d_side;
	size_t cap_side;
	uint64_t side_key;
	// error statistics: the reference, and the pieces' sums
	void *d_ref;
	size_t cap_ref;
	lq_error_sums *d_pieces;
	size_t cap_pieces;
	lq::svd_state *svd; // cuSOLVER's handle, made on the first SVD
	bool fail_launches;  // LQ_TEST_FAIL_DEVICE named this device (lq_cuda_test_fail_launches)
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

static uint32_t float_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

// nf4_code_cell's cells (quant4_device.cuh): cell c holds the y of [-1.96, 1.96] whose zcell_offset is 128 c.
// For y in cell c the thresholds of earlier cells are below y and those of later cells above it (the map is
// monotone), so the code is g, the number in earlier cells, plus one if the cell holds a threshold and y is
// above it. Exact only when no cell holds two thresholds, none is in 0's cell (so that every y of a
// threshold's cell has the threshold's sign), and the bits of the cell's floats are within 2^26 of the
// threshold's, which is checked here. A cell's y are those with 128 c <= 4160 + round(y * 2048) < 128 c +
// 128, within [(128 c - 4160.5) / 2048, (128 c - 4032.5) / 2048] (exact in double precision).
static bool build_cells(const float *t, uint32_t cells[LQ_NF4_ZCELLS][2])
{
	uint32_t tc[15];
	for (int i = 0; i < 15; i++) {
		tc[i] = lq::zcell_offset(t[i]) / 128;
		if (!(t[i] >= -1.96f && t[i] <= 1.96f) || (i > 0 && tc[i] <= tc[i - 1]) ||
		    tc[i] == lq::zcell_offset(0.0f) / 128)
			return false;
		const uint32_t bt = float_bits(t[i]);
		for (double end : {(128.0 * tc[i] - 4160.5) / 2048, (128.0 * tc[i] - 4032.5) / 2048}) {
			const float y = (float)end;
			const uint32_t by = float_bits(y);
			if ((y < 0.0f) != (t[i] < 0.0f) || y == 0.0f || (by > bt ? by - bt : bt - by) >= (1u << 26))
				return false;
		}
	}
	for (uint32_t c = 0, g = 0; c < LQ_NF4_ZCELLS; c++) {
		while (g < 15 && tc[g] < c)
			g++;
		const uint32_t base = g << 28, below = (1u << 28) - 1;
		if (g < 15 && tc[g] == c) { // the cell of threshold g
			const uint32_t bt = float_bits(t[g]);
			cells[c][0] = t[g] > 0.0f ? 1u : 0xffffffffu;
			cells[c][1] = t[g] > 0.0f ? base + below - bt : base + below + bt;
		} else {
			cells[c][0] = 0;
			cells[c][1] = base;
		}
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
	       build_lut(out->fp4_thresholds, 7, 0.0f, LQ_FP4_CELLS, out->fp4_lut) &&
	       build_cells(out->nf4_thresholds, out->nf4_cell);
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

// A kernel launch's error, or the one a launch on a failing GPU gives when the tests ask for it.
static cudaError_t launched(const lq_cuda *g, cudaError_t e)
{
	return g->fail_launches && e == cudaSuccess ? cudaErrorLaunchFailure : e;
}

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

/* "no GPU (...)" when there is none to use: no NVIDIA driver, or a driver that sees no device; the CUDA
 * error's own text when a driver is there and fails (too old, a stub library, a device in a bad state). */
static void no_device(char *msg, size_t msg_size)
{
	const char *visible = getenv("CUDA_VISIBLE_DEVICES");
	if (visible)
		snprintf(msg, msg_size, "no GPU (no CUDA device found; CUDA_VISIBLE_DEVICES is '%s')", visible);
	else
		snprintf(msg, msg_size, "no GPU (no CUDA device found)");
}

int lq_cuda_device_count(char *msg, size_t msg_size)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess) {
		cudaGetLastError(); // clear
		int driver = 0;
		/* without a driver library the runtime says "driver version is insufficient", and reports the
		 * driver's version as 0 (a stub or an old driver gives its own error, or a version) */
		if (e == cudaErrorNoDevice)
			no_device(msg, msg_size);
		else if (e == cudaErrorInsufficientDriver && cudaDriverGetVersion(&driver) == cudaSuccess && driver == 0)
			snprintf(msg, msg_size, "no GPU (no NVIDIA driver found)");
		else
			snprintf(msg, msg_size, "no CUDA device: %s", cudaGetErrorString(e));
		return 0;
	}
	if (n == 0)
		no_device(msg, msg_size);
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
	cudaFree(g->d_w);
	cudaFree(g->d_v);
	cudaFree(g->d_factor);
	cudaFree(g->d_side);
	cudaFree(g->d_ref);
	cudaFree(g->d_pieces);
	lq::svd_free(g->svd);
	if (g->stream)
		cudaStreamDestroy(g->stream);
	free(g);
}

const char *lq_cuda_name(const lq_cuda *g)
{
	return g->name;
}

int lq_cuda_index(const lq_cuda *g)
{
	return g->device;
}

void lq_cuda_test_fail_launches(lq_cuda *g)
{
	g->fail_launches = true;
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
		CUDA_TRY(launched(g, lq::quantize_launch(g->d_in, dtype, count, qtype, blocksize, g->d_bytes,
							 g->d_absmax, g->d_bad, &g->tab, g->stream)),
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
	CUDA_TRY(launched(g, lq::double_quant_launch(g->d_absmax, nblocks, offset, g->d_bytes, g->d_nested, g->d_map,
						     g->stream)),
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
		CUDA_TRY(launched(g, lq::dequantize_launch(g->d_bytes, g->d_absmax, count, qtype, blocksize, dtype,
							   g->d_in, &g->tab, g->stream)),
			 "the dequantize kernel");
		CUDA_TRY(cudaMemcpyAsync(static_cast<char *>(out) + (size_t)e * esize, g->d_in, (size_t)count * esize,
					 cudaMemcpyDeviceToHost, g->stream),
			 "copying from the device");
		CUDA_TRY(cudaStreamSynchronize(g->stream), "the dequantize kernel");
	}
	return LQ_OK;
}

// The side inputs of one lora in d_side: x, then y, then the magnitudes of the rows or the factors of the
// columns.
static size_t side_floats(const lq_cuda_merge *m, size_t l)
{
	const size_t r = (size_t)m->loras[l].rank;
	return r * (size_t)m->cols + r * (size_t)m->rows + (m->magnitude[l] ? (size_t)m->rows : 0) +
	       (m->col_factor[l] ? (size_t)m->cols : 0);
}

lq_status lq_cuda_merge_rows(lq_cuda *g, const lq_cuda_merge *m, int64_t *bad_index, char *msg, size_t msg_size)
{
	const int64_t n = m->nrows * m->cols;
	*bad_index = -1;
	CUDA_TRY(cudaSetDevice(g->device), "cudaSetDevice");
	if (g->side_key != m->key) {
		g->side_key = 0;
		size_t total = 0;
		for (size_t l = 0; l < m->nloras; l++)
			total += side_floats(m, l);
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_side), &g->cap_side, total * sizeof(float) + 4),
			 "cudaMalloc");
		float *p = g->d_side;
		for (size_t l = 0; l < m->nloras; l++) {
			const size_t r = (size_t)m->loras[l].rank;
			CUDA_TRY(cudaMemcpyAsync(p, m->x[l], r * (size_t)m->cols * 4, cudaMemcpyHostToDevice, g->stream),
				 "copying to the device");
			CUDA_TRY(cudaMemcpyAsync(p + r * (size_t)m->cols, m->y[l], r * (size_t)m->rows * 4,
						 cudaMemcpyHostToDevice, g->stream),
				 "copying to the device");
			if (m->magnitude[l])
				CUDA_TRY(cudaMemcpyAsync(p + r * ((size_t)m->cols + (size_t)m->rows), m->magnitude[l],
							 (size_t)m->rows * 4, cudaMemcpyHostToDevice, g->stream),
					 "copying to the device");
			if (m->col_factor[l])
				CUDA_TRY(cudaMemcpyAsync(p + r * ((size_t)m->cols + (size_t)m->rows), m->col_factor[l],
							 (size_t)m->cols * 4, cudaMemcpyHostToDevice, g->stream),
					 "copying to the device");
			p += side_floats(m, l);
		}
		g->side_key = m->key;
	}
	bool dora = false;
	for (size_t l = 0; l < m->nloras; l++)
		dora |= m->magnitude[l] != nullptr;
	CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_w), &g->cap_w, (size_t)n * 4), "cudaMalloc");
	if (dora) {
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_v), &g->cap_v, (size_t)n * 4), "cudaMalloc");
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_factor), &g->cap_factor, (size_t)m->nrows * 4), "cudaMalloc");
	}
	const lq_dtype wtype = m->wtype;
	if (m->in) {
		const size_t esize = lq_dtype_size(m->in_dtype);
		CUDA_TRY(ensure(&g->d_in, &g->cap_in, (size_t)n * esize), "cudaMalloc");
		CUDA_TRY(cudaMemcpyAsync(g->d_in, m->in, (size_t)n * esize, cudaMemcpyHostToDevice, g->stream),
			 "copying to the device");
		CUDA_TRY(launched(g, lq::merge_load(g->d_in, m->in_dtype, 0, wtype, n, g->d_w, g->stream)),
			 "the merge kernels");
	} else {
		// dequantized to float32, then rounded to W's type: what dequantizing to that type gives
		const size_t nbytes = (size_t)((n + 1) / 2), nconst = (size_t)ceil_div(n, m->blocksize);
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_bytes), &g->cap_bytes, nbytes), "cudaMalloc");
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_absmax), &g->cap_absmax, nconst * sizeof(float)),
			 "cudaMalloc");
		CUDA_TRY(cudaMemcpyAsync(g->d_bytes, m->packed, nbytes, cudaMemcpyHostToDevice, g->stream),
			 "copying to the device");
		CUDA_TRY(cudaMemcpyAsync(g->d_absmax, m->absmax, nconst * sizeof(float), cudaMemcpyHostToDevice, g->stream),
			 "copying to the device");
		CUDA_TRY(launched(g, lq::dequantize_launch(g->d_bytes, g->d_absmax, n, m->qtype, m->blocksize,
							   LQ_DTYPE_F32, g->d_w, &g->tab, g->stream)),
			 "the dequantize kernel");
		CUDA_TRY(launched(g, lq::merge_load(g->d_w, LQ_DTYPE_F32, 1, wtype, n, g->d_w, g->stream)),
			 "the merge kernels");
	}
	float *p = g->d_side;
	for (size_t l = 0; l < m->nloras; l++) {
		const lq_lora *lora = &m->loras[l];
		const size_t r = (size_t)lora->rank;
		float *extra = p + r * ((size_t)m->cols + (size_t)m->rows);
		lq::merge_lora ml = {lora->layout == LQ_LORA_TRANSPOSED, lora->rank, lora->scaling, lora->round_delta,
				     p, p + r * (size_t)m->cols, m->magnitude[l] ? extra : nullptr,
				     m->col_factor[l] ? extra : nullptr};
		bool last = l + 1 == m->nloras;
		CUDA_TRY(launched(g, lq::merge_apply(g->d_w, g->d_v, g->d_factor, ml, m->rows, m->cols, m->row0,
						     m->nrows, wtype, last && m->keep_last_unrounded, m->row_plan,
						     g->stream)),
			 "the merge kernels");
		p += side_floats(m, l);
	}
	const size_t osize = lq_dtype_size(m->out_dtype);
	CUDA_TRY(ensure(&g->d_in, &g->cap_in, (size_t)n * osize), "cudaMalloc");
	CUDA_TRY(cudaMemsetAsync(g->d_bad, 0xff, sizeof *g->d_bad, g->stream), "cudaMemset");
	CUDA_TRY(launched(g, lq::merge_store(g->d_w, n, m->out_dtype, g->d_in, g->d_bad, g->stream)),
		 "the merge kernels");
	CUDA_TRY(cudaMemcpyAsync(m->out, g->d_in, (size_t)n * osize, cudaMemcpyDeviceToHost, g->stream),
		 "copying from the device");
	CUDA_TRY(cudaMemcpyAsync(g->h_bad, g->d_bad, sizeof *g->h_bad, cudaMemcpyDeviceToHost, g->stream),
		 "copying from the device");
	CUDA_TRY(cudaStreamSynchronize(g->stream), "the merge kernels");
	if (*g->h_bad != ~0ull) {
		*bad_index = (int64_t)*g->h_bad;
		return LQ_ERR_NONFINITE;
	}
	return LQ_OK;
}

lq_status lq_cuda_error_pieces(lq_cuda *g, const void *x, lq_dtype x_dtype, const void *ref, lq_dtype ref_dtype,
			       int64_t n, int64_t first, lq_error_sums *pieces, char *msg, size_t msg_size)
{
	static_assert(kPieceElements % LQ_STATS_PIECE == 0, "device pieces must hold whole statistics pieces");
	const size_t xs = lq_dtype_size(x_dtype), rs = lq_dtype_size(ref_dtype);
	CUDA_TRY(cudaSetDevice(g->device), "cudaSetDevice");
	for (int64_t e = 0; e < n; e += kPieceElements) {
		const int64_t count = n - e < kPieceElements ? n - e : kPieceElements;
		const int64_t np = ceil_div(count, LQ_STATS_PIECE);
		CUDA_TRY(ensure(&g->d_in, &g->cap_in, (size_t)count * xs), "cudaMalloc");
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_ref), &g->cap_ref, (size_t)count * rs), "cudaMalloc");
		CUDA_TRY(ensure(reinterpret_cast<void **>(&g->d_pieces), &g->cap_pieces, (size_t)np * sizeof(lq_error_sums)),
			 "cudaMalloc");
		CUDA_TRY(cudaMemcpyAsync(g->d_in, static_cast<const char *>(x) + (size_t)e * xs, (size_t)count * xs,
					 cudaMemcpyHostToDevice, g->stream),
			 "copying to the device");
		CUDA_TRY(cudaMemcpyAsync(g->d_ref, static_cast<const char *>(ref) + (size_t)e * rs, (size_t)count * rs,
					 cudaMemcpyHostToDevice, g->stream),
			 "copying to the device");
		CUDA_TRY(launched(g, lq::error_pieces_launch(g->d_in, x_dtype, g->d_ref, ref_dtype, count, first + e,
							     g->d_pieces, g->stream)),
			 "the statistics kernel");
		CUDA_TRY(cudaMemcpyAsync(pieces + e / LQ_STATS_PIECE, g->d_pieces, (size_t)np * sizeof(lq_error_sums),
					 cudaMemcpyDeviceToHost, g->stream),
			 "copying from the device");
		CUDA_TRY(cudaStreamSynchronize(g->stream), "the statistics kernel");
	}
	return LQ_OK;
}

lq_status lq_cuda_svd(lq_cuda *g, const float *m, int64_t rows, int64_t cols, int64_t rank, float *b, float *a,
		      float *s, char *msg, size_t msg_size)
{
	CUDA_TRY(cudaSetDevice(g->device), "cudaSetDevice");
	CUDA_TRY(launched(g, cudaSuccess), "the SVD");
	return lq::svd_truncate(&g->svd, g->stream, m, rows, cols, rank, b, a, s, msg, msg_size);
}

lq_status lq_cuda_svd_thin(lq_cuda *g, double *m, int64_t rows, int64_t cols, int64_t keep, double *s, double *u,
			   double *vt, char *msg, size_t msg_size)
{
	CUDA_TRY(cudaSetDevice(g->device), "cudaSetDevice");
	CUDA_TRY(launched(g, cudaSuccess), "the SVD");
	return lq::svd_thin(&g->svd, g->stream, m, rows, cols, keep, s, u, vt, msg, msg_size);
}
