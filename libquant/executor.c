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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "lq_internal.h"
#include "torch_mean.h"

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
	/* MERGE: float32 A, B (and B transposed), DoRA magnitudes of rows or factors of columns, per lora;
	 * the order of the row norms; the base's float32 absmax */
	float **a, **b, **bt, **magnitude, **col_factor;
	size_t nloras;
	lq_torch_norm_plan row_plan;
	float *base_absmax;
	uint64_t key;          /* unique to the task in this process: the GPU keeps its adapters by it */
	float *replace;        /* the replacement rows as float32, already rounded to W's type */
	int32_t *replace_of;   /* per row of W: which replacement row, or -1 */
} task_state;

/* A task's input read whole, once, when DoRA on columns needs every row before the first is merged:
 * the reader serves the task's chunks from it and the compute stage reads it in merge_prepare, each
 * holding a reference; the last to let go frees it. */
typedef struct held_input {
	atomic_int refs;
	unsigned char *data;
} held_input;

static void held_release(held_input *h)
{
	if (h && atomic_fetch_sub(&h->refs, 1) == 1) {
		free(h->data);
		free(h);
	}
}

/* The side inputs of a MERGE task, read whole by the reader before its first chunk (raw bytes). */
typedef struct aux_data {
	void **a, **b, **magnitude;
	size_t nloras;
	void *base_absmax, *base_nested;
	void *replace;
	held_input *whole; /* the base itself, for DoRA on columns */
} aux_data;

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
	aux_data *aux; /* MERGE, first chunk: the side inputs */
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
	float *scratch;   /* MERGE: a chunk as float32 (compute stage) */
	size_t out_size;  /* bytes of each slot's output buffer */
} exec;

/* Bytes of input per unit (a byte for copies, an element otherwise; half a byte for 4-bit codes). */
static size_t elem_size(const lq_task *t)
{
	return t->op == LQ_OP_COPY ? 1 : lq_dtype_size(t->dtype);
}

static bool packed_input(const lq_task *t)
{
	return t->op == LQ_OP_MERGE && t->base_quantized;
}

/* Input bytes of units [u0, u1) of a task. */
static uint64_t input_bytes(const lq_task *t, uint64_t u0, uint64_t u1)
{
	if (packed_input(t)) /* units are elements; codes are half a byte, the last byte maybe padded */
		return (u1 + 1) / 2 - u0 / 2;
	return (u1 - u0) * elem_size(t);
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Elements (bytes for a copy) per chunk: a whole number of blocks; for a merge, whole rows too, and at
 * most a quarter of CHUNK_BYTES elements so that their float32 copy fits the scratch buffer. */
static uint64_t chunk_units(const lq_task *t)
{
	if (t->op == LQ_OP_MERGE) {
		uint64_t cols = (uint64_t)t->cols, rows_step = 1;
		if (t->base_quantized) { /* rows * cols a multiple of the block size */
			uint64_t bs = (uint64_t)t->base_quant.blocksize;
			rows_step = bs / gcd_u64(cols, bs);
		}
		if (t->requantize) {
			uint64_t bs = (uint64_t)t->quant.blocksize, need = bs / gcd_u64(cols, bs);
			rows_step = rows_step / gcd_u64(rows_step, need) * need;
		}
		uint64_t rows = CHUNK_BYTES / 4 / (cols ? cols : 1) / rows_step * rows_step;
		return (rows ? rows : rows_step) * cols;
	}
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
	if (t->op == LQ_OP_MERGE)
		return (uint64_t)t->rows * (uint64_t)t->cols;
	return t->nbytes / elem_size(t);
}

static uint64_t task_chunks(const lq_task *t)
{
	uint64_t u = task_units(t);
	return u == 0 ? 1 : (u - 1) / chunk_units(t) + 1;
}

/* Whether lora l of a MERGE task is DoRA on columns (magnitudes [cols]), which needs every row first. */
static bool column_dora(const lq_task *t, size_t l)
{
	return t->loras[l].layout == LQ_LORA_TRANSPOSED && t->loras[l].magnitude_input >= 0;
}

static bool any_column_dora(const lq_task *t)
{
	for (size_t l = 0; t->op == LQ_OP_MERGE && l < t->nloras; l++)
		if (column_dora(t, l))
			return true;
	return false;
}

/* Whether the task's output is a 4-bit group (the QUANTIZE4 outputs). */
static bool quantized_output(const lq_task *t)
{
	return t->op == LQ_OP_QUANTIZE4 || (t->op == LQ_OP_MERGE && t->requantize);
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

/* "NaN", "+inf" or "-inf", for a value that is not finite. */
static const char *nonfinite_name(float v)
{
	return v != v ? "NaN" : (v > 0 ? "+inf" : "-inf");
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

static void aux_free(aux_data *x)
{
	if (!x)
		return;
	for (size_t l = 0; l < x->nloras; l++) {
		free(x->a[l]);
		free(x->b[l]);
		free(x->magnitude[l]);
	}
	free(x->a);
	free(x->b);
	free(x->magnitude);
	free(x->base_absmax);
	free(x->base_nested);
	free(x->replace);
	held_release(x->whole);
	free(x);
}

/* Reads a whole side input of `bytes` bytes. */
static lq_status read_whole(exec *ex, int32_t input, uint64_t bytes, void **out)
{
	*out = malloc(bytes ? (size_t)bytes : 1);
	if (!*out)
		return LQ_ERR_NOMEM;
	return bytes ? ex->source->read(ex->source->self, input, 0, *out, (size_t)bytes) : LQ_OK;
}

/* The side inputs of a MERGE task: A, B and magnitudes of every lora, the base's constants. */
static lq_status read_aux(exec *ex, const lq_task *t, aux_data **result)
{
	aux_data *x = calloc(1, sizeof *x);
	if (!x)
		return LQ_ERR_NOMEM;
	x->nloras = t->nloras;
	x->a = calloc(t->nloras + 1, sizeof *x->a);
	x->b = calloc(t->nloras + 1, sizeof *x->b);
	x->magnitude = calloc(t->nloras + 1, sizeof *x->magnitude);
	lq_status st = x->a && x->b && x->magnitude ? LQ_OK : LQ_ERR_NOMEM;
	for (size_t l = 0; l < t->nloras && st == LQ_OK; l++) {
		const lq_lora *lora = &t->loras[l];
		uint64_t es = lq_dtype_size(lora->ab_dtype), r = (uint64_t)lora->rank;
		uint64_t in = lora->layout == LQ_LORA_TRANSPOSED ? (uint64_t)t->rows : (uint64_t)t->cols;
		uint64_t out = lora->layout == LQ_LORA_TRANSPOSED ? (uint64_t)t->cols : (uint64_t)t->rows;
		st = read_whole(ex, lora->a_input, r * in * es, &x->a[l]);
		if (st == LQ_OK && lora->layout != LQ_LORA_VECTOR)
			st = read_whole(ex, lora->b_input, out * r * es, &x->b[l]);
		if (st == LQ_OK && lora->magnitude_input >= 0)
			st = read_whole(ex, lora->magnitude_input, (column_dora(t, l) ? (uint64_t)t->cols : (uint64_t)t->rows) * 4,
					&x->magnitude[l]);
	}
	if (st == LQ_OK && any_column_dora(t)) {
		if (!(x->whole = calloc(1, sizeof *x->whole)))
			st = LQ_ERR_NOMEM;
		else {
			atomic_init(&x->whole->refs, 1);
			st = read_whole(ex, t->input, t->nbytes, (void **)&x->whole->data);
		}
	}
	if (st == LQ_OK && t->nreplace)
		st = read_whole(ex, t->replace_input, (uint64_t)t->nreplace * (uint64_t)t->cols * lq_dtype_size(t->replace_dtype),
				&x->replace);
	if (st == LQ_OK && t->base_quantized) {
		uint64_t nb = (uint64_t)lq_quant_nblocks(t->rows * t->cols, t->base_quant.blocksize);
		st = read_whole(ex, t->base_absmax_input, t->base_quant.double_quant ? nb : nb * 4, &x->base_absmax);
		if (st == LQ_OK && t->base_quant.double_quant)
			st = read_whole(ex, t->base_nested_input, (uint64_t)lq_quant_nested_blocks((int64_t)nb) * 4,
					&x->base_nested);
	}
	if (st != LQ_OK) {
		aux_free(x);
		return st;
	}
	*result = x;
	return LQ_OK;
}

static void *reader_main(void *arg)
{
	exec *ex = arg;
	uint64_t seq = 0;
	for (size_t ti = 0; ti < ex->ntasks; ti++) {
		const lq_task *t = &ex->tasks[ti];
		uint64_t units = task_units(t), per = chunk_units(t), nchunks = task_chunks(t);
		size_t esize = elem_size(t);
		held_input *whole = NULL; /* the task's input, already read whole */
		for (uint64_t c = 0; c < nchunks; c++, seq++) {
			slot *s = &ex->slots[seq % NSLOTS];
			pthread_mutex_lock(&ex->lock);
			bool ok = wait_slot(ex, s, SLOT_FREE);
			pthread_mutex_unlock(&ex->lock);
			if (!ok) {
				held_release(whole);
				return NULL;
			}
			uint64_t u0 = c * per, u1 = u0 + per < units ? u0 + per : units;
			s->task = ti;
			s->elem0 = (int64_t)u0;
			s->nelem = (int64_t)(u1 - u0);
			s->offset = input_bytes(t, 0, u0);
			s->len = (size_t)input_bytes(t, u0, u1);
			s->first = c == 0;
			s->last = c == nchunks - 1;
			s->aux = NULL;
			lq_status st = LQ_OK;
			if (s->first && t->op == LQ_OP_MERGE)
				st = read_aux(ex, t, &s->aux);
			if (st == LQ_OK && s->first && s->aux && s->aux->whole) {
				whole = s->aux->whole;
				atomic_fetch_add(&whole->refs, 1);
			}
			if (st == LQ_OK && s->len && whole)
				memcpy(s->in, whole->data + s->offset, s->len); /* a stream cannot be read twice */
			else if (st == LQ_OK && s->len)
				st = ex->source->read(ex->source->self, t->input, s->offset, s->in, s->len);
			if (st != LQ_OK) {
				pthread_mutex_lock(&ex->lock);
				fail_locked(ex, st, "%s", callee_message(ex->source->error_string, ex->source->self, st));
				pthread_mutex_unlock(&ex->lock);
				held_release(whole);
				return NULL;
			}
			if (t->op == LQ_OP_QUANTIZE4 || (t->op == LQ_OP_MERGE && !t->base_quantized))
				swap_elements(s->in, (size_t)s->nelem, esize);
			set_slot(ex, s, SLOT_FULL);
		}
		held_release(whole);
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
	for (size_t l = 0; l < ts->nloras; l++) {
		free(ts->a[l]);
		free(ts->b[l]);
		free(ts->bt[l]);
		free(ts->magnitude[l]);
		free(ts->col_factor[l]);
	}
	free(ts->a);
	free(ts->b);
	free(ts->bt);
	free(ts->magnitude);
	free(ts->col_factor);
	free(ts->base_absmax);
	free(ts->replace);
	free(ts->replace_of);
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
			if (quantized_output(t))
				st = write_out(ex, t->out_data, (uint64_t)s->elem0 / 2, s->out, s->out_len);
			else if (t->op == LQ_OP_MERGE)
				st = write_out(ex, t->out_data, (uint64_t)s->elem0 * lq_dtype_size(t->out_dtype), s->out,
					       s->out_len);
			else
				st = write_out(ex, t->out_data, s->offset, s->in, s->len);
			if (st == LQ_OK && s->last && quantized_output(t))
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
	if (!quantized_output(t))
		return ts;
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

/* Double-quantizes the task's block scales (the last chunk's step). bitsandbytes takes the offset as the
 * mean of the scales in float32: scales near the float32 maximum overflow it, and scales that do not
 * come back finite from the 8-bit codes would make a checkpoint that loads as infinities. Both are
 * refused rather than written (the quant_state JSON cannot even hold an infinite offset). */
static lq_status double_quant(exec *ex, const lq_task *t, task_state *ts)
{
	lq_ctx *ctx = ex->ctx;
	float *offset = &ts->result.nested_offset;
	lq_status st = lq_double_quant(ctx, ts->absmax, ts->nblocks, ts->absmax_q, ts->nested_absmax, offset);
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	if (!lq_is_finite_bits(lq_f32_bits(*offset)))
		return lq_fail(ctx, LQ_ERR_NONFINITE, "%s%stensor '%s': the mean of its block scales (the double-quantization "
			       "offset) overflows float32; refusing to write it (quantize it without double quantization)",
			       t->origin ? t->origin : "", t->origin ? ": " : "", t->name);
	/* the scales as a loader dequantizes them, into the float32 scales, which are not written */
	lq_dequantize_absmax_ref(ts->absmax_q, ts->nested_absmax, *offset, ts->nblocks, ts->absmax);
	int64_t bad = lq_first_nonfinite(ts->absmax, LQ_DTYPE_F32, 0, ts->nblocks);
	if (bad >= 0)
		return lq_fail(ctx, LQ_ERR_NONFINITE, "%s%stensor '%s': the scale of block %" PRId64 " dequantizes to %s after "
			       "double quantization; refusing to write it (quantize it without double quantization)",
			       t->origin ? t->origin : "", t->origin ? ": " : "", t->name, bad, nonfinite_name(ts->absmax[bad]));
	return LQ_OK;
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
			       t->origin ? t->origin : "", t->origin ? ": " : "", t->name, where, i, nonfinite_name(v));
	}
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	s->out_len = (size_t)lq_quant_packed_bytes(s->nelem);
	if (s->last && t->quant.double_quant)
		return double_quant(ex, t, ts);
	return LQ_OK;
}

/* ---------------------------------------------------------------------------------------- merge */

typedef struct base_rows_arg {
	exec *ex;
	const lq_task *t;
	const task_state *ts;
	const unsigned char *whole; /* the task's input, whole */
} base_rows_arg;

/* lq_rows_fn: rows [r0, r1) of the base as the merge starts from them (merge_item): float32 rounded to W's
 * type, or the 4-bit codes dequantized and rounded; replaced rows in place. */
static lq_status base_rows(void *arg, int64_t r0, int64_t r1, float *v)
{
	const base_rows_arg *b = arg;
	const lq_task *t = b->t;
	const int64_t cols = t->cols, e0 = r0 * cols, n = (r1 - r0) * cols;
	if (t->base_quantized) {
		/* e0 is a whole number of blocks: the groups are the executor's chunks */
		lq_status st = lq_dequantize_blocks(b->ex->ctx, b->whole + e0 / 2, b->ts->base_absmax + e0 / t->base_quant.blocksize,
						    n, t->base_quant.qtype, t->base_quant.blocksize, LQ_DTYPE_F32, v);
		if (st != LQ_OK)
			return st;
		lq_round_to_n(t->dtype, v, n, v);
	} else {
		const size_t es = lq_dtype_size(t->dtype);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		unsigned char *raw = malloc((size_t)n * es);
		if (!raw)
			return lq_fail(b->ex->ctx, LQ_ERR_NOMEM, "out of memory");
		memcpy(raw, b->whole + (size_t)e0 * es, (size_t)n * es);
		swap_elements(raw, (size_t)n, es);
		lq_load_f32_n(raw, t->dtype, 0, n, v);
		free(raw);
#else
		lq_load_f32_n(b->whole + (size_t)e0 * es, t->dtype, 0, n, v);
#endif
	}
	for (int64_t r = r0; b->ts->replace_of && r < r1; r++) {
		int32_t k = b->ts->replace_of[r];
		if (k >= 0)
			memcpy(v + (r - r0) * cols, b->ts->replace + (int64_t)k * cols, (size_t)cols * 4);
	}
	return LQ_OK;
}

/* DoRA on columns, lora l: its factors over the whole base (read whole by the reader), before the merge
 * writes a row; the groups of rows are the chunks, in the scratch buffer, which is free until the first
 * chunk is merged. */
static lq_status column_factors(exec *ex, const lq_task *t, task_state *ts, const aux_data *x, size_t l)
{
	lq_ctx *ctx = ex->ctx;
	float *mag = malloc((size_t)t->cols * 4);
	ts->col_factor[l] = malloc((size_t)t->cols * 4);
	if (!mag || !ts->col_factor[l]) {
		free(mag);
		return LQ_ERR_NOMEM;
	}
	for (int64_t j = 0; j < t->cols; j++)
		mag[j] = lq_load_f32(x->magnitude[l], LQ_DTYPE_F32, j);
	const lq_merge_job job = {.kernels = ctx->cpu, .w = ex->scratch, .rows = t->rows, .cols = t->cols, .dtype = t->dtype,
				  .loras = t->loras, .nloras = t->nloras, .a = ts->a, .b = ts->b, .bt = ts->bt,
				  .magnitude = ts->magnitude, .col_factor = ts->col_factor, .row_plan = &ts->row_plan};
	base_rows_arg arg = {ex, t, ts, x->whole->data};
	lq_status st = lq_dora_column_factors(ctx, &job, l, mag, base_rows, &arg, (int64_t)(chunk_units(t) / (uint64_t)t->cols),
					      ex->scratch, ts->col_factor[l]);
	free(mag);
	return st == LQ_OK ? LQ_OK : lq_fail_task(ctx, st, t->origin, t->name);
}

/* The float32 forms of a MERGE task's side inputs, from the raw bytes the reader read. */
static lq_status merge_prepare(exec *ex, const lq_task *t, task_state *ts, aux_data *x)
{
	static atomic_uint_fast64_t next_key;
	lq_ctx *ctx = ex->ctx;
	ts->key = atomic_fetch_add(&next_key, 1) + 1;
	ts->a = calloc(t->nloras + 1, sizeof *ts->a);
	ts->b = calloc(t->nloras + 1, sizeof *ts->b);
	ts->bt = calloc(t->nloras + 1, sizeof *ts->bt);
	ts->magnitude = calloc(t->nloras + 1, sizeof *ts->magnitude);
	ts->col_factor = calloc(t->nloras + 1, sizeof *ts->col_factor);
	if (!ts->a || !ts->b || !ts->bt || !ts->magnitude || !ts->col_factor)
		return LQ_ERR_NOMEM;
	ts->nloras = t->nloras; /* task_state_free walks the arrays from here on */
	bool row_dora = false;
	for (size_t l = 0; l < t->nloras; l++)
		row_dora |= t->loras[l].magnitude_input >= 0 && !column_dora(t, l);
	if (lq_torch_norm_plan_make(&ts->row_plan, t->rows, t->cols, 1, LQ_TORCH_REF_SM_COUNT,
				    LQ_TORCH_REF_MAX_THREADS_PER_SM, 0) != 0 && row_dora)
		return lq_fail(ctx, LQ_ERR_UNSUPPORTED, "%s%stensor '%s': too large for DoRA's norms (%" PRId64 " rows)",
			       t->origin ? t->origin : "", t->origin ? ": " : "", t->name, t->rows);
	for (size_t l = 0; l < t->nloras; l++) {
		const lq_lora *lora = &t->loras[l];
		int64_t r = lora->rank;
		int64_t in = lora->layout == LQ_LORA_TRANSPOSED ? t->rows : t->cols;
		int64_t out = lora->layout == LQ_LORA_TRANSPOSED ? t->cols : t->rows;
		ts->a[l] = malloc((size_t)(r * in) * 4 + 4);
		ts->b[l] = malloc((size_t)(out * r) * 4 + 4);
		if (!ts->a[l] || !ts->b[l])
			return LQ_ERR_NOMEM;
		for (int64_t i = 0; i < r * in; i++)
			ts->a[l][i] = lq_load_f32(x->a[l], lora->ab_dtype, i);
		for (int64_t i = 0; x->b[l] && i < out * r; i++)
			ts->b[l][i] = lq_load_f32(x->b[l], lora->ab_dtype, i);
		if (lora->layout == LQ_LORA_TRANSPOSED) { /* B [cols, r] as [r, cols] for the vector kernel */
			ts->bt[l] = malloc((size_t)(out * r) * 4 + 4);
			if (!ts->bt[l])
				return LQ_ERR_NOMEM;
			for (int64_t j = 0; j < out; j++)
				for (int64_t k = 0; k < r; k++)
					ts->bt[l][k * out + j] = ts->b[l][j * r + k];
		}
		if (x->magnitude[l] && !column_dora(t, l)) {
			ts->magnitude[l] = malloc((size_t)t->rows * 4);
			if (!ts->magnitude[l])
				return LQ_ERR_NOMEM;
			for (int64_t i = 0; i < t->rows; i++)
				ts->magnitude[l][i] = lq_load_f32(x->magnitude[l], LQ_DTYPE_F32, i);
		}
	}
	if (t->nreplace) {
		/* PEFT casts the rows to W's type (delta.to(weight.dtype)) and copies them in */
		ts->replace = malloc((size_t)t->nreplace * (size_t)t->cols * 4);
		ts->replace_of = malloc((size_t)t->rows * sizeof *ts->replace_of);
		if (!ts->replace || !ts->replace_of)
			return LQ_ERR_NOMEM;
		for (int64_t i = 0; i < (int64_t)t->nreplace * t->cols; i++)
			ts->replace[i] = lq_round_to(t->dtype, lq_load_f32(x->replace, t->replace_dtype, i));
		for (int64_t i = 0; i < t->rows; i++)
			ts->replace_of[i] = -1;
		for (size_t i = 0; i < t->nreplace; i++)
			ts->replace_of[t->replace_rows[i]] = (int32_t)i;
	}
	if (t->base_quantized) {
		int64_t nb = lq_quant_nblocks(t->rows * t->cols, t->base_quant.blocksize);
		ts->base_absmax = malloc((size_t)nb * 4 + 4);
		if (!ts->base_absmax)
			return LQ_ERR_NOMEM;
		if (t->base_quant.double_quant) {
			swap_elements(x->base_nested, (size_t)lq_quant_nested_blocks(nb), 4);
			lq_status st = lq_dequantize_absmax(ctx, x->base_absmax, x->base_nested, t->base_offset, nb,
							   ts->base_absmax);
			if (st != LQ_OK)
				return lq_fail_task(ctx, st, t->origin, t->name);
		} else {
			for (int64_t j = 0; j < nb; j++)
				ts->base_absmax[j] = lq_load_f32(x->base_absmax, LQ_DTYPE_F32, j);
		}
		/* a scale that is not finite (stored so, or a double-quantization offset that overflows it) would
		 * make every weight of its block infinite or NaN */
		int64_t bad = lq_first_nonfinite(ts->base_absmax, LQ_DTYPE_F32, 0, nb);
		if (bad >= 0)
			return lq_fail(ctx, LQ_ERR_CORRUPT, "%s%stensor '%s': the 4-bit base's scale of block %" PRId64 " is %s%s",
				       t->origin ? t->origin : "", t->origin ? ": " : "", t->name, bad,
				       nonfinite_name(ts->base_absmax[bad]),
				       t->base_quant.double_quant ? " once dequantized (its double quantization overflows)" : "");
	}
	for (size_t l = 0; l < t->nloras; l++)
		if (column_dora(t, l)) {
			lq_status st = column_factors(ex, t, ts, x, l);
			if (st != LQ_OK)
				return st;
		}
	return LQ_OK;
}

typedef struct merge_item_job {
	lq_merge_job job;
	const lq_task *t;
	const task_state *ts;
	const void *in;    /* the chunk's input (float types), NULL when scratch already holds it (a 4-bit base) */
	void *out;         /* where the merged rows go as out_dtype, NULL for a requantization */
	int64_t rows_per_item;
	int64_t nrows;
	int64_t *bad;      /* per item: its first merged element that is not finite (in the chunk), or -1 */
	bool failed;
} merge_item_job;

static void merge_item(void *arg, int64_t item)
{
	merge_item_job *m = arg;
	const int64_t cols = m->job.cols;
	int64_t r0 = item * m->rows_per_item, r1 = r0 + m->rows_per_item < m->nrows ? r0 + m->rows_per_item : m->nrows;
	float *d = malloc((size_t)cols * 4 * LQ_MERGE_GROUP + 4);
	if (!d) {
		m->failed = true;
		return;
	}
	float *w = m->job.w;
	if (m->in)
		lq_load_f32_n(m->in, m->t->dtype, r0 * cols, (r1 - r0) * cols, w + r0 * cols);
	else
		lq_round_to_n(m->t->dtype, w + r0 * cols, (r1 - r0) * cols, w + r0 * cols);
	if (m->ts->replace_of)
		for (int64_t r = r0; r < r1; r++) {
			int32_t k = m->ts->replace_of[m->job.row0 + r];
			if (k >= 0)
				memcpy(w + r * cols, m->ts->replace + (int64_t)k * cols, (size_t)cols * 4);
		}
	lq_merge_rows(&m->job, m->job.row0 + r0, m->job.row0 + r1, d);
	/* the rows as they are written (out_dtype, or the float32 sums a requantization quantizes) */
	int64_t bad;
	if (m->out) {
		lq_store_f32_n(m->out, m->t->out_dtype, r0 * cols, (r1 - r0) * cols, w + r0 * cols);
		bad = lq_first_nonfinite(m->out, m->t->out_dtype, r0 * cols, (r1 - r0) * cols);
	} else {
		bad = lq_first_nonfinite(w, LQ_DTYPE_F32, r0 * cols, (r1 - r0) * cols);
	}
	m->bad[item] = bad < 0 ? -1 : r0 * cols + bad;
	free(d);
}

/* A merged element (element `i` of the chunk in slot s) that is not finite: refused, never written. An
 * adapter that overflows the weight's type, a DoRA row whose norm is zero, a conversion to a narrower type
 * that overflows it all end here, on the CPU and the GPU alike. */
static lq_status fail_nonfinite_merge(exec *ex, const lq_task *t, const slot *s, int64_t i)
{
	char where[256];
	float v = t->requantize ? ex->scratch[i] : lq_load_f32(s->out, t->out_dtype, i);
	int64_t k = s->elem0 + i;
	lq_format_index(where, sizeof where, t->shape, t->ndim, k);
	/* a MERGE without adapters converts a weight's type or dequantizes it */
	const char *what = t->nloras ? "merged" : t->base_quantized ? "dequantized" : "converted";
	return lq_fail(ex->ctx, LQ_ERR_NONFINITE, "%s%stensor '%s': %s element %s (flat index %" PRId64 ") is %s; "
		       "refusing to write it", t->origin ? t->origin : "", t->origin ? ": " : "", t->name, what, where, k,
		       nonfinite_name(v));
}

static lq_status merge_finish(exec *ex, const lq_task *t, slot *s, task_state *ts);

/* Merges the rows of one chunk: the base rows as float32 (dequantized first for a 4-bit base), every
 * adapter in order, then the rows out as out_dtype, or quantized again. */
static lq_status compute_merge(exec *ex, const lq_task *t, slot *s, task_state *ts)
{
	lq_ctx *ctx = ex->ctx;
	const int64_t cols = t->cols, nrows = s->nelem / (cols ? cols : 1), row0 = s->elem0 / (cols ? cols : 1);
	lq_status st;
	const lq_merge_job job = {.kernels = ctx->cpu, .w = ex->scratch, .row0 = row0, .rows = t->rows, .cols = cols,
				  .dtype = t->dtype, .loras = t->loras, .nloras = t->nloras, .a = ts->a, .b = ts->b,
				  .bt = ts->bt, .magnitude = ts->magnitude, .col_factor = ts->col_factor,
				  .row_plan = &ts->row_plan, .keep_last_unrounded = t->requantize};
	/* the GPU, when there is one and the task suits it (rows replaced are merged on the CPU) */
	int64_t bad = -1;
	st = t->nreplace ? LQ_ERR_UNSUPPORTED
			 : lq_backend_merge(ctx, &job, ts->key, nrows, t->base_quantized ? NULL : s->in, t->dtype,
					    t->base_quantized ? s->in : NULL,
					    t->base_quantized ? ts->base_absmax + s->elem0 / t->base_quant.blocksize : NULL,
					    t->base_quant.qtype, t->base_quant.blocksize, t->requantize ? (void *)ex->scratch : (void *)s->out,
					    t->requantize ? LQ_DTYPE_F32 : t->out_dtype, &bad);
	if (st == LQ_ERR_NONFINITE)
		return fail_nonfinite_merge(ex, t, s, bad);
	if (st != LQ_OK && st != LQ_ERR_UNSUPPORTED)
		return lq_fail_task(ctx, st, t->origin, t->name);
	if (st == LQ_OK)
		return merge_finish(ex, t, s, ts);
	if (t->base_quantized) {
		/* the codes to float32 in the scratch buffer; each item rounds its rows to the base's type, which
		 * is what dequantizing to that type gives */
		st = lq_dequantize_blocks(ctx, s->in, ts->base_absmax + s->elem0 / t->base_quant.blocksize, s->nelem,
					  t->base_quant.qtype, t->base_quant.blocksize, LQ_DTYPE_F32, ex->scratch);
		if (st != LQ_OK)
			return lq_fail_task(ctx, st, t->origin, t->name);
	}
	merge_item_job m = {
		.job = job,
		.t = t, .ts = ts, .in = t->base_quantized ? NULL : s->in, .out = t->requantize ? NULL : s->out, .nrows = nrows,
	};
	int64_t items = lq_ctx_threads(ctx) * 4;
	m.rows_per_item = (nrows + items - 1) / (items ? items : 1);
	if (m.rows_per_item < 1)
		m.rows_per_item = 1;
	const int64_t nitems = (nrows + m.rows_per_item - 1) / m.rows_per_item;
	if (!(m.bad = malloc((size_t)nitems * sizeof *m.bad)))
		return lq_fail(ctx, LQ_ERR_NOMEM, "tensor '%s': out of memory", t->name);
	lq_pool_run(ctx->pool, nitems, merge_item, &m);
	for (int64_t i = 0; i < nitems && bad < 0; i++)
		bad = m.bad[i]; /* items are in element order: the first one found is the smallest */
	free(m.bad);
	if (m.failed)
		return lq_fail(ctx, LQ_ERR_NOMEM, "tensor '%s': out of memory", t->name);
	if (bad >= 0)
		return fail_nonfinite_merge(ex, t, s, bad);
	return merge_finish(ex, t, s, ts);
}

/* After the rows of a chunk are merged (in s->out, or as float32 in the scratch buffer for a
 * requantization) and found finite: the output's length, or the requantization. */
static lq_status merge_finish(exec *ex, const lq_task *t, slot *s, task_state *ts)
{
	lq_ctx *ctx = ex->ctx;
	lq_status st;
	if (!t->requantize) {
		s->out_len = (size_t)s->nelem * lq_dtype_size(t->out_dtype);
		return LQ_OK;
	}
	/* PEFT's 4-bit merge: the float32 sum quantized again, like QUANTIZE4 */
	int64_t bad = -1;
	st = lq_quantize_blocks(ctx, ex->scratch, LQ_DTYPE_F32, s->nelem, t->quant.qtype, t->quant.blocksize, s->out,
				ts->absmax + s->elem0 / t->quant.blocksize, &bad);
	if (st == LQ_ERR_NONFINITE)
		return fail_nonfinite_merge(ex, t, s, bad);
	if (st != LQ_OK)
		return lq_fail_task(ctx, st, t->origin, t->name);
	s->out_len = (size_t)lq_quant_packed_bytes(s->nelem);
	if (s->last && t->quant.double_quant)
		return double_quant(ex, t, ts);
	return LQ_OK;
}

static lq_status check_tasks(lq_ctx *ctx, const lq_task *tasks, size_t ntasks)
{
	for (size_t i = 0; i < ntasks; i++) {
		const lq_task *t = &tasks[i];
		if (t->op == LQ_OP_COPY)
			continue;
		if (t->op == LQ_OP_MERGE) {
			if (t->rows < 1 || t->cols < 1 || t->dtype == LQ_DTYPE_U8 || lq_dtype_size(t->dtype) == 0 ||
			    (!t->requantize && (t->out_dtype == LQ_DTYPE_U8 || lq_dtype_size(t->out_dtype) == 0)) ||
			    (t->base_quantized && !lq_blocksize_valid(t->base_quant.blocksize)) ||
			    (t->requantize && !lq_blocksize_valid(t->quant.blocksize)) ||
			    (uint64_t)t->cols * 4 > CHUNK_BYTES)
				return lq_fail(ctx, LQ_ERR_ARG, "tensor '%s': invalid merge", t->name);
			for (size_t l = 0; l < t->nloras; l++)
				if (t->loras[l].rank < 1 || lq_dtype_size(t->loras[l].ab_dtype) == 0 ||
				    t->loras[l].ab_dtype == LQ_DTYPE_U8 ||
				    (t->loras[l].layout == LQ_LORA_VECTOR && (t->loras[l].rank != 1 || t->loras[l].magnitude_input >= 0)))
					return lq_fail(ctx, LQ_ERR_ARG, "tensor '%s': invalid adapter", t->name);
			if (t->nreplace && (t->replace_dtype == LQ_DTYPE_U8 || lq_dtype_size(t->replace_dtype) == 0))
				return lq_fail(ctx, LQ_ERR_ARG, "tensor '%s': invalid row replacement", t->name);
			for (size_t k = 0; k < t->nreplace; k++)
				if (t->replace_rows[k] < 0 || t->replace_rows[k] >= t->rows)
					return lq_fail(ctx, LQ_ERR_ARG, "tensor '%s': row %lld to replace is out of range", t->name,
						       (long long)t->replace_rows[k]);
			continue;
		}
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
		if (t->op == LQ_OP_MERGE) { /* A, B and their float32 forms, the base's constants */
			uint64_t side = 0;
			for (size_t l = 0; l < t->nloras; l++)
				side += 12 * (uint64_t)t->loras[l].rank * (uint64_t)(t->rows + t->cols) + 8 * (uint64_t)t->rows;
			if (t->base_quantized)
				side += (uint64_t)lq_quant_nblocks(t->rows * t->cols, t->base_quant.blocksize) * 8;
			side += (uint64_t)t->nreplace * (uint64_t)t->cols * 8 + (t->nreplace ? 4 * (uint64_t)t->rows : 0);
			if (any_column_dora(t)) { /* the base whole, and the accumulators of the column norms */
				lq_torch_norm_plan plan;
				side += t->nbytes + 8 * (uint64_t)t->cols * t->nloras;
				if (lq_torch_norm_plan_make(&plan, t->rows, t->cols, 0, LQ_TORCH_REF_SM_COUNT,
							    LQ_TORCH_REF_MAX_THREADS_PER_SM, 0) == 0)
					side += 4 * (uint64_t)lq_torch_norm_outer_slots(&plan) * (uint64_t)t->cols;
			}
			largest_state = side > largest_state ? side : largest_state;
		}
		if (!quantized_output(t))
			continue;
		uint64_t nb = (uint64_t)lq_quant_nblocks((int64_t)task_units(t), t->quant.blocksize);
		uint64_t bytes = nb * 4 + (t->quant.double_quant ? nb + (uint64_t)lq_quant_nested_blocks((int64_t)nb) * 4 : 0);
		largest_state = bytes > largest_state ? bytes : largest_state;
	}
	/* input and output buffer per slot, and one task's constants per slot plus the one being computed;
	 * merges have larger output buffers and a float32 chunk */
	bool merges = false;
	for (size_t i = 0; i < ntasks; i++)
		merges |= tasks[i].op == LQ_OP_MERGE;
	return NSLOTS * (uint64_t)(CHUNK_BYTES + (merges ? CHUNK_BYTES : CHUNK_BYTES / 4)) +
	       (merges ? CHUNK_BYTES : 0) + (NSLOTS + 1) * largest_state;
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
	bool merges = false;
	for (size_t i = 0; i < ntasks; i++) {
		ex->total_bytes += tasks[i].nbytes;
		merges |= tasks[i].op == LQ_OP_MERGE;
	}
	pthread_mutex_init(&ex->lock, NULL);
	pthread_cond_init(&ex->changed, NULL);
	/* outputs: 4-bit codes are a quarter of bf16 input at most; a merge's rows can be float32 */
	ex->out_size = merges ? CHUNK_BYTES : CHUNK_BYTES / 4;
	if (merges && !(ex->scratch = malloc(CHUNK_BYTES)))
		fail_locked(ex, LQ_ERR_NOMEM, "out of memory for staging buffers");
	for (int i = 0; i < NSLOTS; i++) {
		ex->slots[i].in = lq_backend_host_alloc(ctx, CHUNK_BYTES);
		ex->slots[i].out = lq_backend_host_alloc(ctx, ex->out_size);
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
			if (t->op != LQ_OP_COPY) {
				if (s->first) {
					ts = task_state_new(t);
					if (!ts)
						cst = lq_fail(ctx, LQ_ERR_NOMEM, "tensor '%s': out of memory", t->name);
					if (cst == LQ_OK && t->op == LQ_OP_MERGE) {
						lq_clear_error(ctx);
						cst = merge_prepare(ex, t, ts, s->aux);
						if (cst == LQ_ERR_NOMEM && !lq_ctx_error_string(ctx)[0])
							lq_fail(ctx, cst, "tensor '%s': out of memory", t->name);
					}
					aux_free(s->aux);
					s->aux = NULL;
				}
				if (cst == LQ_OK)
					cst = t->op == LQ_OP_MERGE ? compute_merge(ex, t, s, ts) : compute_quantize(ex, t, s, ts);
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
	free(ex->scratch);
	for (int i = 0; i < NSLOTS; i++) {
		task_state_free(ex->slots[i].ts);
		aux_free(ex->slots[i].aux);
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
