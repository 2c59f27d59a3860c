/*
 * svd.c: the truncated SVD of PEFT's *_svd combinations (libquant.h, lq_svd_truncate), by LAPACK.
 *
 * The driver is sgesdd (divide and conquer), not sgesvd (QR iteration): with singular vectors wanted it is
 * several times faster on the matrices here (a layer's delta, thousands square), and it is what
 * torch.linalg.svd calls on the CPU, so that the singular vectors, whose signs a clamp depends on, come
 * from the same algorithm as PEFT's. The matrix is handed over as torch hands it (column-major, m = rows,
 * n = cols), and only the thin factors are computed (jobz 'S'): PEFT's full_matrices=True keeps only the
 * first `rank` columns of U and rows of Vh, which the thin SVD computes alike.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"

/* LAPACK's Fortran interface (liblapack3): the hidden length of the character argument last, as gfortran
 * passes it. */
extern void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s, float *u,
		    const int *ldu, float *vt, const int *ldvt, float *work, const int *lwork, int *iwork, int *info,
		    size_t jobz_len);

static int cmp_float(const void *x, const void *y)
{
	const float a = *(const float *)x, b = *(const float *)y;
	return (a > b) - (a < b);
}

/* torch.quantile(v, q) with linear interpolation, in float32 as torch computes it (v is sorted in place). */
static float quantile(float *v, int64_t n, float q)
{
	qsort(v, (size_t)n, sizeof *v, cmp_float);
	const float rank = q * (float)(n - 1);
	const int64_t below = (int64_t)rank;
	const int64_t above = (int64_t)ceilf(rank);
	const float w = rank - (float)below;
	const float lo = v[below], hi = v[above];
	/* at::lerp */
	return fabsf(w) < 0.5f ? lo + w * (hi - lo) : hi - (hi - lo) * (1.0f - w);
}

static float clampf(float x, float lo, float hi)
{
	/* torch.clamp: min(max(x, lo), hi), so hi wins when lo > hi */
	x = x < lo ? lo : x;
	return x > hi ? hi : x;
}

LQ_API lq_status lq_svd_truncate(lq_ctx *ctx, float *m, int64_t rows, int64_t cols, int64_t rank, double clamp,
				 float *b, float *a, float *s)
{
	lq_clear_error(ctx);
	const int64_t mn = rows < cols ? rows : cols;
	if (rows < 1 || cols < 1 || rank < 1 || rank > mn)
		return lq_fail(ctx, LQ_ERR_ARG, "svd: rank %lld of a %lld x %lld matrix (at most %lld)", (long long)rank,
			       (long long)rows, (long long)cols, (long long)(mn > 0 ? mn : 0));
	if (clamp > 1)
		return lq_fail(ctx, LQ_ERR_ARG, "svd: clamp quantile %g is not in [0, 1]", clamp);
	if (rows > INT_MAX / cols)
		return lq_fail(ctx, LQ_ERR_ARG, "svd: a %lld x %lld matrix is beyond LAPACK's 32-bit sizes",
			       (long long)rows, (long long)cols);
	const size_t nel = (size_t)rows * (size_t)cols;
	for (size_t i = 0; i < nel; i++)
		if (!isfinite(m[i]))
			return lq_fail(ctx, LQ_ERR_NONFINITE, "svd: element [%lld, %lld] is %s", (long long)(i / (size_t)cols),
				       (long long)(i % (size_t)cols), isnan(m[i]) ? "NaN" : "infinite");
	const int im = (int)rows, in = (int)cols, imn = (int)mn;
	float *colmajor = malloc(nel * sizeof *colmajor);
	float *sv = malloc((size_t)mn * sizeof *sv);
	float *u = malloc((size_t)rows * (size_t)mn * sizeof *u);
	float *vt = malloc((size_t)mn * (size_t)cols * sizeof *vt);
	int *iwork = malloc(8 * (size_t)mn * sizeof *iwork);
	float *work = NULL;
	lq_status st = LQ_OK;
	if (!colmajor || !sv || !u || !vt || !iwork) {
		st = lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (int64_t i = 0; i < rows; i++)
		for (int64_t j = 0; j < cols; j++)
			colmajor[i + j * rows] = m[i * cols + j];
	int info = 0, lwork = -1;
	float query = 0;
	sgesdd_("S", &im, &in, colmajor, &im, sv, u, &im, vt, &imn, &query, &lwork, iwork, &info, 1);
	if (info != 0 || !(query >= 1) || query > (float)INT_MAX) {
		st = lq_fail(ctx, LQ_ERR_UNSUPPORTED, "svd: LAPACK's workspace query failed (info %d)", info);
		goto done;
	}
	lwork = (int)query;
	work = malloc((size_t)lwork * sizeof *work);
	if (!work) {
		st = lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	sgesdd_("S", &im, &in, colmajor, &im, sv, u, &im, vt, &imn, work, &lwork, iwork, &info, 1);
	if (info != 0) {
		st = lq_fail(ctx, LQ_ERR_UNSUPPORTED, "svd: LAPACK's sgesdd did not converge (info %d)", info);
		goto done;
	}
	for (int64_t i = 0; i < rows; i++)
		for (int64_t k = 0; k < rank; k++)
			b[i * rank + k] = u[i + k * rows] * sv[k];
	for (int64_t k = 0; k < rank; k++)
		for (int64_t j = 0; j < cols; j++)
			a[k * cols + j] = vt[k + j * mn];
	if (s)
		memcpy(s, sv, (size_t)rank * sizeof *s);
	if (clamp >= 0) {
		/* dist = cat(U.flatten(), Vh.flatten()); hi = quantile(dist, clamp); both clamped to [-hi, hi] */
		const int64_t nb = rows * rank, na = rank * cols;
		float *dist = colmajor; /* rows * cols >= nb + na is not guaranteed: grow when needed */
		if ((size_t)(nb + na) > nel) {
			dist = malloc((size_t)(nb + na) * sizeof *dist);
			if (!dist) {
				st = lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
				goto done;
			}
		}
		memcpy(dist, b, (size_t)nb * sizeof *dist);
		memcpy(dist + nb, a, (size_t)na * sizeof *dist);
		const float hi = quantile(dist, nb + na, (float)clamp);
		if (dist != colmajor)
			free(dist);
		for (int64_t i = 0; i < nb; i++)
			b[i] = clampf(b[i], -hi, hi);
		for (int64_t i = 0; i < na; i++)
			a[i] = clampf(a[i], -hi, hi);
	}
done:
	free(colmajor);
	free(sv);
	free(u);
	free(vt);
	free(iwork);
	free(work);
	return st;
}
