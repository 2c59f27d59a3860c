/* run.c: see run.h. */
#include "run.h"

#include <stdlib.h>

#include "cli.h"

lq_status run_tasks_init(run_tasks *r, size_t cap, char *err)
{
	*r = (run_tasks){.v = calloc(cap + 1, sizeof *r->v), .shard = calloc(cap + 1, sizeof *r->shard), .cap = cap,
			 .src = st_source_create(), .sink = st_sink_create()};
	if (!r->v || !r->shard || !r->src || !r->sink)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	return LQ_OK;
}

lq_task *run_tasks_add(run_tasks *r, size_t shard)
{
	if (r->n == r->cap)
		return NULL;
	r->shard[r->n] = shard;
	return &r->v[r->n++];
}

void run_tasks_free(run_tasks *r)
{
	free(r->v);
	free(r->shard);
	st_source_free(r->src);
	st_sink_free(r->sink);
	*r = (run_tasks){0};
}

uint64_t run_tasks_memory(const lq_ctx *ctx, const run_tasks *r)
{
	return lq_execute_memory_bound(ctx, r->v, r->n) + (r->src ? st_source_memory(r->src) : 0);
}

typedef struct progress {
	const char *what;
} progress;

static bool on_progress(void *arg, uint64_t done, uint64_t total)
{
	cli_progress(((const progress *)arg)->what, done, total);
	return !cli_interrupted();
}

/* The output's sink, and then the tool's observer of each task's result. */
typedef struct observed_sink {
	lq_sink inner;
	const run_tasks *r;
	bool observer_failed; /* on_result failed: its only failure is memory */
} observed_sink;

static lq_status observed_write(void *self, int32_t output, uint64_t offset, const void *src, size_t len)
{
	const observed_sink *o = self;
	return o->inner.write(o->inner.self, output, offset, src, len);
}

static lq_status observed_task_done(void *self, const lq_task *t, const lq_task_result *result)
{
	observed_sink *o = self;
	lq_status st = o->inner.task_done ? o->inner.task_done(o->inner.self, t, result) : LQ_OK;
	if (st == LQ_OK && (st = o->r->on_result(o->r->on_result_arg, t, result)) != LQ_OK)
		o->observer_failed = true;
	return st;
}

static const char *observed_error(void *self)
{
	const observed_sink *o = self;
	return o->observer_failed ? "out of memory" : o->inner.error_string(o->inner.self);
}

lq_status run_tasks_execute(lq_ctx *ctx, out_model *om, const hf_model *m, const run_tasks *r, const char *what,
			    char *err)
{
	lq_status st = om_open(om, err);
	if (st != LQ_OK)
		return st;
	/* the tasks of the shards this run writes, in plan order */
	lq_task *todo = calloc(r->n + 1, sizeof *todo);
	if (!todo)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		if (om_shard_todo(om, r->shard[i]))
			todo[n++] = r->v[i];
	lq_source source = st_source_iface(r->src);
	lq_sink sink = st_sink_iface(r->sink);
	observed_sink observed = {sink, r, false};
	if (r->on_result)
		sink = (lq_sink){.self = &observed, .write = observed_write, .task_done = observed_task_done,
				 .error_string = observed_error};
	progress shown = {what};
	st = lq_execute(ctx, todo, n, &source, &sink, on_progress, &shown);
	cli_progress_end();
	free(todo);
	if (st != LQ_OK)
		return fmt_fail(err, st, "%s", st == LQ_ERR_CANCELLED ? "interrupted" : lq_ctx_error_string(ctx));
	if (hf_model_is_stream(m) && (st = st_file_stream_end(m->shards[0].st)) != LQ_OK)
		return fmt_fail(err, st, "%s", st_file_error(m->shards[0].st));
	return LQ_OK;
}

/* A sink that keeps no byte: the tasks run for what they compute. */
static lq_status discard_write(void *self, int32_t output, uint64_t offset, const void *src, size_t len)
{
	(void)self, (void)output, (void)offset, (void)src, (void)len;
	return LQ_OK;
}

static const char *discard_error(void *self)
{
	(void)self;
	return "";
}

lq_status run_tasks_measure(lq_ctx *ctx, const run_tasks *r, const char *what, char *err)
{
	observed_sink observed = {{.write = discard_write, .error_string = discard_error}, r, false};
	lq_sink sink = {.self = &observed, .write = observed_write, .task_done = observed_task_done,
			.error_string = observed_error};
	lq_source source = st_source_iface(r->src);
	progress shown = {what};
	lq_status st = lq_execute(ctx, r->v, r->n, &source, &sink, on_progress, &shown);
	cli_progress_end();
	if (st != LQ_OK)
		return fmt_fail(err, st, "%s", st == LQ_ERR_CANCELLED ? "interrupted" : lq_ctx_error_string(ctx));
	return LQ_OK;
}

