/*
 * test_device_auto.c: the cost model of --device auto (libquant/device_auto.c) on the runs bench/gpu.md and
 * bench/cpu.md measured: where 16 cores were the faster device it chooses the CPU, where a GPU would save
 * more than its start (2 cores and a rank-64 merge, one core quantizing to a pipe) it chooses the GPU;
 * and lq_ctx_use_device("auto") follows it without opening a GPU it does not choose.
 */
#include <string.h>

#include "lq_internal.h"
#include "test.h"

/* DESIGN.md's synthetic model: Llama-7B widths, 4 layers: 1.07e9 parameters, 2.14 GB of bf16, of which
 * the 28 linear weights (0.94e9 elements) are quantized or merged */
#define PARAMS 1071681536ll
#define LINEAR 940572672ll
#define BYTES_IN 2143367544ull
#define BYTES_NF4 942042587ull

static bool choice(const lq_work *w, int threads, const char *expect_in_why)
{
	char why[512];
	lq_device_estimate e;
	bool gpu = lq_device_auto_prefers_gpu(w, threads, &e, why, sizeof why);
	test_note("%d threads: %s (io %.2f s, cpu %.2f s, gpu %.2f s): %s", threads, gpu ? "gpu" : "cpu", e.io_s,
		  e.cpu_s, e.gpu_s, why);
	CHECK(e.io_s <= e.cpu_s && e.io_s < e.gpu_s);
	if (expect_in_why)
		CHECK(strstr(why, expect_in_why) != NULL);
	return gpu;
}

TEST(device_auto_light_work_on_16_cores_is_cpu)
{
	/* nf4quant to a directory (bench/gpu.md: cpu 1.05 s, cuda 1.44 s), as a stream (1.21 / 1.49 s) */
	lq_work w = {.bytes_in = BYTES_IN, .bytes_out = BYTES_NF4, .out_synced = true, .quantized = LINEAR};
	CHECK(!choice(&w, 16, "16 cores, 3.1 GB of one-pass work: the GPU's start would cost more than it saves"));
	w.out_synced = false;
	CHECK(!choice(&w, 16, NULL));
	/* nf4quant -d, and qinspect of the NF4 form against the model (cpu 1.81 s, cuda 2.26 s) */
	lq_work d = {.bytes_in = BYTES_NF4, .bytes_out = BYTES_IN, .out_synced = true, .dequantized = LINEAR};
	CHECK(!choice(&d, 16, NULL));
	lq_work q = {.bytes_in = BYTES_IN + BYTES_NF4, .dequantized = LINEAR, .compared = PARAMS};
	CHECK(!choice(&q, 16, NULL));
	/* the shipped tiny model: the start alone is 100 times the work */
	lq_work t = {.bytes_in = 1 << 20, .bytes_out = 300 << 10, .out_synced = true, .quantized = 400000};
	CHECK(!choice(&t, 16, NULL));
	CHECK(!choice(&t, 1, NULL));
	lq_work none = {0};
	CHECK(!choice(&none, 1, NULL));
}

TEST(device_auto_merge)
{
	/* loramerge, rank 64 on the 28 linear weights: on 16 cores cuda 2.23 s, cpu 2.29 s (2.5 % apart: the
	 * write and sync of 2.14 GB bound both); on 2 cores the merge is the bound (6.0 s against 4.8 s for
	 * the I/O, bench/cpu.md) and a GPU saves more than its start */
	lq_work w = {.bytes_in = BYTES_IN, .bytes_out = BYTES_IN, .out_synced = true, .merged = LINEAR,
		     .merge_rank_sum = LINEAR * 64};
	CHECK(!choice(&w, 16, NULL));
	CHECK(choice(&w, 2, "2 cores, 4.3 GB to move"));
	/* a tiny rank merges as fast as it reads */
	w.merge_rank_sum = LINEAR * 1;
	CHECK(!choice(&w, 2, NULL));
}

TEST(device_auto_pipe_on_one_core)
{
	/* the 70B-shaped stream to a pipe on one core: quantizing 70e9 elements takes far longer than moving
	 * 141 GB in and 40 GB out */
	lq_work w = {.bytes_in = 141107499128ull, .bytes_out = 39500000000ull, .quantized = 68451041280ll};
	CHECK(choice(&w, 1, NULL));
	CHECK(!choice(&w, 16, NULL));
}

TEST(device_auto_context_follows_the_model)
{
	lq_ctx_options o = {.threads = 2};
	lq_ctx *ctx = lq_ctx_create(&o);
	if (!CHECK(ctx != NULL))
		return;
	/* not auto: no reason given */
	CHECK(lq_ctx_use_device(ctx, "cpu") == LQ_OK);
	CHECK(strcmp(lq_ctx_device_why(ctx), "") == 0);
	/* a run the model gives the CPU: the CPU, whatever GPU there is, and why */
	lq_work w = {.bytes_in = 1 << 20, .bytes_out = 1 << 18, .out_synced = true, .quantized = 1 << 19};
	lq_ctx_set_work(ctx, &w);
	CHECK(lq_ctx_use_device(ctx, "auto") == LQ_OK);
	CHECK(!lq_backend_gpu(ctx));
	test_note("%s / %s", lq_ctx_device_why(ctx), lq_ctx_device_note(ctx));
	CHECK(strncmp(lq_ctx_device_why(ctx), "cpu (", 5) == 0);
	/* a run it gives the GPU: tried, and the CPU when none works, saying so */
	lq_work m = {.bytes_in = BYTES_IN, .bytes_out = BYTES_IN, .out_synced = true, .merged = LINEAR,
		     .merge_rank_sum = LINEAR * 64};
	lq_ctx_set_work(ctx, &m);
	CHECK(lq_ctx_use_device(ctx, "auto") == LQ_OK);
	test_note("%s / %s", lq_ctx_device_why(ctx), lq_ctx_device_note(ctx));
	CHECK(strncmp(lq_ctx_device_why(ctx), lq_backend_gpu(ctx) ? "cuda" : "cpu (", 4) == 0);
	lq_backend_close(ctx);
	lq_ctx_free(ctx);
}
