/*
 * qinspect_json.c: the JSON tensor report, schema 3 (man/qinspect.1 documents every key and what changed from
 * schema 1; tools/qinspect.schema.json is the JSON Schema the tests validate against). Keys are snake_case
 * and stable: within a schema a key never changes meaning; a change that a reader of the schema could
 * misread takes the next number. Numbers that have no finite value are null: the SNR of identical tensors,
 * the cosine of an all-zero one, and every error figure of a tensor or total with an element that is not
 * finite (its nonfinite count says which: the figures are then unbounded, never good).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "qinspect_report.h"

static void add_number(cJSON *o, const char *key, double v)
{
	cJSON_AddItemToObject(o, key, cli_json_number(v));
}

static void add_count(cJSON *o, const char *key, uint64_t v)
{
	cJSON_AddNumberToObject(o, key, (double)v); /* exact below 2^53: any real count */
}

/* total: the tensors a total adds up (0 for a tensor's own error) */
static cJSON *error_object(const qi_error *e, const qi_report *r, bool total, size_t tensors)
{
	cJSON *o = cJSON_CreateObject();
	if (total)
		add_count(o, "tensors", tensors);
	add_count(o, "elements", e->elements);
	add_count(o, "differ", e->differ);
	add_count(o, "nonfinite", e->nonfinite);
	add_count(o, "nonfinite_checkpoint", e->nonfinite_checkpoint);
	add_count(o, "nonfinite_reference", e->nonfinite_reference);
	add_number(o, "rmse", e->rmse);
	add_number(o, "max_abs_err", e->max_abs_err);
	if (total)
		cJSON_AddItemToObject(o, "max_abs_err_tensor", e->max_abs_err_index >= 0
									 ? cJSON_CreateString(r->tensors[e->max_abs_err_index].name)
									 : cJSON_CreateNull());
	else
		cJSON_AddItemToObject(o, "max_abs_err_index",
				      e->max_abs_err_index >= 0 ? cJSON_CreateNumber((double)e->max_abs_err_index) : cJSON_CreateNull());
	add_number(o, "rel_err", e->rel_err);
	add_number(o, "snr_db", e->snr_db);
	add_number(o, "cosine", e->cosine);
	cJSON_AddBoolToObject(o, "identical", e->differ == 0);
	return o;
}

static cJSON *bytes_object(const qi_bytes *b)
{
	cJSON *o = cJSON_CreateObject();
	add_count(o, "codes", b->codes);
	add_count(o, "absmax", b->absmax);
	add_count(o, "nested_absmax", b->nested);
	add_count(o, "tables", b->tables);
	return o;
}

static cJSON *counts_array(const uint64_t *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
	return a;
}

static cJSON *tensor_object(const qi_tensor *t, const qi_report *r)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON *shape = cJSON_AddArrayToObject(o, "shape");
	for (int d = 0; d < t->ndim; d++)
		cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
	cJSON_AddNumberToObject(o, "layer", t->layer);
	cJSON *st = cJSON_AddObjectToObject(o, "storage");
	cJSON_AddStringToObject(st, "dtype", t->dtype);
	cJSON_AddBoolToObject(st, "quantized", t->quantized);
	if (t->quantized) {
		cJSON_AddStringToObject(st, "quant_type", lq_qtype_name(t->qtype));
		cJSON_AddNumberToObject(st, "blocksize", t->blocksize);
		cJSON_AddBoolToObject(st, "double_quant", t->double_quant);
	}
	add_count(o, "params", t->params);
	add_count(o, "bytes", t->bytes_total);
	cJSON_AddItemToObject(o, "bytes_by_part", bytes_object(&t->bytes));
	add_number(o, "bits_per_param", t->bits_per_param);
	if (t->quantized) {
		add_number(o, "bits_per_param_blocks", t->bits_per_param_blocks);
		cJSON_AddItemToObject(o, "code_histogram", counts_array(t->code_histogram, 16));
		add_number(o, "code_entropy", t->code_entropy);
		cJSON *a = cJSON_AddObjectToObject(o, "absmax");
		add_count(a, "blocks", t->nblocks);
		add_number(a, "min", t->absmax_min);
		add_number(a, "mean", t->absmax_mean);
		add_number(a, "max", t->absmax_max);
		add_count(a, "nonfinite", t->absmax_nonfinite);
	}
	cJSON_AddItemToObject(o, "error", t->err.present ? error_object(&t->err, r, false, 0) : cJSON_CreateNull());
	cJSON_AddBoolToObject(o, "gate_failed", t->gate_failed);
	return o;
}

static cJSON *names_array(const char *const *names, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
	return a;
}

bool qi_write_json(const qi_report *r, FILE *f)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddNumberToObject(root, "schema", 3);
	cJSON_AddStringToObject(root, "tool", "qinspect");
	cJSON_AddStringToObject(root, "version", LQ_VERSION_STRING);
	cJSON_AddStringToObject(root, "checkpoint", r->checkpoint);
	cJSON_AddItemToObject(root, "reference", r->reference ? cJSON_CreateString(r->reference) : cJSON_CreateNull());
	cJSON_AddStringToObject(root, "device", r->device ? r->device : "");
	cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
	for (size_t i = 0; i < r->ntensors; i++)
		cJSON_AddItemToArray(tensors, tensor_object(&r->tensors[i], r));
	cJSON_AddItemToObject(root, "only_in_checkpoint", names_array(r->only_in_checkpoint, r->n_only_checkpoint));
	cJSON_AddItemToObject(root, "only_in_reference", names_array(r->only_in_reference, r->n_only_reference));
	cJSON *s = cJSON_AddObjectToObject(root, "summary");
	add_count(s, "tensors", r->ntensors);
	add_count(s, "params", r->params);
	add_count(s, "bytes", r->bytes_total);
	cJSON_AddItemToObject(s, "bytes_by_part", bytes_object(&r->bytes));
	add_number(s, "bits_per_param", r->bits_per_param);
	cJSON *q = cJSON_AddObjectToObject(s, "quantized");
	add_count(q, "tensors", r->quantized_tensors);
	add_count(q, "params", r->quantized_params);
	add_count(q, "bytes", r->quantized_bytes);
	add_number(q, "bits_per_param", r->quantized_bits_per_param);
	add_number(q, "bits_per_param_blocks", r->quantized_bits_per_param_blocks);
	cJSON_AddItemToObject(q, "code_histogram", counts_array(r->code_histogram, 16));
	add_count(q, "absmax_nonfinite", r->absmax_nonfinite);
	cJSON_AddItemToObject(q, "error", r->quantized_total.present
						  ? error_object(&r->quantized_total, r, true, r->quantized_compared)
						  : cJSON_CreateNull());
	cJSON_AddItemToObject(s, "error", r->total.present ? error_object(&r->total, r, true, r->compared_tensors)
							  : cJSON_CreateNull());
	cJSON *worst = cJSON_AddArrayToObject(s, "worst");
	for (size_t k = 0; k < r->nworst; k++) {
		cJSON *w = cJSON_CreateObject();
		cJSON_AddStringToObject(w, "name", r->tensors[r->worst[k]].name);
		add_number(w, "rel_err", r->tensors[r->worst[k]].err.rel_err);
		cJSON_AddItemToArray(worst, w);
	}
	cJSON *gates = cJSON_AddArrayToObject(root, "gates");
	for (int g = 0; g < QI_NGATES; g++) {
		const qi_gate *gate = &r->gates[g];
		if (!gate->set)
			continue;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "gate", qi_gate_key((qi_gate_kind)g));
		add_number(o, "limit", gate->limit);
		cJSON *failed = cJSON_AddArrayToObject(o, "failed");
		for (size_t k = 0; k < gate->nfailed; k++)
			cJSON_AddItemToArray(failed, cJSON_CreateString(r->tensors[gate->failed[k]].name));
		cJSON_AddItemToArray(gates, o);
	}
	cJSON_AddBoolToObject(root, "passed", r->passed);
	add_number(root, "seconds", r->seconds);
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	if (!text)
		return false;
	bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
	free(text);
	return ok;
}
