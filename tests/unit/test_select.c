/*
 * test_select.c: which tensors nf4quant quantizes by default (formats/select.c) against transformers'
 * own decision: the hand-derived cases of select_cases.c, and the truth recorded from real
 * transformers 5.17 + bitsandbytes 0.50.2 4-bit loads of 37 tiny models of many architectures
 * (fixtures/transformers/select_truth.json, made by tests/gpu/select_truth.py on the GPU machine).
 */
#include <cjson/cJSON.h>

#include "select.h"
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
