/*
 * select_truth_test.c: formats/hf_select.c against the truth recorded by tests/gpu/select_truth.py:
 * {"cases": [{"name", "config", "tensors": [{"key", "dtype", "shape", "quantized", "conv1d"}]}]}, one
 * entry per tensor of a saved float checkpoint, "quantized" true when transformers stored it 4-bit and
 * "conv1d" (when not null) whether it was transposed first.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hf_select.h"
#include "select_cases.h"

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? 2 * cap : 1 << 20;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		const size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	const bool bad = ferror(f) != 0;
	fclose(f);
	if (bad) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

static bool is_float_dtype(const char *dtype)
{
	return strcmp(dtype, "F32") == 0 || strcmp(dtype, "F16") == 0 || strcmp(dtype, "BF16") == 0;
}

/* Checks one case; returns its number of disagreements, -1 when it is malformed. */
static int check_case(const cJSON *c, FILE *log)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
	const cJSON *config = cJSON_GetObjectItemCaseSensitive(c, "config");
	const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(c, "tensors");
	const char *cname = cJSON_IsString(name) ? name->valuestring : "?";
	if (!cJSON_IsArray(tensors))
		return -1;
	hf_select *s = hf_select_create(cJSON_IsObject(config) ? config : NULL);
	if (!s)
		return -1;
	int bad = 0, keys = 0, quantized = 0;
	for (const cJSON *t = tensors->child; t; t = t->next) {
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(t, "key");
		const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
		const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
		const cJSON *q = cJSON_GetObjectItemCaseSensitive(t, "quantized");
		const cJSON *conv = cJSON_GetObjectItemCaseSensitive(t, "conv1d");
		if (!cJSON_IsString(key) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsBool(q)) {
			hf_select_free(s);
			return -1;
		}
		int64_t dims[8] = {0};
		int ndim = 0;
		for (const cJSON *d = shape->child; d; d = d->next, ndim++)
			if (ndim < 8)
				dims[ndim] = cJSON_IsNumber(d) ? (int64_t)d->valuedouble : 0;
		bool transpose;
		const char *why;
		const bool got = hf_select_quantize(s, key->valuestring, ndim, dims, is_float_dtype(dtype->valuestring),
						    &transpose, &why);
		const bool want = cJSON_IsTrue(q);
		const bool want_t = cJSON_IsTrue(conv);
		keys++;
		quantized += want;
		if (got != want || (want && cJSON_IsBool(conv) && transpose != want_t)) {
			bad++;
			if (log)
				fprintf(log, "select: %s: %s %s [%d-D]: transformers %s%s, select %s%s (%s)\n", cname,
					key->valuestring, dtype->valuestring, ndim, want ? "quantizes" : "keeps",
					want && want_t ? " transposed" : "", got ? "quantizes" : "keeps",
					got && transpose ? " transposed" : "", why);
		}
	}
	if (log)
		fprintf(log, "select: %-60s keys=%4d quantized=%4d disagreements=%d\n", cname, keys, quantized, bad);
	hf_select_free(s);
	return bad;
}

int select_truth_check(const char *json_path, FILE *log)
{
	char *text = read_file(json_path);
	if (!text) {
		if (log)
			fprintf(log, "select: cannot read '%s'\n", json_path);
		return -1;
	}
	cJSON *root = cJSON_Parse(text);
	free(text);
	const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
	if (!cJSON_IsArray(cases)) {
		if (log)
			fprintf(log, "select: '%s' is not a truth file (no \"cases\" array)\n", json_path);
		cJSON_Delete(root);
		return -1;
	}
	int bad = 0;
	for (const cJSON *c = cases->child; c; c = c->next) {
		const int n = check_case(c, log);
		if (n < 0) {
			if (log)
				fprintf(log, "select: '%s': a malformed case\n", json_path);
			cJSON_Delete(root);
			return -1;
		}
		bad += n;
	}
	cJSON_Delete(root);
	return bad;
}
