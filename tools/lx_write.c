/*
 * lx_write.c: loraextract's adapter directory (loraextract.h lx_write_adapter), as PEFT 0.21's
 * save_pretrained writes one and convert_to_lora configures it: adapter_config.json with r and lora_alpha
 * equal (scale 1), target_modules the modules' full paths, rank_pattern and alpha_pattern (equal) for the
 * modules of another rank, modules_to_save for the tensors kept whole; adapter_model.safetensors with
 * `base_model.model.<module>.lora_A.weight` / `.lora_B.weight` (`.lora_embedding_A` / `_B` for an
 * embedding) and `base_model.model.<tensor>` for a kept one; a MANIFEST. Written to a temporary name and
 * renamed into place (hf_out.h).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adapter_out.h"
#include "bundle.h"
#include "fmt.h"
#include "hf_out.h"
#include "loraextract.h"
#include "manifest.h"
#include "out_model.h"

#define WEIGHTS_NAME ADAPTER_WEIGHTS_NAME
#define CONFIG_NAME ADAPTER_CONFIG_NAME
#define KEY_PREFIX ADAPTER_KEY_PREFIX

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The rank most modules have (the larger on a tie): the config's r, the others in rank_pattern. */
static int64_t common_rank(const xresult *r)
{
	int64_t best = 0;
	size_t best_n = 0;
	for (size_t i = 0; i < r->nmods; i++) {
		size_t n = 0;
		for (size_t j = 0; j < r->nmods; j++)
			n += r->mods[j].rank == r->mods[i].rank;
		if (n > best_n || (n == best_n && r->mods[i].rank > best)) {
			best = r->mods[i].rank;
			best_n = n;
		}
	}
	return best;
}

static cJSON *sorted_list(const char **names, size_t n)
{
	qsort(names, n, sizeof *names, cmp_str);
	cJSON *list = cJSON_CreateArray();
	for (size_t i = 0; list && i < n; i++)
		if ((i == 0 || strcmp(names[i], names[i - 1]) != 0) &&
		    !cJSON_AddItemToArray(list, cJSON_CreateString(names[i]))) {
			cJSON_Delete(list);
			return NULL;
		}
	return list;
}

/* adapter_config.json, its keys in order as PEFT's json.dumps(sort_keys=True) writes them. */
static char *config_text(const xresult *r)
{
	const int64_t rank = common_rank(r);
	const char **names = malloc((r->nmods + r->nothers + 1) * sizeof *names);
	cJSON *c = cJSON_CreateObject(), *rp = cJSON_CreateObject(), *ap = cJSON_CreateObject();
	char *text = NULL;
	if (!names || !c || !rp || !ap)
		goto done;
	for (size_t i = 0; i < r->nmods; i++) {
		names[i] = r->mods[i].name;
		if (r->mods[i].rank != rank) {
			cJSON_AddNumberToObject(rp, r->mods[i].name, (double)r->mods[i].rank);
			cJSON_AddNumberToObject(ap, r->mods[i].name, (double)r->mods[i].rank);
		}
	}
	cJSON *targets = sorted_list(names, r->nmods);
	size_t nkept = 0;
	for (size_t i = 0; i < r->nothers; i++)
		if (r->others[i].kept)
			names[nkept++] = r->others[i].module;
	cJSON *save = nkept ? sorted_list(names, nkept) : cJSON_CreateNull();
	cJSON_AddItemToObject(c, "alpha_pattern", ap);
	ap = NULL;
	if (r->base_name)
		cJSON_AddStringToObject(c, "base_model_name_or_path", r->base_name);
	else
		cJSON_AddNullToObject(c, "base_model_name_or_path");
	cJSON_AddStringToObject(c, "bias", "none");
	if (r->tie)
		cJSON_AddTrueToObject(c, "ensure_weight_tying");
	cJSON_AddBoolToObject(c, "fan_in_fan_out", r->conv1d);
	cJSON_AddTrueToObject(c, "inference_mode");
	cJSON_AddTrueToObject(c, "init_lora_weights");
	cJSON_AddNumberToObject(c, "lora_alpha", (double)rank);
	cJSON_AddNumberToObject(c, "lora_dropout", 0.0);
	cJSON_AddItemToObject(c, "modules_to_save", save);
	cJSON_AddStringToObject(c, "peft_type", "LORA");
	cJSON_AddNumberToObject(c, "r", (double)rank);
	cJSON_AddItemToObject(c, "rank_pattern", rp);
	rp = NULL;
	cJSON_AddItemToObject(c, "target_modules", targets);
	cJSON_AddNullToObject(c, "task_type");
	cJSON_AddFalseToObject(c, "use_dora");
	cJSON_AddFalseToObject(c, "use_rslora");
	if (targets && save)
		text = cJSON_Print(c);
done:
	free(names);
	cJSON_Delete(c);
	cJSON_Delete(rp);
	cJSON_Delete(ap);
	return text;
}

static char *key_of(const char *module, const char *suffix)
{
	char *s = malloc(strlen(KEY_PREFIX) + strlen(module) + strlen(suffix) + 1);
	if (s)
		sprintf(s, "%s%s%s", KEY_PREFIX, module, suffix);
	return s;
}

static bool declare(st_writer *w, xresult *r)
{
	for (size_t i = 0; i < r->nmods; i++) {
		xmodule *m = &r->mods[i];
		const bool emb = m->kind == XK_EMBED, tr = m->kind != XK_LINEAR;
		char *na = key_of(m->name, emb ? ".lora_embedding_A" : ".lora_A.weight");
		char *nb = key_of(m->name, emb ? ".lora_embedding_B" : ".lora_B.weight");
		const int64_t sa[2] = {m->rank, tr ? m->rows : m->cols};
		const int64_t sb[2] = {tr ? m->cols : m->rows, m->rank};
		const st_dtype dt = st_dtype_from_lq(m->dtype);
		m->id_a = na ? st_writer_add(w, na, dt, 2, sa) : -1;
		m->id_b = nb ? st_writer_add(w, nb, dt, 2, sb) : -1;
		free(na);
		free(nb);
		if (m->id_a < 0 || m->id_b < 0) {
			cli_error("%s", st_writer_error(w));
			return false;
		}
	}
	for (size_t i = 0; i < r->nothers; i++) {
		xother *x = &r->others[i];
		if (!x->kept)
			continue;
		char *name = key_of(x->name, "");
		x->id = name ? st_writer_add(w, name, x->t->data.t->dtype, x->t->data.t->ndim, x->t->data.t->shape) : -1;
		free(name);
		if (x->id < 0) {
			cli_error("%s", st_writer_error(w));
			return false;
		}
	}
	if (st_writer_set_meta(w, "format", "pt") != LQ_OK || st_writer_layout(w) != LQ_OK) {
		cli_error("%s", st_writer_error(w));
		return false;
	}
	return true;
}

/* The MANIFEST of the adapter's two files, with the options that shape their bytes. */
static bool write_manifest(hf_out *out, const xopts *o)
{
	char rank[32], energy[32], max_rank[32];
	snprintf(rank, sizeof rank, "%ld", o->rank);
	snprintf(energy, sizeof energy, "%.17g", o->energy);
	snprintf(max_rank, sizeof max_rank, "%ld", o->max_rank);
	const char *keys[8], *values[8];
	size_t nopt = 0;
#define OPTION(cond, k, v) \
	if (cond) { \
		keys[nopt] = k; \
		values[nopt++] = v; \
	}
	OPTION(o->correct, "correct", "true");
	OPTION(o->rank, "rank", rank);
	OPTION(o->energy > 0, "energy", energy);
	OPTION(o->max_rank, "max_rank", max_rank);
	OPTION(o->embed, "embed", "true");
	OPTION(o->keep_other, "keep_other", "true");
	OPTION(o->dtype_set, "dtype", lq_dtype_torch_name(o->dtype));
	OPTION(true, "split", o->split_sqrt ? "sqrt" : "peft");
#undef OPTION
	return adapter_out_manifest(out, "loraextract", keys, values, nopt);
}

static size_t factor_bytes(const xmodule *m, bool b)
{
	return (size_t)(m->rank * (b ? (m->kind == XK_LINEAR ? m->rows : m->cols)
				     : (m->kind == XK_LINEAR ? m->cols : m->rows))) * lq_dtype_size(m->dtype);
}

bool lx_write_adapter(const xopts *o, xresult *r)
{
	bool ok = false;
	hf_out *out = hf_out_create();
	st_writer *w = st_writer_create();
	char *config = NULL;
	void *buf = NULL;
	if (!out || !w) {
		cli_error("out of memory");
		goto done;
	}
	if (om_is_bundle(o->output))
		hf_out_set_bundle(out, BUNDLE_DEFAULT_LEVEL, 1);
	if (!declare(w, r))
		goto done;
	if (!(config = config_text(r))) {
		cli_error("out of memory");
		goto done;
	}
	if (hf_out_begin(out, o->output, true, o->common.force) != LQ_OK ||
	    hf_out_check_space(out, st_writer_file_size(w) + strlen(config) + 65536) != LQ_OK) {
		cli_error("%s", hf_out_error(out));
		goto done;
	}
	if (st_writer_open(w, hf_out_path(out, WEIGHTS_NAME)) != LQ_OK ||
	    st_writer_set_display_name(w, o->output) != LQ_OK) {
		cli_error("%s", st_writer_error(w));
		goto done;
	}
	for (size_t i = 0; i < r->nmods; i++) {
		const xmodule *m = &r->mods[i];
		if (st_writer_write(w, m->id_a, 0, m->a, factor_bytes(m, false)) != LQ_OK ||
		    st_writer_write(w, m->id_b, 0, m->b, factor_bytes(m, true)) != LQ_OK) {
			cli_error("%s", st_writer_error(w));
			goto done;
		}
	}
	for (size_t i = 0; i < r->nothers; i++) {
		const xother *x = &r->others[i];
		if (!x->kept)
			continue;
		size_t len;
		char err[FMT_ERRBUF];
		free(buf);
		buf = NULL;
		if (hf_ref_read(&x->t->data, &buf, &len, err) != LQ_OK) {
			cli_error("%s", err);
			goto done;
		}
		if (st_writer_write(w, x->id, 0, buf, len) != LQ_OK) {
			cli_error("%s", st_writer_error(w));
			goto done;
		}
	}
	if (cli_interrupted()) {
		cli_error("interrupted");
		goto done;
	}
	if (st_writer_finish(w) != LQ_OK) {
		cli_error("%s", st_writer_error(w));
		goto done;
	}
	if (hf_out_write_file(out, CONFIG_NAME, config, strlen(config)) != LQ_OK) {
		cli_error("%s", hf_out_error(out));
		goto done;
	}
	if (!write_manifest(out, o))
		goto done;
	if (o->common.json && !cli_flush_stdout())
		goto done;
	if (hf_out_commit(out) != LQ_OK) {
		cli_error("%s", hf_out_error(out));
		goto done;
	}
	ok = true;
done:
	free(buf);
	free(config);
	st_writer_free(w);
	hf_out_free(out);
	return ok;
}
