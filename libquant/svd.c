/*
 * svd.c: the truncated SVD of PEFT's *_svd combinations (libquant.h, lq_svd_truncate): the arguments
 * checked, the factorization by the context's backend (cuSOLVER on a GPU: kernels/truncated_svd.cu says
 * which routine and why) or by LAPACK here, then the signs normalized and the clamp, the same float32 code
 * for both.
 *
 * The LAPACK driver is gesdd (divide and conquer), not gesvd (QR iteration): with singular vectors wanted
 * it is several times faster on the matrices here (a layer's delta, thousands square), and it is the driver
 * torch.linalg.svd calls on the CPU. It runs in double precision (dgesdd) on the float32 delta: the
 * factors are then those of the float32 matrix PEFT decomposes, rounded once, and what remains of the
 * difference from PEFT is its own float32 SVD's error (a truncation between close singular values
 * magnifies it: measured within 1e-5 relative on the tests' adapters, where sgesdd's error added to
 * PEFT's came close to it). The matrix is handed over as torch hands it (column-major, m = rows,
 * n = cols), and only the thin factors are computed (jobz 'S'): PEFT's full_matrices=True keeps only the
 * first `rank` columns of U and rows of Vh, which the thin SVD computes alike.
 *
 * The signs of the singular vectors are each library's own (LAPACK, MKL in torch on the CPU, cuSOLVER):
 * they change nothing in B @ A, but a --svd-clamp threshold moves with them. So they are normalized here,
 * on the float32 factors whichever backend made them: the element of largest magnitude of each row of A
 * (the first of equal ones) is positive, the row of A and the column of B negated together otherwise.
 * The CPU and the GPU then agree on the clamp as on the rest, within their rounding.
 *
 * lq_svd_thin (loraextract) is the whole thin SVD in double precision of a double matrix, by LAPACK, or
 * by the context's GPU (cuSOLVER) when it computes on one, of which the caller keeps the leading singular
 * vectors (all the singular values: --energy chooses the rank from them).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"

/* LAPACK's Fortran interface (liblapack3): the hidden length of the character argument last, as gfortran
 * passes it. */
extern void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u,
		    const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info,
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

/* The factors by LAPACK (the backend table's svd_truncate contract, lq_internal.h). */
static lq_status lapack_factors(lq_ctx *ctx, const float *m, int64_t rows, int64_t cols, int64_t rank, float *b,
				float *a, float *s)
{
	const int64_t mn = rows < cols ? rows : cols;
	const size_t nel = (size_t)rows * (size_t)cols;
	const int im = (int)rows, in = (int)cols, imn = (int)mn;
	double *colmajor = malloc(nel * sizeof *colmajor);
	double *sv = malloc((size_t)mn * sizeof *sv);
	double *u = malloc((size_t)rows * (size_t)mn * sizeof *u);
	double *vt = malloc((size_t)mn * (size_t)cols * sizeof *vt);
	int *iwork = malloc(8 * (size_t)mn * sizeof *iwork);
	double *work = NULL;
	lq_status st = LQ_OK;
	if (!colmajor || !sv || !u || !vt || !iwork) {
		st = lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (int64_t i = 0; i < rows; i++)
		for (int64_t j = 0; j < cols; j++)
			colmajor[i + j * rows] = (double)m[i * cols + j];
	int info = 0, lwork = -1;
	double query = 0;
	dgesdd_("S", &im, &in, colmajor, &im, sv, u, &im, vt, &imn, &query, &lwork, iwork, &info, 1);
	if (info != 0 || !(query >= 1) || query > (double)INT_MAX) {
		st = lq_fail(ctx, LQ_ERR_UNSUPPORTED, "svd: LAPACK's workspace query failed (info %d)", info);
		goto done;
	}
	lwork = (int)query;
	work = malloc((size_t)lwork * sizeof *work);
	if (!work) {
		st = lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	dgesdd_("S", &im, &in, colmajor, &im, sv, u, &im, vt, &imn, work, &lwork, iwork, &info, 1);
	if (info != 0) {
		st = lq_fail(ctx, LQ_ERR_UNSUPPORTED, "svd: LAPACK's dgesdd did not converge (info %d)", info);
		goto done;
	}
	for (int64_t i = 0; i < rows; i++)
		for (int64_t k = 0; k < rank; k++)
			b[i * rank + k] = (float)(u[i + k * rows] * sv[k]);
	for (int64_t k = 0; k < rank; k++)
		for (int64_t j = 0; j < cols; j++)
			a[k * cols + j] = (float)vt[k + j * mn];
	for (int64_t k = 0; s && k < rank; k++)
		s[k] = (float)sv[k];
done:
	free(colmajor);
	free(sv);
	free(u);
	free(vt);
	free(iwork);
	free(work);
	return st;
}

/* Each row of a with its element of largest magnitude (the first of equal ones) positive, the column of b
 * negated with it (exact: a sign flip). */
static void normalize_signs(float *b, float *a, int64_t rows, int64_t cols, int64_t rank)
{
	for (int64_t k = 0; k < rank; k++) {
		const float *row = a + k * cols;
		int64_t top = 0;
		for (int64_t j = 1; j < cols; j++)
			if (fabsf(row[j]) > fabsf(row[top]))
				top = j;
		if (!(row[top] < 0))
			continue;
		for (int64_t j = 0; j < cols; j++)
			a[k * cols + j] = -a[k * cols + j];
		for (int64_t i = 0; i < rows; i++)
			b[i * rank + k] = -b[i * rank + k];
	}
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
	/* the backend's factorization (a GPU's), or LAPACK's where it has none or cannot (no cuSOLVER) */
	const lq_backend *be = ctx->backend;
	lq_status st = be->svd_truncate ? be->svd_truncate(ctx, m, rows, cols, rank, b, a, s) : LQ_ERR_UNSUPPORTED;
	if (st == LQ_ERR_UNSUPPORTED) {
		lq_clear_error(ctx);
		st = lapack_factors(ctx, m, rows, cols, rank, b, a, s);
	}
	if (st != LQ_OK)
		return st;
	normalize_signs(b, a, rows, cols, rank);
	if (clamp >= 0) {
		/* dist = cat(U.flatten(), Vh.flatten()); hi = quantile(dist, clamp); both clamped to [-hi, hi] */
		const int64_t nb = rows * rank, na = rank * cols;
		float *dist = malloc((size_t)(nb + na) * sizeof *dist);
		if (!dist)
			return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
		memcpy(dist, b, (size_t)nb * sizeof *dist);
		memcpy(dist + nb, a, (size_t)na * sizeof *dist);
		const float hi = quantile(dist, nb + na, (float)clamp);
		free(dist);
		for (int64_t i = 0; i < nb; i++)
			b[i] = clampf(b[i], -hi, hi);
		for (int64_t i = 0; i < na; i++)
			a[i] = clampf(a[i], -hi, hi);
	}
	return LQ_OK;
}

LQ_API lq_status lq_svd_thin(lq_ctx *ctx, double *m, int64_t rows, int64_t cols, int64_t keep, double *s, double *u,
			     double *vt)
{
	lq_clear_error(ctx);
	if (rows < 1 || cols < 1)
		return lq_fail(ctx, LQ_ERR_ARG, "svd: an empty %lld x %lld matrix", (long long)rows, (long long)cols);
	if (rows > INT_MAX / cols)
		return lq_fail(ctx, LQ_ERR_ARG, "svd: a %lld x %lld matrix is beyond LAPACK's 32-bit sizes",
			       (long long)rows, (long long)cols);
	const int64_t kk = rows < cols ? rows : cols;
	if (keep < 1 || keep > kk)
		return lq_fail(ctx, LQ_ERR_ARG, "svd: %lld singular vectors of a %lld x %lld matrix (1 to %lld)",
			       (long long)keep, (long long)rows, (long long)cols, (long long)kk);
	const size_t nel = (size_t)rows * (size_t)cols;
	for (size_t i = 0; i < nel; i++)
		if (!isfinite(m[i]))
			return lq_fail(ctx, LQ_ERR_NONFINITE, "svd: element [%lld, %lld] is %s", (long long)(i / (size_t)cols),
				       (long long)(i % (size_t)cols), isnan(m[i]) ? "NaN" : "infinite");
	/* a GPU's cuSOLVER (kernels/thin_svd.cu), whose failure is the caller's to handle: it asked for
	 * that device, and LAPACK's SVD of a 7B model's weights takes minutes each. Only the kept vectors
	 * come back to the host. */
	if (ctx->backend->svd_thin)
		return ctx->backend->svd_thin(ctx, m, rows, cols, keep, s, u, vt);
	/* m row-major is M^T column-major (cols x rows, lda = cols): M^T = V diag(s) U^T, so LAPACK's U of it
	 * (cols x k, column-major) is Vt row-major and its VT (k x rows, column-major) is U row-major. dgesdd
	 * computes all k vectors: into the caller's buffers when it keeps them all, else into whole ones of
	 * its own, whose leading columns are then copied (the same values) */
	const int mt = (int)cols, nt = (int)rows, k = (int)kk;
	int *iwork = malloc(8 * (size_t)k * sizeof *iwork);
	double *work = NULL, *uw = u, *vw = vt;
	lq_status st = LQ_OK;
	if (keep < kk) {
		uw = malloc((size_t)rows * (size_t)k * sizeof *uw);
		vw = malloc((size_t)k * (size_t)cols * sizeof *vw);
	}
	if (!iwork || !uw || !vw) {
		st = lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	int info = 0, lwork = -1;
	double query = 0;
	dgesdd_("S", &mt, &nt, m, &mt, s, vw, &mt, uw, &k, &query, &lwork, iwork, &info, 1);
	if (info != 0 || !(query >= 1) || query > (double)INT_MAX) {
		st = lq_fail(ctx, LQ_ERR_UNSUPPORTED, "svd: LAPACK's workspace query failed (info %d)", info);
		goto done;
	}
	lwork = (int)query;
	if (!(work = malloc((size_t)lwork * sizeof *work))) {
		st = lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	dgesdd_("S", &mt, &nt, m, &mt, s, vw, &mt, uw, &k, work, &lwork, iwork, &info, 1);
	if (info != 0) {
		st = lq_fail(ctx, LQ_ERR_UNSUPPORTED, "svd: LAPACK's dgesdd did not converge (info %d)", info);
		goto done;
	}
	if (keep < kk) {
		for (int64_t i = 0; i < rows; i++)
			memcpy(u + i * keep, uw + i * kk, (size_t)keep * sizeof *u);
		memcpy(vt, vw, (size_t)keep * (size_t)cols * sizeof *vt);
	}
done:
	if (uw != u)
		free(uw);
	if (vw != vt)
		free(vw);
	free(iwork);
	free(work);
	return st;
}
