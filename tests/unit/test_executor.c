/*
 * test_executor.c: the streaming executor against the in-memory calls: tensors larger than a chunk,
 * copies, odd sizes, and every way a run can fail (a non-finite element, a failing read or write, a
 * cancelling progress callback), with the message that reaches the user.
 */
#include <math.h>
#include <stdlib.h>

#include "lq_internal.h"
#include "test.h"
#include "util.h"

typedef struct mem_io {
	unsigned char **in;
	uint64_t *in_len;
	unsigned char **out;
	uint64_t *out_len;
	int32_t fail_read_input; /* -1: none */
	int32_t fail_write_output;
	int done_calls;
	float offsets[16];
	char err[128];
} mem_io;

static lq_status mem_read(void *self, int32_t input, uint64_t offset, void *dst, size_t len)
{
	mem_io *m = self;
	if (input == m->fail_read_input) {
		snprintf(m->err, sizeof m->err, "cannot read 'input %d': Input/output error", input);
		return LQ_ERR_IO;
	}
	if (offset + len > m->in_len[input])
		return LQ_ERR_ARG;
	memcpy(dst, m->in[input] + offset, len);
	return LQ_OK;
}

static lq_status mem_write(void *self, int32_t output, uint64_t offset, const void *src, size_t len)
{
	mem_io *m = self;
	if (output == m->fail_write_output) {
		snprintf(m->err, sizeof m->err, "cannot write 'output %d': No space left on device", output);
		return LQ_ERR_IO;
	}
	if (offset + len > m->out_len[output])
		return LQ_ERR_ARG;
	memcpy(m->out[output] + offset, src, len);
	return LQ_OK;
}

static lq_status mem_done(void *self, const lq_task *task, const lq_task_result *result)
{
	mem_io *m = self;
	if (task->op == LQ_OP_QUANTIZE4)
		m->offsets[task->input] = result->nested_offset;
	m->done_calls++;
	return LQ_OK;
}

static const char *mem_error(void *self)
{
	return ((mem_io *)self)->err;
}

static bool cancel_half(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	return done * 2 < total;
}

/* Three inputs: a bf16 tensor over several chunks (double-quantized), a copy, a small f32 tensor with
 * an odd element count (no double quantization). */
typedef struct setup {
	unsigned char *in[3], *out[8];
	uint64_t in_len[3], out_len[8];
	lq_task tasks[3];
	mem_io io;
} setup;

static void make_setup(setup *s, util_rng *r)
{
	memset(s, 0, sizeof *s);
	const int64_t n0 = 12 * 1024 * 1024 + 64 * 5 + 17; /* 24 MiB of bf16: two chunks and a partial block */
	const int64_t n2 = 777;
	s->in_len[0] = (uint64_t)n0 * 2;
	s->in_len[1] = 1000003;
	s->in_len[2] = (uint64_t)n2 * 4;
	for (int i = 0; i < 3; i++)
		s->in[i] = malloc(s->in_len[i]);
	for (int64_t i = 0; i < n0; i++)
		lq_store_f32(s->in[0], LQ_DTYPE_BF16, i, util_normal(r, 0.03f));
	for (uint64_t i = 0; i < s->in_len[1]; i++)
		s->in[1][i] = (unsigned char)util_next(r);
	for (int64_t i = 0; i < n2; i++)
		lq_store_f32(s->in[2], LQ_DTYPE_F32, i, util_normal(r, 2.0f));
	int64_t nb0 = lq_quant_nblocks(n0, 64), nb2 = lq_quant_nblocks(n2, 128);
	s->out_len[0] = (uint64_t)lq_quant_packed_bytes(n0);
	s->out_len[1] = (uint64_t)nb0;
	s->out_len[2] = (uint64_t)lq_quant_nested_blocks(nb0) * 4;
	s->out_len[3] = s->in_len[1];
	s->out_len[4] = (uint64_t)lq_quant_packed_bytes(n2);
	s->out_len[5] = (uint64_t)nb2 * 4;
	for (int i = 0; i < 6; i++)
		s->out[i] = calloc(1, s->out_len[i]);
	s->tasks[0] = (lq_task){.op = LQ_OP_QUANTIZE4, .name = "big", .input = 0, .dtype = LQ_DTYPE_BF16, .ndim = 2,
				.shape = {n0 / 131, 131}, .nbytes = s->in_len[0], .quant = {LQ_QTYPE_NF4, 64, true},
				.out_data = 0, .out_absmax = 1, .out_nested_absmax = 2};
	s->tasks[0].shape[0] = n0; /* the shape only matters for messages; keep it consistent */
	s->tasks[0].ndim = 1;
	s->tasks[1] = (lq_task){.op = LQ_OP_COPY, .name = "copied", .input = 1, .nbytes = s->in_len[1], .out_data = 3,
				.out_absmax = -1, .out_nested_absmax = -1};
	s->tasks[2] = (lq_task){.op = LQ_OP_QUANTIZE4, .name = "small", .input = 2, .dtype = LQ_DTYPE_F32, .ndim = 2,
				.shape = {7, 111}, .nbytes = s->in_len[2], .quant = {LQ_QTYPE_FP4, 128, false},
				.out_data = 4, .out_absmax = 5, .out_nested_absmax = -1};
	s->io = (mem_io){.in = s->in, .in_len = s->in_len, .out = s->out, .out_len = s->out_len,
			 .fail_read_input = -1, .fail_write_output = -1};
}

static void free_setup(setup *s)
{
	for (int i = 0; i < 3; i++)
		free(s->in[i]);
	for (int i = 0; i < 8; i++)
		free(s->out[i]);
}

static lq_status run(lq_ctx *ctx, setup *s, lq_progress_fn progress)
{
	lq_source src = {.self = &s->io, .read = mem_read, .error_string = mem_error};
	lq_sink sink = {.self = &s->io, .write = mem_write, .task_done = mem_done, .error_string = mem_error};
	return lq_execute(ctx, s->tasks, 3, &src, &sink, progress, NULL);
}

TEST(executor_equals_in_memory)
{
	util_rng r = {42};
	setup s;
	make_setup(&s, &r);
	lq_ctx_options o = {.threads = 2};
	lq_ctx *ctx = util_ctx(o.threads);
	if (!CHECK_INT(run(ctx, &s, NULL), LQ_OK))
		test_fail(__FILE__, __LINE__, "%s", lq_ctx_error_string(ctx));
	CHECK_INT(s.io.done_calls, 3);
	/* the same through the in-memory calls */
	int64_t n0 = (int64_t)s.in_len[0] / 2, nb0 = lq_quant_nblocks(n0, 64);
	uint8_t *p = malloc((size_t)s.out_len[0]), *q = malloc((size_t)nb0);
	float *a = malloc((size_t)nb0 * 4), *nested = malloc((size_t)s.out_len[2]), off;
	CHECK_INT(lq_quantize_blocks(ctx, s.in[0], LQ_DTYPE_BF16, n0, LQ_QTYPE_NF4, 64, p, a, NULL), LQ_OK);
	CHECK_INT(lq_double_quant(ctx, a, nb0, q, nested, &off), LQ_OK);
	CHECK(memcmp(p, s.out[0], (size_t)s.out_len[0]) == 0);
	CHECK(memcmp(q, s.out[1], (size_t)nb0) == 0);
	CHECK(memcmp(nested, s.out[2], (size_t)s.out_len[2]) == 0);
	CHECK_INT(lq_f32_bits(off), lq_f32_bits(s.io.offsets[0]));
	CHECK(memcmp(s.in[1], s.out[3], (size_t)s.in_len[1]) == 0);
	int64_t n2 = 777, nb2 = lq_quant_nblocks(n2, 128);
	CHECK_INT(lq_quantize_blocks(ctx, s.in[2], LQ_DTYPE_F32, n2, LQ_QTYPE_FP4, 128, p, a, NULL), LQ_OK);
	CHECK(memcmp(p, s.out[4], (size_t)s.out_len[4]) == 0);
	CHECK(memcmp(a, s.out[5], (size_t)nb2 * 4) == 0);
	CHECK(lq_execute_memory_bound(ctx, s.tasks, 3) < (uint64_t)200 << 20);
	free(p), free(q), free(a), free(nested);
	free_setup(&s);
	lq_ctx_free(ctx);
}

TEST(executor_failures_name_the_tensor)
{
	util_rng r = {43};
	setup s;
	make_setup(&s, &r);
	lq_ctx *ctx = util_ctx(0);
	/* a NaN in the second chunk of a 2-D tensor: the message gives the row and column */
	s.tasks[0].ndim = 2;
	s.tasks[0].shape[0] = (int64_t)s.in_len[0] / 2 / 41;
	s.tasks[0].shape[1] = 41;
	s.in_len[0] = (uint64_t)(s.tasks[0].shape[0] * 41) * 2;
	s.tasks[0].nbytes = s.in_len[0];
	int64_t bad = 9 * 1024 * 1024 + 5;
	lq_store_f32(s.in[0], LQ_DTYPE_BF16, bad, NAN);
	CHECK_INT(run(ctx, &s, NULL), LQ_ERR_NONFINITE);
	char want[128];
	snprintf(want, sizeof want, "tensor 'big': element [%lld, %lld] (flat index %lld) is NaN", (long long)(bad / 41),
		 (long long)(bad % 41), (long long)bad);
	CHECK_CONTAINS(lq_ctx_error_string(ctx), want);
	lq_store_f32(s.in[0], LQ_DTYPE_BF16, bad, 1.0f);

	s.io.fail_read_input = 1;
	CHECK_INT(run(ctx, &s, NULL), LQ_ERR_IO);
	CHECK_CONTAINS(lq_ctx_error_string(ctx), "cannot read 'input 1'");
	s.io.fail_read_input = -1;

	s.io.fail_write_output = 5;
	CHECK_INT(run(ctx, &s, NULL), LQ_ERR_IO);
	CHECK_CONTAINS(lq_ctx_error_string(ctx), "No space left on device");
	s.io.fail_write_output = -1;

	CHECK_INT(run(ctx, &s, cancel_half), LQ_ERR_CANCELLED);
	CHECK_INT(run(ctx, &s, NULL), LQ_OK);
	CHECK_STR(lq_ctx_error_string(ctx), "");
	free_setup(&s);
	lq_ctx_free(ctx);
}
