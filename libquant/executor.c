/*
 * executor.c: the streaming executor. Three stages run at once over a ring of staging slots:
 *
 *   reader thread   source → slot input buffer            (task order, consecutive offsets)
 *   caller thread   compute on the pool: input → output   (quantize; copies pass through)
 *   writer thread   slot output → sink                    (then the task's constants and task_done)
 *
 * A tensor is cut into chunks of at most CHUNK_BYTES of input at block boundaries, so memory is bounded
 * by the ring and by the per-tensor absmax arrays, whatever the model's size. Each slot moves through
 * FREE → FULL → COMPUTED → FREE; the stages visit slots in the same sequence, so order is kept without
 * any sorting. The first failure in any stage stops all three.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lq_internal.h"

#define NSLOTS 4
#define CHUNK_BYTES ((size_t)16 << 20)

enum slot_state { SLOT_FREE, SLOT_FULL, SLOT_COMPUTED };

/* What a quantize task keeps from its first chunk to its last write. */
typedef struct task_state {
	int64_t nblocks;
	float *absmax;
	uint8_t *absmax_q;
	float *nested_absmax;
	lq_task_result result;
} task_state;

typedef struct slot {
	enum slot_state state;
	size_t task;
	uint64_t offset; /* input byte offset within the tensor */
	size_t len;      /* input bytes */
	int64_t elem0;   /* first element (quantize) */
	int64_t nelem;
	bool first, last;
	unsigned char *in;
	unsigned char *out;
	size_t out_len;
	task_state *ts;
} slot;

typedef struct exec {
	lq_ctx *ctx;
	const lq_task *tasks;
	size_t ntasks;
	const lq_source *source;
	const lq_sink *sink;
	lq_progress_fn progress;
	void *progress_arg;
	uint64_t total_bytes, done_bytes;
	slot slots[NSLOTS];
	pthread_mutex_t lock;
	pthread_cond_t changed;
	lq_status status; /* the first failure; LQ_OK while running */
	char err[LQ_ERRBUF];
} exec;

static size_t elem_size(const lq_task *t)
{
	return t->op == LQ_OP_QUANTIZE4 ? lq_dtype_size(t->dtype) : 1;
}

/* Elements (bytes for a copy) per chunk: a whole number of blocks. */
static uint64_t chunk_units(const lq_task *t)
{
	uint64_t units = CHUNK_BYTES / elem_size(t);
	if (t->op == LQ_OP_QUANTIZE4) {
		uint64_t bs = (uint64_t)t->quant.blocksize;
		units = units / bs * bs;
		if (units == 0)
			units = bs;
	}
	return units;
}

static uint64_t task_units(const lq_task *t)
{
	return t->nbytes / elem_size(t);
}

static uint64_t task_chunks(const lq_task *t)
{
	uint64_t u = task_units(t);
	return u == 0 ? 1 : (u - 1) / chunk_units(t) + 1;
}

/* Records the first failure and wakes every stage. Call with the lock held. */
static void fail_locked(exec *ex, lq_status status, const char *fmt, ...) LQ_PRINTF(3, 4);
static void fail_locked(exec *ex, lq_status status, const char *fmt, ...)
{
	if (ex->status == LQ_OK) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ex->err, sizeof ex->err, fmt, ap);
		va_end(ap);
		ex->status = status;
	}
	pthread_cond_broadcast(&ex->changed);
}

static const char *callee_message(const char *(*fn)(void *), void *self, lq_status status)
{
	const char *m = fn ? fn(self) : NULL;
	return m && *m ? m : lq_status_string(status);
}

/* Waits until slot s is in `state` or the run failed; returns false on failure. Lock held. */
static bool wait_slot(exec *ex, slot *s, enum slot_state state)
{
	while (s->state != state && ex->status == LQ_OK)
		pthread_cond_wait(&ex->changed, &ex->lock);
	return ex->status == LQ_OK;
}

static void set_slot(exec *ex, slot *s, enum slot_state state)
{
	pthread_mutex_lock(&ex->lock);
	s->state = state;
	pthread_cond_broadcast(&ex->changed);
	pthread_mutex_unlock(&ex->lock);
}

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
/* Tensors are little-endian on disk; on a big-endian host elements are swapped in the staging buffers. */
static void swap_elements(void *p, size_t n, size_t size)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++, b += size)
		for (size_t k = 0; k < size / 2; k++) {
			unsigned char t = b[k];
			b[k] = b[size - 1 - k];
			b[size - 1 - k] = t;
		}
}
#else
static void swap_elements(void *p, size_t n, size_t size)
{
	(void)p;
	(void)n;
	(void)size;
}
#endif

/* ------------------------------------------------------------------------------------ reader */

static void *reader_main(void *arg)
{
	exec *ex = arg;
	uint64_t seq = 0;
	for (size_t ti = 0; ti < ex->ntasks; ti++) {
		const lq_task *t = &ex->tasks[ti];
		uint64_t units = task_units(t), per = chunk_units(t), nchunks = task_chunks(t);
		size_t esize = elem_size(t);
		for (uint64_t c = 0; c < nchunks; c++, seq++) {
			slot *s = &ex->slots[seq % NSLOTS];
			pthread_mutex_lock(&ex->lock);
			bool ok = wait_slot(ex, s, SLOT_FREE);
			pthread_mutex_unlock(&ex->lock);
			if (!ok)
				return NULL;
			uint64_t u0 = c * per, u1 = u0 + per < units ? u0 + per : units;
			s->task = ti;
			s->elem0 = (int64_t)u0;
			s->nelem = (int64_t)(u1 - u0);
			s->offset = u0 * esize;
			s->len = (size_t)((u1 - u0) * esize);
			s->first = c == 0;
			s->last = c == nchunks - 1;
			lq_status st = s->len ? ex->source->read(ex->source->self, t->input, s->offset, s->in, s->len)
					      : LQ_OK;
			if (st != LQ_OK) {
				pthread_mutex_lock(&ex->lock);
				fail_locked(ex, st, "%s", callee_message(ex->source->error_string, ex->source->self, st));
				pthread_mutex_unlock(&ex->lock);
				return NULL;
			}
			if (t->op == LQ_OP_QUANTIZE4)
				swap_elements(s->in, (size_t)s->nelem, esize);
			set_slot(ex, s, SLOT_FULL);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------------------------ writer */

static lq_status write_out(exec *ex, int32_t output, uint64_t offset, const void *p, size_t len)
{
	if (len == 0 || output < 0)
		return LQ_OK;
	return ex->sink->write(ex->sink->self, output, offset, p, len);
}

static void task_state_free(task_state *ts)
{
	if (!ts)
		return;
	free(ts->absmax);
	free(ts->absmax_q);
	free(ts->nested_absmax);
	free(ts);
}

/* The last writes of a quantize task: its block constants. */
static lq_status write_constants(exec *ex, const lq_task *t, task_state *ts)
{
	lq_status st;
	if (t->quant.double_quant) {
		int64_t nested = lq_quant_nested_blocks(ts->nblocks);
		swap_elements(ts->nested_absmax, (size_t)nested, 4);
		st = write_out(ex, t->out_absmax, 0, ts->absmax_q, (size_t)ts->nblocks);
		if (st == LQ_OK)
			st = write_out(ex, t->out_nested_absmax, 0, ts->nested_absmax, (size_t)nested * 4);
	} else {
		swap_elements(ts->absmax, (size_t)ts->nblocks, 4);
		st = write_out(ex, t->out_absmax, 0, ts->absmax, (size_t)ts->nblocks * 4);
	}
	return st;
}

static void *writer_main(void *arg)
{
	exec *ex = arg;
	uint64_t seq = 0;
	for (size_t ti = 0; ti < ex->ntasks; ti++) {
		const lq_task *t = &ex->tasks[ti];
		uint64_t nchunks = task_chunks(t);
		for (uint64_t c = 0; c < nchunks; c++, seq++) {
			slot *s = &ex->slots[seq % NSLOTS];
			pthread_mutex_lock(&ex->lock);
			bool ok = wait_slot(ex, s, SLOT_COMPUTED);
			pthread_mutex_unlock(&ex->lock);
			if (!ok)
				return NULL;
			lq_status st;
			if (t->op == LQ_OP_QUANTIZE4)
				st = write_out(ex, t->out_data, (uint64_t)s->elem0 / 2, s->out, s->out_len);
			else
				st = write_out(ex, t->out_data, s->offset, s->in, s->len);
			if (st == LQ_OK && s->last && t->op == LQ_OP_QUANTIZE4)
				st = write_constants(ex, t, s->ts);
			if (st != LQ_OK) {
				pthread_mutex_lock(&ex->lock);
				fail_locked(ex, st, "%s", callee_message(ex->sink->error_string, ex->sink->self, st));
				pthread_mutex_unlock(&ex->lock);
				return NULL;
			}
			if (s->last && ex->sink->task_done) {
				lq_task_result none = {0};
				st = ex->sink->task_done(ex->sink->self, t, s->ts ? &s->ts->result : &none);
				if (st != LQ_OK) {
					pthread_mutex_lock(&ex->lock);
					fail_locked(ex, st, "%s", callee_message(ex->sink->error_string, ex->sink->self, st));
					pthread_mutex_unlock(&ex->lock);
					return NULL;
				}
			}
			if (s->last) {
				task_state_free(s->ts);
				s->ts = NULL;
			}
			ex->done_bytes += s->len;
			if (ex->progress && !ex->progress(ex->progress_arg, ex->done_bytes, ex->total_bytes)) {
				pthread_mutex_lock(&ex->lock);
				fail_locked(ex, LQ_ERR_CANCELLED, "cancelled");
				pthread_mutex_unlock(&ex->lock);
				return NULL;
			}
			set_slot(ex, s, SLOT_FREE);
		}
	}
	return NULL;
}

/* ----------------------------------------------------------------------------------- compute */

static task_state *task_state_new(const lq_task *t)
{
	task_state *ts = calloc(1, sizeof *ts);
	if (!ts)
		return NULL;
	int64_t n = (int64_t)task_units(t);
	ts->nblocks = lq_quant_nblocks(n, t->quant.blocksize);
	ts->absmax = malloc((size_t)ts->nblocks * sizeof(float));
	if (t->quant.double_quant) {
		ts->absmax_q = malloc((size_t)ts->nblocks);
		ts->nested_absmax = malloc((size_t)lq_quant_nested_blocks(ts->nblocks) * sizeof(float));
	}
	if (!ts->absmax || (t->quant.double_quant && (!ts->absmax_q || !ts->nested_absmax))) {
		task_state_free(ts);
		return NULL;
	}
	return ts;
}

/* Quantizes the chunk in slot s; for the last chunk also double-quantizes the constants. */
static lq_status compute_quantize(exec *ex, const lq_task *t, slot *s, task_state *ts)
{
	lq_ctx *ctx = ex->ctx;
	int64_t bad = -1;
	lq_status st = lq_quantize_blocks(ctx, s->in, t->dtype, s->nelem, t->quant.qtype, t->quant.blocksize, s->out,
					  ts->absmax + s->elem0 / t->quant.blocksize, &bad);
	if (st == LQ_ERR_NONFINITE) {
		char where[256];
		int64_t i = s->elem0 + bad;
		float v = lq_load_f32(s->in, t->dtype, bad);
		lq_format_index(where, sizeof where, t->shape, t->ndim, i);
		return lq_fail(ctx, st, "%s%stensor '%s': element %s (flat index %" PRId64 ") is %s; refusing to quantize it",
			       t->origin ? t->origin : "", t->origin ? ": " : "", t->name, where, i,
			       v != v ? "NaN" : (v > 0 ? "+inf" : "-inf"));
	}
	if (st != LQ_OK)
		return lq_fail(ctx, st, "%s%stensor '%s': %s", t->origin ? t->origin : "", t->origin ? ": " : "", t->name,
			       lq_ctx_error_string(ctx));
	s->out_len = (size_t)lq_quant_packed_bytes(s->nelem);
	if (s->last && t->quant.double_quant) {
		st = lq_double_quant(ctx, ts->absmax, ts->nblocks, ts->absmax_q, ts->nested_absmax,
				     &ts->result.nested_offset);
		if (st != LQ_OK)
			return lq_fail(ctx, st, "tensor '%s': %s", t->name, lq_ctx_error_string(ctx));
	}
	return LQ_OK;
}

static lq_status check_tasks(lq_ctx *ctx, const lq_task *tasks, size_t ntasks)
{
	for (size_t i = 0; i < ntasks; i++) {
		const lq_task *t = &tasks[i];
		if (t->op == LQ_OP_COPY)
			continue;
		if (t->op != LQ_OP_QUANTIZE4)
			return lq_fail(ctx, LQ_ERR_ARG, "tensor '%s': unknown operation", t->name);
		size_t es = lq_dtype_size(t->dtype);
		if (t->dtype == LQ_DTYPE_U8 || es == 0 || t->nbytes % es != 0 || t->nbytes == 0)
			return lq_fail(ctx, LQ_ERR_ARG, "tensor '%s': cannot quantize %" PRIu64 " bytes of %s", t->name,
				       t->nbytes, lq_dtype_torch_name(t->dtype));
		if (!lq_blocksize_valid(t->quant.blocksize))
			return lq_fail(ctx, LQ_ERR_ARG, "tensor '%s': invalid blocksize %d", t->name,
				       (int)t->quant.blocksize);
	}
	return LQ_OK;
}

uint64_t lq_execute_memory_bound(const lq_ctx *ctx, const lq_task *tasks, size_t ntasks)
{
	(void)ctx;
	uint64_t largest_state = 0;
	for (size_t i = 0; i < ntasks; i++) {
		const lq_task *t = &tasks[i];
		if (t->op != LQ_OP_QUANTIZE4)
			continue;
		uint64_t nb = (uint64_t)lq_quant_nblocks((int64_t)task_units(t), t->quant.blocksize);
		uint64_t bytes = nb * 4 + (t->quant.double_quant ? nb + (uint64_t)lq_quant_nested_blocks((int64_t)nb) * 4 : 0);
		largest_state = bytes > largest_state ? bytes : largest_state;
	}
	/* input and output buffer per slot, and one task's constants per slot plus the one being computed */
	return NSLOTS * (uint64_t)(CHUNK_BYTES + CHUNK_BYTES / 4) + (NSLOTS + 1) * largest_state;
}

lq_status lq_execute(lq_ctx *ctx, const lq_task *tasks, size_t ntasks, const lq_source *source,
		     const lq_sink *sink, lq_progress_fn progress, void *progress_arg)
{
	lq_clear_error(ctx);
	lq_status st = check_tasks(ctx, tasks, ntasks);
	if (st != LQ_OK)
		return st;
	exec *ex = calloc(1, sizeof *ex);
	if (!ex)
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	*ex = (exec){.ctx = ctx, .tasks = tasks, .ntasks = ntasks, .source = source, .sink = sink,
		     .progress = progress, .progress_arg = progress_arg};
	for (size_t i = 0; i < ntasks; i++)
		ex->total_bytes += tasks[i].nbytes;
	pthread_mutex_init(&ex->lock, NULL);
	pthread_cond_init(&ex->changed, NULL);
	for (int i = 0; i < NSLOTS; i++) {
		ex->slots[i].in = lq_backend_host_alloc(ctx, CHUNK_BYTES);
		ex->slots[i].out = lq_backend_host_alloc(ctx, CHUNK_BYTES / 4);
		if (!ex->slots[i].in || !ex->slots[i].out)
			fail_locked(ex, LQ_ERR_NOMEM, "out of memory for staging buffers");
	}
	pthread_t reader, writer;
	int threads_started = 0;
	if (ex->status == LQ_OK && pthread_create(&reader, NULL, reader_main, ex) == 0) {
		threads_started = 1;
		if (pthread_create(&writer, NULL, writer_main, ex) == 0)
			threads_started = 2;
	}
	if (threads_started < 2) {
		pthread_mutex_lock(&ex->lock);
		fail_locked(ex, LQ_ERR_NOMEM, "out of memory or threads");
		pthread_mutex_unlock(&ex->lock);
	}

	/* The compute stage runs here, on the caller's thread and the pool. */
	uint64_t seq = 0;
	task_state *ts = NULL;
	for (size_t ti = 0; ti < ntasks && ex->status == LQ_OK; ti++) {
		const lq_task *t = &tasks[ti];
		uint64_t nchunks = task_chunks(t);
		for (uint64_t c = 0; c < nchunks; c++, seq++) {
			slot *s = &ex->slots[seq % NSLOTS];
			pthread_mutex_lock(&ex->lock);
			bool ok = wait_slot(ex, s, SLOT_FULL);
			pthread_mutex_unlock(&ex->lock);
			if (!ok)
				break;
			lq_status cst = LQ_OK;
			if (t->op == LQ_OP_QUANTIZE4) {
				if (s->first) {
					ts = task_state_new(t);
					if (!ts)
						cst = lq_fail(ctx, LQ_ERR_NOMEM, "tensor '%s': out of memory", t->name);
				}
				if (cst == LQ_OK)
					cst = compute_quantize(ex, t, s, ts);
				if (cst == LQ_OK && s->last) {
					s->ts = ts; /* the writer owns it from here */
					ts = NULL;
				}
			}
			if (cst != LQ_OK) {
				pthread_mutex_lock(&ex->lock);
				fail_locked(ex, cst, "%s", lq_ctx_error_string(ctx));
				pthread_mutex_unlock(&ex->lock);
				break;
			}
			set_slot(ex, s, SLOT_COMPUTED);
		}
	}
	if (threads_started >= 1)
		pthread_join(reader, NULL);
	if (threads_started == 2)
		pthread_join(writer, NULL);
	task_state_free(ts);
	for (int i = 0; i < NSLOTS; i++) {
		task_state_free(ex->slots[i].ts);
		lq_backend_host_free(ctx, ex->slots[i].in);
		lq_backend_host_free(ctx, ex->slots[i].out);
	}
	st = ex->status;
	if (st != LQ_OK)
		lq_fail(ctx, st, "%s", ex->err);
	else
		lq_clear_error(ctx);
	pthread_mutex_destroy(&ex->lock);
	pthread_cond_destroy(&ex->changed);
	free(ex);
	return st;
}
