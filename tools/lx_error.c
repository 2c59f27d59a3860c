/*
 * lx_error.c: the squared error of the factors loraextract writes, sum over (i, j) of
 * (dW_ij - (L R)_ij)^2 (loraextract.h, lx_squared_error), on the tool's threads.
 *
 * The residuals are the work (rows * cols * rank products: seconds per 7B weight on one core, as long as
 * the GPU's SVD); their sum is one chain of additions in row-major order, as a single loop adds them, so
 * that the reported error's bytes depend on nothing else: not on the threads. So the threads compute the
 * residuals of a band of rows, each row by one thread with the same operations as that loop, and the
 * band is then added in order; the band (BAND_ROWS rows a thread) bounds the memory.
 */
#include <pthread.h>
#include <stdlib.h>

#include "loraextract.h"

#define BAND_ROWS 16
#define MAX_THREADS 256

typedef struct band {
	const float *vf, *vt, *lf, *rf;
	int64_t cols, r, row0, nrows;
	int nthreads;
	double *res; /* nrows x cols */
} band;

typedef struct band_part {
	const band *b;
	int id;
} band_part;

static void residual_row(const band *b, int64_t i, double *row)
{
	const int64_t cols = b->cols, r = b->r;
	for (int64_t j = 0; j < cols; j++)
		row[j] = (double)b->vt[i * cols + j] - (double)b->vf[i * cols + j];
	for (int64_t c = 0; c < r; c++) {
		const double l = b->lf[i * r + c];
		const float *rr = b->rf + c * cols;
		for (int64_t j = 0; j < cols; j++)
			row[j] -= l * rr[j];
	}
}

static void *band_worker(void *arg)
{
	const band_part *p = arg;
	const band *b = p->b;
	for (int64_t k = p->id; k < b->nrows; k += b->nthreads)
		residual_row(b, b->row0 + k, b->res + k * b->cols);
	return NULL;
}

bool lx_squared_error(const float *vf, const float *vt, const float *lf, const float *rf, int64_t rows, int64_t cols,
		      int64_t r, int threads, double *err)
{
	if (threads < 1)
		threads = 1;
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	const int64_t band_rows = (int64_t)threads * BAND_ROWS;
	double *res = malloc((size_t)(band_rows < rows ? band_rows : rows) * (size_t)cols * sizeof *res);
	if (!res)
		return false;
	pthread_t tid[MAX_THREADS];
	band_part parts[MAX_THREADS];
	double sum = 0;
	for (int64_t row0 = 0; row0 < rows; row0 += band_rows) {
		band b = {.vf = vf, .vt = vt, .lf = lf, .rf = rf, .cols = cols, .r = r, .row0 = row0,
			  .nrows = rows - row0 < band_rows ? rows - row0 : band_rows, .nthreads = threads, .res = res};
		int started = 0;
		for (int t = 1; t < threads && t < b.nrows; t++) {
			parts[t] = (band_part){&b, t};
			if (pthread_create(&tid[t], NULL, band_worker, &parts[t]) != 0)
				break;
			started = t;
		}
		/* rows of threads that did not start: done here, after this thread's own */
		parts[0] = (band_part){&b, 0};
		band_worker(&parts[0]);
		for (int64_t k = 0; k < b.nrows; k++) {
			const int owner = (int)(k % threads);
			if (owner > started)
				residual_row(&b, row0 + k, res + k * cols);
		}
		for (int t = 1; t <= started; t++)
			pthread_join(tid[t], NULL);
		for (int64_t k = 0; k < b.nrows * cols; k++)
			sum += res[k] * res[k];
	}
	free(res);
	*err = sum;
	return true;
}
