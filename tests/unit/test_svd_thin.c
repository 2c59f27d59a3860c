/*
 * test_svd_thin.c: lq_svd_thin (libquant/svd.c), the thin SVD loraextract factors a weight's change with: on a
 * matrix of known singular values, wide and tall, against its definition (U diag(s) Vt = m, orthonormal
 * factors, descending s), full-rank and exactly low-rank, and its refusals. With LQ_TEST_DEVICE=cuda, on
 * the GPU (cuSOLVER, tests/gpu/extract_gpu.sh). The comparison with numpy's SVD on a real fine-tune is
 * tests/extract/golden.py.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant.h"
#include "test.h"
#include "util.h"

/* The tolerance of the checks on a GPU, relative to sigma_1 (the singular values, the reconstruction) or
 * absolute (the orthonormality, whose scale is 1): the bound within which kernels/thin_svd.cu accepts
 * cuSOLVER's gesvdp (its error estimate h_err_sigma at most 1e-10 sigma_1; beyond, gesvd again). On the
 * GPU gesvdp's results were within 2.7e-13 of sigma_1 (h_err_sigma 2.5e-12 to 2.7e-12 at sigma_1 = 10 on
 * the low-rank cases), above the absolute 1e-12 LAPACK is held to: a tighter bound there than the code's
 * would fail results the code takes. On the CPU, LAPACK keeps SVD_TOL_CPU (its errors here are about
 * 1e-15 of sigma_1). The worst figures are printed (the GPU check's log says them). */
#define SVD_TOL_REL 1e-10
#define SVD_TOL_CPU 1e-12

static bool on_gpu(const lq_ctx *ctx)
{
	return strncmp(lq_ctx_backend_name(ctx), "cpu", 3) != 0;
}

/* m = sum_k sig[k] x_k y_k^T for orthonormal x's (rows) and y's (cols) from a fixed pseudo-random
 * Gram-Schmidt, sig[k] = 0 from k = rank on (rank 0: none); checks lq_svd_thin on m against sig. */
static void check_known(lq_ctx *ctx, int64_t rows, int64_t cols, int64_t rank)
{
	const int64_t k = rows < cols ? rows : cols;
	double *x = malloc((size_t)(rows * k) * sizeof *x), *y = malloc((size_t)(cols * k) * sizeof *y);
	double *m = calloc((size_t)(rows * cols), sizeof *m), *w = malloc((size_t)(rows * cols) * sizeof *w);
	double *s = malloc((size_t)k * sizeof *s), *u = malloc((size_t)(rows * k) * sizeof *u);
	double *vt = malloc((size_t)(k * cols) * sizeof *vt), *sig = malloc((size_t)k * sizeof *sig);
	if (!CHECK(x && y && m && w && s && u && vt && sig))
		goto done;
	uint64_t state = 12345;
	for (int pass = 0; pass < 2; pass++) {
		double *q = pass ? y : x;
		const int64_t n = pass ? cols : rows;
		for (int64_t c = 0; c < k; c++) {
			for (int64_t i = 0; i < n; i++) {
				state = state * 6364136223846793005ULL + 1442695040888963407ULL;
				q[i * k + c] = (double)(state >> 11) / 9007199254740992.0 - 0.5;
			}
			for (int rep = 0; rep < 2; rep++)
				for (int64_t p = 0; p < c; p++) {
					double dot = 0;
					for (int64_t i = 0; i < n; i++)
						dot += q[i * k + p] * q[i * k + c];
					for (int64_t i = 0; i < n; i++)
						q[i * k + c] -= dot * q[i * k + p];
				}
			double nrm = 0;
			for (int64_t i = 0; i < n; i++)
				nrm += q[i * k + c] * q[i * k + c];
			for (int64_t i = 0; i < n; i++)
				q[i * k + c] /= sqrt(nrm);
		}
	}
	for (int64_t c = 0; c < k; c++)
		sig[c] = rank && c >= rank ? 0 : 10.0 / (double)(c + 1);
	for (int64_t i = 0; i < rows; i++)
		for (int64_t j = 0; j < cols; j++)
			for (int64_t c = 0; c < k; c++)
				m[i * cols + j] += sig[c] * x[i * k + c] * y[j * k + c];
	memcpy(w, m, (size_t)(rows * cols) * sizeof *w);
	test_context("%lld x %lld, rank %lld", (long long)rows, (long long)cols, (long long)(rank ? rank : k));
	if (!CHECK_INT(lq_svd_thin(ctx, w, rows, cols, k, s, u, vt), LQ_OK))
		goto done;
	const bool gpu = on_gpu(ctx);
	const double tol = gpu ? SVD_TOL_REL * sig[0] : SVD_TOL_CPU, tol_orth = gpu ? SVD_TOL_REL : SVD_TOL_CPU;
	double worst = 0, w_s, w_rec;
	for (int64_t c = 0; c < k; c++)
		worst = fmax(worst, fabs(s[c] - sig[c]));
	CHECK(worst <= tol);
	w_s = worst;
	worst = 0;
	for (int64_t i = 0; i < rows; i++)
		for (int64_t j = 0; j < cols; j++) {
			double acc = 0;
			for (int64_t c = 0; c < k; c++)
				acc += u[i * k + c] * s[c] * vt[c * cols + j];
			worst = fmax(worst, fabs(acc - m[i * cols + j]));
		}
	CHECK(worst <= tol);
	w_rec = worst;
	worst = 0; /* U^T U = I and Vt Vt^T = I */
	for (int64_t p = 0; p < k; p++)
		for (int64_t q = 0; q < k; q++) {
			double du = 0, dv = 0;
			for (int64_t i = 0; i < rows; i++)
				du += u[i * k + p] * u[i * k + q];
			for (int64_t j = 0; j < cols; j++)
				dv += vt[p * cols + j] * vt[q * cols + j];
			worst = fmax(worst, fmax(fabs(du - (p == q)), fabs(dv - (p == q))));
		}
	CHECK(worst <= tol_orth);
	printf("    svd_thin %lld x %lld, rank %lld: worst |s - sigma| %.3g, |U S Vt - M| %.3g (sigma_1 %g, bound %.3g); "
	       "|U^T U - I|, |Vt Vt^T - I| %.3g (bound %.3g)\n", (long long)rows, (long long)cols,
	       (long long)(rank ? rank : k), w_s, w_rec, sig[0], tol, worst, tol_orth);
	/* the leading keep vectors alone: those of the whole SVD, the singular values all of them */
	const int64_t keep = (k + 1) / 2;
	double *s2 = malloc((size_t)k * sizeof *s2), *u2 = malloc((size_t)(rows * keep) * sizeof *u2);
	double *vt2 = malloc((size_t)(keep * cols) * sizeof *vt2);
	memcpy(w, m, (size_t)(rows * cols) * sizeof *w);
	if (CHECK(s2 && u2 && vt2) && CHECK_INT(lq_svd_thin(ctx, w, rows, cols, keep, s2, u2, vt2), LQ_OK)) {
		worst = 0;
		for (int64_t c = 0; c < k; c++)
			worst = fmax(worst, fabs(s2[c] - s[c]));
		for (int64_t i = 0; i < rows; i++)
			for (int64_t c = 0; c < keep; c++)
				worst = fmax(worst, fabs(u2[i * keep + c] - u[i * k + c]));
		for (int64_t i = 0; i < keep * cols; i++)
			worst = fmax(worst, fabs(vt2[i] - vt[i]));
		/* LAPACK computes the same whole SVD and copies the leading vectors: the same bits */
		CHECK(gpu ? worst <= tol : worst == 0);
	}
	free(s2);
	free(u2);
	free(vt2);
done:
	free(x);
	free(y);
	free(m);
	free(w);
	free(s);
	free(u);
	free(vt);
	free(sig);
}

TEST(svd_thin_known_singular_values)
{
	lq_ctx *ctx = util_ctx(1);
	if (!ctx)
		return;
	check_known(ctx, 7, 19, 0);
	check_known(ctx, 23, 5, 0);
	check_known(ctx, 9, 9, 0);
	check_known(ctx, 1, 6, 0);
	check_known(ctx, 70, 150, 0);
	check_known(ctx, 150, 70, 0);
	/* exactly low-rank, as a merged LoRA's change: the factors orthonormal all the same (on a GPU, where
	 * gesvdp's are not, gesvd's) */
	check_known(ctx, 9, 9, 2);
	check_known(ctx, 40, 90, 5);
	check_known(ctx, 90, 40, 5);
	lq_ctx_free(ctx);
}

TEST(svd_thin_refusals)
{
	lq_ctx *ctx = util_ctx(1);
	if (!ctx)
		return;
	double m[6] = {1, 2, 3, 4, 5, 6}, s[2], u[4], vt[6];
	CHECK_INT(lq_svd_thin(ctx, m, 0, 3, 1, s, u, vt), LQ_ERR_ARG);
	CHECK_INT(lq_svd_thin(ctx, m, 2, 0, 1, s, u, vt), LQ_ERR_ARG);
	CHECK_INT(lq_svd_thin(ctx, m, (int64_t)1 << 20, (int64_t)1 << 12, 1, s, u, vt), LQ_ERR_ARG);
	CHECK_INT(lq_svd_thin(ctx, m, 2, 3, 0, s, u, vt), LQ_ERR_ARG);
	CHECK_INT(lq_svd_thin(ctx, m, 2, 3, 3, s, u, vt), LQ_ERR_ARG);
	m[4] = NAN;
	CHECK_INT(lq_svd_thin(ctx, m, 2, 3, 2, s, u, vt), LQ_ERR_NONFINITE);
	CHECK(strstr(lq_ctx_error_string(ctx), "[1, 1] is NaN") != NULL);
	m[4] = -INFINITY;
	CHECK_INT(lq_svd_thin(ctx, m, 2, 3, 2, s, u, vt), LQ_ERR_NONFINITE);
	lq_ctx_free(ctx);
}
