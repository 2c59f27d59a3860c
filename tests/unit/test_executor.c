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
	s->tasks[0] = (lq_task){.op = LQ_OP_QUANTIZE4, .name = "big", .input = 0, .ndim = 2, .shape = {n0 / 131, 131},
				.nbytes = s->in_len[0], .out_data = 0,
				.quantize4 = {.dtype = LQ_DTYPE_BF16, .out = {{LQ_QTYPE_NF4, 64, true}, 1, 2}}};
	s->tasks[0].shape[0] = n0; /* the shape only matters for messages; keep it consistent */
	s->tasks[0].ndim = 1;
	s->tasks[1] = (lq_task){.op = LQ_OP_COPY, .name = "copied", .input = 1, .nbytes = s->in_len[1], .out_data = 3};
	s->tasks[2] = (lq_task){.op = LQ_OP_QUANTIZE4, .name = "small", .input = 2, .ndim = 2, .shape = {7, 111},
				.nbytes = s->in_len[2], .out_data = 4,
				.quantize4 = {.dtype = LQ_DTYPE_F32, .out = {{LQ_QTYPE_FP4, 128, false}, 5, -1}}};
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
	lq_ctx_options o = {.threads = 2};
	lq_ctx *ctx = util_ctx(o.threads);
	if (!ctx)
		return;
	setup s;
	make_setup(&s, &r);
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
	lq_ctx *ctx = util_ctx(0);
	if (!ctx)
		return;
	setup s;
	make_setup(&s, &r);
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

/* A merge of a bf16 weight W [64, 128] with one rank-2 adapter (float32 A [2, 128], B [64, 2]): into the
 * weight as it is, requantized (NF4 with double quantization), or into a 4-bit base (NF4, blocksize 64,
 * float32 scales), for the tests of failures. Inputs: 0 W (or its codes), 1 A, 2 B, 3 the base's scales;
 * outputs: 0 the merged weight (or codes), 1 absmax codes, 2 nested absmax. */
typedef struct merge_setup {
	unsigned char *in[4], *out[3];
	uint64_t in_len[4], out_len[3];
	float a[2 * 128], b[64 * 2];
	lq_lora lora;
	lq_task task;
	mem_io io;
} merge_setup;

enum { MROWS = 64, MCOLS = 128 };

static void make_merge(merge_setup *m, util_rng *r, bool requantize, bool quantized_base)
{
	memset(m, 0, sizeof *m);
	const int64_t n = MROWS * MCOLS, nb = n / 64;
	float *w = malloc((size_t)n * 4);
	for (int64_t i = 0; i < n; i++)
		w[i] = util_normal(r, 0.05f);
	for (int i = 0; i < 2 * 128; i++)
		m->a[i] = util_normal(r, 0.2f);
	for (int i = 0; i < 64 * 2; i++)
		m->b[i] = util_normal(r, 0.2f);
	if (quantized_base) {
		m->in_len[0] = (uint64_t)n / 2;
		m->in_len[3] = (uint64_t)nb * 4;
		m->in[0] = malloc(m->in_len[0]);
		m->in[3] = malloc(m->in_len[3]);
		lq_quantize_blocks_ref(w, LQ_DTYPE_F32, n, LQ_QTYPE_NF4, 64, m->in[0], (float *)m->in[3], NULL);
	} else {
		m->in_len[0] = (uint64_t)n * 2;
		m->in[0] = malloc(m->in_len[0]);
		for (int64_t i = 0; i < n; i++)
			lq_store_f32(m->in[0], LQ_DTYPE_BF16, i, w[i]);
	}
	m->in[1] = (unsigned char *)m->a;
	m->in_len[1] = sizeof m->a;
	m->in[2] = (unsigned char *)m->b;
	m->in_len[2] = sizeof m->b;
	free(w);
	m->lora = (lq_lora){.layout = LQ_LORA_ROWS, .rank = 2, .scaling = 2.0f, .ab_dtype = LQ_DTYPE_F32, .a_input = 1,
			    .b_input = 2, .magnitude_input = -1};
	m->task = (lq_task){.op = LQ_OP_MERGE, .name = "w", .origin = "model.safetensors", .input = 0, .ndim = 2,
			    .shape = {MROWS, MCOLS}, .nbytes = m->in_len[0], .out_data = 0,
			    .merge = {.rows = MROWS, .cols = MCOLS, .base = {.dtype = LQ_DTYPE_BF16}, .loras = &m->lora,
				      .nloras = 1, .out_dtype = LQ_DTYPE_BF16, .replace_input = -1,
				      .requant = {.out_absmax = -1, .out_nested_absmax = -1}}};
	if (quantized_base) {
		m->task.merge.base.quantized = true;
		m->task.merge.base.quant = (lq_quant_params){LQ_QTYPE_NF4, 64, false};
		m->task.merge.base.absmax_input = 3;
		m->task.merge.base.nested_input = -1;
	}
	if (requantize) {
		m->task.merge.requantize = true;
		m->task.merge.requant = (lq_group_out){{LQ_QTYPE_NF4, 64, true}, 1, 2};
		m->out_len[0] = (uint64_t)n / 2;
		m->out_len[1] = (uint64_t)nb;
		m->out_len[2] = 4;
	} else {
		m->out_len[0] = (uint64_t)n * 2;
	}
	for (int i = 0; i < 3; i++)
		m->out[i] = calloc(1, m->out_len[i] + 1);
	m->io = (mem_io){.in = m->in, .in_len = m->in_len, .out = m->out, .out_len = m->out_len, .fail_read_input = -1,
			 .fail_write_output = -1};
}

static void free_merge(merge_setup *m)
{
	free(m->in[0]);
	free(m->in[3]);
	for (int i = 0; i < 3; i++)
		free(m->out[i]);
}

static lq_status run_merge(lq_ctx *ctx, merge_setup *m)
{
	lq_source src = {.self = &m->io, .read = mem_read, .error_string = mem_error};
	lq_sink sink = {.self = &m->io, .write = mem_write, .task_done = mem_done, .error_string = mem_error};
	return lq_execute(ctx, &m->task, 1, &src, &sink, NULL, NULL);
}

/* A compute step that fails (as a GPU does mid-run, with the CUDA error as its message) reaches the user
 * with that message whole, after the file and the tensor: quantization, double quantization, the merge,
 * the dequantization of a 4-bit base, and a requantization's quantization and double quantization. */
TEST(executor_compute_failures_keep_their_message)
{
	const char *cuda = "CUDA error in the merge kernels: an illegal memory access was encountered";
	util_rng r = {44};
	lq_ctx *ctx = util_ctx(2);
	if (!ctx)
		return;
	setup s;
	make_setup(&s, &r);
	s.tasks[0].origin = "model.safetensors";
	const lq_test_step qsteps[] = {LQ_TEST_STEP_QUANTIZE, LQ_TEST_STEP_DOUBLE_QUANT};
	for (size_t k = 0; k < 2; k++) {
		test_context("quantize, step %d", (int)qsteps[k]);
		lq_test_fail_step(ctx, qsteps[k], LQ_ERR_DEVICE, cuda);
		CHECK_INT(run(ctx, &s, NULL), LQ_ERR_DEVICE);
		CHECK_STR(lq_ctx_error_string(ctx), "model.safetensors: tensor 'big': CUDA error in the merge kernels: an "
						    "illegal memory access was encountered");
	}
	lq_test_fail_step(ctx, LQ_TEST_STEP_NONE, LQ_OK, NULL);
	CHECK_INT(run(ctx, &s, NULL), LQ_OK);
	free_setup(&s);

	const struct {
		bool requantize, quantized_base;
		lq_test_step step;
	} merges[] = {
		{false, false, LQ_TEST_STEP_MERGE},
		{false, true, LQ_TEST_STEP_DEQUANTIZE},
		{true, false, LQ_TEST_STEP_QUANTIZE},
		{true, false, LQ_TEST_STEP_DOUBLE_QUANT},
	};
	for (size_t k = 0; k < sizeof merges / sizeof *merges; k++) {
		test_context("merge %zu", k);
		merge_setup m;
		make_merge(&m, &r, merges[k].requantize, merges[k].quantized_base);
		lq_test_fail_step(ctx, merges[k].step, LQ_ERR_DEVICE, cuda);
		CHECK_INT(run_merge(ctx, &m), LQ_ERR_DEVICE);
		CHECK_STR(lq_ctx_error_string(ctx), "model.safetensors: tensor 'w': CUDA error in the merge kernels: an "
						    "illegal memory access was encountered");
		lq_test_fail_step(ctx, LQ_TEST_STEP_NONE, LQ_OK, NULL);
		CHECK_INT(run_merge(ctx, &m), LQ_OK);
		CHECK_STR(lq_ctx_error_string(ctx), "");
		free_merge(&m);
	}
	test_context("%s", "");
	lq_ctx_free(ctx);
}

/* A merge whose result is not finite is refused with the element, on the CPU and (LQ_TEST_DEVICE=cuda)
 * the GPU alike: an adapter that overflows bf16, a DoRA row whose norm is zero, a conversion that
 * overflows float16, a 4-bit base whose scale is infinite; and so is a requantization. */
TEST(executor_refuses_nonfinite_merges)
{
	util_rng r = {45};
	lq_ctx *ctx = util_ctx(2);
	if (!ctx)
		return;
	merge_setup m;
	for (int requantize = 0; requantize < 2; requantize++) {
		/* row 5 of B huge: the delta of row 5 is about 1e39, beyond float32 and bf16 */
		make_merge(&m, &r, requantize, false);
		m.b[5 * 2] = 3e19f;
		m.a[0] = 3e19f;
		m.a[1 * 128] = 0.0f;
		CHECK_INT(run_merge(ctx, &m), LQ_ERR_NONFINITE);
		CHECK_STR(lq_ctx_error_string(ctx), "model.safetensors: tensor 'w': merged element [5, 0] (flat index 640) is "
						    "+inf; refusing to write it");
		free_merge(&m);
	}
	/* just below float32's maximum: finite in float32, +inf once rounded to bf16 */
	make_merge(&m, &r, false, false);
	m.b[7 * 2] = 1.8e19f, m.b[7 * 2 + 1] = 0.0f;
	m.a[3] = -9.4446e18f; /* the delta: 1.8e19 * -9.4446e18 * 2 = -3.40006e38 */
	CHECK_INT(run_merge(ctx, &m), LQ_ERR_NONFINITE);
	CHECK_CONTAINS(lq_ctx_error_string(ctx), "tensor 'w': merged element [7, 3] (flat index 899) is -inf");
	free_merge(&m);
	/* a DoRA row whose norm is zero: W's row 9 and B's row 9 zero; magnitude / 0 * 0 is NaN */
	make_merge(&m, &r, false, false);
	float mag[MROWS];
	for (int i = 0; i < MROWS; i++)
		mag[i] = 1.0f;
	m.in[3] = NULL;
	for (int j = 0; j < MCOLS; j++)
		lq_store_f32(m.in[0], LQ_DTYPE_BF16, 9 * MCOLS + j, 0.0f);
	m.b[9 * 2] = m.b[9 * 2 + 1] = 0.0f;
	unsigned char *mag_in = (unsigned char *)mag;
	m.in[3] = mag_in;
	m.in_len[3] = sizeof mag;
	m.lora.magnitude_input = 3;
	CHECK_INT(run_merge(ctx, &m), LQ_ERR_NONFINITE);
	CHECK_STR(lq_ctx_error_string(ctx), "model.safetensors: tensor 'w': merged element [9, 0] (flat index 1152) is NaN; "
					    "refusing to write it");
	m.in[3] = NULL;
	free_merge(&m);
	/* no adapter, a conversion to float16 (loramerge --dtype fp16): 70000 is beyond its range */
	make_merge(&m, &r, false, false);
	m.task.merge.nloras = 0;
	m.task.merge.out_dtype = LQ_DTYPE_F16;
	lq_store_f32(m.in[0], LQ_DTYPE_BF16, 3 * MCOLS + 4, 70000.0f);
	CHECK_INT(run_merge(ctx, &m), LQ_ERR_NONFINITE);
	CHECK_STR(lq_ctx_error_string(ctx), "model.safetensors: tensor 'w': converted element [3, 4] (flat index 388) is "
					    "+inf; refusing to write it");
	free_merge(&m);
	/* a 4-bit base whose scale of block 3 is infinite */
	make_merge(&m, &r, false, true);
	((float *)m.in[3])[3] = INFINITY;
	CHECK_INT(run_merge(ctx, &m), LQ_ERR_CORRUPT);
	CHECK_STR(lq_ctx_error_string(ctx), "model.safetensors: tensor 'w': the 4-bit base's scale of block 3 is +inf");
	free_merge(&m);
	lq_ctx_free(ctx);
}

/* Weights near float32's maximum quantize, but the mean of their block scales (bitsandbytes' double
 * quantization offset) overflows: refused, never written as an infinite offset. */
TEST(executor_refuses_an_overflowing_double_quant_offset)
{
	util_rng r = {46};
	lq_ctx *ctx = util_ctx(2);
	if (!ctx)
		return;
	setup s;
	make_setup(&s, &r);
	s.tasks[0].origin = "model.safetensors";
	const int64_t n0 = (int64_t)s.in_len[0] / 2;
	for (int64_t i = 0; i < n0; i++)
		lq_store_f32(s.in[0], LQ_DTYPE_BF16, i, i % 3 ? 3.0e38f : -3.3e38f);
	CHECK_INT(run(ctx, &s, NULL), LQ_ERR_NONFINITE);
	CHECK_STR(lq_ctx_error_string(ctx), "model.safetensors: tensor 'big': the mean of its block scales (the "
					    "double-quantization offset) overflows float32; refusing to write it (quantize it "
					    "without double quantization)");
	/* without double quantization the same weights are fine */
	s.tasks[0].quantize4.out.quant.double_quant = false;
	s.out_len[1] = (uint64_t)lq_quant_nblocks(n0, 64) * 4;
	free(s.out[1]);
	s.out[1] = calloc(1, s.out_len[1]);
	s.tasks[0].quantize4.out.out_nested_absmax = -1;
	CHECK_INT(run(ctx, &s, NULL), LQ_OK);
	free_setup(&s);
	lq_ctx_free(ctx);
}
