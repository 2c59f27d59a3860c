/*
 * test_combine.c: PEFT's combination types (libquant.h: lq_combine_type_find, lq_combine_tasks,
 * lq_svd_truncate). The comparison with PEFT itself is tests/interop/combine.sh; here the table, small
 * cases worked by hand from merge_utils.py, DARE's determinism and statistics, and the SVD.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libquant.h>

#include "test.h"
#include "util.h"

TEST(combine_type_table)
{
	static const char *const peft[] = {"svd", "linear", "cat", "ties", "ties_svd", "dare_ties", "dare_linear",
					   "dare_ties_svd", "dare_linear_svd", "magnitude_prune", "magnitude_prune_svd"};
	size_t n;
	lq_combine_types(&n);
	CHECK_INT(n, sizeof peft / sizeof peft[0]);
	for (size_t i = 0; i < sizeof peft / sizeof peft[0]; i++) {
		const lq_combine_type *t = lq_combine_type_find(peft[i]);
		test_context("%s", peft[i]);
		if (!CHECK(t))
			continue;
		CHECK_INT(t->form == LQ_COMBINE_SVD, strstr(peft[i], "svd") != NULL);
		CHECK_INT(t->prune == LQ_COMBINE_PRUNE_RANDOM, strncmp(peft[i], "dare", 4) == 0);
		CHECK_INT(t->ties, strstr(peft[i], "ties") != NULL);
	}
	CHECK(!lq_combine_type_find("dare"));
	CHECK(!lq_combine_type_find("SVD"));
	CHECK(!lq_combine_type_find(""));
	CHECK(!lq_combine_type_find(NULL));
}

static bool same_bits(float a, float b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

TEST(combine_magnitude_prune_by_hand)
{
	lq_ctx *ctx = util_ctx(1);
	if (!ctx)
		return;
	/* k = int(0.5 * 5) = 2: 3 and the first of the equal magnitudes 2, -2 (index 2) */
	const float t0[] = {3, -1, 2, -2, 0.5f};
	const float *tasks[] = {t0};
	const float w[] = {2};
	float out[5];
	lq_combine_params p = {.type = lq_combine_type_find("magnitude_prune"), .density = 0.5};
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 1, 5, 0, out), LQ_OK);
	const float want[] = {6, 0, 4, 0, 0};
	for (int j = 0; j < 5; j++)
		CHECK(out[j] == want[j]);
	/* pruned negatives are -0 (x * 0), summed from +0: +0 */
	CHECK(same_bits(out[1], 0.0f));
	/* density >= 1 prunes nothing (PEFT's prune returns the tensor) */
	p.density = 1.5;
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 1, 5, 0, out), LQ_OK);
	CHECK(out[1] == -2 && out[4] == 1);
	lq_ctx_free(ctx);
}

TEST(combine_ties_by_hand)
{
	lq_ctx *ctx = util_ctx(1);
	if (!ctx)
		return;
	const float t0[] = {1, -2, 0}, t1[] = {-3, 1, 0};
	const float *tasks[] = {t0, t1};
	const float w[] = {1, 0.5f};
	float out[3];
	/* density 1: no pruning. total: sums -2, -1, 0 -> majorities -1, -1, +1 */
	lq_combine_params p = {.type = lq_combine_type_find("ties"), .density = 1};
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 2, 3, 0, out), LQ_OK);
	CHECK(out[0] == -1.5f); /* t1 agrees: -3 * 0.5, one value */
	CHECK(out[1] == -2.0f); /* t0 agrees */
	CHECK(same_bits(out[2], 0.0f)); /* sign 0 agrees with nothing: 0 / clamp(0, 1) */
	/* frequency: sign sums 0, 0 -> majority +1 */
	p.majority_frequency = true;
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 2, 3, 0, out), LQ_OK);
	CHECK(out[0] == 1.0f);
	CHECK(out[1] == 0.5f);
	/* linear: the weighted sum */
	p.type = lq_combine_type_find("linear");
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 2, 3, 0, out), LQ_OK);
	CHECK(out[0] == -0.5f && out[1] == -1.5f);
	lq_ctx_free(ctx);
}

TEST(combine_refusals)
{
	lq_ctx *ctx = util_ctx(1);
	if (!ctx)
		return;
	const float t0[] = {1, NAN};
	const float *tasks[] = {t0};
	const float w[] = {1};
	float out[2];
	lq_combine_params p = {.type = lq_combine_type_find("dare_linear"), .density = 0};
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 1, 1, 0, out), LQ_ERR_ARG); /* PEFT divides by 0 */
	CHECK_CONTAINS(lq_ctx_error_string(ctx), "density 0");
	p.density = -0.1;
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 1, 1, 0, out), LQ_ERR_ARG);
	p.density = 0.5;
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 0, 1, 0, out), LQ_ERR_ARG);
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 1, 2, 0, out), LQ_ERR_NONFINITE);
	CHECK_CONTAINS(lq_ctx_error_string(ctx), "element 1 of task 0 is NaN");
	lq_ctx_free(ctx);
}

/*
 * DARE: the same seed and stream give the same bytes; another seed or stream other masks; and the masks
 * keep each element with probability density, kept values divided by it. With n = 400000 elements and
 * density p = 0.3 the kept fraction has standard deviation sqrt(p (1 - p) / n) = 7.2e-4: the bound, 6
 * standard deviations (4.4e-3), fails a correct generator with probability 2e-9. The mean of the output
 * (the input is all ones) is the kept fraction / p: within 6 sigma / p = 1.5e-2 of 1.
 */
TEST(combine_dare_masks)
{
	lq_ctx *ctx = util_ctx(1);
	if (!ctx)
		return;
	enum { N = 400000 };
	float *ones = malloc(N * sizeof *ones), *o1 = malloc(N * sizeof *o1), *o2 = malloc(N * sizeof *o2);
	if (!CHECK(ones && o1 && o2))
		goto done;
	for (int j = 0; j < N; j++)
		ones[j] = 1.0f;
	const float *tasks[] = {ones};
	const float w[] = {1};
	lq_combine_params p = {.type = lq_combine_type_find("dare_linear"), .density = 0.3, .seed = 42};
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 1, N, 7, o1), LQ_OK);
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 1, N, 7, o2), LQ_OK);
	CHECK(memcmp(o1, o2, N * sizeof *o1) == 0);
	int64_t kept = 0;
	double sum = 0;
	const float scaled = 1.0f / (float)0.3;
	for (int j = 0; j < N; j++) {
		if (o1[j] != 0 && !CHECK(o1[j] == scaled))
			break;
		kept += o1[j] != 0;
		sum += o1[j];
	}
	const double frac = (double)kept / N, sigma = sqrt(0.3 * 0.7 / N);
	test_note("dare density 0.3: kept %.5f, mean %.5f", frac, sum / N);
	CHECK(fabs(frac - 0.3) < 6 * sigma);
	CHECK(fabs(sum / N - 1) < 6 * sigma / 0.3);
	p.seed = 43;
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 1, N, 7, o2), LQ_OK);
	CHECK(memcmp(o1, o2, N * sizeof *o1) != 0);
	p.seed = 42;
	CHECK_INT(lq_combine_tasks(ctx, &p, tasks, w, 1, N, 8, o2), LQ_OK);
	CHECK(memcmp(o1, o2, N * sizeof *o1) != 0);
	/* two tasks draw independent masks: both kept about p * p of the time */
	const float *two[] = {ones, ones};
	const float w2[] = {1, 0};
	p.type = lq_combine_type_find("dare_ties");
	CHECK_INT(lq_combine_tasks(ctx, &p, two, w2, 2, N, 7, o2), LQ_OK);
	/* dare_ties of equal tasks: where both are kept, the mean of (1/p * 1, 1/p * 0) */
	int64_t both = 0;
	for (int j = 0; j < N; j++)
		both += o2[j] == scaled / 2;
	CHECK(fabs((double)both / N - 0.09) < 6 * sqrt(0.09 * 0.91 / N));
done:
	free(ones);
	free(o1);
	free(o2);
	lq_ctx_free(ctx);
}

TEST(combine_svd_truncate)
{
	lq_ctx *ctx = util_ctx(1);
	if (!ctx)
		return;
	/* m = 3 u1 v1^T + 1 u2 v2^T (orthonormal u's in R^4, v's in R^3) */
	const float u1[4] = {0.5f, 0.5f, 0.5f, 0.5f}, u2[4] = {0.5f, -0.5f, 0.5f, -0.5f};
	const float v1[3] = {1, 0, 0}, v2[3] = {0, 0.6f, 0.8f};
	float m[12], work[12], b[8], a[6], s[2];
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 3; j++)
			m[i * 3 + j] = 3 * u1[i] * v1[j] + u2[i] * v2[j];
	memcpy(work, m, sizeof m);
	CHECK_INT(lq_svd_truncate(ctx, work, 4, 3, 2, -1, b, a, s), LQ_OK);
	CHECK(fabsf(s[0] - 3) < 1e-6f && fabsf(s[1] - 1) < 1e-6f);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 3; j++) {
			const float x = b[i * 2] * a[j] + b[i * 2 + 1] * a[3 + j];
			CHECK(fabsf(x - m[i * 3 + j]) < 1e-6f);
		}
	memcpy(work, m, sizeof m);
	CHECK_INT(lq_svd_truncate(ctx, work, 4, 3, 1, -1, b, a, NULL), LQ_OK);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 3; j++)
			CHECK(fabsf(b[i] * a[j] - 3 * u1[i] * v1[j]) < 1e-6f);
	/* the clamp: every value within the quantile's bound */
	memcpy(work, m, sizeof m);
	CHECK_INT(lq_svd_truncate(ctx, work, 4, 3, 2, 0.5, b, a, NULL), LQ_OK);
	float hi = 0;
	for (int i = 0; i < 8; i++)
		hi = fmaxf(hi, fabsf(b[i]));
	for (int i = 0; i < 6; i++)
		hi = fmaxf(hi, fabsf(a[i]));
	CHECK(hi < 1.5f); /* U S's 1.5 entries clamped to the median of the 14 values */
	memcpy(work, m, sizeof m);
	CHECK_INT(lq_svd_truncate(ctx, work, 4, 3, 4, -1, b, a, NULL), LQ_ERR_ARG);
	work[5] = INFINITY;
	CHECK_INT(lq_svd_truncate(ctx, work, 4, 3, 1, -1, b, a, NULL), LQ_ERR_NONFINITE);
	lq_ctx_free(ctx);
}
