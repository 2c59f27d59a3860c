/*
 * merge_plan.c: a merge planned tensor by tensor (merge_plan.h): the base's tensors as items, the adapters'
 * modules attached to them with every check PEFT's loading makes, what each item becomes, and the tasks
 * libquant's executor runs for them.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "merge_plan.h"

/* ADAPTER[:WEIGHT] (cli_adapter_arg); a weight of 0 is said, since it adds nothing. */
void merge_request_add_adapter(merge_request *rq, const char *arg)
{
	char **a = realloc(rq->adapters, (rq->nadapters + 1) * sizeof *a);
	if (a)
		rq->adapters = a;
	double *w = realloc(rq->weights, (rq->nadapters + 1) * sizeof *w);
	if (w)
		rq->weights = w;
	if (!a || !w) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAILURE);
	}
	cli_adapter_arg(arg, &rq->adapters[rq->nadapters], &rq->weights[rq->nadapters]);
	if (rq->weights[rq->nadapters] == 0)
		cli_warn("'%s': weight 0: the adapter's low-rank updates add nothing", arg);
	rq->nadapters++;
}

static merge_item *new_item(merge_plan *p)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 256;
		merge_item *it = realloc(p->items, cap * sizeof *it);
		if (!it)
			return NULL;
		p->items = it;
		p->cap = cap;
	}
	merge_item *it = &p->items[p->n++];
	memset(it, 0, sizeof *it);
	for (int k = 0; k < BNB_NPARTS; k++)
		it->wid[k] = it->sid[k] = -1;
	return it;
}

/* The base's tensors as items: plain tensors, and each 4-bit group as one item (its parts found by name,
 * in whatever shard they are). */
/* One item per logical tensor of the base (a 4-bit group is one, its parts found and checked by
 * formats/hf_tensors.c). */
lq_status merge_plan_base(const hf_tensors *ts, merge_plan *p, char *err)
{
	p->base_quantized = ts->any_quantized;
	for (size_t i = 0; i < ts->n; i++) {
		const hf_tensor *h = &ts->v[i];
		merge_item *it = new_item(p);
		if (!it || !(it->name = strdup(h->name)))
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		it->shard = h->shard;
		it->data = h->data;
		it->ndim = h->ndim;
		memcpy(it->shape, h->shape, sizeof it->shape);
		it->st_dtype = h->data.t->dtype;
		it->dtype = h->dtype;
		p->bytes_in += h->bytes;
		p->params_in += h->nelem;
		if (!h->quantized)
			continue;
		it->quantized_in = true;
		it->in_state = h->state;
		memcpy(it->parts, h->parts, sizeof it->parts);
		it->absmax = h->parts[BNB_PART_ABSMAX];
		it->nested = h->parts[BNB_PART_NESTED_ABSMAX];
	}
	return LQ_OK;
}

merge_item *merge_plan_find(merge_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->items[i].name, name) == 0)
			return &p->items[i];
	return NULL;
}

/* Checks an adapter tensor holds only finite values (a NaN would spread over a whole weight). */
static lq_status check_finite(const hf_ref *r, const char *adapter, char *err)
{
	lq_dtype dt;
	if (!st_dtype_to_lq(r->t->dtype, &dt) || dt == LQ_DTYPE_U8)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, not a floating type", adapter, r->t->name,
				st_dtype_name(r->t->dtype));
	void *data;
	size_t len = 0;
	lq_status st = hf_ref_read(r, &data, &len, err);
	if (st != LQ_OK)
		return st;
	size_t n = len / lq_dtype_size(dt);
	for (size_t i = 0; i < n; i++) {
		float v;
		if (dt == LQ_DTYPE_F32)
			memcpy(&v, (char *)data + 4 * i, 4);
		else {
			uint16_t h;
			memcpy(&h, (char *)data + 2 * i, 2);
			v = dt == LQ_DTYPE_BF16 ? lq_bf16_to_f32(h) : lq_f16_to_f32(h);
		}
		if (!isfinite(v)) {
			free(data);
			return fmt_fail(err, LQ_ERR_NONFINITE, "%s: tensor '%s': element %zu is not finite", adapter, r->t->name, i);
		}
	}
	free(data);
	return LQ_OK;
}

/* LoRA's own bias (lora_bias): lora_B.bias times the scaling, added to the module's base bias. */
static lq_status plan_lora_bias(const char *adapter, const peft_adapter *pa, const peft_module *pm, double weight,
				merge_plan *p, char *err)
{
	char name[4200];
	snprintf(name, sizeof name, "%s.bias", pm->module);
	merge_item *it = merge_plan_find(p, name);
	if (pm->kind != PEFT_LINEAR)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s': a LoRA bias on an embedding is not supported", adapter,
				pm->module);
	if (!it)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s' has a LoRA bias, but the base has no '%s' to add it to",
				adapter, pm->module, name);
	uint64_t n = 1;
	for (int d = 0; d < it->ndim; d++)
		n *= (uint64_t)it->shape[d];
	lq_dtype bdt;
	if (it->dtype == LQ_DTYPE_U8 || it->quantized_in || n != pm->bias->nelem ||
	    !st_dtype_to_lq(pm->bias->dtype, &bdt) || bdt == LQ_DTYPE_U8)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: '%s': the LoRA bias (%" PRIu64 " elements) does not fit the base's "
				"'%s' (%" PRIu64 ")", adapter, pm->module, pm->bias->nelem, name, n);
	if (it->nloras == sizeof it->loras / sizeof *it->loras)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "'%s': more than 16 adapters change it", name);
	if (it->replaced && it->dtype != it->model_dtype)
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s' is replaced by a %s tensor and then merged: not supported",
				adapter, name, lq_dtype_torch_name(it->dtype));
	it->lora_refs[it->nloras][0] = (hf_ref){pa->st, pm->bias};
	it->lora_refs[it->nloras][1] = (hf_ref){NULL, NULL};
	it->lora_refs[it->nloras][2] = (hf_ref){NULL, NULL};
	lq_status st = check_finite(&it->lora_refs[it->nloras][0], adapter, err);
	if (st != LQ_OK)
		return st;
	it->loras[it->nloras] = (lq_lora){.layout = LQ_LORA_VECTOR, .rank = 1, .scaling = (float)(pm->scaling * weight),
					  .ab_dtype = bdt, .b_input = -1, .magnitude_input = -1};
	it->lora_src[it->nloras++] = adapter;
	it->act = ACT_MERGE;
	return LQ_OK;
}

/* Trainable tokens: rows of an embedding replaced by the adapter's (cast to the embedding's type). */
static lq_status plan_token_rows(const char *adapter, const peft_adapter *pa, const peft_replacement *r, merge_plan *p,
				 char *err)
{
	merge_item *it = merge_plan_find(p, r->target);
	if (!it)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter has trainable tokens for '%s', which the base does not "
				"have", adapter, r->target);
	lq_dtype rdt;
	if (it->dtype == LQ_DTYPE_U8 || it->quantized_in || it->ndim != 2 || r->t->ndim != 2 ||
	    r->t->shape[1] != it->shape[1] || (uint64_t)r->t->shape[0] != r->nrows || !st_dtype_to_lq(r->t->dtype, &rdt) ||
	    rdt == LQ_DTYPE_U8)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the trainable token rows of '%s' do not fit it", adapter, r->target);
	for (size_t i = 0; i < r->nrows; i++)
		if (r->rows[i] < 0 || r->rows[i] >= it->shape[0])
			return fmt_fail(err, LQ_ERR_CORRUPT, "%s: trainable token %" PRId64 " is outside '%s' (%" PRId64 " rows)",
					adapter, r->rows[i], r->target, it->shape[0]);
	if (it->nloras || it->nreplace || (it->replaced && it->dtype != it->model_dtype))
		return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: trainable token rows of '%s', which another adapter or a LoRA "
				"also changes: not supported", adapter, r->target);
	lq_status st = check_finite(&(hf_ref){pa->st, r->t}, adapter, err);
	if (st != LQ_OK)
		return st;
	it->replace_rows = r->rows;
	it->nreplace = r->nrows;
	it->replace_data = (hf_ref){pa->st, r->t};
	return LQ_OK;
}

/* Attaches every adapter's modules to the base's items, in adapter order. */
/* Every tensor of the base under the adapter's modules_to_save must be saved in it: PEFT loads each one from
 * the adapter and fails (a KeyError) on one it lacks, so such an adapter is refused, not merged half. */
static lq_status check_saved_modules(const char *adapter, const peft_adapter *pa, const merge_plan *p, char *err)
{
	for (size_t i = 0; i < p->n; i++) {
		const char *entry = peft_saved_module(pa, p->items[i].name);
		if (!entry)
			continue;
		bool saved = false;
		for (size_t k = 0; k < pa->nreplacements && !saved; k++)
			saved = !pa->replacements[k].rows && pa->replacements[k].source == PEFT_FROM_MODULES_TO_SAVE &&
				strcmp(pa->replacements[k].target, p->items[i].name) == 0;
		if (!saved)
			return fmt_fail(err, LQ_ERR_CORRUPT, "%s: modules_to_save '%s' holds the base's '%s', which the adapter "
					"does not save (PEFT cannot load it)", adapter, entry, p->items[i].name);
	}
	return LQ_OK;
}

lq_status merge_plan_adapters(const merge_request *o, peft_adapter **ad, const hf_select *sel, merge_plan *p, char *err)
{
	for (size_t a = 0; a < o->nadapters; a++) {
		const peft_adapter *pa = ad[a];
		for (size_t w = 0; w < pa->nwarnings; w++)
			cli_warn("%s: %s", o->adapters[a], pa->warnings[w]);
		/* PEFT loads the adapter's whole tensors first (over whatever earlier adapters made of them), then
		 * merges its modules */
		for (size_t k = 0; k < pa->nreplacements; k++) {
			const peft_replacement *r = &pa->replacements[k];
			if (r->rows) {
				lq_status st = plan_token_rows(o->adapters[a], pa, r, p, err);
				if (st != LQ_OK)
					return st;
				continue;
			}
			lq_dtype rdt;
			bool rfloat = st_dtype_to_lq(r->t->dtype, &rdt) && rdt != LQ_DTYPE_U8;
			merge_item *it = merge_plan_find(p, r->target);
			if (!it) {
				/* PEFT's tied output head with its own weights (modules_to_save = ["lm_head"]) */
				if (strcmp(r->target, "lm_head.weight") != 0)
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter replaces '%s', which the base does not have",
							o->adapters[a], r->target);
				if (!rfloat)
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: '%s' is %s, not a floating type", o->adapters[a],
							r->target, st_dtype_name(r->t->dtype));
				it = new_item(p);
				if (!it || !(it->name = strdup(r->target)))
					return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
				it->is_new = true;
				it->model_dtype = rdt;
				it->ndim = r->t->ndim;
				memcpy(it->shape, r->t->shape, sizeof it->shape[0] * (size_t)r->t->ndim);
				p->untie = true;
			} else {
				if (it->quantized_in)
					return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: the adapter replaces '%s', which is 4-bit in the base: "
							"not supported", o->adapters[a], r->target);
				if (r->t->ndim != it->ndim ||
				    memcmp(r->t->shape, it->shape, sizeof it->shape[0] * (size_t)it->ndim) != 0)
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter's '%s' has another shape than the base's "
							"(%dD, first dimension %" PRId64 " vs %" PRId64 "; a resized vocabulary?)",
							o->adapters[a], r->target, r->t->ndim, r->t->ndim ? r->t->shape[0] : 0,
							it->ndim ? it->shape[0] : 0);
				bool base_float = it->replaced || it->dtype != LQ_DTYPE_U8;
				if (base_float != rfloat || (!rfloat && r->t->dtype != it->st_dtype))
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter's '%s' is %s, the base's %s", o->adapters[a],
							r->target, st_dtype_name(r->t->dtype), st_dtype_name(it->st_dtype));
				if (!it->replaced)
					it->model_dtype = it->dtype;
			}
			it->replaced = true;
			it->nloras = 0;
			it->nreplace = 0;
			it->act = ACT_COPY;
			it->data = (hf_ref){pa->st, r->t};
			it->dtype = rfloat ? rdt : LQ_DTYPE_U8;
			it->st_dtype = r->t->dtype;
		}
		const lq_status saved = check_saved_modules(o->adapters[a], pa, p, err);
		if (saved != LQ_OK)
			return saved;
		for (size_t k = 0; k < pa->nmodules; k++) {
			const peft_module *pm = &pa->modules[k];
			merge_item *it = merge_plan_find(p, pm->weight);
			if (!it)
				return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter changes '%s', which the base does not have "
						"(an adapter for another model? --key-map renames modules)", o->adapters[a], pm->weight);
			if (it->dtype == LQ_DTYPE_U8 || it->ndim != 2)
				return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the adapter changes '%s', which is not a 2-D float weight",
						o->adapters[a], pm->weight);
			if (it->nreplace)
				return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s' has trainable token rows and a LoRA: not supported",
						o->adapters[a], pm->weight);
			if (it->replaced && it->dtype != it->model_dtype)
				return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s' is replaced by a %s tensor and then merged; PEFT "
						"rounds it to the model's %s first: not supported", o->adapters[a], pm->weight,
						lq_dtype_torch_name(it->dtype), lq_dtype_torch_name(it->model_dtype));
			if (it->nloras == sizeof it->loras / sizeof *it->loras)
				return fmt_fail(err, LQ_ERR_UNSUPPORTED, "'%s': more than 16 adapters change it", pm->weight);
			bool conv1d = false;
			const char *why;
			hf_select_quantize(sel, pm->weight, 2, it->shape, true, &conv1d, &why);
			lq_lora *l = &it->loras[it->nloras];
			/* an embedding's delta is rounded to W's type before the addition (W += D.to(W.dtype)), but
			 * not under DoRA (DoraEmbeddingVariant: magnitude / norm * (W + D), rounded once) */
			*l = (lq_lora){.layout = (pm->kind == PEFT_EMBEDDING || conv1d) ? LQ_LORA_TRANSPOSED : LQ_LORA_ROWS,
				       .rank = pm->rank, .scaling = (float)(pm->scaling * o->weights[a]),
				       .round_delta = pm->kind == PEFT_EMBEDDING && !pm->magnitude, .magnitude_input = -1};
			if (!st_dtype_to_lq(pm->a->dtype, &l->ab_dtype) || l->ab_dtype == LQ_DTYPE_U8 || pm->a->dtype != pm->b->dtype)
				return fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: '%s': lora_A and lora_B must share a float type",
						o->adapters[a], pm->module);
			/* shapes: A [r, in], B [out, r] against W [rows, cols] in the layout */
			int64_t in = l->layout == LQ_LORA_ROWS ? it->shape[1] : it->shape[0];
			int64_t out = l->layout == LQ_LORA_ROWS ? it->shape[0] : it->shape[1];
			if (pm->a->ndim != 2 || pm->b->ndim != 2 || pm->a->shape[1] != in || pm->b->shape[0] != out ||
			    pm->b->shape[1] != pm->rank || pm->a->shape[0] != pm->rank)
				return fmt_fail(err, LQ_ERR_CORRUPT, "%s: '%s': lora_A [%" PRId64 ", %" PRId64 "] and lora_B [%" PRId64
						", %" PRId64 "] do not fit the base's [%" PRId64 ", %" PRId64 "] (an adapter for "
						"another model?)", o->adapters[a], pm->module, pm->a->shape[0], pm->a->shape[1],
						pm->b->shape[0], pm->b->shape[1], it->shape[0], it->shape[1]);
			it->lora_refs[it->nloras][0] = (hf_ref){pa->st, pm->a};
			it->lora_refs[it->nloras][1] = (hf_ref){pa->st, pm->b};
			if (pm->magnitude) {
				/* one magnitude per output feature: per row of a Linear's W [out, in]; per column of an
				 * embedding's W [num, dim] or a Conv1D's [in, out] (PEFT norms their transpose) */
				const int by_column = l->layout == LQ_LORA_TRANSPOSED;
				if (pm->magnitude->nelem != (uint64_t)it->shape[by_column] || pm->magnitude->dtype != ST_F32)
					return fmt_fail(err, LQ_ERR_CORRUPT, "%s: '%s': the DoRA magnitude is %s [%" PRIu64 "], not "
							"float32 [%" PRId64 "] (one per %s of '%s' [%" PRId64 ", %" PRId64 "])",
							o->adapters[a], pm->module, st_dtype_name(pm->magnitude->dtype),
							pm->magnitude->nelem, it->shape[by_column], by_column ? "column" : "row",
							pm->weight, it->shape[0], it->shape[1]);
				it->lora_refs[it->nloras][2] = (hf_ref){pa->st, pm->magnitude};
				l->magnitude_input = 0; /* set when tasks are built */
			}
			for (int r = 0; r < 3; r++)
				if (it->lora_refs[it->nloras][r].t) {
					lq_status st = check_finite(&it->lora_refs[it->nloras][r], o->adapters[a], err);
					if (st != LQ_OK)
						return st;
				}
			it->lora_src[it->nloras] = o->adapters[a];
			it->nloras++;
			it->act = ACT_MERGE;
			if (pm->bias) {
				lq_status st = plan_lora_bias(o->adapters[a], pa, pm, o->weights[a], p, err);
				if (st != LQ_OK)
					return st;
			}
		}
	}
	return LQ_OK;
}

/* What became of the tensors, for the summaries: those an adapter's LoRA changes (merged), those an
 * adapter's tensor replaces, and of the others those dequantized (a 4-bit base's, or --base-as: the
 * quantize-dequantize of a float one), quantized (--requantize of a float base), converted (--dtype) or
 * copied as they are. */
static void count_actions(merge_plan *p)
{
	p->nmerged = p->nreplaced = p->nreplaced_merged = p->ndequantized = p->nquantized = p->nconverted = p->ncopied = 0;
	for (size_t i = 0; i < p->n; i++) {
		const merge_item *it = &p->items[i];
		p->nreplaced += it->replaced || it->nreplace;
		p->nreplaced_merged += (it->replaced || it->nreplace) && it->nloras;
		if (it->nloras)
			p->nmerged++;
		else if (it->replaced || it->nreplace)
			continue;
		else if (it->act == ACT_QUANTIZE || (it->act == ACT_COPY_GROUP && it->base_as) ||
			 (it->act == ACT_MERGE && it->quantized_out))
			p->nquantized++;
		else if (it->act == ACT_MERGE)
			*(it->quantized_in ? &p->ndequantized : &p->nconverted) += 1;
		else
			p->ncopied++;
	}
}

/* What each item becomes, and its size in the output. */
lq_status merge_plan_outputs(const merge_request *o, const hf_select *sel, merge_plan *p, char *err)
{
	for (size_t i = 0; i < p->n; i++) {
		merge_item *it = &p->items[i];
		uint64_t n = 1;
		for (int d = 0; d < it->ndim; d++)
			n *= (uint64_t)it->shape[d];
		/* is this weight 4-bit in the output? With --requantize: what was 4-bit, or what transformers
		 * converts (a float base) */
		bool conv1d;
		const char *why;
		bool linear = it->dtype != LQ_DTYPE_U8 &&
			      hf_select_quantize(sel, it->name, it->ndim, it->shape, true, &conv1d, &why);
		it->quantized_out = o->requantize && !it->keep_float && (it->quantized_in || (!p->base_quantized && linear));
		it->quantizable = linear;
		if (it->quantized_out) {
			if (it->quantized_in && it->act != ACT_MERGE) {
				it->act = ACT_COPY_GROUP; /* PEFT leaves it as it was */
				it->out_state = it->in_state;
			} else {
				/* PEFT's 4-bit merge quantizes the float32 sum, so its state records float32; a float base's
				 * untouched weights are quantized from their own type, as nf4quant does */
				lq_quant_params q = it->quantized_in
							    ? (lq_quant_params){it->in_state.qtype, it->in_state.blocksize,
										it->in_state.double_quant}
							    : o->quant;
				it->out_state = (bnb_state){.qtype = q.qtype, .blocksize = q.blocksize,
							    .dtype = it->act == ACT_MERGE ? LQ_DTYPE_F32 : it->dtype,
							    .ndim = it->ndim, .double_quant = q.double_quant,
							    .nested_blocksize = LQ_NESTED_BLOCKSIZE};
				memcpy(it->out_state.shape, it->shape, sizeof it->shape);
				if (it->act != ACT_MERGE)
					it->act = ACT_QUANTIZE;
			}
			it->bytes_out = bnb_group_bytes(&it->out_state, (int64_t)n);
			continue;
		}
		if (it->dtype == LQ_DTYPE_U8) { /* integers and other types: copied */
			it->bytes_out = it->data.t->end - it->data.t->begin;
			continue;
		}
		it->out_dtype = o->dtype_set ? o->dtype : it->replaced ? it->model_dtype : it->dtype;
		if (it->quantized_in && (!o->dtype_set || o->requantize))
			it->out_dtype = it->in_state.dtype; /* a module --keep-float leaves: the type it dequantizes to */
		if (it->act == ACT_COPY && (it->quantized_in || it->out_dtype != it->dtype || it->nreplace))
			it->act = ACT_MERGE; /* dequantize or convert: a merge with no adapter */
		it->bytes_out = n * lq_dtype_size(it->act == ACT_COPY ? it->dtype : it->out_dtype);
		if (it->act == ACT_MERGE && (uint64_t)it->shape[it->ndim > 1 ? 1 : 0] * 4 > ((uint64_t)16 << 20))
			return fmt_fail(err, LQ_ERR_UNSUPPORTED, "'%s': rows of more than 4M elements", it->name);
	}
	count_actions(p);
	return LQ_OK;
}

void merge_plan_free(merge_plan *p)
{
	fidelity_free(&p->fid);
	for (size_t k = 0; k < sizeof p->origin_text / sizeof *p->origin_text; k++)
		free(p->origin_text[k]);
	for (size_t i = 0; i < p->n; i++)
		free(p->items[i].name);
	free(p->items);
	for (size_t i = 0; i < p->nskip; i++)
		free(p->skip[i]);
	free(p->skip);
	run_tasks_free(&p->run);
	om_free(&p->om);
}

/* --base-as, planning: the float base's 4-bit quantize-dequantize. The weights transformers would quantize
 * are planned as a 4-bit base's, with the state their quantization will have (its layout does not depend on
 * the values); the merge quantizes each first (lq_tensor_in's as_4bit), so that a --shard job quantizes only
 * the weights of its own shards and --finish none. */
lq_status merge_plan_base_as(const merge_request *o, merge_plan *p, const hf_select *sel, char *err)
{
	for (size_t i = 0; i < p->n; i++) {
		merge_item *it = &p->items[i];
		bool conv1d;
		const char *why;
		if (it->quantized_in || it->dtype == LQ_DTYPE_U8 || it->replaced ||
		    !hf_select_quantize(sel, it->name, it->ndim, it->shape, true, &conv1d, &why))
			continue;
		if (conv1d)
			return fmt_fail(err, LQ_ERR_UNSUPPORTED, "--base-as with Conv1D weights ('%s') is not supported", it->name);
		it->base_as = true;
		it->quantized_in = true;
		it->in_state = (bnb_state){.qtype = o->quant.qtype, .blocksize = o->quant.blocksize, .dtype = it->dtype,
					   .ndim = it->ndim, .double_quant = o->quant.double_quant,
					   .nested_blocksize = LQ_NESTED_BLOCKSIZE};
		memcpy(it->in_state.shape, it->shape, sizeof it->shape);
		/* one no adapter changes stays ACT_COPY: plan_outputs dequantizes it into a float output, or copies
		 * its 4-bit group as it was made (--requantize: as PEFT's 4-bit load left it) */
	}
	return LQ_OK;
}

/* The MERGE task of item it (t's common fields filled): its inputs added to src, a 4-bit output to out. */
static void merge_task(const merge_plan *p, merge_item *it, st_source *src, lq_group_out out, lq_task *t)
{
	t->op = LQ_OP_MERGE;
	lq_merge_args *ma = &t->merge;
	ma->rows = it->ndim >= 2 ? it->shape[0] : 1;
	int64_t n = 1;
	for (int d = 0; d < it->ndim; d++)
		n *= it->shape[d];
	ma->cols = ma->rows ? n / ma->rows : 0;
	ma->base.dtype = it->dtype;
	ma->out_dtype = it->out_dtype;
	ma->requantize = it->quantized_out;
	ma->requant = out;
	/* what the merge keeps of the adapters; a float base merged as it is, against its 4-bit form (of a
	 * weight a 4-bit load would quantize: an embedding's or a head's has none) */
	ma->fidelity = p->measure && it->nloras;
	ma->measure_4bit = ma->fidelity && !it->base_as && !it->quantized_in && it->quantizable;
	if (ma->measure_4bit)
		ma->base.quant = p->measure_quant;
	for (size_t l = 0; l < it->nloras; l++) {
		it->loras[l].a_input = st_source_add(src, it->lora_refs[l][0].f, it->lora_refs[l][0].t, false);
		if (it->lora_refs[l][1].t)
			it->loras[l].b_input = st_source_add(src, it->lora_refs[l][1].f, it->lora_refs[l][1].t, false);
		if (it->lora_refs[l][2].t)
			it->loras[l].magnitude_input = st_source_add(src, it->lora_refs[l][2].f, it->lora_refs[l][2].t, false);
	}
	ma->loras = it->loras;
	ma->nloras = it->nloras;
	if (it->nreplace) {
		ma->replace_rows = it->replace_rows;
		ma->nreplace = it->nreplace;
		ma->replace_input = st_source_add(src, it->replace_data.f, it->replace_data.t, false);
		st_dtype_to_lq(it->replace_data.t->dtype, &ma->replace_dtype);
	}
	if (it->base_as) { /* quantized by the merge itself, first */
		ma->base.as_4bit = true;
		ma->base.quant = (lq_quant_params){it->in_state.qtype, it->in_state.blocksize, it->in_state.double_quant};
	} else if (it->quantized_in) {
		ma->base.quantized = true;
		ma->base.quant = (lq_quant_params){it->in_state.qtype, it->in_state.blocksize, it->in_state.double_quant};
		ma->base.offset = it->in_state.nested_offset;
		ma->base.absmax_input = st_source_add(src, it->absmax.f, it->absmax.t, false);
		ma->base.nested_input = it->in_state.double_quant ? st_source_add(src, it->nested.f, it->nested.t, false) : -1;
	}
}

/* The task of every output tensor of the shards this run writes (another part's are left to it), before
 * anything is opened: copies, merges (a dequantization or a conversion is a merge without adapters),
 * quantizations. */
lq_status merge_plan_tasks(merge_plan *p, char *err)
{
	size_t cap = 0;
	for (size_t i = 0; i < p->n; i++)
		cap += p->items[i].act == ACT_COPY_GROUP ? BNB_NPARTS : 1;
	lq_status st = run_tasks_init(&p->run, cap, err);
	st_source *src = p->run.src;
	st_sink *sink = p->run.sink;
	for (size_t i = 0; i < p->n && st == LQ_OK; i++) {
		merge_item *it = &p->items[i];
		if (!om_shard_todo(&p->om, it->out_shard))
			continue; /* another part's, or a part already made */
		const out_writer *w = om_writer(&p->om, it->out_shard);
		for (int k = 0; k < BNB_NPARTS; k++)
			if (it->wid[k] >= 0 && (it->sid[k] = st_sink_add(sink, w, it->wid[k])) < 0)
				st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		if (st != LQ_OK)
			break;
		if (it->act == ACT_COPY_GROUP && !it->base_as) {
			for (int k = 0; k < BNB_NPARTS; k++)
				if (it->wid[k] >= 0)
					*run_tasks_add(&p->run, it->out_shard) = (lq_task){.op = LQ_OP_COPY, .name = it->name, .origin = it->parts[k].f->path,
								.input = st_source_add(src, it->parts[k].f, it->parts[k].t, false),
								.nbytes = it->parts[k].t->end - it->parts[k].t->begin,
								.out_data = it->sid[k]};
			continue;
		}
		lq_task *t = run_tasks_add(&p->run, it->out_shard);
		*t = (lq_task){.name = it->name, .origin = it->data.f->path,
			       .input = st_source_add(src, it->data.f, it->data.t, false),
			       .nbytes = it->data.t->end - it->data.t->begin, .ndim = it->ndim,
			       .out_data = it->sid[BNB_PART_WEIGHT]};
		memcpy(t->shape, it->shape, sizeof it->shape);
		if (it->act == ACT_COPY) {
			t->op = LQ_OP_COPY;
			continue;
		}
		lq_group_out out = {.out_absmax = -1, .out_nested_absmax = -1};
		if (it->quantized_out) {
			out = (lq_group_out){.quant = {it->out_state.qtype, it->out_state.blocksize, it->out_state.double_quant},
					     .out_absmax = it->sid[BNB_PART_ABSMAX],
					     .out_nested_absmax = it->sid[BNB_PART_NESTED_ABSMAX]};
			st = st_sink_add_group(sink, t->out_data, &it->out_state, it->sid[BNB_PART_QUANT_MAP],
					       it->sid[BNB_PART_NESTED_QUANT_MAP], it->sid[BNB_PART_QUANT_STATE]);
		}
		if (it->act == ACT_QUANTIZE || it->act == ACT_COPY_GROUP) {
			/* --requantize of a float base, and --base-as: a weight no adapter changes, quantized once from
			 * its own type, as loading the base in 4 bits gives it */
			t->op = LQ_OP_QUANTIZE4;
			t->quantize4 = (lq_quantize4_args){.dtype = it->dtype, .out = out};
			continue;
		}
		merge_task(p, it, src, out, t);
	}
	return st;
}

/* ---------------------------------------------------------------------------------- fidelity */

/* A merge's M given by the tensor g of another checkpoint (lq_merge_args.measure_given): its codes and
 * constants, or its values, as inputs of src; the merge itself writes nothing. */
static lq_status measure_given(const merge_item *it, const char *path, const hf_tensor *g, st_source *src, lq_task *t,
			       char *err)
{
	if (!g)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: no tensor '%s', which the adapters change (the merge of another "
				"base or adapter?)", path, it->name);
	if (g->ndim != it->ndim || memcmp(g->shape, it->shape, sizeof it->shape[0] * (size_t)it->ndim) != 0 ||
	    g->dtype == LQ_DTYPE_U8)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: tensor '%s' is not a float or 4-bit weight of the base's shape "
				"(%dD, first dimension %" PRId64 " vs %" PRId64 ")", path, it->name, g->ndim,
				g->ndim ? g->shape[0] : 0, it->shape[0]);
	lq_merge_args *ma = &t->merge;
	ma->requantize = false;
	ma->requant = (lq_group_out){.out_absmax = -1, .out_nested_absmax = -1};
	ma->measure_given = true;
	ma->measured_input = st_source_add(src, g->data.f, g->data.t, false);
	if (!g->quantized) {
		ma->measured = (lq_tensor_in){.dtype = g->dtype};
		return LQ_OK;
	}
	const bnb_state *s = &g->state;
	ma->measured = (lq_tensor_in){.dtype = s->dtype, .quantized = true,
				      .quant = {s->qtype, s->blocksize, s->double_quant}, .offset = s->nested_offset,
				      .absmax_input = st_source_add(src, g->parts[BNB_PART_ABSMAX].f,
								    g->parts[BNB_PART_ABSMAX].t, false),
				      .nested_input = s->double_quant ? st_source_add(src, g->parts[BNB_PART_NESTED_ABSMAX].f,
										      g->parts[BNB_PART_NESTED_ABSMAX].t, false)
								      : -1};
	return LQ_OK;
}

/* Whether merge_plan_measure measures item it. */
static bool measured(const merge_item *it, const hf_tensors *given, bool every, const char **globs,
		     size_t nglobs)
{
	if (it->act != ACT_MERGE || !it->nloras || (!given && !every && !it->quantized_out))
		return false;
	return !nglobs || cli_glob_any(it->name, globs, nglobs);
}

lq_status merge_plan_measure(const merge_plan *p, lq_ctx *ctx, const merge_measure *how, fidelity_report *report,
			     char *err)
{
	run_tasks r = {0};
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += measured(&p->items[i], how->given, how->every, how->globs, how->nglobs);
	lq_status st = run_tasks_init(&r, n, err);
	for (size_t i = 0; i < p->n && st == LQ_OK; i++) {
		merge_item *it = &p->items[i];
		if (!measured(it, how->given, how->every, how->globs, how->nglobs))
			continue;
		lq_task *t = run_tasks_add(&r, 0);
		*t = (lq_task){.name = it->name, .origin = it->data.f->path,
			       .input = st_source_add(r.src, it->data.f, it->data.t, false),
			       .nbytes = it->data.t->end - it->data.t->begin, .ndim = it->ndim, .out_data = -1};
		memcpy(t->shape, it->shape, sizeof it->shape);
		const lq_group_out out = {.quant = {it->out_state.qtype, it->out_state.blocksize, it->out_state.double_quant},
					  .out_absmax = -1, .out_nested_absmax = -1};
		merge_task(p, it, r.src, out, t);
		t->merge.fidelity = true;
		if (how->given)
			st = measure_given(it, how->given_path, hf_tensors_find(how->given, it->name), r.src, t, err);
	}
	r.on_result = merge_plan_on_result;
	r.on_result_arg = report;
	if (st == LQ_OK)
		st = run_tasks_measure(ctx, &r, how->what, err);
	run_tasks_free(&r);
	return st;
}

/* run_tasks' observer: each measured merge's sums, by module, into a fidelity_report. */
lq_status merge_plan_on_result(void *arg, const lq_task *t, const lq_task_result *result)
{
	if (t->op != LQ_OP_MERGE || !t->merge.fidelity)
		return LQ_OK;
	return fidelity_add(arg, t->name, &result->fidelity);
}

/* Which weights a float base's 4-bit form quantizes comes from transformers' rules,
 * with the base's llm_int8_skip_modules: an entry that cannot be followed (hf_select.h hf_select_refused)
 * leaves it unknown. False: refused, said. */
bool merge_plan_check_refused(const hf_model *m, const hf_select *sel, const char *option)
{
	const char *entry;
	const char *why = hf_select_refused(sel, &entry);
	if (!why)
		return true;
	char cfg[4096], q[192];
	if (m->dir)
		snprintf(cfg, sizeof cfg, "%s%sconfig.json", m->dir, m->dir[0] && m->dir[strlen(m->dir) - 1] == '/' ? "" : "/");
	else
		snprintf(cfg, sizeof cfg, "%s:config.json", m->input);
	cli_error("%s: llm_int8_skip_modules entry '%s' is %s, so which weights %s quantizes cannot be told", cfg,
		  fmt_quote(entry, q, sizeof q), why, option);
	return false;
}
