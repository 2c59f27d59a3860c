/* ctx.c: the context: thread pool, kernels in use, and the message of the last failure. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lq_internal.h"

lq_ctx *lq_ctx_create(const lq_ctx_options *options)
{
	if (lq_rcp_approx_init() != LQ_OK)
		return NULL; /* the table linked into the library is damaged: nothing exact can be done */
	const lq_cpu_kernels *kernels = lq_cpu_kernels_for(options ? options->cpu : LQ_CPU_BEST);
	if (!kernels)
		return NULL; /* kernels this CPU does not run, asked for by name: no silent fallback */
	int threads = options ? options->threads : 0;
	if (threads <= 0) {
		long online = sysconf(_SC_NPROCESSORS_ONLN);
		threads = online > 0 ? (int)online : 1;
	}
	lq_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return NULL;
	ctx->pool = lq_pool_create(threads);
	if (!ctx->pool) {
		free(ctx);
		return NULL;
	}
	lq_reuse_init(&ctx->reuse);
	ctx->cpu = kernels;
	ctx->backend = &lq_backend_cpu;
	snprintf(ctx->device_note, sizeof ctx->device_note, "CPU");
	return ctx;
}

void lq_ctx_free(lq_ctx *ctx)
{
	if (!ctx)
		return;
	lq_backend_close(ctx);
	lq_pool_free(ctx->pool);
	lq_reuse_free(&ctx->reuse);
	free(ctx);
}

const char *lq_ctx_error_string(const lq_ctx *ctx)
{
	return ctx->err;
}

int lq_ctx_threads(const lq_ctx *ctx)
{
	return lq_pool_threads(ctx->pool);
}

lq_status lq_fail(lq_ctx *ctx, lq_status status, const char *fmt, ...)
{
	/* formatted aside first: the context's own message may be one of the arguments */
	char msg[LQ_ERRBUF];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	memcpy(ctx->err, msg, strlen(msg) + 1);
	return status;
}

lq_status lq_fail_tensor(lq_ctx *ctx, lq_status status, const char *origin, const char *name, const char *fmt, ...)
{
	char detail[LQ_ERRBUF]; /* formatted aside first: the context's own message may be an argument */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	return lq_fail(ctx, status, "%s%stensor '%s': %s", origin ? origin : "", origin ? ": " : "", name, detail);
}

lq_status lq_fail_task(lq_ctx *ctx, lq_status status, const char *origin, const char *name)
{
	return lq_fail_tensor(ctx, status, origin, name, "%s", ctx->err[0] ? ctx->err : lq_status_string(status));
}

void lq_test_fail_step(lq_ctx *ctx, lq_test_step step, lq_status status, const char *message)
{
	ctx->test_step = step;
	ctx->test_status = status;
	snprintf(ctx->test_message, sizeof ctx->test_message, "%s", message ? message : "");
}

lq_status lq_test_injected(lq_ctx *ctx, lq_test_step step)
{
	if (ctx->test_step == LQ_TEST_STEP_NONE || ctx->test_step != step)
		return LQ_OK;
	return lq_fail(ctx, ctx->test_status, "%s", ctx->test_message);
}

void lq_clear_error(lq_ctx *ctx)
{
	ctx->err[0] = '\0';
}

void lq_format_index(char *buf, size_t size, const int64_t *shape, int ndim, int64_t i)
{
	int64_t idx[LQ_MAX_DIMS];
	for (int d = ndim - 1; d >= 0; d--) {
		int64_t extent = shape[d] > 0 ? shape[d] : 1;
		idx[d] = i % extent;
		i /= extent;
	}
	size_t used = 0;
	used += (size_t)snprintf(buf, size, "[");
	for (int d = 0; d < ndim && used < size; d++)
		used += (size_t)snprintf(buf + used, size - used, d ? ", %" PRId64 : "%" PRId64, idx[d]);
	if (used < size)
		snprintf(buf + used, size - used, "]");
}
