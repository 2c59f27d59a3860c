/*
 * test_skiplist.c: llm_int8_skip_modules (formats/skiplist.c): entries match as transformers 4.57, 5.17
 * and 5.25 match them (skip_rule_cases.inc, made by skip_rule_cases.py from the versions' own code), by
 * the literal form and by the regex alike; and the lists made for a checkpoint keep out exactly the modules
 * left in float under every version's rule, or say which version will not load it.
 */
#include <stdlib.h>
#include <string.h>

#include "skiplist.h"
#include "test.h"

typedef struct rule_case {
	const char *entry, *path;
	int v4, v5_prefix, v5;
} rule_case;

static const rule_case rule_cases[] = {
#include "skip_rule_cases.inc"
};

TEST(skip_entry_matches_as_transformers)
{
	size_t literal = 0;
	for (size_t i = 0; i < sizeof rule_cases / sizeof *rule_cases; i++) {
		const rule_case *c = &rule_cases[i];
		test_context("entry '%s', module '%s'", c->entry, c->path);
		hf_skip_entry e;
		if (!CHECK_INT(hf_skip_entry_init(&e, c->entry, NULL), PYRE_OK))
			continue;
		CHECK_INT(hf_skip_entry_matches(&e, c->path, HF_SKIP_V4), c->v4);
		CHECK_INT(hf_skip_entry_matches(&e, c->path, HF_SKIP_V5_PREFIX), c->v5_prefix);
		CHECK_INT(hf_skip_entry_matches(&e, c->path, HF_SKIP_V5), c->v5);
		if (e.units) {
			/* the same entry through its regex: the fast form is only a shortcut */
			literal++;
			hf_skip_entry r = {.text = e.text, .len = e.len};
			r.compiled = pyre_compile(&r.re, "^(", e.text, ")$", 0, NULL) == PYRE_OK;
			r.compiled_prefix = pyre_compile(&r.re_prefix, "^(", e.text, ")$", PYRE_NO_END, NULL) == PYRE_OK;
			if (CHECK(r.compiled && r.compiled_prefix)) {
				CHECK_INT(hf_skip_entry_matches(&r, c->path, HF_SKIP_V5_PREFIX), c->v5_prefix);
				CHECK_INT(hf_skip_entry_matches(&r, c->path, HF_SKIP_V5), c->v5);
			}
			if (r.compiled)
				regfree(&r.re);
			if (r.compiled_prefix)
				regfree(&r.re_prefix);
		}
		hf_skip_entry_free(&e);
	}
	test_note("%zu cases, %zu with a literal form", sizeof rule_cases / sizeof *rule_cases, literal);
}

/* A refused entry is still a plain string for 4.x, and nothing for 5.x. */
TEST(skip_entry_refused)
{
	hf_skip_entry e;
	CHECK_INT(hf_skip_entry_init(&e, "(?<=x)lm_head", NULL), PYRE_REFUSED);
	CHECK(!hf_skip_entry_matches(&e, "x.lm_head", HF_SKIP_V5));
	CHECK(!hf_skip_entry_matches(&e, "x.lm_head", HF_SKIP_V5_PREFIX));
	CHECK(hf_skip_entry_matches(&e, "(?<=x)lm_head", HF_SKIP_V4));
	hf_skip_entry_free(&e);
	hf_skip_entry_free(&e); /* freed: a no-op */
}

typedef struct module_desc {
	const char *path;
	char kind; /* 'q' quantized, 'f' float Linear (4.x and 5.x), '4' float and only 4.x converts it, 'a' absent */
} module_desc;

/* Makes the list for mods[0, n); checks it against every rule unless warnings are expected; the entries
 * joined by ' ' into got. Returns the number of warnings. */
static size_t make(const module_desc *mods, size_t n, char *got, size_t size)
{
	hf_skip_module m[32];
	for (size_t i = 0; i < n; i++)
		m[i] = (hf_skip_module){.path = mods[i].path, .quantized = mods[i].kind == 'q', .linear4 = true,
					.linear5 = mods[i].kind != '4', .absent = mods[i].kind == 'a'};
	hf_skip_list l;
	got[0] = '\0';
	if (!CHECK_INT(hf_skip_list_make(m, n, &l), LQ_OK))
		return 0;
	CHECK(l.entries != NULL);
	for (size_t k = 0; k < l.n; k++) {
		if (k)
			strncat(got, " ", size - strlen(got) - 1);
		strncat(got, l.entries[k], size - strlen(got) - 1);
	}
	for (size_t i = 0; i < l.nwarnings; i++)
		test_note("warning: %s", l.warnings[i]);
	const size_t nwarnings = l.nwarnings;
	if (nwarnings == 0) {
		for (size_t i = 0; i < n; i++)
			for (int r = HF_SKIP_V4; r <= HF_SKIP_V5; r++) {
				bool caught = false;
				for (size_t k = 0; k < l.n && !caught; k++) {
					hf_skip_entry e;
					CHECK_INT(hf_skip_entry_init(&e, l.entries[k], NULL), PYRE_OK);
					caught = hf_skip_entry_matches(&e, mods[i].path, (hf_skip_rule)r);
					hf_skip_entry_free(&e);
				}
				test_context("'%s' under rule %d, list [%s]", mods[i].path, r, got);
				if (mods[i].kind == 'q')
					CHECK(!caught);
				else if (mods[i].kind == 'f' || (mods[i].kind == '4' && r == HF_SKIP_V4))
					CHECK(caught);
			}
	}
	hf_skip_list_free(&l);
	return nwarnings;
}

TEST(skip_list_spellings)
{
	char got[1024];
	/* nothing in float: an empty list, not null (it turns off every version's defaults) */
	const module_desc all_quantized[] = {{"model.layers.0.mlp.up_proj", 'q'}};
	CHECK_INT(make(all_quantized, 1, got, sizeof got), 0);
	CHECK_STR(got, "");
	/* the shipped tiny-llama: a tied head, absent from the file */
	const module_desc tied[] = {{"lm_head", 'a'}, {"model.layers.0.self_attn.q_proj", 'q'}};
	CHECK_INT(make(tied, 2, got, sizeof got), 0);
	CHECK_STR(got, "lm_head");
	/* modules the user left in float: their paths */
	const module_desc user[] = {{"model.layers.0.self_attn.q_proj", 'f'}, {"model.layers.0.self_attn.k_proj", 'q'},
				    {"model.layers.1.self_attn.q_proj", 'q'}, {"lm_head", 'f'}};
	CHECK_INT(make(user, 4, got, sizeof got), 0);
	CHECK_STR(got, "model.layers.0.self_attn.q_proj lm_head");
	/* "model.layers.0.fc" would catch fc2 in 5.17 (a prefix): its name does it safely */
	const module_desc prefix[] = {{"model.layers.0.fc", 'f'}, {"model.layers.0.fc2", 'q'}};
	CHECK_INT(make(prefix, 2, got, sizeof got), 0);
	CHECK_STR(got, "fc");
	/* ... unless another fc is quantized: no spelling serves 4.x and 5.17, the newer rules win */
	const module_desc prefix2[] = {{"model.layers.0.fc", 'f'}, {"model.layers.0.fc2", 'q'}, {"model.layers.1.fc", 'q'}};
	CHECK_INT(make(prefix2, 3, got, sizeof got), 1);
	CHECK_STR(got, "model.layers.0.fc");
	/* a head whose name ends a quantized module's path (5.x: endswith), or is its name (4.x): 5.x gets
	 * the exact spelling, 4.x cannot be told */
	const module_desc suffix[] = {{"lm_head", 'f'}, {"model.mtp.lm_head", 'q'}};
	CHECK_INT(make(suffix, 2, got, sizeof got), 1);
	CHECK_STR(got, "lm_head$");
	/* a path that is no literal (regex characters): an ancestor serves, or only 5.x can be told */
	const module_desc odd[] = {{"model.x(1).proj", 'f'}, {"other.y.proj", 'q'}};
	CHECK_INT(make(odd, 2, got, sizeof got), 0);
	CHECK_STR(got, "model");
	const module_desc odd2[] = {{"model.x(1).proj", 'f'}, {"model.y.proj", 'q'}};
	CHECK_INT(make(odd2, 2, got, sizeof got), 1);
	CHECK_STR(got, "model\\.x\\(1\\)\\.proj$");
}

/* Modules only 4.x converts (per-expert Linears of an MoE, routers) are grouped. */
TEST(skip_list_groups_experts)
{
	char got[1024];
	const module_desc mixtral[] = {
		{"model.layers.0.self_attn.q_proj", 'q'},
		{"model.layers.0.block_sparse_moe.experts.0.w1", '4'},
		{"model.layers.0.block_sparse_moe.experts.1.w1", '4'},
		{"model.layers.1.block_sparse_moe.experts.0.w2", '4'},
		{"model.layers.0.block_sparse_moe.gate", '4'},
		{"lm_head", 'f'},
	};
	CHECK_INT(make(mixtral, 6, got, sizeof got), 0);
	CHECK_STR(got, "experts block_sparse_moe lm_head");
	/* DeepSeek: "experts." is inside "shared_experts.", which is quantized */
	const module_desc deepseek[] = {
		{"model.layers.3.mlp.shared_experts.gate_proj", 'q'},
		{"model.layers.3.mlp.experts.0.gate_proj", '4'},
		{"model.layers.3.mlp.experts.7.down_proj", '4'},
		{"model.layers.3.mlp.gate", '4'},
		{"model.layers.3.self_attn.q_proj", 'q'},
	};
	CHECK_INT(make(deepseek, 5, got, sizeof got), 0);
	CHECK_STR(got, "mlp.experts model.layers.3.mlp.gate");
}
