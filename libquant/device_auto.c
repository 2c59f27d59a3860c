/*
 * device_auto.c: what `--device auto` weighs, in one place. Before anything starts, the tool describes
 * its run (lq_work: bytes in and out, where the output goes, the elements each operation touches); this
 * estimates the run's time on the context's CPU threads and on a GPU, its start included, and the GPU is
 * taken only when it is estimated to finish clearly sooner. The runs are streams: reading, computing and
 * writing overlap, so each device's time is the slowest of the three (plus the GPU's start).
 *
 * The constants are measured figures (bench/gpu.md: H200/H100 machine, 16 cores; bench/cpu.md: this
 * 2-core AMD EPYC). They need only be right within a factor that keeps the choice right: the cases that
 * matter are far apart (16 cores keep up with the disk for every one-pass operation; 2 cores do not keep
 * up with a rank-64 merge).
 */
#include <stdio.h>

#include "lq_internal.h"

/* Opening the CUDA device: 0.22 s on the H200 and 0.21 s for loramerge (bench/gpu.md, `nf4quant -vv` and
 * `loramerge -vv`: "opening the GPU (CUDA context)"). */
#define GPU_START_S 0.22
/* Reading an input from the page cache: `cat` of the 2.14 GB model, 8.2-8.7 GB/s on the GPU machine
 * (bench/gpu.md), 5.6 GB/s here (bench/cpu.md). */
#define READ_BPS 8.0e9
/* Writing and syncing an output to disk: the GPU machine's disk writes about 0.9 GB/s (bench/gpu.md:
 * reading 2.14 GB and writing and syncing 942 MB takes 1.2 s, 2.14 GB 2.3-2.7 s). */
#define WRITE_SYNC_BPS 0.9e9
/* Writing to a pipe (or /dev/null): about as fast as a pipe moves bytes, 4.1 GB/s for
 * `gen_stream | cat` here (bench/cpu.md, 70B-shaped stream). */
#define WRITE_PIPE_BPS 4.0e9
/* CPU seconds per element on one core (bench/cpu.md, bench_kernels): quantize NF4+DQ 1.9 GB/s of bf16
 * per core with AVX2, 2.4 with AVX-512 (2 bytes an element: ~1.0 ns); dequantize 6.3 GB/s of bf16 out per
 * core (0.32 ns); a comparison (qinspect: dequantize, then the error sums in double precision) 3.4 s for
 * the 1.07e9 elements on one core (3.2 ns, its reading included). */
#define CPU_QUANTIZE_S 1.0e-9
#define CPU_DEQUANTIZE_S 0.35e-9
#define CPU_COMPARE_S 3.0e-9
/* A LoRA merge: per element, its conversions (about a quantize's cost) plus 4 flops per unit of rank
 * (2 for s*B*A, 2 for the rounding in PEFT's order) at 25 GFLOP/s per core (the tiled merge, bench/cpu.md:
 * 23.4 with AVX2, 26.7 with AVX-512). */
#define CPU_MERGE_S 1.0e-9
#define CPU_FLOP_S (1.0 / 25.0e9)
/* GPU seconds per element, the transfers to and from the device included (its own kernels run at
 * 0.9-1.3 Gparam/ms, bench/gpu.md, and do not count): quantize and dequantize move about 2.6 bytes an
 * element over PCIe at about 20 GB/s (0.13 ns); a comparison copies each chunk twice, one copy after the
 * other (bench/gpu.md, qinspect: 2.26 s for 1.07e9 elements, 0.22 s of it the start: 1.9 ns); a merge
 * moves 4 bytes an element and its products run at hundreds of TFLOP/s (0.2 ns). */
#define GPU_QUANTIZE_S 0.15e-9
#define GPU_DEQUANTIZE_S 0.15e-9
#define GPU_COMPARE_S 1.9e-9
#define GPU_MERGE_S 0.2e-9
/* The GPU is taken when its estimate is at least this much shorter: a tie goes to the CPU, which needs
 * no device memory and no start. */
#define GPU_MARGIN 0.95

static double max2(double a, double b)
{
	return a > b ? a : b;
}

static void human(char *buf, size_t len, double bytes)
{
	if (bytes >= 1e9)
		snprintf(buf, len, "%.1f GB", bytes / 1e9);
	else if (bytes >= 1e6)
		snprintf(buf, len, "%.1f MB", bytes / 1e6);
	else
		snprintf(buf, len, "%.0f kB", bytes / 1e3);
}

bool lq_device_auto_prefers_gpu(const lq_work *w, int threads, lq_device_estimate *est, char *why, size_t len)
{
	if (threads < 1)
		threads = 1;
	const double io = max2((double)w->bytes_in / READ_BPS,
			       (double)w->bytes_out / (w->out_synced ? WRITE_SYNC_BPS : WRITE_PIPE_BPS));
	const double cpu = ((double)w->quantized * CPU_QUANTIZE_S + (double)w->dequantized * CPU_DEQUANTIZE_S +
			    (double)w->compared * CPU_COMPARE_S + (double)w->merged * CPU_MERGE_S +
			    4.0 * (double)w->merge_rank_sum * CPU_FLOP_S) / threads;
	const double gpu = (double)w->quantized * GPU_QUANTIZE_S + (double)w->dequantized * GPU_DEQUANTIZE_S +
			   (double)w->compared * GPU_COMPARE_S + (double)w->merged * GPU_MERGE_S;
	lq_device_estimate e = {.io_s = io, .cpu_s = max2(io, cpu), .gpu_s = GPU_START_S + max2(io, gpu)};
	const bool use_gpu = e.gpu_s < GPU_MARGIN * e.cpu_s;
	if (est)
		*est = e;
	if (why && len) {
		char b[32];
		human(b, sizeof b, (double)(w->bytes_in + w->bytes_out));
		const bool light = w->merge_rank_sum == 0 && cpu <= io;
		if (use_gpu)
			snprintf(why, len, "%d core%s, %s to move: about %.2f s on the CPU, %.2f s on the GPU with its "
				 "%.2f s start", threads, threads == 1 ? "" : "s", b, e.cpu_s, e.gpu_s, GPU_START_S);
		else if (light)
			snprintf(why, len, "%d core%s, %s of one-pass work: the GPU's start would cost more than it "
				 "saves; about %.2f s on the CPU, %.2f s on the GPU", threads, threads == 1 ? "" : "s", b,
				 e.cpu_s, e.gpu_s);
		else
			snprintf(why, len, "%d core%s, %s to move: about %.2f s on the CPU, %.2f s on the GPU with its "
				 "%.2f s start", threads, threads == 1 ? "" : "s", b, e.cpu_s, e.gpu_s, GPU_START_S);
	}
	return use_gpu;
}

void lq_ctx_set_work(lq_ctx *ctx, const lq_work *work)
{
	ctx->work_set = work != NULL;
	if (work)
		ctx->work = *work;
}

const char *lq_ctx_device_why(const lq_ctx *ctx)
{
	return ctx->device_why;
}
