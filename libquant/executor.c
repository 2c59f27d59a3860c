/*
 * executor.c: the streaming executor. Three stages run at once over a ring of staging slots:
 *
 *   reader thread   source → slot input buffers           (task order, consecutive offsets per input)
 *   caller thread   compute on the pool: input → output   (the task's op)
 *   writer thread   slot output → sink                    (then the task's constants and task_done)
 *
 * and a fourth where a task measures what it computed (op->measure: loramerge --fidelity's sums), between
 * compute and writer: the measure thread, so that the figures of one chunk are summed while the next ones
 * are computed, on the cores the I/O leaves idle, not after them.
 *
 * What happens to a task's bytes is its operation's business (op.h): the table below gives each lq_op
 * its lq_op_impl, which says how the input is cut into chunks and what each stage does with a chunk.
 * Memory is bounded by the ring and by one task's state per slot, whatever the model's size. Each slot
 * moves through FREE → FULL → COMPUTED → FREE; the stages visit slots in the same sequence, so order is
 * kept without any sorting. The first failure in any stage stops all three.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "op.h"

#define NSLOTS 4

static const lq_op_impl *const ops[] = {
	[LQ_OP_COPY] = &lq_op_copy,
	[LQ_OP_QUANTIZE4] = &lq_op_quantize4,
	[LQ_OP_MERGE] = &lq_op_merge,
	[LQ_OP_COMPARE] = &lq_op_compare,
};

static const lq_op_impl *op_of(const lq_task *t)
{
	return (unsigned)t->op < sizeof ops / sizeof ops[0] ? ops[t->op] : NULL;
}

enum slot_state { SLOT_FREE, SLOT_FULL, SLOT_COMPUTED, SLOT_MEASURED };

typedef struct slot {
	enum slot_state state;
	size_t task;
	lq_chunk c;          /* its in, in2 and out point into the buffers below */
	unsigned char *in, *in2, *out;
	void *side;          /* first chunk: the side inputs, for the op's begin */
	lq_held *whole;      /* first chunk: the main input read whole (the compute stage's reference) */
	lq_held *in_whole;   /* the buffer c.in points into when the input was read whole (the slot's
			      * reference, let go when the slot is free again), else NULL: c.in is in */
	void *task_state;    /* last chunk: the task's state, the writer's from then on */
	void *state_ref;     /* every chunk: the task's state as compute left it (the measure's to read) */
	unsigned char *aux;  /* op->aux_bytes: what compute leaves for the measure */
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
	lq_run run;       /* what the compute stage's op functions see */
	bool measuring;   /* a task measures: the measure thread runs, the writer waits for it */
} exec;

static uint64_t task_chunks(const lq_op_impl *op, const lq_task *t)
{
	uint64_t u = op->units(t);
	return u == 0 ? 1 : (u - 1) / op->chunk_units(t) + 1;
}

static bool task_measures(const lq_op_impl *op, const lq_task *t)
{
	return op->measure && op->measures && op->measures(t);
}

static int32_t second_input(const lq_op_impl *op, const lq_task *t)
{
	return op->second_input ? op->second_input(t) : -1;
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

static void fail(exec *ex, lq_status status, const char *message)
{
	pthread_mutex_lock(&ex->lock);
	fail_locked(ex, status, "%s", message);
	pthread_mutex_unlock(&ex->lock);
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

static bool wait_for(exec *ex, slot *s, enum slot_state state)
{
	pthread_mutex_lock(&ex->lock);
	bool ok = wait_slot(ex, s, state);
	pthread_mutex_unlock(&ex->lock);
	return ok;
}

static void set_slot(exec *ex, slot *s, enum slot_state state)
{
	pthread_mutex_lock(&ex->lock);
	s->state = state;
	pthread_cond_broadcast(&ex->changed);
	pthread_mutex_unlock(&ex->lock);
}

/* ------------------------------------------------------------------------------------ reader */

/* Whether the chunks of an input read whole are served from it in place: where the host's staging memory
 * is plain memory (the CPU's); a GPU copies faster from its own pinned slots than from the malloc'd
 * buffer, so there each chunk is copied into its slot first. */
static bool serve_in_place(const exec *ex)
{
	return LQ_BACKEND(ex->ctx, host_alloc) == &lq_backend_cpu;
}

/* Fills slot s with chunk c of task t: its side inputs first when it is the first. */
static lq_status read_chunk(exec *ex, const lq_op_impl *op, const lq_task *t, slot *s, uint64_t c, lq_held **whole)
{
	uint64_t units = op->units(t), per = op->chunk_units(t), nchunks = task_chunks(op, t);
	uint64_t u0 = c * per, u1 = u0 + per < units ? u0 + per : units;
	s->c = (lq_chunk){.elem0 = (int64_t)u0, .nelem = (int64_t)(u1 - u0), .first = c == 0, .last = c == nchunks - 1,
			  .in = s->in, .offset = op->input_bytes(t, 0, u0), .len = (size_t)op->input_bytes(t, u0, u1),
			  .out = s->out, .aux = s->aux};
	lq_status st = LQ_OK;
	if (s->c.first && op->read_side) {
		st = op->read_side(ex->source, &ex->ctx->reuse, t, &s->side, &s->whole);
		if (st == LQ_OK && s->whole) { /* the reader serves the chunks from it */
			*whole = s->whole;
			lq_held_retain(*whole);
		}
	}
	if (st == LQ_OK && s->c.len && *whole && serve_in_place(ex)) {
		s->c.in = (*whole)->data + s->c.offset; /* a stream cannot be read twice */
		s->in_whole = *whole;
		lq_held_retain(s->in_whole);
	} else if (st == LQ_OK && s->c.len && *whole)
		memcpy(s->in, (*whole)->data + s->c.offset, s->c.len);
	else if (st == LQ_OK && s->c.len)
		st = ex->source->read(ex->source->self, t->input, s->c.offset, s->in, s->c.len);
	const int32_t in2 = second_input(op, t);
	if (st == LQ_OK && in2 >= 0) {
		s->c.in2 = s->in2;
		s->c.len2 = (size_t)op->second_bytes(t, u0, u1);
		if (s->c.len2)
			st = ex->source->read(ex->source->self, in2, op->second_bytes(t, 0, u0), s->in2, s->c.len2);
	}
	return st;
}

static void *reader_main(void *arg)
{
	exec *ex = arg;
	uint64_t seq = 0;
	for (size_t ti = 0; ti < ex->ntasks; ti++) {
		const lq_task *t = &ex->tasks[ti];
		const lq_op_impl *op = op_of(t);
		const uint64_t nchunks = task_chunks(op, t);
		lq_held *whole = NULL; /* the task's input, already read whole */
		for (uint64_t c = 0; c < nchunks; c++, seq++) {
			slot *s = &ex->slots[seq % NSLOTS];
			if (!wait_for(ex, s, SLOT_FREE)) {
				lq_held_release(whole);
				return NULL;
			}
			s->task = ti;
			lq_status st = read_chunk(ex, op, t, s, c, &whole);
			if (st != LQ_OK) {
				fail(ex, st, callee_message(ex->source->error_string, ex->source->self, st));
				lq_held_release(whole);
				return NULL;
			}
			set_slot(ex, s, SLOT_FULL);
		}
		lq_held_release(whole);
	}
	return NULL;
}

/* ------------------------------------------------------------------------------------ writer */

static void *writer_main(void *arg)
{
	exec *ex = arg;
	uint64_t seq = 0;
	for (size_t ti = 0; ti < ex->ntasks; ti++) {
		const lq_task *t = &ex->tasks[ti];
		const lq_op_impl *op = op_of(t);
		const uint64_t nchunks = task_chunks(op, t);
		for (uint64_t c = 0; c < nchunks; c++, seq++) {
			slot *s = &ex->slots[seq % NSLOTS];
			if (!wait_for(ex, s, ex->measuring ? SLOT_MEASURED : SLOT_COMPUTED))
				return NULL;
			lq_status st = op->write(ex->sink, t, &s->c, s->c.last ? s->task_state : NULL);
			if (st == LQ_OK && s->c.last && ex->sink->task_done) {
				static const lq_task_result none = {.first_nonfinite = -1};
				st = ex->sink->task_done(ex->sink->self, t, op->result && s->task_state ? op->result(s->task_state) : &none);
			}
			if (st != LQ_OK) {
				fail(ex, st, callee_message(ex->sink->error_string, ex->sink->self, st));
				return NULL;
			}
			if (s->c.last && op->free_state) {
				op->free_state(s->task_state);
				s->task_state = NULL;
			}
			lq_held_release(s->in_whole);
			s->in_whole = NULL;
			ex->done_bytes += s->c.len;
			if (ex->progress && !ex->progress(ex->progress_arg, ex->done_bytes, ex->total_bytes)) {
				fail(ex, LQ_ERR_CANCELLED, "cancelled");
				return NULL;
			}
			set_slot(ex, s, SLOT_FREE);
		}
	}
	return NULL;
}

/* ----------------------------------------------------------------------------------- measure */

static void *measure_main(void *arg)
{
	exec *ex = arg;
	uint64_t seq = 0;
	for (size_t ti = 0; ti < ex->ntasks; ti++) {
		const lq_task *t = &ex->tasks[ti];
		const lq_op_impl *op = op_of(t);
		const uint64_t nchunks = task_chunks(op, t);
		const bool measures = task_measures(op, t);
		for (uint64_t c = 0; c < nchunks; c++, seq++) {
			slot *s = &ex->slots[seq % NSLOTS];
			if (!wait_for(ex, s, SLOT_COMPUTED))
				return NULL;
			lq_status st = measures ? op->measure(ex->ctx, t, &s->c, s->state_ref) : LQ_OK;
			if (st != LQ_OK) {
				fail(ex, st, st == LQ_ERR_NOMEM ? "out of memory" : lq_status_string(st));
				return NULL;
			}
			set_slot(ex, s, SLOT_MEASURED);
		}
	}
	return NULL;
}

/* ----------------------------------------------------------------------------------- compute */

/* The compute stage's work on slot s: the task's state from its side inputs on the first chunk, then
 * the chunk. *state is the task's state from chunk to chunk; on the last one it goes with the slot. */
static lq_status compute_chunk(exec *ex, const lq_op_impl *op, const lq_task *t, slot *s, void **state)
{
	lq_ctx *ctx = ex->ctx;
	lq_status st = LQ_OK;
	if (s->c.first) {
		if (op->begin) {
			lq_clear_error(ctx);
			st = op->begin(&ex->run, t, s->side, s->whole, state);
			if (st != LQ_OK && !lq_ctx_error_string(ctx)[0])
				lq_fail_tensor(ctx, st, t->origin, t->name, "%s",
					       st == LQ_ERR_NOMEM ? "out of memory" : lq_status_string(st));
		}
		if (op->free_side)
			op->free_side(s->side);
		s->side = NULL;
		lq_held_release(s->whole);
		s->whole = NULL;
	}
	s->c.out_len = 0;
	s->state_ref = *state;
	if (st == LQ_OK && op->compute)
		st = op->compute(&ex->run, t, &s->c, *state);
	if (st == LQ_OK && s->c.last) {
		s->task_state = *state; /* the writer's from here */
		*state = NULL;
	}
	return st;
}

lq_status lq_execute(lq_ctx *ctx, const lq_task *tasks, size_t ntasks, const lq_source *source,
		     const lq_sink *sink, lq_progress_fn progress, void *progress_arg)
{
	lq_clear_error(ctx);
	size_t out_size = LQ_CHUNK_BYTES / 4, scratch = 0, aux = 0;
	bool second = false, measuring = false;
	for (size_t i = 0; i < ntasks; i++) {
		const lq_op_impl *op = op_of(&tasks[i]);
		if (!op)
			return lq_fail_tensor(ctx, LQ_ERR_ARG, tasks[i].origin, tasks[i].name, "unknown operation");
		lq_status st = op->check(ctx, &tasks[i]);
		if (st != LQ_OK)
			return st;
		out_size = op->out_bytes > out_size ? op->out_bytes : out_size;
		scratch = op->scratch_bytes > scratch ? op->scratch_bytes : scratch;
		second |= second_input(op, &tasks[i]) >= 0;
		measuring |= task_measures(op, &tasks[i]);
		const size_t a = op->aux_bytes ? op->aux_bytes(&tasks[i]) : 0;
		aux = a > aux ? a : aux;
	}
	exec *ex = calloc(1, sizeof *ex);
	if (!ex)
		return lq_fail(ctx, LQ_ERR_NOMEM, "out of memory");
	*ex = (exec){.ctx = ctx, .tasks = tasks, .ntasks = ntasks, .source = source, .sink = sink,
		     .progress = progress, .progress_arg = progress_arg, .run = {.ctx = ctx}, .measuring = measuring};
	for (size_t i = 0; i < ntasks; i++)
		ex->total_bytes += tasks[i].nbytes;
	pthread_mutex_init(&ex->lock, NULL);
	pthread_cond_init(&ex->changed, NULL);
	if (scratch && !(ex->run.scratch = malloc(scratch)))
		fail_locked(ex, LQ_ERR_NOMEM, "out of memory for staging buffers");
	for (int i = 0; i < NSLOTS; i++) {
		slot *s = &ex->slots[i];
		s->in = LQ_BACKEND(ctx, host_alloc)->host_alloc(ctx, LQ_CHUNK_BYTES);
		s->out = LQ_BACKEND(ctx, host_alloc)->host_alloc(ctx, out_size);
		if (second)
			s->in2 = LQ_BACKEND(ctx, host_alloc)->host_alloc(ctx, LQ_CHUNK_BYTES);
		if (aux)
			s->aux = malloc(aux);
		if (!s->in || !s->out || (second && !s->in2) || (aux && !s->aux))
			fail_locked(ex, LQ_ERR_NOMEM, "out of memory for staging buffers");
	}
	pthread_t reader, writer, measurer;
	int threads_started = 0;
	bool measurer_started = false;
	if (ex->status == LQ_OK && pthread_create(&reader, NULL, reader_main, ex) == 0) {
		threads_started = 1;
		if (pthread_create(&writer, NULL, writer_main, ex) == 0)
			threads_started = 2;
	}
	if (threads_started == 2 && measuring)
		measurer_started = pthread_create(&measurer, NULL, measure_main, ex) == 0;
	if (threads_started < 2 || measuring != measurer_started)
		fail(ex, LQ_ERR_NOMEM, "out of memory or threads");

	/* The compute stage runs here, on the caller's thread and the pool. */
	uint64_t seq = 0;
	void *state = NULL;        /* the state of the task being computed, */
	const lq_op_impl *state_op = NULL; /* and its op */
	for (size_t ti = 0; ti < ntasks && ex->status == LQ_OK; ti++) {
		const lq_task *t = &tasks[ti];
		const lq_op_impl *op = op_of(t);
		const uint64_t nchunks = task_chunks(op, t);
		state_op = op;
		for (uint64_t c = 0; c < nchunks; c++, seq++) {
			slot *s = &ex->slots[seq % NSLOTS];
			if (!wait_for(ex, s, SLOT_FULL))
				break;
			lq_status st = compute_chunk(ex, op, t, s, &state);
			if (st != LQ_OK) {
				fail(ex, st, lq_ctx_error_string(ctx));
				break;
			}
			set_slot(ex, s, SLOT_COMPUTED);
		}
	}
	if (threads_started >= 1)
		pthread_join(reader, NULL);
	if (threads_started == 2)
		pthread_join(writer, NULL);
	if (measurer_started)
		pthread_join(measurer, NULL);
	if (state && state_op->free_state)
		state_op->free_state(state);
	free(ex->run.scratch);
	for (int i = 0; i < NSLOTS; i++) {
		slot *s = &ex->slots[i];
		const lq_op_impl *op = s->task < ntasks ? op_of(&tasks[s->task]) : NULL;
		if (op && op->free_state && s->task_state)
			op->free_state(s->task_state);
		if (op && op->free_side && s->side)
			op->free_side(s->side);
		lq_held_release(s->whole);
		lq_held_release(s->in_whole);
		LQ_BACKEND(ctx, host_free)->host_free(ctx, s->in);
		LQ_BACKEND(ctx, host_free)->host_free(ctx, s->in2);
		LQ_BACKEND(ctx, host_free)->host_free(ctx, s->out);
		free(s->aux);
	}
	lq_status st = ex->status;
	if (st != LQ_OK)
		lq_fail(ctx, st, "%s", ex->err);
	else
		lq_clear_error(ctx);
	pthread_mutex_destroy(&ex->lock);
	pthread_cond_destroy(&ex->changed);
	free(ex);
	return st;
}

uint64_t lq_execute_memory_bound(const lq_ctx *ctx, const lq_task *tasks, size_t ntasks)
{
	(void)ctx;
	uint64_t largest_state = 0;
	size_t out_size = LQ_CHUNK_BYTES / 4, scratch = 0, aux = 0;
	bool second = false;
	for (size_t i = 0; i < ntasks; i++) {
		const lq_op_impl *op = op_of(&tasks[i]);
		if (!op)
			continue;
		const size_t a = op->aux_bytes ? op->aux_bytes(&tasks[i]) : 0;
		aux = a > aux ? a : aux;
		uint64_t bytes = op->state_bytes(&tasks[i]);
		largest_state = bytes > largest_state ? bytes : largest_state;
		out_size = op->out_bytes > out_size ? op->out_bytes : out_size;
		scratch = op->scratch_bytes > scratch ? op->scratch_bytes : scratch;
		second |= second_input(op, &tasks[i]) >= 0;
	}
	/* the buffers of every slot, the compute stage's scratch, and one task's state per slot plus the one
	 * being computed */
	return NSLOTS * (uint64_t)(LQ_CHUNK_BYTES + (second ? LQ_CHUNK_BYTES : 0) + out_size + aux) + scratch +
	       (NSLOTS + 1) * largest_state;
}
