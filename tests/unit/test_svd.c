/*
 * test_svd.c: lq_svd_truncate on the device named by $LQ_TEST_DEVICE (cuSOLVER with cuda) against the
 * CPU's LAPACK, on fresh random low-rank-plus-noise matrices, tall and wide, ranks 1 to 64: the singular
 * values within float32 rounding (1e-5 of the largest), B A within 1e-5 relative (Frobenius), the signs
 * normalized alike (so --svd-clamp agrees too); and, on any device, A's rows orthonormal and B A the best
 * rank-k approximation of an exactly low-rank matrix.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libquant.h"
#include "test.h"
#include "util.h"

/* m = sum over t < true_rank of 2^(-t/4) u_t v_t^T (random Gaussian-ish u, v scaled to about unit norm)
 * plus noise of the given scale. */
static void low_rank(util_rng *r, float *m, int64_t rows, int64_t cols, int64_t true_rank, float noise)
{
	float *u = malloc((size_t)rows * sizeof *u), *v = malloc((size_t)cols * sizeof *v);
	double *acc = calloc((size_t)(rows * cols), sizeof *acc);
	for (int64_t t = 0; t < true_rank; t++) {
		const double sigma = pow(2.0, -(double)t / 4);
		for (int64_t i = 0; i < rows; i++)
			u[i] = util_normal(r, 1.0f / sqrtf((float)rows));
		for (int64_t j = 0; j < cols; j++)
			v[j] = util_normal(r, 1.0f / sqrtf((float)cols));
		for (int64_t i = 0; i < rows; i++)
			for (int64_t j = 0; j < cols; j++)
				acc[i * cols + j] += sigma * u[i] * v[j];
	}
	for (int64_t i = 0; i < rows * cols; i++)
		m[i] = (float)acc[i] + (noise > 0 ? util_normal(r, noise) : 0.0f);
	free(u), free(v), free(acc);
}

/* ||B1 A1 - B2 A2||_F / ||B2 A2||_F in double */
static double product_distance(const float *b1, const float *a1, const float *b2, const float *a2, int64_t rows,
			       int64_t cols, int64_t k)
{
	double num = 0, den = 0;
	for (int64_t i = 0; i < rows; i++)
		for (int64_t j = 0; j < cols; j++) {
			double x = 0, y = 0;
			for (int64_t t = 0; t < k; t++) {
				x += (double)b1[i * k + t] * a1[t * cols + j];
				y += (double)b2[i * k + t] * a2[t * cols + j];
			}
			num += (x - y) * (x - y);
			den += y * y;
		}
	return den > 0 ? sqrt(num / den) : sqrt(num);
}

TEST(svd_truncate_device_matches_cpu)
{
	lq_ctx_options o = {.threads = 1};
	lq_ctx *cpu = lq_ctx_create(&o), *dev = util_ctx(1);
	if (!cpu || !dev) {
		lq_ctx_free(cpu);
		lq_ctx_free(dev);
		test_fail(__FILE__, __LINE__, "no context");
		return;
	}
	util_rng r = {util_seed() ^ 0x5bd1e995u};
	/* rows, cols, true rank (0: noise only), noise */
	static const struct {
		int64_t rows, cols, true_rank;
		float noise;
	} shapes[] = {{200, 72, 24, 1e-3f}, {72, 200, 24, 1e-3f}, {96, 96, 64, 1e-4f}, {130, 65, 80, 0},
		      {65, 130, 8, 0},     {1, 40, 1, 0},        {40, 1, 1, 0}, {150, 90, 0, 1.0f}};
	static const int64_t ranks[] = {1, 2, 4, 8, 16, 32, 64};
	int cases = 0;
	for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
		const int64_t rows = shapes[c].rows, cols = shapes[c].cols, mn = rows < cols ? rows : cols;
		float *m = malloc((size_t)(rows * cols) * sizeof *m), *w = malloc((size_t)(rows * cols) * sizeof *w);
		float *b1 = malloc((size_t)(rows * 64) * sizeof *b1), *a1 = malloc((size_t)(64 * cols) * sizeof *a1);
		float *b2 = malloc((size_t)(rows * 64) * sizeof *b2), *a2 = malloc((size_t)(64 * cols) * sizeof *a2);
		float s1[64], s2[64];
		low_rank(&r, m, rows, cols, shapes[c].true_rank, shapes[c].noise);
		for (size_t q = 0; q < sizeof ranks / sizeof ranks[0] && ranks[q] <= mn; q++) {
			const int64_t k = ranks[q];
			for (int clamped = 0; clamped < 2; clamped++) {
				const double clamp = clamped ? 0.9 : -1;
				memcpy(w, m, (size_t)(rows * cols) * sizeof *w);
				CHECK_INT(lq_svd_truncate(cpu, w, rows, cols, k, clamp, b1, a1, s1), LQ_OK);
				memcpy(w, m, (size_t)(rows * cols) * sizeof *w);
				if (!CHECK_INT(lq_svd_truncate(dev, w, rows, cols, k, clamp, b2, a2, s2), LQ_OK)) {
					test_note("%s", lq_ctx_error_string(dev));
					continue;
				}
				double worst = 0;
				for (int64_t t = 0; t < k; t++)
					worst = fmax(worst, fabs((double)s1[t] - s2[t]));
				if (!CHECK(worst <= 1e-5 * s1[0]))
					test_note("%lld x %lld rank %lld: singular values %.9g from the CPU's (largest %.9g)",
						  (long long)rows, (long long)cols, (long long)k, worst, (double)s1[0]);
				/* noise only: singular values close together, where a truncation is ill-conditioned (the
				 * singular values are still checked) */
				const double d = product_distance(b2, a2, b1, a1, rows, cols, k);
				if (shapes[c].true_rank > 0 && !CHECK(d <= 1e-5))
					test_note("%lld x %lld rank %lld clamp %g: B A %.3g relative from the CPU's", (long long)rows,
						  (long long)cols, (long long)k, clamp, d);
				/* A's rows orthonormal, each with its largest-magnitude element positive */
				for (int64_t t = 0; t < k && !clamped; t++) {
					double n2 = 0;
					int64_t top = 0;
					for (int64_t j = 0; j < cols; j++) {
						n2 += (double)a2[t * cols + j] * a2[t * cols + j];
						top = fabsf(a2[t * cols + j]) > fabsf(a2[t * cols + top]) ? j : top;
					}
					CHECK(fabs(n2 - 1) < 1e-5);
					CHECK(a2[t * cols + top] > 0);
				}
				cases++;
			}
		}
		/* exactly low rank: a truncation at (or past) the true rank gives m back */
		if (shapes[c].noise == 0 && shapes[c].true_rank <= 64 && shapes[c].true_rank <= mn) {
			const int64_t k = shapes[c].true_rank;
			memcpy(w, m, (size_t)(rows * cols) * sizeof *w);
			CHECK_INT(lq_svd_truncate(dev, w, rows, cols, k, -1, b2, a2, NULL), LQ_OK);
			double num = 0, den = 0;
			for (int64_t i = 0; i < rows; i++)
				for (int64_t j = 0; j < cols; j++) {
					double x = 0;
					for (int64_t t = 0; t < k; t++)
						x += (double)b2[i * k + t] * a2[t * cols + j];
					num += (x - m[i * cols + j]) * (x - m[i * cols + j]);
					den += (double)m[i * cols + j] * m[i * cols + j];
				}
			if (!CHECK(sqrt(num / den) < 1e-6))
				test_note("%lld x %lld: rank %lld gives m back within %.3g", (long long)rows, (long long)cols,
					  (long long)k, sqrt(num / den));
		}
		free(m), free(w), free(b1), free(a1), free(b2), free(a2);
	}
	test_note("%d cases, %s against the CPU", cases, lq_ctx_device_note(dev));
	lq_ctx_free(cpu);
	lq_ctx_free(dev);
}
