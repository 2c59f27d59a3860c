/*
 * test_select.c: which tensors nf4quant quantizes by default (formats/hf_select.c) against transformers'
 * own decision: the hand-derived cases of select_cases.c, and the truth recorded from real
 * transformers 5.17 + bitsandbytes 0.50.2 4-bit loads of 37 tiny models of many architectures
 * (fixtures/transformers/select_truth.json, made by tests/gpu/select_truth.py on the GPU machine).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hf_select.h"
#include "select_cases.h"
#include "test.h"

TEST(select_hand_cases)
{
	for (size_t i = 0; i < select_ncases; i++) {
		const select_case *c = &select_cases[i];
		test_context("case %zu: %s", i, c->name);
		cJSON *cfg = c->config ? cJSON_Parse(c->config) : NULL;
		if (c->config && !CHECK(cfg != NULL))
			continue;
		hf_select *s = hf_select_create(cfg);
		bool transpose = false;
		const char *reason = NULL;
		bool q = hf_select_quantize(s, c->name, c->ndim, c->shape, c->is_float, &transpose, &reason);
		CHECK_INT(q, c->quantize);
		CHECK_INT(transpose, c->transpose);
		CHECK(reason != NULL);
		if (c->reason_has && reason)
			CHECK_CONTAINS(reason, c->reason_has);
		hf_select_free(s);
		cJSON_Delete(cfg);
	}
	test_note("%zu cases", select_ncases);
}

TEST(select_matches_transformers)
{
	const char *truth = test_path("fixtures/transformers/select_truth.json");
	int disagree = select_truth_check(truth, NULL);
	if (!CHECK_INT(disagree, 0))
		select_truth_check(truth, stderr); /* the details */
}

/* A skip list that cannot be followed is reported, entry and reason, at once; the rest still applies. */
TEST(select_refuses_skip_entries_it_cannot_follow)
{
	static const struct {
		const char *entries; /* JSON list */
		const char *why;     /* a substring of the reason */
		const char *entry;
	} cases[] = {
		{"[\"(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*(a*)*"
		 "(a*)*(a*)*(a*)*(a*)*(a*)*b\", \"q_proj\"]",
		 "Python regex", "(a*)*(a*)*"},
		{"[\"q_proj\", \"(?<=self_attn\\\\.)k_proj\"]", "lookaround", "(?<=self_attn\\.)k_proj"},
		{"[\"q_proj\", 3]", "not a string", ""},
		{"[\"q_proj\", \"(a{60}){60}\", \"(b{60}){60}\"]", "4096 atoms", "(b{60}){60}"},
	};
	const double t0 = (double)clock() / CLOCKS_PER_SEC;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		test_context("%s", cases[i].entries);
		char text[512];
		snprintf(text, sizeof text, "{\"model_type\": \"llama\", \"llm_int8_skip_modules\": %s}", cases[i].entries);
		cJSON *cfg = cJSON_Parse(text);
		if (!CHECK(cfg != NULL))
			continue;
		hf_select *s = hf_select_create(cfg);
		const char *entry = NULL;
		const char *why = hf_select_refused(s, &entry);
		CHECK(why && strstr(why, cases[i].why));
		CHECK(entry && strncmp(entry, cases[i].entry, strlen(cases[i].entry)) == 0);
		const int64_t shape[2] = {64, 64};
		CHECK(!hf_select_quantize(s, "model.layers.0.self_attn.q_proj.weight", 2, shape, true, NULL, NULL));
		CHECK(hf_select_quantize(s, "model.layers.0.self_attn.k_proj.weight", 2, shape, true, NULL, NULL));
		hf_select_free(s);
		cJSON_Delete(cfg);
	}
	/* the entry a list may not exceed */
	cJSON *cfg = cJSON_Parse("{\"model_type\": \"llama\"}");
	cJSON *list = cJSON_AddArrayToObject(cfg, "llm_int8_skip_modules");
	for (int i = 0; i < 65537 && list; i++)
		cJSON_AddItemToArray(list, cJSON_CreateString(i == 65536 ? "q_proj" : "x"));
	hf_select *s = hf_select_create(cfg);
	const char *why = hf_select_refused(s, NULL);
	CHECK(why && strstr(why, "65536"));
	hf_select_free(s);
	cJSON_Delete(cfg);
	CHECK((double)clock() / CLOCKS_PER_SEC - t0 < 1.0);
}

/* The skip list written for a checkpoint reads back as the same decisions (nf4quant reading its own
 * output): BERT, whose last parameter is a bias, and BertForMaskedLM, whose decoder is tied. */
TEST(select_skip_list_reads_back)
{
	static const char *const names[] = {
		"bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
		"bert.encoder.layer.0.output.dense.weight", "bert.encoder.layer.0.output.dense.bias",
		"bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.predictions.transform.dense.weight",
		"cls.predictions.bias",
	};
	const size_t n = sizeof names / sizeof *names;
	cJSON *cfg = cJSON_Parse("{\"model_type\": \"bert\", \"architectures\": [\"BertForMaskedLM\"]}");
	hf_select *s = hf_select_create(cfg);
	hf_select_tensor t[8];
	bool q[8];
	for (size_t i = 0; i < n; i++) {
		const int ndim = strstr(names[i], "bias") ? 1 : 2;
		const int64_t shape[2] = {64, 64};
		q[i] = hf_select_quantize(s, names[i], ndim, shape, true, NULL, NULL);
		t[i] = (hf_select_tensor){names[i], ndim, true, q[i]};
	}
	CHECK(q[1] && q[2] && q[4] && q[6]); /* the pooler is converted, as transformers 5 does */
	hf_skip_list l;
	if (CHECK_INT(hf_select_skip_list(s, t, n, &l), LQ_OK)) {
		CHECK_INT(l.nwarnings, 0);
		if (CHECK_INT(l.n, 2)) {
			CHECK_STR(l.entries[0], "lm_head"); /* absent, harmless: no quantized module is caught */
			CHECK_STR(l.entries[1], "cls.predictions.decoder"); /* the tied decoder */
		}
		cJSON *back = cJSON_Parse("{\"model_type\": \"bert\", \"architectures\": [\"BertForMaskedLM\"]}");
		cJSON_AddItemToObject(back, "llm_int8_skip_modules",
				      cJSON_CreateStringArray((const char *const *)l.entries, (int)l.n));
		hf_select *s2 = hf_select_create(back);
		for (size_t i = 0; i < n; i++) {
			test_context("%s", names[i]);
			const int64_t shape[2] = {64, 64};
			CHECK_INT(hf_select_quantize(s2, names[i], t[i].ndim, shape, true, NULL, NULL), q[i]);
		}
		hf_select_free(s2);
		cJSON_Delete(back);
	}
	hf_skip_list_free(&l);
	hf_select_free(s);
	cJSON_Delete(cfg);
}
