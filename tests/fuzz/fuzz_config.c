/*
 * fuzz_config.c: config.json through transformers' selection rules (formats/hf_select.c) and the skip lists
 * (formats/skiplist.c, formats/pyregex.c) under libFuzzer (`make fuzz FUZZ_TARGET=config`), and under
 * tests/fuzz/replay.c in `make check`. The input is the text of config.json.
 *
 * The config is parsed as the tools parse it, hf_select_create'd, and every tensor name of a fixed set
 * (realistic ones of many families, 2-D float weights, and a few that are not) is decided with
 * hf_select_quantize and hf_select_linear_module. Promises checked (a broken one aborts):
 *   - a reason always; only a 2-D float ".weight" is converted; a transposed weight is converted; a
 *     converted weight is the weight of a module transformers 5 converts (hf_select_linear_module, linear5);
 *     a refusal names an entry and says why;
 *   - the skip list hf_select_skip_list makes for those decisions is of literal entries only; when it
 *     warns of nothing, the config with that list instead of its own gives the same decisions (the
 *     list read back, as nf4quant reads its own output); every entry keeps out, under each rule of
 *     skiplist.h, no converted module and every module left in float that the rule's version converts;
 *   - for the config's own string entries: an entry with a literal form matches, under both 5.x rules,
 *     as its regex translation (pyregex.h) does.
 * Deterministic: no randomness, no clock. Time per input is bounded by the bounds of hf_select.c and
 * pyregex.h (libFuzzer's -timeout says when it is not).
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_select.h"
#include "pyregex.h"
#include "skiplist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                        \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: broken: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct tensor {
	const char *name;
	int ndim;
	bool is_float;
} tensor;

static const tensor tensors[] = {
	/* llama */
	{"model.embed_tokens.weight", 2, true},
	{"model.layers.0.self_attn.q_proj.weight", 2, true},
	{"model.layers.0.self_attn.k_proj.weight", 2, true},
	{"model.layers.0.self_attn.o_proj.weight", 2, true},
	{"model.layers.0.mlp.gate_proj.weight", 2, true},
	{"model.layers.1.mlp.down_proj.weight", 2, true},
	{"model.layers.10.mlp.up_proj.weight", 2, true},
	{"model.layers.0.input_layernorm.weight", 1, true},
	{"model.norm.weight", 1, true},
	{"lm_head.weight", 2, true},
	/* BERT */
	{"bert.embeddings.word_embeddings.weight", 2, true},
	{"bert.encoder.layer.0.attention.self.query.weight", 2, true},
	{"bert.encoder.layer.0.attention.output.dense.weight", 2, true},
	{"bert.encoder.layer.0.attention.output.dense.bias", 1, true},
	{"bert.pooler.dense.weight", 2, true},
	{"cls.predictions.transform.dense.weight", 2, true},
	{"encoder.layer.1.output.dense.weight", 2, true},
	/* GPT-2 (Conv1D), falcon, T5 */
	{"transformer.h.0.attn.c_attn.weight", 2, true},
	{"transformer.h.0.mlp.c_fc.weight", 2, true},
	{"transformer.wte.weight", 2, true},
	{"transformer.h.0.self_attention.query_key_value.weight", 2, true},
	{"encoder.block.0.layer.1.DenseReluDense.wo.weight", 2, true},
	{"shared.weight", 2, true},
	/* MoE: experts and routers */
	{"model.layers.0.block_sparse_moe.experts.3.w1.weight", 2, true},
	{"model.layers.0.block_sparse_moe.gate.weight", 2, true},
	{"model.layers.0.mlp.experts.0.gate_proj.weight", 2, true},
	{"model.layers.0.mlp.shared_experts.gate_proj.weight", 2, true},
	{"model.layers.0.mlp.gate.weight", 2, true},
	/* legacy llava and Qwen2-VL layouts, heads */
	{"language_model.model.layers.0.self_attn.q_proj.weight", 2, true},
	{"language_model.lm_head.weight", 2, true},
	{"vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", 2, true},
	{"multi_modal_projector.linear_1.weight", 2, true},
	{"visual.blocks.0.attn.qkv.weight", 2, true},
	{"score.weight", 2, true},
	{"classifier.weight", 2, true},
	/* names that make spellings hard: a prefix of another, a suffix of another, odd characters */
	{"model.layers.0.fc.weight", 2, true},
	{"model.layers.0.fc2.weight", 2, true},
	{"model.mtp.lm_head.weight", 2, true},
	{"lm_head_2.weight", 2, true},
	{"x..y.weight", 2, true},
	{"a(b)*.weight", 2, true},
	{"model.layers.0.q_proj.weight", 2, false},
	{"model.layers.0.q_proj.weight_scale", 2, true},
};
#define N COUNT(tensors)

static bool decide(const hf_select *s, bool quantize[N])
{
	bool any = false;
	for (size_t i = 0; i < N; i++) {
		const tensor *t = &tensors[i];
		const int64_t shape[2] = {64, 32};
		bool transpose = true;
		const char *reason = NULL;
		quantize[i] = hf_select_quantize(s, t->name, t->ndim, shape, t->is_float, &transpose, &reason);
		REQUIRE(reason != NULL && reason[0]);
		REQUIRE(!transpose || quantize[i]);
		char buf[2048];
		bool linear5 = true;
		const char *path = hf_select_linear_module(s, t->name, t->ndim, t->is_float, &linear5, buf, sizeof buf);
		REQUIRE(!path || (path == buf && strlen(buf) < sizeof buf));
		REQUIRE(path || !linear5);
		if (quantize[i]) {
			REQUIRE(t->ndim == 2 && t->is_float);
			REQUIRE(strlen(t->name) > 7 && strcmp(t->name + strlen(t->name) - 7, ".weight") == 0);
			REQUIRE(path && linear5);
		}
		any |= quantize[i];
	}
	return any;
}

/* Entries of the config's own list: the literal form agrees with the regex of the same text. */
static void check_entries(const cJSON *list)
{
	int n = 0;
	for (const cJSON *c = cJSON_IsArray(list) ? list->child : NULL; c && n < 32; c = c->next) {
		if (!cJSON_IsString(c))
			continue;
		n++;
		hf_skip_entry e;
		const pyre_status st = hf_skip_entry_init(&e, c->valuestring, NULL);
		REQUIRE(st != PYRE_NOMEM);
		if (st == PYRE_OK && e.units) {
			hf_skip_entry r = {.text = e.text, .len = e.len};
			if (pyre_compile(&r.re, "^(", e.text, ")$", 0, NULL) == PYRE_OK) {
				r.compiled = true;
				r.compiled_prefix = e.anchored &&
						    pyre_compile(&r.re_prefix, "^(", e.text, ")$", PYRE_NO_END, NULL) == PYRE_OK;
				for (size_t i = 0; i < N; i++)
					for (int rule = HF_SKIP_V5_PREFIX; rule <= HF_SKIP_V5; rule++)
						REQUIRE(hf_skip_entry_matches(&e, tensors[i].name, (hf_skip_rule)rule) ==
							hf_skip_entry_matches(&r, tensors[i].name, (hf_skip_rule)rule));
				regfree(&r.re);
				if (r.compiled_prefix)
					regfree(&r.re_prefix);
			}
		}
		hf_skip_entry_free(&e);
	}
}

/* The list made for the decisions, checked against them, and read back. */
static void check_list(const cJSON *config, const hf_select *s, const bool quantize[N])
{
	hf_select_tensor t[N];
	for (size_t i = 0; i < N; i++)
		t[i] = (hf_select_tensor){tensors[i].name, tensors[i].ndim, tensors[i].is_float, quantize[i]};
	hf_skip_list l;
	if (hf_select_skip_list(s, t, N, &l) != LQ_OK) {
		hf_skip_list_free(&l);
		return; /* out of memory */
	}
	REQUIRE(l.entries != NULL); /* a list, even empty: never null */
	hf_skip_entry *e = calloc(l.n ? l.n : 1, sizeof *e);
	REQUIRE(e != NULL);
	for (size_t k = 0; k < l.n; k++) {
		REQUIRE(hf_skip_entry_init(&e[k], l.entries[k], NULL) == PYRE_OK && e[k].units);
		for (size_t j = 0; j < k; j++)
			REQUIRE(strcmp(l.entries[j], l.entries[k]) != 0);
	}
	if (l.nwarnings == 0) {
		for (size_t i = 0; i < N; i++) {
			char buf[2048];
			bool linear5;
			const char *path = hf_select_linear_module(s, tensors[i].name, tensors[i].ndim, tensors[i].is_float,
								   &linear5, buf, sizeof buf);
			if (!path)
				continue;
			for (int rule = HF_SKIP_V4; rule <= HF_SKIP_V5; rule++) {
				bool caught = false;
				for (size_t k = 0; k < l.n && !caught; k++)
					caught = hf_skip_entry_matches(&e[k], path, (hf_skip_rule)rule);
				/* converted: never caught; left in float: caught wherever the version converts it */
				REQUIRE(!(quantize[i] && caught));
				REQUIRE(quantize[i] || caught || (rule != HF_SKIP_V4 && !linear5));
			}
		}
		/* read back: the config with this list as its only one */
		cJSON *back = cJSON_Duplicate(config, true);
		cJSON *list = cJSON_CreateStringArray((const char *const *)l.entries, (int)l.n);
		if (back && list) {
			while (cJSON_GetObjectItemCaseSensitive(back, "quantization_config"))
				cJSON_DeleteItemFromObjectCaseSensitive(back, "quantization_config");
			while (cJSON_GetObjectItemCaseSensitive(back, "llm_int8_skip_modules"))
				cJSON_DeleteItemFromObjectCaseSensitive(back, "llm_int8_skip_modules");
			cJSON_AddItemToObject(back, "llm_int8_skip_modules", list);
			list = NULL;
			hf_select *s2 = hf_select_create(back);
			if (s2) {
				REQUIRE(hf_select_refused(s2, NULL) == NULL);
				bool again[N];
				decide(s2, again);
				for (size_t i = 0; i < N; i++)
					REQUIRE(again[i] == quantize[i]);
				hf_select_free(s2);
			}
		}
		cJSON_Delete(list);
		cJSON_Delete(back);
	}
	for (size_t k = 0; k < l.n; k++)
		hf_skip_entry_free(&e[k]);
	free(e);
	hf_skip_list_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *config = cJSON_ParseWithLength((const char *)data, size);
	/* the tools take a config only when it is an object; NULL stands for a bare safetensors file */
	const cJSON *c = cJSON_IsObject(config) ? config : NULL;
	hf_select *s = hf_select_create(c);
	if (!s) {
		cJSON_Delete(config);
		return 0; /* out of memory */
	}
	const char *entry = NULL;
	const char *why = hf_select_refused(s, &entry);
	REQUIRE(!why || (why[0] && entry));
	bool quantize[N];
	decide(s, quantize);
	if (c) {
		const cJSON *qc = cJSON_GetObjectItemCaseSensitive(c, "quantization_config");
		check_entries(cJSON_GetObjectItemCaseSensitive(c, "llm_int8_skip_modules"));
		check_entries(cJSON_GetObjectItemCaseSensitive(qc, "llm_int8_skip_modules"));
	}
	check_list(c, s, quantize);
	hf_select_free(s);
	cJSON_Delete(config);
	return 0;
}
