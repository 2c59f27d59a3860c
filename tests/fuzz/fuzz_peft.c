/*
 * fuzz_peft.c: the PEFT adapter reader (formats/peft.c) under libFuzzer (`make fuzz FUZZ_TARGET=peft`),
 * and under tests/fuzz/replay.c in `make check`. The input is the text of adapter_config.json.
 *
 * On the first call a directory is made (mkdtemp, under $TMPDIR or /tmp) with a few adapters that differ
 * only in their adapter_model.safetensors, written once with st_writer (zero data: peft.c reads only the
 * header). Each adapter's adapter_config.json is a symbolic link to one file, ../adapter_config.json, which
 * every input overwrites; each adapter is then opened, one of them a second time with key maps. The
 * tensor sets are chosen so that each path of peft.c can succeed for some config:
 *
 *   mixed       q_proj (rank 8, with a DoRA magnitude), v_proj (rank 4), an embedding LoRA on embed_tokens
 *               (rank 4) and a whole lm_head.weight (BF16): the set of the brief, refused by every config
 *               (a magnitude on one module only), so it tests the refusals
 *   plain       the same without the magnitude: plain LoRA, rank_pattern/alpha_pattern, rsLoRA,
 *               modules_to_save, and the key maps
 *   dora        q_proj, v_proj and the embedding, each with its magnitude (use_dora)
 *   extras      q_proj with lora_B.bias (lora_bias), its base_layer.bias, a trainable tokens delta [4, 128]
 *               of embed_tokens (trainable_token_indices with 4 ids)
 *   mts         q_proj without the "base_model.model." prefix, model.norm.weight (modules_to_save) and a
 *               bias of down_proj (bias "all", or modules_to_save)
 *   velora      q_proj and its lora_velora_embed (velora_config)
 *   monteclora  q_proj and a lora_monteclora_sampler tensor (monteclora_config)
 *   many        twelve rank-1 q_proj modules: more rank warnings than are listed one by one
 *
 * Whatever the config, an open that succeeds must keep every promise of peft.h (ranks, finite scalings
 * that follow alpha / r or alpha / sqrt(r), tensors whose shapes fit the rank, names without control
 * characters, replacements with a target and a tensor, unique targets, patterns resolved as
 * peft_pattern_lookup resolves them, key maps applied as re.sub would), and one that fails must leave a
 * non-empty, NUL-terminated, printable message that names the file. peft_pattern_lookup is also run on
 * the input's own rank_pattern and alpha_pattern. A broken promise aborts. Deterministic: no randomness,
 * no clock.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt.h"
#include "peft.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                        \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: broken: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* snprintf into an array, which must hold it all */
#define FIT(buf, ...) REQUIRE(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))
#define P "base_model.model."
#define L0 P "model.layers.0."

/* ------------------------------------------------------------------------------ the adapters */

typedef struct tdesc {
	const char *name;
	st_dtype dtype;
	int ndim;
	int64_t shape[2];
} tdesc;

static const tdesc mixed[] = {
	{L0 "self_attn.q_proj.lora_A.weight", ST_F32, 2, {8, 128}},
	{L0 "self_attn.q_proj.lora_B.weight", ST_F32, 2, {128, 8}},
	{L0 "self_attn.q_proj.lora_magnitude_vector", ST_F32, 1, {128, 0}},
	{L0 "self_attn.v_proj.lora_A.weight", ST_F32, 2, {4, 128}},
	{L0 "self_attn.v_proj.lora_B.weight", ST_F32, 2, {128, 4}},
	{P "model.embed_tokens.lora_embedding_A", ST_F32, 2, {4, 384}},
	{P "model.embed_tokens.lora_embedding_B", ST_F32, 2, {128, 4}},
	{P "lm_head.weight", ST_BF16, 2, {384, 128}},
};

static const tdesc plain[] = {
	{L0 "self_attn.q_proj.lora_A.weight", ST_F32, 2, {8, 128}},
	{L0 "self_attn.q_proj.lora_B.weight", ST_F32, 2, {128, 8}},
	{L0 "self_attn.v_proj.lora_A.weight", ST_F32, 2, {4, 128}},
	{L0 "self_attn.v_proj.lora_B.weight", ST_F32, 2, {128, 4}},
	{P "model.embed_tokens.lora_embedding_A", ST_F32, 2, {4, 384}},
	{P "model.embed_tokens.lora_embedding_B", ST_F32, 2, {128, 4}},
	{P "lm_head.weight", ST_BF16, 2, {384, 128}},
};

static const tdesc dora[] = {
	{L0 "self_attn.q_proj.lora_A.weight", ST_F32, 2, {8, 128}},
	{L0 "self_attn.q_proj.lora_B.weight", ST_F32, 2, {128, 8}},
	{L0 "self_attn.q_proj.lora_magnitude_vector", ST_F32, 1, {128, 0}},
	{L0 "self_attn.v_proj.lora_A.weight", ST_BF16, 2, {4, 128}},
	{L0 "self_attn.v_proj.lora_B.weight", ST_BF16, 2, {32, 4}},
	{L0 "self_attn.v_proj.lora_magnitude_vector", ST_F16, 1, {32, 0}},
	{P "model.embed_tokens.lora_embedding_A", ST_F32, 2, {4, 384}},
	{P "model.embed_tokens.lora_embedding_B", ST_F32, 2, {128, 4}},
	{P "model.embed_tokens.lora_magnitude_vector", ST_F32, 1, {128, 0}},
};

static const tdesc extras[] = {
	{L0 "self_attn.q_proj.lora_A.weight", ST_F32, 2, {8, 128}},
	{L0 "self_attn.q_proj.lora_B.weight", ST_F32, 2, {128, 8}},
	{L0 "self_attn.q_proj.lora_B.bias", ST_F32, 1, {128, 0}},
	{L0 "self_attn.q_proj.base_layer.bias", ST_F32, 1, {128, 0}},
	{P "model.embed_tokens.token_adapter.trainable_tokens_delta", ST_F32, 2, {4, 128}},
};

static const tdesc mts[] = {
	{"model.layers.0.self_attn.q_proj.lora_A.weight", ST_F16, 2, {8, 128}},
	{"model.layers.0.self_attn.q_proj.lora_B.weight", ST_F16, 2, {128, 8}},
	{P "model.norm.weight", ST_F32, 1, {128, 0}},
	{L0 "mlp.down_proj.bias", ST_F32, 1, {128, 0}},
};

static const tdesc velora[] = {
	{L0 "self_attn.q_proj.lora_A.weight", ST_F32, 2, {8, 128}},
	{L0 "self_attn.q_proj.lora_B.weight", ST_F32, 2, {128, 8}},
	{L0 "self_attn.q_proj.lora_velora_embed", ST_F32, 2, {8, 8}},
};

static const tdesc monteclora[] = {
	{L0 "self_attn.q_proj.lora_A.weight", ST_F32, 2, {8, 128}},
	{L0 "self_attn.q_proj.lora_B.weight", ST_F32, 2, {128, 8}},
	{L0 "self_attn.q_proj.lora_monteclora_sampler.std_prior", ST_F32, 1, {8, 0}},
};

#define MANY 12
static tdesc many[2 * MANY];
static char many_names[2 * MANY][80];

static const struct adapter_desc {
	const char *dir;
	const tdesc *t;
	size_t n;
} adapters[] = {
	{"mixed", mixed, COUNT(mixed)},    {"plain", plain, COUNT(plain)},       {"dora", dora, COUNT(dora)},
	{"extras", extras, COUNT(extras)}, {"mts", mts, COUNT(mts)},             {"velora", velora, COUNT(velora)},
	{"monteclora", monteclora, COUNT(monteclora)}, {"many", many, 2 * MANY},
};
#define PLAIN 1 /* the adapter also opened with key maps */

static char root[512];           /* the mkdtemp directory */
static char config_path[600];    /* root/adapter_config.json: what every input is written to */
static char dirs[COUNT(adapters)][600];

static void cleanup(void)
{
	char path[700];
	for (size_t i = 0; i < COUNT(adapters) && dirs[i][0]; i++) {
		FIT(path, "%s/adapter_config.json", dirs[i]);
		unlink(path);
		FIT(path, "%s/adapter_model.safetensors", dirs[i]);
		unlink(path);
		rmdir(dirs[i]);
	}
	unlink(config_path);
	rmdir(root);
}

static void write_adapter(const char *dir, const tdesc *t, size_t n)
{
	static const unsigned char zeros[384 * 128 * 4];
	char path[700];
	st_writer *w = st_writer_create();
	REQUIRE(w != NULL);
	for (size_t i = 0; i < n; i++)
		REQUIRE(st_writer_add(w, t[i].name, t[i].dtype, t[i].ndim, t[i].shape) == (int32_t)i);
	REQUIRE(st_writer_layout(w) == LQ_OK);
	FIT(path, "%s/adapter_model.safetensors", dir);
	REQUIRE(st_writer_open(w, path) == LQ_OK);
	for (size_t i = 0; i < n; i++) {
		const uint64_t bytes = st_writer_tensor_bytes(w, (int32_t)i);
		REQUIRE(bytes <= sizeof zeros);
		REQUIRE(st_writer_write(w, (int32_t)i, 0, zeros, (size_t)bytes) == LQ_OK);
	}
	REQUIRE(st_writer_finish(w) == LQ_OK);
	st_writer_free(w);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	bool ok = tmp && tmp[0] == '/' && strlen(tmp) < 400;
	for (const char *c = tmp; ok && *c; c++)
		ok = (unsigned char)*c >= 0x20 && *c != 0x7f;
	FIT(root, "%s/fuzz_peft.XXXXXX", ok ? tmp : "/tmp");
	REQUIRE(mkdtemp(root) != NULL);
	FIT(config_path, "%s/adapter_config.json", root);
	atexit(cleanup);

	for (int i = 0; i < MANY; i++)
		for (int k = 0; k < 2; k++) {
			snprintf(many_names[2 * i + k], sizeof many_names[0], P "model.layers.%d.self_attn.q_proj.lora_%c.weight",
				 i, k ? 'B' : 'A');
			many[2 * i + k] = (tdesc){many_names[2 * i + k], ST_F32, 2, {k ? 4 : 1, k ? 1 : 4}};
		}
	for (size_t i = 0; i < COUNT(adapters); i++) {
		char link[700];
		FIT(dirs[i], "%s/%s", root, adapters[i].dir);
		REQUIRE(mkdir(dirs[i], 0700) == 0);
		write_adapter(dirs[i], adapters[i].t, adapters[i].n);
		FIT(link, "%s/adapter_config.json", dirs[i]);
		REQUIRE(symlink("../adapter_config.json", link) == 0);
	}
}

static void write_config(const uint8_t *data, size_t size)
{
	FILE *f = fopen(config_path, "wb");
	REQUIRE(f != NULL);
	REQUIRE(fwrite(data, 1, size, f) == size);
	REQUIRE(fclose(f) == 0);
}

/* fmt_read_small reads a config into a buffer as large as its limit (64 MiB for adapter_config.json),
 * whatever the file's size. Under AddressSanitizer each free of such a buffer poisons 8 MiB of shadow
 * memory, which held the fuzzer to about 8 inputs a second. The builds of this target link with
 * -Wl,--wrap=fmt_read_small, so peft.c's calls come here and the real function gets the file's size as
 * its limit when that is below: the same result, in a buffer of the text's size, where a read past the
 * text is caught as well. */
lq_status __real_fmt_read_small(const char *path, size_t limit, char **out, size_t *len, char *err);
lq_status __wrap_fmt_read_small(const char *path, size_t limit, char **out, size_t *len, char *err);
lq_status __wrap_fmt_read_small(const char *path, size_t limit, char **out, size_t *len, char *err)
{
	struct stat sb;
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 0 && (uint64_t)sb.st_size < limit)
		limit = (size_t)sb.st_size;
	return __real_fmt_read_small(path, limit, out, len, err);
}

/* ---------------------------------------------------------------------------------- the checks */

/* No C0 control, DEL, or C1 control (UTF-8 C2 80..C2 9F). */
static bool clean(const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7f || (c[0] == 0xc2 && c[1] >= 0x80 && c[1] <= 0x9f))
			return false;
	return true;
}

static bool printable_message(const char *err)
{
	const size_t n = strnlen(err, FMT_ERRBUF);
	return n > 0 && n < FMT_ERRBUF && clean(err);
}

static bool is_tensor_of(const st_file *f, const st_tensor *t)
{
	return t && f && t >= f->tensors && t < f->tensors + f->ntensors;
}

/* What the key maps of map_check do to a module path: "^model\." -> "language_model.model.", then every
 * ".layers.N." -> ".h.N.". */
static char *expected_map(const char *s)
{
	const bool model = strncmp(s, "model.", 6) == 0;
	char *first = malloc(strlen(s) + 32), *out = malloc(strlen(s) + 32);
	REQUIRE(first != NULL && out != NULL);
	snprintf(first, strlen(s) + 32, "%s%s", model ? "language_model.model." : "", model ? s + 6 : s);
	char *o = out;
	for (const char *p = first; *p;) {
		if (strncmp(p, ".layers.", 8) == 0 && p[8] >= '0' && p[8] <= '9') {
			const char *q = p + 8;
			while (*q >= '0' && *q <= '9')
				q++;
			if (*q == '.') {
				/* ".layers.N." -> ".h.N.", the search going on after the match */
				memcpy(o, ".h.", 3);
				o += 3;
				memcpy(o, p + 8, (size_t)(q + 1 - (p + 8)));
				o += q + 1 - (p + 8);
				p = q + 1;
				continue;
			}
		}
		*o++ = *p++;
	}
	*o = '\0';
	free(first);
	return out;
}

static void check_failed(const peft_adapter *a, lq_status st)
{
	REQUIRE(st == LQ_ERR_CORRUPT || st == LQ_ERR_UNSUPPORTED || st == LQ_ERR_NOMEM);
	const char *err = peft_adapter_error(a);
	REQUIRE(err == a->err);
	REQUIRE(printable_message(err));
	/* the message names the file (the config or the safetensors, both under root) */
	REQUIRE(st == LQ_ERR_NOMEM || strstr(err, root) != NULL);
}

static void check_opened(const peft_adapter *a, bool mapped)
{
	REQUIRE(a->err[0] == '\0');
	REQUIRE(cJSON_IsObject(a->config) && a->st != NULL);
	REQUIRE(a->r >= 1 && isfinite(a->lora_alpha));
	REQUIRE(a->nmodules + a->nreplacements > 0);
	REQUIRE(a->nmodules == 0 || a->modules != NULL);
	REQUIRE(a->nreplacements == 0 || a->replacements != NULL);
	const cJSON *rank_pattern = fmt_json_member(a->config, "rank_pattern");
	const cJSON *alpha_pattern = fmt_json_member(a->config, "alpha_pattern");

	for (size_t i = 0; i < a->nmodules; i++) {
		const peft_module *m = &a->modules[i];
		REQUIRE(m->module && m->weight && m->module[0] && clean(m->module) && clean(m->weight));
		const size_t n = strlen(m->module);
		REQUIRE(strncmp(m->weight, m->module, n) == 0 && strcmp(m->weight + n, ".weight") == 0);
		REQUIRE(strncmp(m->module, P, strlen(P)) != 0);
		REQUIRE(m->kind == PEFT_LINEAR || m->kind == PEFT_EMBEDDING);
		REQUIRE(is_tensor_of(a->st, m->a) && is_tensor_of(a->st, m->b));
		REQUIRE(m->a->ndim == 2 && m->b->ndim == 2);
		REQUIRE(m->rank >= 1 && m->a->shape[0] == m->rank && m->b->shape[1] == m->rank);
		REQUIRE(m->a->shape[1] >= 1 && m->b->shape[0] >= 1);
		REQUIRE(m->a->dtype == m->b->dtype);
		REQUIRE(m->a->dtype == ST_F32 || m->a->dtype == ST_F16 || m->a->dtype == ST_BF16);
		REQUIRE(m->config_rank >= 1);
		REQUIRE(isfinite(m->alpha));
		REQUIRE(isfinite(m->scaling));
		const double r = (double)m->rank;
		REQUIRE(m->scaling == (float)(a->use_rslora ? m->alpha / sqrt(r) : m->alpha / r));
		REQUIRE(m->dora == a->use_dora);
		REQUIRE(m->dora == (m->magnitude != NULL));
		if (m->magnitude)
			REQUIRE(is_tensor_of(a->st, m->magnitude) && m->magnitude->ndim == 1 &&
				m->magnitude->shape[0] == m->b->shape[0]);
		REQUIRE((m->bias != NULL) == (a->lora_bias && m->kind == PEFT_LINEAR));
		if (m->bias)
			REQUIRE(is_tensor_of(a->st, m->bias) && m->bias->ndim == 1 && m->bias->shape[0] == m->b->shape[0]);
		/* r and alpha: the config's, after the patterns, looked up with the names PEFT saw */
		if (!mapped) {
			double v;
			const int want_rank = peft_pattern_lookup(rank_pattern, m->module, &v) ? (int)v : a->r;
			const double want_alpha = peft_pattern_lookup(alpha_pattern, m->module, &v) ? v : a->lora_alpha;
			REQUIRE(m->config_rank == want_rank);
			REQUIRE(m->alpha == want_alpha);
		}
		for (size_t k = 0; k < i; k++)
			REQUIRE(strcmp(a->modules[k].weight, m->weight) != 0);
	}
	for (size_t i = 0; i < a->nreplacements; i++) {
		const peft_replacement *p = &a->replacements[i];
		REQUIRE(p->target && p->target[0] && clean(p->target));
		REQUIRE(strncmp(p->target, P, strlen(P)) != 0);
		REQUIRE(is_tensor_of(a->st, p->t));
		REQUIRE(p->source >= PEFT_FROM_MODULES_TO_SAVE && p->source <= PEFT_FROM_EMBEDDING_LAYER);
		if (p->source == PEFT_FROM_TRAINABLE_TOKENS) {
			REQUIRE(p->rows != NULL && p->t->ndim == 2 && (uint64_t)p->t->shape[0] == p->nrows);
			for (size_t k = 0; k < p->nrows; k++)
				REQUIRE(p->rows[k] >= 0);
		} else {
			REQUIRE(p->rows == NULL && p->nrows == 0);
		}
		for (size_t k = 0; k < i; k++)
			REQUIRE(strcmp(a->replacements[k].target, p->target) != 0);
	}
	for (size_t i = 0; i < a->nwarnings; i++)
		REQUIRE(a->warnings[i] && printable_message(a->warnings[i]));
}

/* The same adapter opened with key maps, through its config's path: the same outcome, every name mapped. */
static void map_check(const char *dir, const peft_adapter *plain_a, lq_status plain_st)
{
	static const peft_key_map maps[] = {
		{"^model\\.", "language_model.model."},
		{"\\.layers\\.([0-9]+)\\.", ".h.\\1."},
	};
	char path[700];
	FIT(path, "%s/adapter_config.json", dir);
	peft_adapter *a = peft_adapter_create();
	REQUIRE(a != NULL);
	const lq_status st = peft_adapter_open(a, path, maps, COUNT(maps));
	if (st == LQ_OK) {
		check_opened(a, true);
		REQUIRE(plain_st == LQ_OK);
		REQUIRE(a->nmodules == plain_a->nmodules && a->nreplacements == plain_a->nreplacements);
		for (size_t i = 0; i < a->nmodules; i++) {
			const peft_module *m = &a->modules[i], *u = &plain_a->modules[i];
			char *want = expected_map(u->module);
			REQUIRE(strcmp(m->module, want) == 0);
			free(want);
			REQUIRE(strcmp(m->a->name, u->a->name) == 0 && strcmp(m->b->name, u->b->name) == 0);
			REQUIRE(m->rank == u->rank && m->config_rank == u->config_rank && m->alpha == u->alpha &&
				m->scaling == u->scaling && m->kind == u->kind);
		}
		for (size_t i = 0; i < a->nreplacements; i++) {
			char *want = expected_map(plain_a->replacements[i].target);
			REQUIRE(strcmp(a->replacements[i].target, want) == 0);
			free(want);
			REQUIRE(a->replacements[i].source == plain_a->replacements[i].source);
		}
	} else {
		check_failed(a, st);
		REQUIRE(st == plain_st || st == LQ_ERR_NOMEM || plain_st == LQ_ERR_NOMEM);
	}
	/* a handle is opened once */
	REQUIRE(peft_adapter_open(a, dir, NULL, 0) == LQ_ERR_ARG);
	REQUIRE(printable_message(peft_adapter_error(a)));
	peft_adapter_free(a);
}

/* peft_pattern_lookup on a pattern dict of the input, whatever its type. */
static void pattern_check(const cJSON *pat)
{
	static const char *const names[] = {
		"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj", "model.layers.10.mlp.down_proj",
		"model.embed_tokens", "lm_head", "q_proj", "layers.0.q_proj", "", ".", "model..q_proj",
	};
	double v;
	REQUIRE(!peft_pattern_lookup(pat, NULL, &v));
	REQUIRE(!peft_pattern_lookup(pat, "x", NULL));
	for (size_t i = 0; i < COUNT(names); i++) {
		v = -1.0;
		const bool found = peft_pattern_lookup(pat, names[i], &v);
		REQUIRE(!found || cJSON_IsObject(pat));
		if (found) {
			bool known = false;
			for (const cJSON *c = pat->child; c && !known; c = c->next)
				known = cJSON_IsNumber(c) && (c->valuedouble == v || (isnan(v) && isnan(c->valuedouble)));
			REQUIRE(known);
		}
		/* the same answer twice */
		double w = -1.0;
		REQUIRE(peft_pattern_lookup(pat, names[i], &w) == found);
		REQUIRE(!found || w == v || (isnan(w) && isnan(v)));
	}
	/* a key whose value is a number always finds something: its own regex, an earlier one, or itself */
	if (cJSON_IsObject(pat))
		for (const cJSON *c = pat->child; c; c = c->next)
			if (c->string && cJSON_IsNumber(fmt_json_member(pat, c->string)))
				REQUIRE(peft_pattern_lookup(pat, c->string, &v));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!root[0])
		setup();
	write_config(data, size);

	peft_adapter *opened[COUNT(adapters)];
	lq_status status[COUNT(adapters)];
	for (size_t i = 0; i < COUNT(adapters); i++) {
		peft_adapter *a = peft_adapter_create();
		REQUIRE(a != NULL);
		status[i] = peft_adapter_open(a, dirs[i], NULL, 0);
		if (status[i] == LQ_OK)
			check_opened(a, false);
		else
			check_failed(a, status[i]);
		opened[i] = a;
	}
	/* the config is read before the tensors: a config refused in one adapter is refused in all, alike */
	char cfg0[700];
	FIT(cfg0, "%s/adapter_config.json: ", dirs[0]);
	if (status[0] != LQ_OK && strncmp(opened[0]->err, cfg0, strlen(cfg0)) == 0)
		for (size_t i = 1; i < COUNT(adapters); i++) {
			char cfg[700];
			FIT(cfg, "%s/adapter_config.json: ", dirs[i]);
			REQUIRE(status[i] == status[0] || status[i] == LQ_ERR_NOMEM);
			/* the same words after the path (unless a message was cut to fit its buffer) */
			REQUIRE(status[i] == LQ_ERR_NOMEM || strlen(opened[0]->err) > FMT_ERRBUF - 64 ||
				strcmp(opened[i]->err + strlen(cfg), opened[0]->err + strlen(cfg0)) == 0);
		}
	map_check(dirs[PLAIN], opened[PLAIN], status[PLAIN]);
	for (size_t i = 0; i < COUNT(adapters); i++)
		peft_adapter_free(opened[i]);

	cJSON *json = cJSON_ParseWithLength((const char *)data, size);
	if (json) {
		pattern_check(fmt_json_member(json, "rank_pattern"));
		pattern_check(fmt_json_member(json, "alpha_pattern"));
		cJSON_Delete(json);
	}
	pattern_check(NULL);
	return 0;
}
