/*
 * backend.c: where the compute goes. The CPU backend (backend_cpu.c) is always there; the GPU backends a
 * build has are registered in the table below, and this is the only file that knows which (the CUDA
 * backend, backend_cuda.c over kernels/, when the library is built with LQ_HAVE_CUDA): the rest of
 * libquant calls whatever backend the context holds (LQ_BACKEND). Every backend gives the same bytes
 * (tests/gpu checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"

/* The GPU backends of this build, tried in order. */
static const lq_backend *const gpu_backends[] = {
#ifdef LQ_HAVE_CUDA
	&lq_backend_cuda,
#endif
	NULL,
};

void lq_backend_close(lq_ctx *ctx)
{
	if (ctx->backend && ctx->backend->close)
		ctx->backend->close(ctx->backend_self);
	ctx->backend = &lq_backend_cpu;
	ctx->backend_self = NULL;
}

/* "cuda" and "cuda:N": one device; "all": every one. */
static bool parse_device(const char *device, int *index, bool *all)
{
	*index = 0;
	*all = strcmp(device, "all") == 0;
	if (*all || strcmp(device, "cuda") == 0)
		return true;
	if (strncmp(device, "cuda:", 5) != 0 || !device[5])
		return false;
	char *end;
	long v = strtol(device + 5, &end, 10);
	if (*end || v < 0 || v > 1024)
		return false;
	*index = (int)v;
	return true;
}

lq_status lq_ctx_use_device(lq_ctx *ctx, const char *device)
{
	lq_clear_error(ctx);
	if (!device)
		device = "auto";
	bool automatic = strcmp(device, "auto") == 0;
	int index = 0;
	bool all = false;
	ctx->device_why[0] = '\0';
	if (automatic && gpu_backends[0] && ctx->work_set) {
		/* the cost model first: a GPU it does not choose is never opened (device_auto.c) */
		char why[sizeof ctx->device_why - 64];
		bool gpu = lq_device_auto_prefers_gpu(&ctx->work, lq_ctx_threads(ctx), NULL, why, sizeof why);
		if (!gpu) {
			lq_backend_close(ctx);
			snprintf(ctx->device_note, sizeof ctx->device_note, "CPU: faster for this run (--device auto)");
			snprintf(ctx->device_why, sizeof ctx->device_why, "cpu (%s)", why);
			return LQ_OK;
		}
		snprintf(ctx->device_why, sizeof ctx->device_why, "%s", why);
	}
	if (strcmp(device, "cpu") == 0) {
		lq_backend_close(ctx);
		snprintf(ctx->device_note, sizeof ctx->device_note, "CPU, as asked");
		return LQ_OK;
	}
	if (!automatic && !parse_device(device, &index, &all))
		return lq_fail(ctx, LQ_ERR_ARG, "unknown device '%s' (cpu, cuda, cuda:N, all or auto)", device);
	lq_backend_close(ctx);
	if (!gpu_backends[0]) {
		if (automatic) {
			snprintf(ctx->device_note, sizeof ctx->device_note, "CPU: built without CUDA");
			snprintf(ctx->device_why, sizeof ctx->device_why, "cpu (built without CUDA)");
			return LQ_OK;
		}
		return lq_fail(ctx, LQ_ERR_DEVICE, "device '%s': this build has no CUDA support (rebuild with nvcc "
			       "installed)", device);
	}
	char msg[LQ_ERRBUF] = "", note[sizeof ctx->device_note] = "";
	lq_status st = LQ_ERR_DEVICE;
	for (size_t i = 0; gpu_backends[i] && st != LQ_OK; i++) {
		void *self = NULL;
		st = gpu_backends[i]->open(index, all, &self, note, sizeof note, msg, sizeof msg);
		if (st == LQ_OK) {
			ctx->backend = gpu_backends[i];
			ctx->backend_self = self;
			memcpy(ctx->device_note, note, sizeof note);
		}
	}
	char why[sizeof ctx->device_why];
	memcpy(why, ctx->device_why, sizeof why);
	if (st == LQ_OK) {
		if (automatic)
			snprintf(ctx->device_why, sizeof ctx->device_why, "%s (%s)", ctx->device_note,
				 why[0] ? why : "a GPU works");
		return LQ_OK;
	}
	if (automatic) {
		/* "CPU: no GPU (no NVIDIA driver found)", or "CPU: no usable GPU (the CUDA error)" */
		snprintf(ctx->device_note, sizeof ctx->device_note, strncmp(msg, "no GPU", 6) == 0 ? "CPU: %s" :
			 "CPU: no usable GPU (%s)", msg);
		snprintf(ctx->device_why, sizeof ctx->device_why, "cpu (%s)", ctx->device_note + 5);
		return LQ_OK;
	}
	return lq_fail(ctx, st, "%s", msg);
}

const char *lq_ctx_device_note(const lq_ctx *ctx)
{
	return ctx->device_note;
}

const char *lq_ctx_backend_name(const lq_ctx *ctx)
{
	return lq_backend_gpu(ctx) ? ctx->device_note : ctx->cpu->name;
}
