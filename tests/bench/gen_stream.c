/*
 * gen_stream: writes a synthetic Llama-shaped checkpoint as one safetensors stream on standard output,
 * without storing it: the header, then every tensor in file order. By default it has Llama-3-70B's
 * tensor names and shapes, about 141 GB of bf16, for the memory bound's proof on a model larger than the
 * machine's memory and disk (bench/cpu.md, "70B-shaped stream"):
 *
 *   gen_stream | nf4quant - -o - | xxhsum
 *   gen_stream [LAYERS HIDDEN INTERMEDIATE VOCAB HEADS KV_HEADS HEAD_DIM]
 *
 * Defaults: 80 8192 28672 128256 64 8 128 (Llama-3-70B: 70.55e9 parameters, 723 tensors). The tensors
 * are those of transformers' LlamaForCausalLM (embed_tokens, per layer q/k/v/o, gate/up/down and the two
 * RMS norms, the final norm, an untied lm_head), in the official writer's order (by name), so the stream
 * is what `cat model.safetensors` of such a checkpoint gives.
 *
 * The values are deterministic and of trained weights' scale: random normals of standard deviation 0.02
 * for the matrices and 1 + 0.05 x a normal for the norms, never zeros (which can run faster than real
 * data). So that the generator runs at the speed of memory, not of a random-number generator, each matrix
 * is made of 4 MiB windows taken at pseudo-random offsets of one 64 MiB pool of such values (every window
 * starts at an element of the pool: blocks of 64 see ever different neighbours).
 * The size and tensor count go to standard error at the end.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

#define POOL_ELEMS ((size_t)1 << 25)  /* 64 MiB of bf16 */
#define WINDOW_BYTES ((size_t)1 << 22) /* 4 MiB */

typedef struct spec {
	char name[96];
	int64_t shape[2];
	int ndim;
} spec;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_u64(void)
{
	rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

/* An approximate standard normal: the sum of four uniforms, scaled to unit variance. */
static float normal(void)
{
	float s = 0;
	for (int i = 0; i < 4; i++)
		s += (float)(next_u64() >> 40) / (float)(1 << 24);
	return (s - 2.0f) * 1.7320508f;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const spec *)a)->name, ((const spec *)b)->name);
}

static int64_t arg(int argc, char **argv, int i, int64_t dflt)
{
	if (i >= argc)
		return dflt;
	char *end;
	long long v = strtoll(argv[i], &end, 10);
	if (*end || v <= 0 || v > ((int64_t)1 << 24)) {
		fprintf(stderr, "gen_stream: bad size '%s'\n", argv[i]);
		exit(2);
	}
	return v;
}

static void fail(st_writer *w)
{
	fprintf(stderr, "gen_stream: %s\n", st_writer_error(w));
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc > 8 || (argc > 1 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: gen_stream [LAYERS HIDDEN INTERMEDIATE VOCAB HEADS KV_HEADS HEAD_DIM] | ...\n");
		return 2;
	}
	const int64_t layers = arg(argc, argv, 1, 80), h = arg(argc, argv, 2, 8192), inter = arg(argc, argv, 3, 28672),
		      vocab = arg(argc, argv, 4, 128256), heads = arg(argc, argv, 5, 64), kv = arg(argc, argv, 6, 8),
		      hd = arg(argc, argv, 7, 128);
	if (isatty(STDOUT_FILENO)) {
		fprintf(stderr, "gen_stream: refusing to write binary data to a terminal\n");
		return 2;
	}
	const size_t n = (size_t)layers * 9 + 3;
	spec *s = calloc(n, sizeof *s);
	if (!s)
		return 1;
	size_t k = 0;
	s[k++] = (spec){"model.embed_tokens.weight", {vocab, h}, 2};
	s[k++] = (spec){"model.norm.weight", {h, 0}, 1};
	s[k++] = (spec){"lm_head.weight", {vocab, h}, 2};
	for (int64_t l = 0; l < layers; l++) {
		static const struct {
			const char *name;
			int rows, cols; /* 0 hidden, 1 intermediate, 2 query heads x dim, 3 KV heads x dim, -1 none */
		} t[9] = {
			{"input_layernorm", 0, -1},    {"post_attention_layernorm", 0, -1},
			{"self_attn.q_proj", 2, 0},    {"self_attn.k_proj", 3, 0},
			{"self_attn.v_proj", 3, 0},    {"self_attn.o_proj", 0, 2},
			{"mlp.gate_proj", 1, 0},       {"mlp.up_proj", 1, 0},
			{"mlp.down_proj", 0, 1},
		};
		const int64_t dim[4] = {h, inter, heads * hd, kv * hd};
		for (int j = 0; j < 9; j++, k++) {
			snprintf(s[k].name, sizeof s[k].name, "model.layers.%" PRId64 ".%s.weight", l, t[j].name);
			s[k].shape[0] = dim[t[j].rows];
			s[k].ndim = t[j].cols < 0 ? 1 : 2;
			if (t[j].cols >= 0)
				s[k].shape[1] = dim[t[j].cols];
		}
	}
	/* declared in the official writer's order (one dtype: by name), so the file order is this order */
	qsort(s, n, sizeof *s, by_name);
	st_writer *w = st_writer_create();
	int32_t *ids = calloc(n, sizeof *ids);
	uint16_t *pool = malloc(POOL_ELEMS * sizeof *pool);
	uint16_t *norm = malloc((size_t)h * sizeof *norm);
	if (!w || !ids || !pool || !norm)
		return 1;
	for (size_t i = 0; i < n; i++)
		if ((ids[i] = st_writer_add(w, s[i].name, ST_BF16, s[i].ndim, s[i].shape)) < 0)
			fail(w);
	for (size_t i = 0; i < POOL_ELEMS; i++)
		pool[i] = lq_f32_to_bf16(0.02f * normal());
	/* a bigger pipe buffer: fewer wake-ups of the reader (best effort; not a pipe, or not allowed: fine) */
	(void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);
	if (st_writer_open_stream(w, STDOUT_FILENO, "standard output") != LQ_OK)
		fail(w);
	uint64_t params = 0;
	for (size_t i = 0; i < n; i++) {
		const uint64_t bytes = st_writer_tensor_bytes(w, ids[i]);
		params += bytes / 2;
		if (s[i].ndim == 1) {
			for (int64_t e = 0; e < h; e++)
				norm[e] = lq_f32_to_bf16(1.0f + 0.05f * normal());
			if (st_writer_write(w, ids[i], 0, norm, (size_t)bytes) != LQ_OK)
				fail(w);
			continue;
		}
		for (uint64_t off = 0; off < bytes; off += WINDOW_BYTES) {
			const size_t len = bytes - off < WINDOW_BYTES ? (size_t)(bytes - off) : WINDOW_BYTES;
			const size_t start = (size_t)(next_u64() % (POOL_ELEMS - WINDOW_BYTES / 2));
			if (st_writer_write(w, ids[i], off, pool + start, len) != LQ_OK)
				fail(w);
		}
	}
	if (st_writer_finish(w) != LQ_OK)
		fail(w);
	fprintf(stderr, "gen_stream: %zu tensors, %" PRIu64 " parameters, %" PRIu64 " bytes\n", n, params,
		st_writer_file_size(w));
	st_writer_free(w);
	free(ids);
	free(pool);
	free(norm);
	free(s);
	return 0;
}
