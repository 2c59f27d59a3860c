/*
 * gen_model: writes a synthetic Llama-shaped checkpoint of random bf16 weights, for benchmarks and the
 * memory test: a model directory with config.json and model.safetensors (or shards).
 *
 *   gen_model DIR LAYERS HIDDEN INTERMEDIATE VOCAB [SHARD_BYTES]
 *
 * Llama-7B widths with 4 layers (gen_model DIR 4 4096 11008 32000) give 1.07e9 parameters, 2.14 GB:
 * DESIGN.md's benchmark model. Values are random normals of the spread of trained weights (never zeros,
 * which can run faster than real data).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_json.h"
#include "hf_model.h"
#include "hf_out.h"
#include "safetensors.h"

typedef struct spec {
	char name[128];
	int64_t shape[2];
	int ndim;
} spec;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint16_t random_bf16(float scale)
{
	float s = 0;
	for (int i = 0; i < 4; i++) {
		rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
		s += (float)((rng * 0x2545F4914F6CDD1DULL) >> 40) / (float)(1 << 24);
	}
	return lq_f32_to_bf16((s - 2.0f) * 1.7320508f * scale);
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: gen_model DIR LAYERS HIDDEN INTERMEDIATE VOCAB [SHARD_BYTES]\n");
		return 2;
	}
	const char *dir = argv[1];
	int layers = atoi(argv[2]);
	int64_t h = atoll(argv[3]), inter = atoll(argv[4]), vocab = atoll(argv[5]);
	uint64_t shard_bytes = argc > 6 ? strtoull(argv[6], NULL, 10) : 0;
	spec *s = calloc((size_t)layers * 9 + 3, sizeof *s);
	size_t n = 0;
	snprintf(s[n].name, sizeof s[n].name, "model.embed_tokens.weight");
	s[n++] = (spec){.shape = {vocab, h}, .ndim = 2, .name = "model.embed_tokens.weight"};
	for (int l = 0; l < layers; l++) {
		const char *lin[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
				      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
		for (int k = 0; k < 7; k++) {
			snprintf(s[n].name, sizeof s[n].name, "model.layers.%d.%s.weight", l, lin[k]);
			s[n].ndim = 2;
			s[n].shape[0] = k == 6 ? h : k >= 4 ? inter : h;
			s[n].shape[1] = k == 6 ? inter : h;
			n++;
		}
		snprintf(s[n].name, sizeof s[n].name, "model.layers.%d.input_layernorm.weight", l);
		s[n].ndim = 1, s[n++].shape[0] = h;
		snprintf(s[n].name, sizeof s[n].name, "model.layers.%d.post_attention_layernorm.weight", l);
		s[n].ndim = 1, s[n++].shape[0] = h;
	}
	s[n] = (spec){.shape = {h}, .ndim = 1, .name = "model.norm.weight"};
	n++;
	s[n] = (spec){.shape = {vocab, h}, .ndim = 2, .name = "lm_head.weight"};
	n++;
	mkdir(dir, 0755);
	/* shards: consecutive tensors up to shard_bytes each */
	size_t *shard_of = calloc(n, sizeof *shard_of), nshards = 1;
	uint64_t used = 0, params = 0, total = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t b = (uint64_t)s[i].shape[0] * (uint64_t)(s[i].ndim == 2 ? s[i].shape[1] : 1) * 2;
		if (shard_bytes && used && used + b > shard_bytes) {
			nshards++;
			used = 0;
		}
		shard_of[i] = nshards - 1;
		used += b;
		params += b / 2;
		total += b;
	}
	uint16_t *buf = malloc((size_t)1 << 24);
	char **files = calloc(nshards, sizeof *files);
	char **names = calloc(n, sizeof *names);
	for (size_t sh = 0; sh < nshards; sh++) {
		char fname[64], path[4096];
		hf_shard_name(fname, sizeof fname, sh, nshards);
		files[sh] = strdup(fname);
		snprintf(path, sizeof path, "%s/%s", dir, fname);
		st_writer *w = st_writer_create();
		int32_t *ids = calloc(n, sizeof *ids);
		for (size_t i = 0; i < n; i++)
			if (shard_of[i] == sh)
				ids[i] = st_writer_add(w, s[i].name, ST_BF16, s[i].ndim, s[i].shape);
		if (st_writer_open(w, path) != LQ_OK) {
			fprintf(stderr, "gen_model: %s\n", st_writer_error(w));
			return 1;
		}
		for (size_t i = 0; i < n; i++) {
			if (shard_of[i] != sh)
				continue;
			names[i] = s[i].name;
			uint64_t bytes = st_writer_tensor_bytes(w, ids[i]);
			float scale = s[i].ndim == 1 ? 1.0f : 0.02f;
			for (uint64_t off = 0; off < bytes; off += (uint64_t)1 << 24) {
				size_t len = bytes - off < ((uint64_t)1 << 24) ? (size_t)(bytes - off) : (size_t)1 << 24;
				for (size_t k = 0; k < len / 2; k++)
					buf[k] = random_bf16(scale);
				if (st_writer_write(w, ids[i], off, buf, len) != LQ_OK) {
					fprintf(stderr, "gen_model: %s\n", st_writer_error(w));
					return 1;
				}
			}
		}
		if (st_writer_finish(w) != LQ_OK) {
			fprintf(stderr, "gen_model: %s\n", st_writer_error(w));
			return 1;
		}
		st_writer_free(w);
		free(ids);
	}
	char path[4096];
	if (nshards > 1) {
		char *index = hf_index_json(params, total, names, shard_of, n, files);
		snprintf(path, sizeof path, "%s/%s", dir, HF_INDEX_NAME);
		FILE *f = fopen(path, "w");
		fputs(index, f);
		fclose(f);
		free(index);
	}
	snprintf(path, sizeof path, "%s/config.json", dir);
	FILE *f = fopen(path, "w");
	fprintf(f,
		"{\n  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n  \"dtype\": \"bfloat16\",\n"
		"  \"hidden_size\": %" PRId64 ",\n  \"intermediate_size\": %" PRId64 ",\n  \"model_type\": \"llama\",\n"
		"  \"num_attention_heads\": 32,\n  \"num_hidden_layers\": %d,\n  \"num_key_value_heads\": 32,\n"
		"  \"rms_norm_eps\": 1e-05,\n  \"tie_word_embeddings\": false,\n  \"vocab_size\": %" PRId64 "\n}\n",
		h, inter, layers, vocab);
	fclose(f);
	printf("gen_model: %s: %zu tensors, %" PRIu64 " parameters, %" PRIu64 " bytes, %zu shard%s\n", dir, n, params,
	       total, nshards, nshards == 1 ? "" : "s");
	return 0;
}
