/*
 * merge_plan.h: a merge of PEFT adapters into a base, planned tensor by tensor, as loramerge runs it and
 * qinspect --adapter measures it (man/loramerge.1, man/qinspect.1). The base's logical tensors become
 * items (merge_plan_base), the adapters attach to them (merge_plan_adapters), each item is told what it
 * becomes (merge_plan_base_as, merge_plan_outputs), and its task is built (merge_plan_tasks, into the
 * output model declared by the caller; merge_plan_measure, into nothing, for the fidelity alone).
 */
#ifndef TOOLS_MERGE_PLAN_H
#define TOOLS_MERGE_PLAN_H

#include "bnb.h"
#include "fidelity.h"
#include "hf_model.h"
#include "hf_select.h"
#include "hf_tensors.h"
#include "libquant.h"
#include "out_model.h"
#include "peft.h"
#include "run.h"

/* What is merged, and into what form: the options of loramerge that shape the plan. */
typedef struct merge_request {
	char **adapters;        /* paths, in the order they merge */
	double *weights;        /* each adapter's weight (ADAPTER:WEIGHT) */
	size_t nadapters;
	bool requantize;        /* the output 4-bit again (PEFT's 4-bit merge) */
	lq_quant_params quant;  /* a float base's 4-bit form (--base-as, --requantize): type, blocksize, dq */
	bool dtype_set;
	lq_dtype dtype;         /* --dtype: the float output's type */
} merge_request;

/* Adds ADAPTER or ADAPTER:WEIGHT (a path that exists is a path, colon or not) to rq; a usage error exits. */
void merge_request_add_adapter(merge_request *rq, const char *arg);

/* What becomes of a tensor: copied as it is, merged (a dequantization or a conversion is a merge without
 * adapters), quantized, or a 4-bit group copied part by part. */
typedef enum merge_action { ACT_COPY, ACT_MERGE, ACT_QUANTIZE, ACT_COPY_GROUP } merge_action;

/* One tensor of the output model (a 4-bit group counts as one). */
typedef struct merge_item {
	char *name;            /* e.g. "model.layers.0.self_attn.q_proj.weight" */
	size_t shard;          /* input shard, for the default layout */
	merge_action act;
	hf_ref data;              /* float tensor, or the codes of a 4-bit group */
	bool quantized_in;     /* data is a 4-bit group */
	bool base_as;          /* --base-as: a float weight read as its 4-bit form (in_state), quantized first */
	bnb_state in_state;    /* its state */
	hf_ref absmax, nested, parts[BNB_NPARTS]; /* the group's parts, for copying it whole */
	lq_dtype dtype;        /* the float type of the tensor (a group: of its dequantized values) */
	int ndim;
	int64_t shape[BNB_MAX_DIMS];
	st_dtype st_dtype;     /* a copied tensor's own type */
	lq_lora loras[16];
	size_t nloras;
	const char *lora_src[16];
	int32_t lora_a[16], lora_b[16], lora_m[16]; /* source ids, filled when tasks are built */
	hf_ref lora_refs[16][3];
	bool quantized_out;    /* written as a 4-bit group */
	bool quantizable;      /* a float weight transformers quantizes when it loads the model in 4 bits */
	bool keep_float;       /* --keep-float: left in float though --requantize would quantize it */
	bnb_state out_state;
	lq_dtype out_dtype;    /* a float output's type */
	uint64_t bytes_out;
	size_t out_shard;
	int32_t wid[BNB_NPARTS], sid[BNB_NPARTS];
	bool is_new;           /* not in the base (a tied head given its own weights) */
	bool replaced;         /* data is an adapter's tensor (modules_to_save, a saved base layer) */
	lq_dtype model_dtype;  /* a replaced tensor's type in the base: PEFT loads the replacement into it */
	const int64_t *replace_rows; /* trainable tokens: rows replaced by those of replace_data */
	size_t nreplace;
	hf_ref replace_data;
} merge_item;

typedef struct merge_plan {
	merge_item *items;
	size_t n, cap;
	out_model om;
	run_tasks run;         /* what fills it */
	uint64_t params_in, bytes_in;
	size_t nmerged;        /* tensors an adapter's LoRA changes */
	size_t nreplaced;      /* tensors an adapter's saved tensor replaces (merged into or not) */
	size_t nreplaced_merged; /* of those, merged into too */
	size_t ndequantized, nquantized, nconverted, ncopied; /* the others: what became of them */
	bool untie;            /* a tied output head gets its own weights */
	bool base_quantized;   /* the base is a bitsandbytes 4-bit checkpoint */
	char **skip;           /* --requantize of a float base: llm_int8_skip_modules to write */
	size_t nskip;
	bool measure;          /* the merges' fidelity is measured (fidelity.h) */
	size_t nkept;          /* modules --keep-float leaves in float */
	lq_quant_params measure_quant; /* a float base merged as it is: the 4-bit form measured against */
	fidelity_report fid;   /* what the merges kept, per module */
	char *origin_text[8];  /* the options that shape the bytes, for the MANIFEST */
	const char *origin_values[9];
} merge_plan;

/* One item per logical tensor of the base (a 4-bit group is one, its parts found and checked by
 * formats/hf_tensors.c). */
lq_status merge_plan_base(const hf_tensors *ts, merge_plan *p, char *err);

/* Attaches every adapter's modules to the base's items, in adapter order (its warnings printed). */
lq_status merge_plan_adapters(const merge_request *rq, peft_adapter **ad, const hf_select *sel, merge_plan *p,
			      char *err);

/* The float base's weights that transformers quantizes, planned as read in their 4-bit form (rq->quant):
 * --base-as, and the base of a --requantize of a float base. */
lq_status merge_plan_base_as(const merge_request *rq, merge_plan *p, const hf_select *sel, char *err);

/* What each item becomes (copied, merged, quantized; its type), and its size in the output. */
lq_status merge_plan_outputs(const merge_request *rq, const hf_select *sel, merge_plan *p, char *err);

/* The task of every output tensor of the shards this run writes, into p->om (declared by the caller). */
lq_status merge_plan_tasks(merge_plan *p, char *err);

/* What merge_plan_measure measures: the merges the output requantizes, or every merge; M, the merged
 * weight, as the merge itself makes it, or the same tensor of another checkpoint (`given`: a merge
 * already made, float or 4-bit); only the modules matching one of globs (none: all). */
typedef struct merge_measure {
	const hf_tensors *given;
	const char *given_path; /* for messages */
	bool every;
	const char **globs;
	size_t nglobs;
	const char *what;       /* shown on a terminal while it runs */
} merge_measure;

/* The merges `how` names, run and written nowhere, their fidelity (p->measure_quant for a float base
 * merged as it is) into *report (limits set by the caller). One pass over those weights. */
lq_status merge_plan_measure(const merge_plan *p, lq_ctx *ctx, const merge_measure *how, fidelity_report *report,
			     char *err);

/* run_tasks' observer: each measured merge's sums, by module, into the fidelity_report arg. */
lq_status merge_plan_on_result(void *arg, const lq_task *t, const lq_task_result *result);

/* The item of a tensor name, NULL for none. */
merge_item *merge_plan_find(merge_plan *p, const char *name);

/* Whether a float base's llm_int8_skip_modules can be followed to tell which weights `option` (--base-as,
 * --requantize, --adapter) quantizes; false: refused, said. */
bool merge_plan_check_refused(const hf_model *m, const hf_select *sel, const char *option);

void merge_plan_free(merge_plan *p);

#endif /* TOOLS_MERGE_PLAN_H */
