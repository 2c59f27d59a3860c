/*
 * test_peft.c: PEFT adapters (formats/peft.h): the adapters PEFT 0.21 saved in fixtures/peft/adapters
 * (ranks, scalings, patterns, DoRA, embeddings, modules_to_save, BF16), PEFT's resolution of rank_pattern
 * and alpha_pattern, key maps, and adapters written here that must be refused with a named reason.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peft.h"
#include "test.h"
#include "util.h"

#define ADAPTERS "fixtures/peft/adapters/"

/* ------------------------------------------------------------------------------------ helpers */

typedef struct tspec {
	const char *name;
	st_dtype dtype;
	int ndim;
	int64_t shape[4];
} tspec;

static const char *const adapter_files[] = {"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"};

static const char *file_in(const char *dir, const char *name)
{
	static char buf[4][4096];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
	return buf[k];
}

/* An empty directory for one adapter under the run's temporary directory. */
static const char *adapter_dir(const char *name)
{
	static char buf[2][4096];
	static int k;
	k = (k + 1) % 2;
	snprintf(buf[k], sizeof buf[k], "%s/peft-%ld-%s", util_tmpdir(), (long)getpid(), name);
	for (size_t i = 0; i < sizeof adapter_files / sizeof *adapter_files; i++)
		unlink(file_in(buf[k], adapter_files[i]));
	mkdir(buf[k], 0755);
	return buf[k];
}

static void remove_dir(const char *dir)
{
	for (size_t i = 0; i < sizeof adapter_files / sizeof *adapter_files; i++)
		unlink(file_in(dir, adapter_files[i]));
	rmdir(dir);
}

static bool write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return test_fail(__FILE__, __LINE__, "cannot create %s", path);
	const bool ok = fputs(text, fp) >= 0;
	return fclose(fp) == 0 && ok ? true : test_fail(__FILE__, __LINE__, "cannot write %s", path);
}

/* A safetensors file of zeros with these tensors. */
static bool write_tensors(const char *path, const tspec *t, size_t n)
{
	st_writer *w = st_writer_create();
	bool ok = w != NULL;
	for (size_t i = 0; i < n && ok; i++)
		ok = st_writer_add(w, t[i].name, t[i].dtype, t[i].ndim, t[i].shape) == (int32_t)i;
	ok = ok && st_writer_layout(w) == LQ_OK && st_writer_open(w, path) == LQ_OK;
	for (size_t i = 0; i < n && ok; i++) {
		const uint64_t bytes = st_writer_tensor_bytes(w, (int32_t)i);
		void *zero = calloc(1, bytes ? bytes : 1);
		ok = zero && st_writer_write(w, (int32_t)i, 0, zero, bytes) == LQ_OK;
		free(zero);
	}
	ok = ok && st_writer_finish(w) == LQ_OK;
	if (!ok)
		test_fail(__FILE__, __LINE__, "cannot write %s: %s", path, w ? st_writer_error(w) : "no writer");
	st_writer_free(w);
	return ok;
}

/* The config of a plain adapter (r 8, alpha 16) with `extra` members after it (a later duplicate key wins,
 * as in Python's json.loads). */
static bool write_config(const char *dir, const char *extra)
{
	char text[4096];
	snprintf(text, sizeof text, "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"use_rslora\": false, "
		 "\"use_dora\": false, \"lora_bias\": false, \"bias\": \"none\", \"init_lora_weights\": true, "
		 "\"modules_to_save\": null, \"rank_pattern\": {}, \"alpha_pattern\": {}%s%s}",
		 extra && *extra ? ", " : "", extra ? extra : "");
	return write_text(file_in(dir, "adapter_config.json"), text);
}

#define QP "base_model.model.model.layers.0.self_attn.q_proj"
static const tspec plain_q[] = {
	{QP ".lora_A.weight", ST_F32, 2, {8, 128}},
	{QP ".lora_B.weight", ST_F32, 2, {128, 8}},
};

/* Writes an adapter (config with `extra`, these tensors) and opens it: the status; *out the handle. */
static lq_status open_written(const char *name, const char *extra, const tspec *t, size_t n, const peft_key_map *maps,
			      size_t nmaps, peft_adapter **out)
{
	const char *dir = adapter_dir(name);
	*out = peft_adapter_create();
	if (!write_config(dir, extra) || !write_tensors(file_in(dir, "adapter_model.safetensors"), t, n))
		return LQ_ERR_IO;
	const lq_status st = peft_adapter_open(*out, dir, maps, nmaps);
	remove_dir(dir);
	return st;
}

/* Expects the adapter to be refused with `status` and a message holding `needle`. */
static void expect_refused(const char *name, const char *extra, const tspec *t, size_t n, lq_status status,
			   const char *needle)
{
	test_context("%s", name);
	peft_adapter *a;
	const lq_status st = open_written(name, extra, t, n, NULL, 0, &a);
	CHECK_INT(st, status);
	CHECK_CONTAINS(peft_adapter_error(a), needle);
	peft_adapter_free(a);
	test_context("%s", "");
}

static const peft_module *find_module(const peft_adapter *a, const char *module)
{
	for (size_t i = 0; i < a->nmodules; i++)
		if (strcmp(a->modules[i].module, module) == 0)
			return &a->modules[i];
	test_fail(__FILE__, __LINE__, "no module %s", module);
	return NULL;
}

static const peft_replacement *find_replacement(const peft_adapter *a, const char *target)
{
	for (size_t i = 0; i < a->nreplacements; i++)
		if (strcmp(a->replacements[i].target, target) == 0)
			return &a->replacements[i];
	test_fail(__FILE__, __LINE__, "no replacement %s", target);
	return NULL;
}

static peft_adapter *open_fixture(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof rel, ADAPTERS "%s", name);
	test_context("%s", rel);
	peft_adapter *a = peft_adapter_create();
	if (!CHECK(a != NULL))
		return NULL;
	if (!CHECK_INT(peft_adapter_open(a, test_path(rel), NULL, 0), LQ_OK)) {
		test_note("%s", peft_adapter_error(a));
		peft_adapter_free(a);
		return NULL;
	}
	return a;
}

/* ------------------------------------------------------------------------ the real adapters */

static const char *const layer_modules[] = {
	"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	"mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj",
};

TEST(peft_plain_r8)
{
	peft_adapter *a = open_fixture("plain_r8");
	if (!a)
		return;
	CHECK_INT(a->r, 8);
	CHECK(a->lora_alpha == 16.0);
	CHECK(!a->use_rslora && !a->use_dora && !a->lora_bias && !a->fan_in_fan_out);
	CHECK_INT(a->nmodules, 14);
	CHECK_INT(a->nreplacements, 0);
	CHECK_INT(a->nwarnings, 0);
	for (int l = 0; l < 2; l++)
		for (size_t i = 0; i < 7; i++) {
			char name[128], weight[160];
			snprintf(name, sizeof name, "model.layers.%d.%s", l, layer_modules[i]);
			snprintf(weight, sizeof weight, "%s.weight", name);
			const peft_module *m = find_module(a, name);
			if (!m)
				continue;
			CHECK_STR(m->weight, weight);
			CHECK_INT(m->kind, PEFT_LINEAR);
			CHECK_INT(m->rank, 8);
			CHECK_INT(m->config_rank, 8);
			CHECK(m->alpha == 16.0);
			CHECK(m->scaling == 2.0f);
			CHECK(!m->dora && !m->magnitude && !m->bias);
			CHECK_INT(m->a->dtype, ST_F32);
			CHECK_INT(m->a->shape[0], 8);
			CHECK_INT(m->b->shape[1], 8);
			CHECK_INT(m->a->shape[1], i == 6 ? 320 : 128);
			CHECK_INT(m->b->shape[0], i == 6 ? 128 : (i == 1 || i == 2) ? 32 : (i >= 4) ? 320 : 128);
		}
	peft_adapter_free(a);
}

TEST(peft_rslora_r16)
{
	peft_adapter *a = open_fixture("rslora_r16");
	if (!a)
		return;
	CHECK(a->use_rslora);
	CHECK_INT(a->nmodules, 4);
	for (size_t i = 0; i < a->nmodules; i++) {
		test_context("%s", a->modules[i].module);
		CHECK_INT(a->modules[i].rank, 16);
		CHECK(a->modules[i].scaling == 2.0f); /* 8 / sqrt(16) */
	}
	CHECK_INT(a->nwarnings, 0);
	peft_adapter_free(a);
}

TEST(peft_patterns)
{
	peft_adapter *a = open_fixture("patterns");
	if (!a)
		return;
	CHECK_INT(a->nmodules, 14);
	CHECK_INT(a->nwarnings, 0);
	for (size_t i = 0; i < a->nmodules; i++) {
		const peft_module *m = &a->modules[i];
		test_context("%s", m->module);
		int rank = 8;
		double alpha = 16, scaling = 2;
		if (strstr(m->module, "q_proj")) {
			rank = 4;
			scaling = 4;
		} else if (strcmp(m->module, "model.layers.1.mlp.down_proj") == 0) {
			rank = 2;
			scaling = 8;
		} else if (strstr(m->module, "v_proj")) {
			alpha = 32;
			scaling = 4;
		}
		CHECK_INT(m->rank, rank);
		CHECK_INT(m->config_rank, rank);
		CHECK(m->alpha == alpha);
		if (!CHECK(m->scaling == (float)scaling))
			test_note("scaling %.9g, want %g", m->scaling, scaling);
	}
	peft_adapter_free(a);
}

TEST(peft_dora_r8)
{
	peft_adapter *a = open_fixture("dora_r8");
	if (!a)
		return;
	CHECK(a->use_dora);
	CHECK_INT(a->nmodules, 6);
	for (size_t i = 0; i < a->nmodules; i++) {
		const peft_module *m = &a->modules[i];
		test_context("%s", m->module);
		CHECK(m->dora);
		CHECK(m->scaling == 2.0f);
		if (CHECK(m->magnitude != NULL)) {
			CHECK_INT(m->magnitude->ndim, 1);
			CHECK_INT(m->magnitude->shape[0], m->b->shape[0]);
			CHECK_INT(m->magnitude->dtype, ST_F32);
		}
	}
	const peft_module *v = find_module(a, "model.layers.1.self_attn.v_proj");
	if (v && v->magnitude)
		CHECK_INT(v->magnitude->shape[0], 32);
	peft_adapter_free(a);
}

TEST(peft_embed_mts)
{
	peft_adapter *a = open_fixture("embed_mts");
	if (!a)
		return;
	CHECK_INT(a->nmodules, 3);
	CHECK_INT(a->nwarnings, 0);
	const peft_module *e = find_module(a, "model.embed_tokens");
	if (e) {
		CHECK_INT(e->kind, PEFT_EMBEDDING);
		CHECK_STR(e->weight, "model.embed_tokens.weight");
		CHECK_INT(e->rank, 4);
		CHECK(e->scaling == 2.0f);
		CHECK_INT(e->a->shape[0], 4);
		CHECK_INT(e->a->shape[1], 384);
		CHECK_INT(e->b->shape[0], 128);
		CHECK_INT(e->b->shape[1], 4);
	}
	const peft_module *q = find_module(a, "model.layers.1.self_attn.q_proj");
	if (q)
		CHECK_INT(q->kind, PEFT_LINEAR);
	CHECK_INT(a->nreplacements, 2);
	const peft_replacement *lm = find_replacement(a, "lm_head.weight");
	if (lm) {
		CHECK_INT(lm->source, PEFT_FROM_MODULES_TO_SAVE);
		CHECK_STR(lm->t->name, "base_model.model.lm_head.weight");
		CHECK_INT(lm->t->dtype, ST_BF16);
		CHECK(lm->rows == NULL && lm->nrows == 0);
	}
	const peft_replacement *base = find_replacement(a, "model.embed_tokens.weight");
	if (base) {
		CHECK_INT(base->source, PEFT_FROM_BASE_LAYER);
		CHECK_STR(base->t->name, "base_model.model.model.embed_tokens.base_layer.weight");
	}
	peft_adapter_free(a);
}

TEST(peft_bf16_stored)
{
	peft_adapter *a = open_fixture("bf16_stored");
	if (!a)
		return;
	CHECK_INT(a->nmodules, 4);
	for (size_t i = 0; i < a->nmodules; i++) {
		test_context("%s", a->modules[i].module);
		CHECK_INT(a->modules[i].a->dtype, ST_BF16);
		CHECK_INT(a->modules[i].b->dtype, ST_BF16);
		CHECK(a->modules[i].scaling == 4.0f);
	}
	peft_adapter_free(a);
}

TEST(peft_open_config_file_path)
{
	/* the adapter's adapter_config.json instead of its directory */
	peft_adapter *a = peft_adapter_create();
	CHECK_INT(peft_adapter_open(a, test_path(ADAPTERS "plain_r8/adapter_config.json"), NULL, 0), LQ_OK);
	CHECK_INT(a->nmodules, 14);
	peft_adapter_free(a);
	peft_adapter_free(NULL);
}

/* ----------------------------------------------------------------------------- patterns */

typedef struct pattern_case {
	const char *json, *module;
	bool found;
	double value;
} pattern_case;

/* Each checked against Python: re.match(rf"(.*\.)?({k})$", module) over the keys in order. */
static const pattern_case pattern_cases[] = {
	{"{\"layers.1.mlp.down_proj\": 2, \"q_proj\": 4}", "model.layers.0.self_attn.q_proj", true, 4},
	{"{\"layers.1.mlp.down_proj\": 2, \"q_proj\": 4}", "model.layers.1.mlp.down_proj", true, 2},
	{"{\"layers.1.mlp.down_proj\": 2, \"q_proj\": 4}", "model.layers.0.mlp.down_proj", false, 0},
	{"{\"layers.1.mlp.down_proj\": 2, \"q_proj\": 4}", "model.layers.11.mlp.down_proj", false, 0},
	/* a whole segment at the end, not any suffix */
	{"{\"proj\": 1}", "model.layers.0.self_attn.q_proj", false, 0},
	{"{\"q_proj\": 1}", "model.layers.0.self_attn.q_proj.extra", false, 0},
	{"{\"q_proj\": 1}", "q_proj", true, 1},
	/* the first key in the file's order wins */
	{"{\".*proj\": 1, \"q_proj\": 2}", "model.q_proj", true, 1},
	{"{\"q_proj\": 2, \".*proj\": 1}", "model.q_proj", true, 2},
	/* a dot is any character */
	{"{\"layers.1.mlp\": 5}", "layersX1Ymlp", true, 5},
	{"{\"layers.1.mlp\": 5}", "model.layersX1Ymlp", true, 5},
	{"{\"layers.1.mlp\": 5}", "modelXlayers.1.mlp", false, 0},
	/* anchored at the start by re.match, and by ^ */
	{"{\"layers.0.q\": 3}", "xlayers.0.q", false, 0},
	{"{\"^model.layers.0.q\": 7}", "model.layers.0.q", true, 7},
	{"{\"^model.layers.0.q\": 7}", "base.model.layers.0.q", false, 0},
	/* Python syntax */
	{"{\"layers\\\\.(0|1)\\\\.self_attn\\\\.(q|k)_proj\": 9}", "model.layers.1.self_attn.k_proj", true, 9},
	{"{\"layers\\\\.(0|1)\\\\.self_attn\\\\.(q|k)_proj\": 9}", "model.layers.2.self_attn.k_proj", false, 0},
	{"{\"layers\\\\.\\\\d+\\\\.mlp\\\\.down_proj\": 6}", "model.layers.17.mlp.down_proj", true, 6},
	{"{\"layers\\\\.\\\\d+\\\\.mlp\\\\.down_proj\": 6}", "model.layers.x.mlp.down_proj", false, 0},
	{"{\"model\\\\.(?:layers)\\\\.\\\\d+?\\\\.v_proj\": 4}", "model.layers.3.v_proj", true, 4},
	{"{\"layers\\\\.[0-1]\\\\.q_proj\": 3}", "model.layers.1.q_proj", true, 3},
	{"{\"layers\\\\.[0-1]\\\\.q_proj\": 3}", "model.layers.2.q_proj", false, 0},
	{"{\"[^.]+_proj\": 2}", "model.layers.0.up_proj", true, 2},
	{"{\"layers\\\\.\\\\w{1,2}\\\\.(?P<m>mlp)\\\\.\\\\S+\": 8}", "model.layers.12.mlp.gate_proj", true, 8},
	{"{\"layers\\\\.\\\\w{1,2}\\\\.(?P<m>mlp)\\\\.\\\\S+\": 8}", "model.layers.123.mlp.gate_proj", false, 0},
	{"{\"layers\\\\.\\\\d{,1}\\\\.mlp\": 5}", "model.layers.4.mlp", true, 5},
	{"{\"a{b\": 5}", "x.a{b", true, 5},
	{"{\"[\\\\]x-]_proj\": 5}", "m.-_proj", true, 5},
	{"{\"[\\\\]x-]_proj\": 5}", "m.]_proj", true, 5},
	{"{\"[\\\\]x-]_proj\": 5}", "m.y_proj", false, 0},
	/* duplicate keys: the place of the first, the value of the last (json.loads) */
	{"{\"q_proj\": 1, \".*\": 2, \"q_proj\": 3}", "model.q_proj", true, 3},
	/* floats (alpha_pattern) */
	{"{\"v_proj\": 32.5}", "model.layers.0.self_attn.v_proj", true, 32.5},
	{"{}", "model.q_proj", false, 0},
};

TEST(peft_pattern_lookup_as_python)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof pattern_cases / sizeof *pattern_cases; i++) {
		const pattern_case *c = &pattern_cases[i];
		test_context("%s on %s", c->json, c->module);
		cJSON *p = cJSON_Parse(c->json);
		if (!CHECK(p != NULL))
			continue;
		double v = -1;
		const bool found = peft_pattern_lookup(p, c->module, &v);
		CHECK_INT(found, c->found);
		if (found && c->found && !CHECK(v == c->value))
			test_note("value %g, want %g", v, c->value);
		cJSON_Delete(p);
		n++;
	}
	double v;
	CHECK(!peft_pattern_lookup(NULL, "model.q_proj", &v));
	test_note("%zu cases", n);
}

TEST(peft_pattern_untranslatable_refused)
{
	/* a lookahead: ERE cannot say it; lookup skips it, open refuses the config */
	cJSON *p = cJSON_Parse("{\"(?!k)q_proj\": 2}");
	double v;
	CHECK(!peft_pattern_lookup(p, "model.q_proj", &v));
	cJSON_Delete(p);
	expect_refused("lookahead", "\"rank_pattern\": {\"(?!k)q_proj\": 4}", plain_q, 2, LQ_ERR_UNSUPPORTED,
		       "rank_pattern key '(?!k)q_proj'");
	expect_refused("rank0", "\"rank_pattern\": {\"q_proj\": 0}", plain_q, 2, LQ_ERR_CORRUPT,
		       "not a positive integer");
}

/* ----------------------------------------------------------------------------- refusals */

TEST(peft_refused_configs)
{
	static const struct {
		const char *name, *extra;
		lq_status status;
		const char *needle;
	} cases[] = {
		{"loha", "\"peft_type\": \"LOHA\"", LQ_ERR_UNSUPPORTED, "peft_type is 'LOHA'"},
		{"no_type", "\"peft_type\": null", LQ_ERR_CORRUPT, "\"peft_type\" is not a string"},
		{"qalora", "\"use_qalora\": true, \"qalora_group_size\": 16", LQ_ERR_UNSUPPORTED, "use_qalora is set"},
		{"alora", "\"alora_invocation_tokens\": [12, 34]", LQ_ERR_UNSUPPORTED, "alora_invocation_tokens is set"},
		{"pissa", "\"init_lora_weights\": \"pissa\"", LQ_ERR_UNSUPPORTED, "init_lora_weights is 'pissa'"},
		{"pissa_niter", "\"init_lora_weights\": \"pissa_niter_4\"", LQ_ERR_UNSUPPORTED, "residual"},
		{"olora", "\"init_lora_weights\": \"olora\"", LQ_ERR_UNSUPPORTED, "init_lora_weights is 'olora'"},
		{"corda", "\"init_lora_weights\": \"corda\"", LQ_ERR_UNSUPPORTED, "init_lora_weights is 'corda'"},
		{"lora_ga", "\"init_lora_weights\": \"lora_ga\"", LQ_ERR_UNSUPPORTED, "init_lora_weights is 'lora_ga'"},
		{"loftq", "\"init_lora_weights\": \"loftq\", \"loftq_config\": {\"loftq_bits\": 4}", LQ_ERR_UNSUPPORTED,
		 "init_lora_weights is 'loftq'"},
		{"init_unknown", "\"init_lora_weights\": \"future\"", LQ_ERR_UNSUPPORTED, "not one PEFT 0.21 knows"},
		{"kasa", "\"kasa_config\": {}", LQ_ERR_UNSUPPORTED, "kasa_config is set"},
		{"bdlora", "\"use_bdlora\": {\"target_modules_bd_a\": [\"q_proj\"], \"nblocks\": 2}", LQ_ERR_UNSUPPORTED,
		 "use_bdlora is set"},
		{"arrow", "\"arrow_config\": {\"top_k\": 3}", LQ_ERR_UNSUPPORTED, "arrow_config is set"},
		{"target_parameters", "\"target_parameters\": [\"mlp.experts.gate_up_proj\"]", LQ_ERR_UNSUPPORTED,
		 "target_parameters is set"},
		{"layer_replication", "\"layer_replication\": [[0, 2], [1, 2]]", LQ_ERR_UNSUPPORTED,
		 "layer_replication is set"},
		{"dora_bias", "\"use_dora\": true, \"lora_bias\": true", LQ_ERR_UNSUPPORTED, "lora_bias with use_dora"},
		{"two_variants", "\"use_dora\": true, \"velora_config\": {\"num_groups\": 4}", LQ_ERR_UNSUPPORTED,
		 "more than one LoRA variant"},
		{"bad_r", "\"r\": 0", LQ_ERR_CORRUPT, "\"r\" is not a positive integer"},
		{"bad_alpha", "\"lora_alpha\": \"16\"", LQ_ERR_CORRUPT, "\"lora_alpha\" is not a number"},
		{"bad_bool", "\"use_rslora\": 1", LQ_ERR_CORRUPT, "\"use_rslora\" is not true or false"},
		{"bad_mts", "\"modules_to_save\": \"lm_head\"", LQ_ERR_CORRUPT, "\"modules_to_save\" is not a list"},
		{"bad_tti", "\"trainable_token_indices\": [1, -2]", LQ_ERR_CORRUPT, "trainable_token_indices"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		expect_refused(cases[i].name, cases[i].extra, plain_q, 2, cases[i].status, cases[i].needle);
	test_note("%zu configurations refused", sizeof cases / sizeof *cases);
	/* empty lists and nulls are not set (bool() in Python) */
	peft_adapter *a;
	CHECK_INT(open_written("unset", "\"alora_invocation_tokens\": null, \"target_parameters\": [], \"kasa_config\": "
			       "null, \"use_qalora\": false, \"init_lora_weights\": \"gaussian\"", plain_q, 2, NULL, 0, &a),
		  LQ_OK);
	peft_adapter_free(a);
}

TEST(peft_refused_files)
{
	peft_adapter *a = peft_adapter_create();
	/* only the pickle */
	const char *dir = adapter_dir("pickle");
	write_text(file_in(dir, "adapter_model.bin"), "not read");
	write_config(dir, NULL);
	CHECK_INT(peft_adapter_open(a, dir, NULL, 0), LQ_ERR_UNSUPPORTED);
	CHECK_CONTAINS(peft_adapter_error(a), "adapter_model.bin, a pickle");
	peft_adapter_free(a);
	unlink(file_in(dir, "adapter_config.json"));
	a = peft_adapter_create();
	CHECK_INT(peft_adapter_open(a, dir, NULL, 0), LQ_ERR_UNSUPPORTED); /* with no config either */
	peft_adapter_free(a);
	remove_dir(dir);

	/* no config */
	dir = adapter_dir("noconfig");
	write_tensors(file_in(dir, "adapter_model.safetensors"), plain_q, 2);
	a = peft_adapter_create();
	CHECK_INT(peft_adapter_open(a, dir, NULL, 0), LQ_ERR_IO);
	CHECK_CONTAINS(peft_adapter_error(a), "holds no adapter_config.json");
	peft_adapter_free(a);
	/* not JSON */
	write_text(file_in(dir, "adapter_config.json"), "{\"peft_type\": \"LORA\",");
	a = peft_adapter_create();
	CHECK_INT(peft_adapter_open(a, dir, NULL, 0), LQ_ERR_CORRUPT);
	CHECK_CONTAINS(peft_adapter_error(a), "adapter_config.json: not a JSON object");
	peft_adapter_free(a);
	remove_dir(dir);

	/* no tensors file */
	dir = adapter_dir("noweights");
	write_config(dir, NULL);
	a = peft_adapter_create();
	CHECK_INT(peft_adapter_open(a, dir, NULL, 0), LQ_ERR_IO);
	CHECK_CONTAINS(peft_adapter_error(a), "holds no adapter_model.safetensors");
	peft_adapter_free(a);
	remove_dir(dir);

	/* nothing there; another file */
	a = peft_adapter_create();
	CHECK_INT(peft_adapter_open(a, "/nonexistent/adapter", NULL, 0), LQ_ERR_IO);
	CHECK_CONTAINS(peft_adapter_error(a), "cannot open '/nonexistent/adapter'");
	peft_adapter_free(a);
	a = peft_adapter_create();
	CHECK_INT(peft_adapter_open(a, test_path("fixtures/models/tiny-llama/config.json"), NULL, 0), LQ_ERR_ARG);
	peft_adapter_free(a);
	/* a handle opened twice */
	a = open_fixture("rslora_r16");
	if (a) {
		CHECK_INT(peft_adapter_open(a, test_path(ADAPTERS "rslora_r16"), NULL, 0), LQ_ERR_ARG);
		peft_adapter_free(a);
	}
}

TEST(peft_refused_tensors)
{
	static const tspec unknown_key[] = {
		plain_q[0], plain_q[1], {QP ".lora_diag", ST_F32, 1, {8}}};
	expect_refused("unknown_key", NULL, unknown_key, 3, LQ_ERR_UNSUPPORTED, "tensor '" QP ".lora_diag'");
	static const tspec stray_full[] = {
		plain_q[0], plain_q[1], {"base_model.model.model.norm.weight", ST_F32, 1, {128}}};
	expect_refused("stray_full", NULL, stray_full, 3, LQ_ERR_UNSUPPORTED,
		       "'base_model.model.model.norm.weight' is neither a LoRA tensor nor under modules_to_save");
	static const tspec mismatch[] = {
		{QP ".lora_A.weight", ST_F32, 2, {8, 128}}, {QP ".lora_B.weight", ST_F32, 2, {128, 4}}};
	expect_refused("mismatch", NULL, mismatch, 2, LQ_ERR_CORRUPT, "lora_A is [8, 128] and lora_B is [128, 4]");
	static const tspec only_a[] = {{QP ".lora_A.weight", ST_F32, 2, {8, 128}}};
	expect_refused("only_a", NULL, only_a, 1, LQ_ERR_CORRUPT, "has lora_A but no lora_B");
	static const tspec conv[] = {
		{QP ".lora_A.weight", ST_F32, 4, {8, 3, 3, 3}}, {QP ".lora_B.weight", ST_F32, 4, {16, 8, 1, 1}}};
	expect_refused("conv", NULL, conv, 2, LQ_ERR_UNSUPPORTED, "LoRA on a convolution");
	static const tspec mixed[] = {
		{QP ".lora_A.weight", ST_F32, 2, {8, 128}}, {QP ".lora_B.weight", ST_BF16, 2, {128, 8}}};
	expect_refused("mixed_dtypes", NULL, mixed, 2, LQ_ERR_UNSUPPORTED, "lora_A is F32 and lora_B is BF16");
	static const tspec ints[] = {
		{QP ".lora_A.weight", ST_I32, 2, {8, 128}}, {QP ".lora_B.weight", ST_I32, 2, {128, 8}}};
	expect_refused("int_dtype", NULL, ints, 2, LQ_ERR_UNSUPPORTED, "both must be F32, F16 or BF16");
	expect_refused("dora_no_magnitude", "\"use_dora\": true", plain_q, 2, LQ_ERR_CORRUPT, "no lora_magnitude_vector");
	static const tspec mag[] = {plain_q[0], plain_q[1], {QP ".lora_magnitude_vector", ST_F32, 1, {128}}};
	expect_refused("magnitude_no_dora", NULL, mag, 3, LQ_ERR_CORRUPT, "use_dora is not set");
	static const tspec bad_mag[] = {plain_q[0], plain_q[1], {QP ".lora_magnitude_vector", ST_F32, 1, {64}}};
	expect_refused("magnitude_shape", "\"use_dora\": true", bad_mag, 3, LQ_ERR_CORRUPT, "not a floating [128]");
	static const tspec only_mag[] = {{QP ".lora_magnitude_vector", ST_F32, 1, {128}}};
	expect_refused("only_magnitude", "\"use_dora\": true", only_mag, 1, LQ_ERR_CORRUPT,
		       "has a lora_magnitude_vector but no lora_A and lora_B");
	static const tspec bias[] = {plain_q[0], plain_q[1], {QP ".lora_B.bias", ST_F32, 1, {128}}};
	expect_refused("bias_no_lora_bias", NULL, bias, 3, LQ_ERR_CORRUPT, "lora_bias is not set");
	expect_refused("lora_bias_missing", "\"lora_bias\": true", plain_q, 2, LQ_ERR_CORRUPT, "has no lora_B.bias");
	static const tspec twice[] = {
		plain_q[0], plain_q[1], {"model.layers.0.self_attn.q_proj.lora_A.weight", ST_F32, 2, {8, 128}}};
	expect_refused("twice", NULL, twice, 3, LQ_ERR_CORRUPT, "two lora_A.weight tensors");
	static const tspec both[] = {
		plain_q[0], plain_q[1], {QP ".lora_embedding_A", ST_F32, 2, {8, 384}}, {QP ".lora_embedding_B", ST_F32, 2, {128, 8}}};
	expect_refused("linear_and_embedding", NULL, both, 4, LQ_ERR_CORRUPT, "both lora_A/lora_B and lora_embedding");
	static const tspec empty[] = {{"__not_peft", ST_F32, 1, {1}}};
	expect_refused("no_lora", NULL, empty, 1, LQ_ERR_UNSUPPORTED, "not one this tool understands");
}

/* ---------------------------------------------------------------------------- what is accepted */

TEST(peft_rank_mismatch_warns)
{
	static const tspec r4[] = {
		{QP ".lora_A.weight", ST_F32, 2, {4, 128}}, {QP ".lora_B.weight", ST_F32, 2, {128, 4}}};
	peft_adapter *a;
	if (CHECK_INT(open_written("rank4", NULL, r4, 2, NULL, 0, &a), LQ_OK) && CHECK_INT(a->nmodules, 1)) {
		CHECK_INT(a->modules[0].rank, 4);
		CHECK_INT(a->modules[0].config_rank, 8);
		CHECK(a->modules[0].scaling == 4.0f); /* 16 / 4: the tensor's rank */
		if (CHECK_INT(a->nwarnings, 1))
			CHECK_CONTAINS(a->warnings[0], "rank in the config (8) differs from the tensor's (4)");
	}
	peft_adapter_free(a);
}

TEST(peft_scaling_in_double)
{
	/* alpha 16.5 (a float), rank 8; rsLoRA with rank 7: 10 / sqrt(7) rounded once to float */
	peft_adapter *a;
	if (CHECK_INT(open_written("alpha_float", "\"lora_alpha\": 16.5", plain_q, 2, NULL, 0, &a), LQ_OK)) {
		CHECK(a->lora_alpha == 16.5);
		CHECK(a->modules[0].scaling == (float)(16.5 / 8.0));
	}
	peft_adapter_free(a);
	static const tspec r7[] = {
		{QP ".lora_A.weight", ST_F32, 2, {7, 128}}, {QP ".lora_B.weight", ST_F32, 2, {128, 7}}};
	if (CHECK_INT(open_written("rslora7", "\"r\": 7, \"lora_alpha\": 10, \"use_rslora\": true", r7, 2, NULL, 0, &a),
		      LQ_OK)) {
		CHECK(a->modules[0].scaling == (float)(10.0 / sqrt(7.0)));
		CHECK_INT(a->nwarnings, 0);
	}
	peft_adapter_free(a);
}

TEST(peft_keys_without_prefix)
{
	static const tspec bare[] = {
		{"model.layers.0.mlp.up_proj.lora_A.weight", ST_F16, 2, {8, 128}},
		{"model.layers.0.mlp.up_proj.lora_B.weight", ST_F16, 2, {320, 8}},
		{"lm_head.weight", ST_F32, 2, {384, 128}},
	};
	peft_adapter *a;
	if (CHECK_INT(open_written("bare", "\"modules_to_save\": [\"lm_head\"]", bare, 3, NULL, 0, &a), LQ_OK)) {
		CHECK_INT(a->nmodules, 1);
		CHECK_STR(a->modules[0].module, "model.layers.0.mlp.up_proj");
		CHECK_INT(a->modules[0].a->dtype, ST_F16);
		CHECK_INT(a->nreplacements, 1);
		CHECK_STR(a->replacements[0].target, "lm_head.weight");
	}
	peft_adapter_free(a);
}

TEST(peft_key_maps)
{
	/* a VLM adapter saved against model.language_model.* naming, merged into a text-only base */
#define VLM "base_model.model.model.language_model.layers."
	static const tspec vlm[] = {
		{VLM "0.self_attn.q_proj.lora_A.weight", ST_F32, 2, {4, 128}},
		{VLM "0.self_attn.q_proj.lora_B.weight", ST_F32, 2, {128, 4}},
		{VLM "1.mlp.down_proj.lora_A.weight", ST_F32, 2, {8, 320}},
		{VLM "1.mlp.down_proj.lora_B.weight", ST_F32, 2, {128, 8}},
		{"base_model.model.model.language_model.embed_tokens.token_adapter.trainable_tokens_delta", ST_F32, 2,
		 {2, 128}},
	};
	const char *cfg = "\"rank_pattern\": {\"language_model.layers.0.self_attn.q_proj\": 4}, "
			  "\"trainable_token_indices\": {\"embed_tokens\": [5, 9]}";
	const peft_key_map maps[] = {{"^model\\.language_model\\.", "model."}};
	peft_adapter *a;
	if (CHECK_INT(open_written("vlm", cfg, vlm, 5, maps, 1, &a), LQ_OK)) {
		CHECK_INT(a->nmodules, 2);
		CHECK_INT(a->nwarnings, 0); /* rank_pattern matched on the adapter's own names */
		const peft_module *q = find_module(a, "model.layers.0.self_attn.q_proj");
		if (q) {
			CHECK_STR(q->weight, "model.layers.0.self_attn.q_proj.weight");
			CHECK_INT(q->config_rank, 4);
			CHECK(q->scaling == 4.0f);
		}
		find_module(a, "model.layers.1.mlp.down_proj");
		const peft_replacement *t = find_replacement(a, "model.embed_tokens.weight");
		if (t && CHECK_INT(t->nrows, 2) && CHECK(t->rows != NULL)) {
			CHECK_INT(t->source, PEFT_FROM_TRAINABLE_TOKENS);
			CHECK_INT(t->rows[0], 5);
			CHECK_INT(t->rows[1], 9);
		}
	}
	peft_adapter_free(a);
	/* without the map the names stay the adapter's */
	if (CHECK_INT(open_written("vlm_nomap", cfg, vlm, 5, NULL, 0, &a), LQ_OK))
		find_module(a, "model.language_model.layers.0.self_attn.q_proj");
	peft_adapter_free(a);
	/* back-references, maps in order, every match replaced (non-overlapping, as Python's re.sub) */
	const peft_key_map two[] = {
		{"^model\\.language_model\\.layers\\.([0-9]+)\\.(self_attn|mlp)\\.", "blocks.\\1.\\2."},
		{"_proj$", "_linear"},
		{"(.)\\.(.)", "\\1/\\2"},
	};
	if (CHECK_INT(open_written("vlm_two", cfg, vlm, 5, two, 3, &a), LQ_OK)) {
		find_module(a, "blocks/0.self_attn/q_linear");
		find_module(a, "blocks/1.mlp/down_linear");
	}
	peft_adapter_free(a);
	/* an empty match at every place, as re.sub: "x*" -> "-" */
	const peft_key_map empty[] = {{"x*", "-"}};
	static const tspec ab[] = {
		{"ab.lora_A.weight", ST_F32, 2, {1, 2}}, {"ab.lora_B.weight", ST_F32, 2, {2, 1}}};
	if (CHECK_INT(open_written("empty_match", "\"r\": 1", ab, 2, empty, 1, &a), LQ_OK))
		find_module(a, "-a-b-");
	peft_adapter_free(a);
	static const tspec axb[] = {
		{"axb.lora_A.weight", ST_F32, 2, {1, 2}}, {"axb.lora_B.weight", ST_F32, 2, {2, 1}}};
	if (CHECK_INT(open_written("empty_match2", "\"r\": 1", axb, 2, empty, 1, &a), LQ_OK))
		find_module(a, "-a--b-"); /* Python: re.sub("x*", "-", "axb") == "-a--b-" */
	peft_adapter_free(a);

	/* bad maps; two modules that land on one name */
	const peft_key_map bad[] = {{"(", "x"}};
	CHECK_INT(open_written("bad_map", cfg, vlm, 5, bad, 1, &a), LQ_ERR_ARG);
	CHECK_CONTAINS(peft_adapter_error(a), "key map '('");
	peft_adapter_free(a);
	const peft_key_map stall[] = {{"(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*"
				       "(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*b", "x"}};
	CHECK_INT(open_written("stall_map", cfg, vlm, 5, stall, 1, &a), LQ_ERR_ARG); /* regcomp took minutes */
	CHECK_CONTAINS(peft_adapter_error(a), "beyond the bounds of a regex here");
	peft_adapter_free(a);
	const peft_key_map group[] = {{"^model\\.(x)", "\\2"}};
	CHECK_INT(open_written("bad_group", cfg, vlm, 5, group, 1, &a), LQ_ERR_ARG);
	CHECK_CONTAINS(peft_adapter_error(a), "names group \\2");
	peft_adapter_free(a);
	const peft_key_map collapse[] = {{"layers\\.[0-9]+\\.[a-z_]+\\.[a-z_]+", "same"}};
	CHECK_INT(open_written("collapse", cfg, vlm, 5, collapse, 1, &a), LQ_ERR_CORRUPT);
	CHECK_CONTAINS(peft_adapter_error(a), "two LoRA modules of the adapter land on 'model.language_model.same.weight'");
	peft_adapter_free(a);
#undef VLM
}

TEST(peft_trainable_tokens)
{
	static const tspec tok[] = {
		plain_q[0], plain_q[1],
		{"base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta", ST_F32, 2, {3, 128}},
	};
	peft_adapter *a;
	if (CHECK_INT(open_written("tokens_list", "\"trainable_token_indices\": [7, 3, 100]", tok, 3, NULL, 0, &a), LQ_OK)) {
		const peft_replacement *r = find_replacement(a, "model.embed_tokens.weight");
		if (r && CHECK_INT(r->nrows, 3)) {
			CHECK_INT(r->source, PEFT_FROM_TRAINABLE_TOKENS);
			CHECK_INT(r->rows[0], 7);
			CHECK_INT(r->rows[2], 100);
			CHECK_INT(r->t->shape[0], 3);
		}
	}
	peft_adapter_free(a);
	/* the dict form: the first key the module's path ends with; other keys (a tied lm_head) saved nothing */
	if (CHECK_INT(open_written("tokens_dict", "\"trainable_token_indices\": {\"lm_head\": [1], \"embed_tokens\": "
				   "[4, 5, 6]}", tok, 3, NULL, 0, &a), LQ_OK)) {
		const peft_replacement *r = find_replacement(a, "model.embed_tokens.weight");
		if (r && CHECK_INT(r->nrows, 3))
			CHECK_INT(r->rows[0], 4);
	}
	peft_adapter_free(a);
	expect_refused("tokens_count", "\"trainable_token_indices\": [1, 2]", tok, 3, LQ_ERR_CORRUPT,
		       "not a floating [2, dim] for the 2 indices");
	expect_refused("tokens_none", NULL, tok, 3, LQ_ERR_CORRUPT, "names no indices for that module");
	expect_refused("tokens_other", "\"trainable_token_indices\": {\"wte\": [1, 2, 3]}", tok, 3, LQ_ERR_CORRUPT,
		       "names no indices");
	if (CHECK_INT(open_written("tokens_dup", "\"trainable_token_indices\": [1, 2, 1]", tok, 3, NULL, 0, &a), LQ_OK))
		CHECK(a->nwarnings == 1 && strstr(a->warnings[0], "repeats a token id"));
	peft_adapter_free(a);
}

TEST(peft_biases_and_saved_layers)
{
	static const tspec lora_bias[] = {plain_q[0], plain_q[1], {QP ".lora_B.bias", ST_F32, 1, {128}}};
	peft_adapter *a;
	if (CHECK_INT(open_written("lora_bias", "\"lora_bias\": true", lora_bias, 3, NULL, 0, &a), LQ_OK) &&
	    CHECK(a->modules[0].bias != NULL))
		CHECK_INT(a->modules[0].bias->shape[0], 128);
	peft_adapter_free(a);

	/* bias="lora_only": the LoRA layers' own bias, under base_layer; bias="all": every bias */
	static const tspec biases[] = {
		plain_q[0], plain_q[1], {QP ".base_layer.bias", ST_BF16, 1, {128}},
		{"base_model.model.model.layers.0.mlp.up_proj.bias", ST_BF16, 1, {320}},
	};
	if (CHECK_INT(open_written("bias_all", "\"bias\": \"all\"", biases, 4, NULL, 0, &a), LQ_OK) &&
	    CHECK_INT(a->nreplacements, 2)) {
		const peft_replacement *r = find_replacement(a, "model.layers.0.self_attn.q_proj.bias");
		if (r)
			CHECK_INT(r->source, PEFT_FROM_BASE_LAYER);
		r = find_replacement(a, "model.layers.0.mlp.up_proj.bias");
		if (r)
			CHECK_INT(r->source, PEFT_FROM_BIAS);
	}
	peft_adapter_free(a);
	expect_refused("bias_lora_only", "\"bias\": \"lora_only\"", biases, 4, LQ_ERR_UNSUPPORTED,
		       "up_proj.bias' is neither a LoRA tensor");

	/* embeddings saved whole by save_embedding_layers (a resized vocabulary) */
	static const tspec resized[] = {
		plain_q[0], plain_q[1], {"base_model.model.model.embed_tokens.weight", ST_BF16, 2, {390, 128}},
		{"base_model.model.lm_head.weight", ST_BF16, 2, {390, 128}},
	};
	if (CHECK_INT(open_written("resized", NULL, resized, 4, NULL, 0, &a), LQ_OK) && CHECK_INT(a->nreplacements, 2)) {
		const peft_replacement *r = find_replacement(a, "lm_head.weight");
		if (r)
			CHECK_INT(r->source, PEFT_FROM_EMBEDDING_LAYER);
	}
	peft_adapter_free(a);

	/* modules_to_save of a nested module (a suffix of the path, as PEFT's endswith), and one that saved
	 * nothing (a warning) */
	static const tspec head[] = {
		plain_q[0], plain_q[1], {"base_model.model.score.dense.weight", ST_F32, 2, {2, 128}},
		{"base_model.model.score.dense.bias", ST_F32, 1, {2}},
	};
	if (CHECK_INT(open_written("mts_nested", "\"modules_to_save\": [\"classifier\", \"score\"]", head, 4, NULL, 0, &a),
		      LQ_OK)) {
		CHECK_INT(a->nreplacements, 2);
		find_replacement(a, "score.dense.weight");
		find_replacement(a, "score.dense.bias");
		if (CHECK_INT(a->nwarnings, 1))
			CHECK_CONTAINS(a->warnings[0], "modules_to_save 'classifier': no tensor of it");
	}
	peft_adapter_free(a);
}

TEST(peft_training_only_variants)
{
	/* VeLoRA and MonteCLoRA merge as plain LoRA in PEFT 0.21: accepted, their tensors unused, a warning */
	static const tspec velora[] = {plain_q[0], plain_q[1], {QP ".lora_velora_embed", ST_F32, 1, {32}}};
	peft_adapter *a;
	if (CHECK_INT(open_written("velora", "\"velora_config\": {\"num_groups\": 4}", velora, 3, NULL, 0, &a), LQ_OK)) {
		CHECK_INT(a->nmodules, 1);
		CHECK_INT(a->nreplacements, 0);
		if (CHECK_INT(a->nwarnings, 1))
			CHECK_CONTAINS(a->warnings[0], "VeLoRA");
	}
	peft_adapter_free(a);
	expect_refused("velora_off", NULL, velora, 3, LQ_ERR_UNSUPPORTED, "lora_velora_embed' is not one");
	static const tspec mc[] = {
		plain_q[0], plain_q[1], {QP ".lora_monteclora_sampler.std_prior", ST_F32, 1, {8}},
		{QP ".lora_monteclora_sampler.expert_weights", ST_F32, 1, {4}},
	};
	if (CHECK_INT(open_written("monteclora", "\"monteclora_config\": {\"num_samples\": 4}", mc, 4, NULL, 0, &a),
		      LQ_OK)) {
		CHECK_INT(a->nmodules, 1);
		CHECK(a->nwarnings == 1 && strstr(a->warnings[0], "MonteCLoRA"));
	}
	peft_adapter_free(a);
	/* MiCA: a plain LoRA with a frozen B */
	if (CHECK_INT(open_written("mica", "\"init_lora_weights\": \"mica\"", plain_q, 2, NULL, 0, &a), LQ_OK))
		CHECK_INT(a->nwarnings, 0);
	peft_adapter_free(a);
}
