/*
 * nf4quant_deq.c: nf4quant -d (nf4quant_deq.h). The composition of nf4quant itself, the other way: open
 * the checkpoint (headers, and each 4-bit group's quant_state and maps, checked by hf_tensors.h), plan
 * every output tensor, then stream: a 4-bit group is dequantized by the executor's MERGE without adapters
 * (the op that dequantizes loramerge's 4-bit bases and that qinspect's comparisons share: the same
 * arithmetic on the CPU and the GPU, bitsandbytes' dequantize_4bit bit for bit), everything else is
 * copied; then config.json without its quantization_config, the carried files, the MANIFEST.
 */
#include "nf4quant_deq.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_json.h"
#include "hf_model.h"
#include "hf_tensors.h"
#include "libquant.h"
#include "out_model.h"
#include "run.h"
#include "st_exec.h"

/* One logical input tensor and its output. */
typedef struct deq_item {
	const hf_tensor *h;
	lq_dtype out_dtype;       /* a group's output type */
	st_dtype st_out;          /* the output tensor's type */
	uint64_t bytes_out;
	size_t out_shard;
	int32_t wid, sid;
} deq_item;

typedef struct deq_plan {
	hf_tensors ts;
	deq_item *items;
	size_t n, ndequantized;
	uint64_t params_in, params_dequantized, bytes_in, bytes_out;
	out_model om;
	run_tasks run;
	char max_shard_size[32];
	const char *origin_values[3];
} deq_plan;

static const char *dtype_option_name(lq_dtype dt)
{
	return dt == LQ_DTYPE_BF16 ? "bf16" : dt == LQ_DTYPE_F16 ? "fp16" : "fp32";
}

/* The element count of a group, from its quant_state's shape (hf_tensors.c checked it). */
static int64_t group_elements(const hf_tensor *h)
{
	return (int64_t)h->nelem;
}

static lq_status plan_items(const deq_options *o, const hf_model *m, deq_plan *p, char *err)
{
	p->items = calloc(p->ts.n + 1, sizeof *p->items);
	if (!p->items)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < p->ts.n; i++) {
		const hf_tensor *h = &p->ts.v[i];
		deq_item *it = &p->items[p->n++];
		it->h = h;
		it->wid = it->sid = -1;
		p->params_in += h->nelem;
		p->bytes_in += h->bytes;
		if (!h->quantized) {
			it->st_out = h->data.t->dtype;
			it->bytes_out = h->data.t->end - h->data.t->begin;
			continue;
		}
		/* the merge op reads rows: the last dimension, whole */
		const int64_t cols = h->ndim ? h->shape[h->ndim - 1] : 1;
		if (h->nelem && (uint64_t)cols * 4 > ((uint64_t)16 << 20)) {
			char q[256];
			return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: tensor %s: rows of more than 4M elements (%" PRId64 ") "
					"are not supported", h->data.f->path, fmt_quote(h->name, q, sizeof q), cols);
		}
		it->out_dtype = o->dtype_set ? o->dtype : h->state.dtype;
		it->st_out = st_dtype_from_lq(it->out_dtype);
		it->bytes_out = h->nelem * lq_dtype_size(it->out_dtype);
		p->ndequantized++;
		p->params_dequantized += h->nelem;
	}
	(void)m;
	return LQ_OK;
}

static lq_status declare_outputs(const deq_options *o, const hf_model *m, deq_plan *p, char *err)
{
	uint64_t *bytes = calloc(p->n + 1, sizeof *bytes);
	size_t *in_shard = calloc(p->n + 1, sizeof *in_shard), *out_shard = calloc(p->n + 1, sizeof *out_shard);
	lq_status st = LQ_OK;
	if (!bytes || !in_shard || !out_shard) {
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n; i++) {
		bytes[i] = p->items[i].bytes_out;
		in_shard[i] = p->items[i].h->shard;
	}
	size_t nshards = om_assign_shards(o->output, o->out.max_shard_size, bytes, in_shard, p->n, m->nshards, out_shard);
	if ((st = om_init(&p->om, o->output, nshards, err)) != LQ_OK)
		goto out;
	for (size_t i = 0; i < p->n && st == LQ_OK; i++) {
		deq_item *it = &p->items[i];
		it->out_shard = out_shard[i];
		const st_tensor *t = it->h->data.t; /* a copy keeps its own shape; a group's is its quant_state's */
		it->wid = it->h->quantized ? om_add(&p->om, it->out_shard, it->h->name, it->st_out, it->h->ndim, it->h->shape, err)
					   : om_add(&p->om, it->out_shard, t->name, t->dtype, t->ndim, t->shape, err);
		st = it->wid < 0 ? LQ_ERR_ARG : LQ_OK;
	}
	if (st == LQ_OK)
		st = om_layout(&p->om, err);
	p->bytes_out = p->om.bytes;
out:
	free(bytes);
	free(in_shard);
	free(out_shard);
	return st;
}

/* What the MANIFEST records of the options: those that shape the bytes. */
static void set_origin(const deq_options *o, deq_plan *p)
{
	static const char *const keys[] = {"dequantize", "dtype", "max_shard_size"};
	snprintf(p->max_shard_size, sizeof p->max_shard_size, "%" PRIu64, o->out.max_shard_size);
	const char *values[] = {"true", o->dtype_set ? dtype_option_name(o->dtype) : "input", p->max_shard_size};
	memcpy(p->origin_values, values, sizeof values);
	om_set_origin(&p->om, "nf4quant", keys, p->origin_values, sizeof keys / sizeof *keys);
	p->om.zstd_level = o->out.zstd_level;
}

/* The task of every output tensor of the shards this run writes: a copy, or a 4-bit group dequantized by
 * a MERGE without adapters (its codes the input, its constants side inputs), to its own type first and
 * then to --dtype's, as transformers' dequantize(dtype) casts what dequantize_4bit gives. */
static lq_status plan_tasks(deq_plan *p, char *err)
{
	lq_status st = run_tasks_init(&p->run, p->n, err);
	st_source *src = p->run.src;
	for (size_t i = 0; i < p->n && st == LQ_OK; i++) {
		deq_item *it = &p->items[i];
		const hf_tensor *h = it->h;
		if (!om_shard_todo(&p->om, it->out_shard) || (h->quantized && h->nelem == 0))
			continue; /* another part's, or an empty tensor: nothing to write */
		if ((it->sid = st_sink_add(p->run.sink, om_writer(&p->om, it->out_shard), it->wid)) < 0)
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		lq_task *t = run_tasks_add(&p->run, it->out_shard);
		*t = (lq_task){.name = h->name, .origin = h->data.f->path, .input = st_source_add(src, h->data.f, h->data.t, false),
			       .nbytes = h->data.t->end - h->data.t->begin, .ndim = h->ndim, .out_data = it->sid};
		memcpy(t->shape, h->shape, sizeof h->shape);
		if (!h->quantized) {
			t->op = LQ_OP_COPY;
		} else {
			const bnb_state *s = &h->state;
			const int64_t n = group_elements(h), cols = h->ndim ? h->shape[h->ndim - 1] : 1;
			t->op = LQ_OP_MERGE;
			t->merge = (lq_merge_args){.rows = n / cols, .cols = cols, .out_dtype = it->out_dtype,
				.base = {.dtype = s->dtype, .quantized = true, .quant = {s->qtype, s->blocksize, s->double_quant},
					 .offset = s->nested_offset,
					 .absmax_input = st_source_add(src, h->parts[BNB_PART_ABSMAX].f, h->parts[BNB_PART_ABSMAX].t, false),
					 .nested_input = s->double_quant ? st_source_add(src, h->parts[BNB_PART_NESTED_ABSMAX].f,
											 h->parts[BNB_PART_NESTED_ABSMAX].t, false) : -1}};
			if (t->merge.base.absmax_input < 0 || (s->double_quant && t->merge.base.nested_input < 0))
				t->input = -1;
		}
		if (t->input < 0)
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	}
	return st;
}

static void plan_free(deq_plan *p)
{
	run_tasks_free(&p->run);
	om_free(&p->om); /* unfinished files and an uncommitted output are removed */
	free(p->items);
	hf_tensors_free(&p->ts);
}

/* ---------------------------------------------------------------------------------- reporting */

static void group_note(const hf_tensor *h, char *buf, size_t size)
{
	snprintf(buf, size, "%s, blocksize %d%s, %s", lq_qtype_name(h->state.qtype), (int)h->state.blocksize,
		 h->state.double_quant ? ", double quant" : "", lq_dtype_torch_name(h->state.dtype));
}

/* The plan: on standard output for --dry-run (without --json), else on standard error with -v. */
static void print_plan(const deq_options *o, const hf_model *m, const deq_plan *p, uint64_t memory)
{
	bool out = o->common.dry_run && !o->common.json;
	char a[32], b[32], c[32];
	for (size_t i = 0; i < p->n; i++) {
		const deq_item *it = &p->items[i];
		char shape[128], note[128];
		fmt_shape(shape, sizeof shape, it->h->ndim, it->h->shape);
		if (it->h->quantized) {
			group_note(it->h, note, sizeof note);
			cli_plan(out, "%-10s %s (%s) %s -> %s %s", "dequantize", it->h->name, note, shape,
				 st_dtype_name(it->st_out), cli_human_bytes(it->bytes_out, a, sizeof a));
		} else {
			cli_plan(out, "%-10s %s %s %s -> %s", "copy", it->h->name, st_dtype_name(it->st_out), shape,
				 cli_human_bytes(it->bytes_out, a, sizeof a));
		}
	}
	cli_plan(out, "%zu of %zu tensors dequantized%s%s: %s -> %s", p->ndequantized, p->n,
		 o->dtype_set ? " to " : "", o->dtype_set ? dtype_option_name(o->dtype) : "",
		 cli_human_bytes(p->bytes_in, a, sizeof a), cli_human_bytes(p->bytes_out, b, sizeof b));
	cli_plan(out, "output: %s (%zu shard%s%s), memory needed: about %s", o->output, p->om.nshards,
		 p->om.nshards == 1 ? "" : "s", m->is_model_dir ? ", config.json, carried files" : "",
		 cli_human_bytes(memory, c, sizeof c));
}

static void print_json(const deq_options *o, const deq_plan *p, double seconds, bool written)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "tool", "nf4quant");
	cJSON_AddStringToObject(root, "version", LQ_VERSION_STRING);
	cJSON_AddStringToObject(root, "mode", "dequantize");
	cJSON_AddStringToObject(root, "input", o->input);
	cJSON_AddStringToObject(root, "output", o->output);
	cJSON_AddBoolToObject(root, "dry_run", !written);
	cJSON_AddStringToObject(root, "dtype", o->dtype_set ? dtype_option_name(o->dtype) : "input");
	cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
	for (size_t i = 0; i < p->n; i++) {
		const deq_item *it = &p->items[i];
		const hf_tensor *h = it->h;
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "name", h->name);
		cJSON_AddStringToObject(t, "action", h->quantized ? "dequantize" : "copy");
		if (h->quantized) {
			cJSON_AddStringToObject(t, "quant_type", lq_qtype_name(h->state.qtype));
			cJSON_AddNumberToObject(t, "blocksize", h->state.blocksize);
			cJSON_AddBoolToObject(t, "double_quant", h->state.double_quant);
		}
		cJSON_AddStringToObject(t, "dtype", st_dtype_name(it->st_out));
		cJSON *shape = cJSON_AddArrayToObject(t, "shape");
		for (int d = 0; d < h->ndim; d++)
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)h->shape[d]));
		cJSON_AddNumberToObject(t, "bytes_in", (double)h->bytes);
		cJSON_AddNumberToObject(t, "bytes_out", (double)it->bytes_out);
		cJSON_AddStringToObject(t, "shard", p->om.files[it->out_shard]);
		cJSON_AddItemToArray(arr, t);
	}
	cJSON *tot = cJSON_AddObjectToObject(root, "totals");
	cJSON_AddNumberToObject(tot, "tensors", (double)p->n);
	cJSON_AddNumberToObject(tot, "dequantized", (double)p->ndequantized);
	cJSON_AddNumberToObject(tot, "parameters", (double)p->params_in);
	cJSON_AddNumberToObject(tot, "dequantized_parameters", (double)p->params_dequantized);
	cJSON_AddNumberToObject(tot, "bytes_in", (double)p->bytes_in);
	cJSON_AddNumberToObject(tot, "bytes_out", (double)p->bytes_out);
	cJSON_AddNumberToObject(tot, "shards", (double)p->om.nshards);
	cJSON_AddNumberToObject(root, "seconds", seconds);
	char *s = cJSON_Print(root);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	cJSON_Delete(root);
}

/* ------------------------------------------------------------------------------------- output */

/* config.json without its quantization_config (the rest byte for byte), or NULL: none in the input. */
static char *output_config(const hf_model *m, size_t *len, char *err)
{
	if (!m->is_model_dir || !m->config_text)
		return NULL;
	return hf_config_edit(m->config_text, m->config_len, "quantization_config", NULL, len, err);
}

/* The messages' name of INPUT's config.json. */
static void config_name(const hf_model *m, char *buf, size_t size)
{
	if (m->dir)
		snprintf(buf, size, "%s%sconfig.json", m->dir, fmt_ends_with(m->dir, "/") ? "" : "/");
	else
		snprintf(buf, size, "%s:config.json", m->input);
}

static lq_status convert(hf_model *m, deq_plan *p, lq_ctx *ctx, char *err)
{
	lq_status st = run_tasks_execute(ctx, &p->om, m, &p->run, "dequantizing", err);
	if (st != LQ_OK)
		return st;
	size_t cfg_len = 0;
	char *cfg = output_config(m, &cfg_len, err);
	if (!cfg && err[0])
		return LQ_ERR_CORRUPT;
	st = om_finish(&p->om, m, p->params_in, cfg, cfg_len, err);
	free(cfg);
	return st;
}

/* The checkpoint's tensors, and what makes it one to dequantize: false, said. */
static bool open_input(const deq_options *o, hf_model *m, deq_plan *p, char *err)
{
	if (hf_model_open(m, o->input) != LQ_OK) {
		cli_error("%s", m->err);
		return false;
	}
	/* a 4-bit group's shape and type are in its quant_state, after its codes: a stream is copied whole
	 * first (to TMPDIR, never to memory), then read as a file */
	if (hf_model_is_stream(m) && st_file_stream_spool(m->shards[0].st, getenv("TMPDIR")) != LQ_OK) {
		cli_error("%s", st_file_error(m->shards[0].st));
		return false;
	}
	if (m->unindexed)
		cli_warn("%zu tensors in the shards are missing from the index; they are converted too", m->unindexed);
	if (hf_tensors_list(m, &p->ts, err) != LQ_OK) {
		cli_error("%s", err);
		return false;
	}
	if (!p->ts.any_quantized) {
		char cfg[4096];
		config_name(m, cfg, sizeof cfg);
		if (m->config && cJSON_GetObjectItemCaseSensitive(m->config, "quantization_config"))
			cli_error("%s: no bitsandbytes 4-bit tensor (a NAME.quant_state.bitsandbytes__nf4 or __fp4 beside its "
				  "codes), though %s has a quantization_config: not a 4-bit checkpoint these tools read", o->input, cfg);
		else
			cli_error("%s: no bitsandbytes 4-bit tensor (a NAME.quant_state.bitsandbytes__nf4 or __fp4 beside its "
				  "codes): a float checkpoint has nothing to dequantize (nf4quant without -d quantizes it)", o->input);
		return false;
	}
	return true;
}

int deq_main(const deq_options *o)
{
	double t0 = cli_now();
	int status = CLI_EXIT_FAILURE;
	char err[FMT_ERRBUF] = "";
	hf_model *m = hf_model_create();
	deq_plan p = {0};
	lq_ctx *ctx = NULL;
	if (!m) {
		cli_error("out of memory");
		return CLI_EXIT_FAILURE;
	}
	lq_ctx_options copts = cli_ctx_options(&o->common);
	ctx = lq_ctx_create(&copts);
	if (!ctx) {
		cli_error("cannot start: out of memory or threads");
		goto finish;
	}
	if (!open_input(o, m, &p, err))
		goto finish;
	if (om_place_check(m, NULL, 0, o->output, err) != LQ_OK || plan_items(o, m, &p, err) != LQ_OK ||
	    declare_outputs(o, m, &p, err) != LQ_OK ||
	    (o->out.nparts && om_set_part(&p.om, (size_t)o->out.part, (size_t)o->out.nparts, err) != LQ_OK)) {
		cli_error("%s", err);
		goto finish;
	}
	if (o->out.finish)
		om_set_finish(&p.om);
	set_origin(o, &p);
	if (plan_tasks(&p, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	const uint64_t memory = run_tasks_memory(ctx, &p.run);
	const lq_work work = {.bytes_in = p.bytes_in, .bytes_out = p.bytes_out, .out_synced = !om_is_stream(o->output),
			      .dequantized = (int64_t)p.params_dequantized};
	lq_ctx_set_work(ctx, &work);
	if (!o->common.dry_run && lq_ctx_use_device(ctx, o->common.device) != LQ_OK) {
		cli_error("--device %s: %s", o->common.device, lq_ctx_error_string(ctx));
		goto finish;
	}
	if (!o->out.nparts && om_carries_files(m, o->output))
		for (size_t i = 0; i < m->nskipped; i++)
			cli_info(0, "not carried: %s", m->skipped[i]);
	if (o->common.dry_run || cli_verbosity > 0)
		print_plan(o, m, &p, memory);
	if (o->common.dry_run) {
		if (o->common.json)
			print_json(o, &p, cli_now() - t0, false);
		status = CLI_EXIT_OK;
		goto finish;
	}
	p.om.zstd_threads = lq_ctx_threads(ctx);
	if (om_begin(&p.om, o->common.force, om_carried_bytes(m), err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	cli_device_why(ctx);
	cli_info(1, "compute: %s; %s kernels, %d thread%s", lq_ctx_device_note(ctx), lq_ctx_backend_name(ctx),
		 lq_ctx_threads(ctx), lq_ctx_threads(ctx) == 1 ? "" : "s");
	if (convert(m, &p, ctx, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	if (o->common.json) {
		print_json(o, &p, cli_now() - t0, true);
		if (!cli_flush_stdout())
			goto finish;
	}
	if (om_commit(&p.om, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	double secs = cli_now() - t0;
	if (o->common.json) {
		/* written above */
	} else if (o->out.nparts) {
		size_t written = 0;
		for (size_t s = 0; s < p.om.nshards; s++)
			written += om_shard_todo(&p.om, s);
		cli_info(0, "%s: part %ld of %ld: %zu of its %zu shards written, %.2f s; the directory is complete once "
			 "every part is there and --finish has run", o->output, o->out.part + 1, o->out.nparts, written,
			 p.om.nshards, secs);
	} else if (p.om.finish) {
		cli_info(0, "%s: completed from its %zu parts' shards (index, config.json, carried files, MANIFEST), "
			 "%.2f s", o->output, p.om.nshards, secs);
	} else {
		char a[32], b[32];
		cli_info(0, "%s: %zu of %zu tensors dequantized%s%s, %s -> %s, %.2f s", o->output, p.ndequantized, p.n,
			 o->dtype_set ? " to " : "", o->dtype_set ? dtype_option_name(o->dtype) : "",
			 cli_human_bytes(p.bytes_in, a, sizeof a), cli_human_bytes(p.bytes_out, b, sizeof b), secs);
	}
	status = CLI_EXIT_OK;
finish:
	plan_free(&p);
	lq_ctx_free(ctx);
	hf_model_free(m);
	if (status == CLI_EXIT_OK && fflush(stdout) != 0) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		status = CLI_EXIT_FAILURE;
	}
	return status;
}
