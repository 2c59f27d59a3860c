/*
 * loraextract.h: what loraextract's parts share (man/loraextract.1): the options, the modules the adapter
 * gets (their factors as written, their figures), the tensors kept whole or left out, and the writer of
 * the adapter directory (lx_write.c).
 */
#ifndef TOOLS_LORAEXTRACT_H
#define TOOLS_LORAEXTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "hf_tensors.h"
#include "safetensors.h"

typedef struct xopts {
	const char *from_path, *to_path; /* the adapter is to_path - from_path, loaded on from_path */
	const char *output;
	bool correct;       /* --correct Q BASE: from = Q (4-bit), to = BASE */
	long rank;          /* --rank; 0: by --energy */
	double energy;      /* --energy; 0: by --rank */
	long max_rank;      /* --max-rank; 0: none */
	bool embed, keep_other, split_sqrt, dtype_set;
	lq_dtype dtype;
	cli_common common;
} xopts;

/* How PEFT wraps the module of a weight, and so how its factors are laid out. */
typedef enum xkind {
	XK_LINEAR,  /* W [out, in]: B [out, r] = L, A [r, in] = R */
	XK_CONV1D,  /* GPT-2's Conv1D, W stored [in, out]: A [r, in] = L^T, B [out, r] = R^T (fan_in_fan_out) */
	XK_EMBED,   /* nn.Embedding W [num, dim]: lora_embedding_A [r, num] = L^T, lora_embedding_B [dim, r] = R^T */
} xkind;

/* A module of the adapter: W = L R factored, L [rows, rank], R [rank, cols] in W's stored layout. */
typedef struct xmodule {
	char *name;            /* the module's path ("model.layers.0.self_attn.q_proj") */
	xkind kind;
	int64_t rows, cols;    /* the matrix factored (the stored weight's shape) */
	lq_dtype dtype;        /* of the factors written */
	int64_t rank;
	double norm;           /* ||dW||_F */
	double kept;           /* the share of ||dW||^2 the rank keeps (sum of the kept sigma^2 over all) */
	double err, err_opt;   /* ||dW - B A|| / ||dW|| as written, and the Eckart-Young optimum of the rank */
	void *a, *b;           /* the tensors as written (dtype), A and B of PEFT's names */
	int32_t id_a, id_b;
} xmodule;

/* A tensor that differs and is no module of the adapter: kept whole in modules_to_save (--keep-other) or
 * left out, with the reason. */
typedef struct xother {
	char *name;
	char *module;          /* kept: its module, in modules_to_save */
	bool kept;
	const char *why;       /* left out: why (a static phrase) */
	const hf_tensor *t;    /* kept: the tensor of the fine-tune */
	bool with_module;      /* kept although unchanged: its module is in modules_to_save, whole */
	int32_t id;
} xother;

typedef struct xresult {
	xmodule *mods;
	size_t nmods;
	xother *others;
	size_t nothers;
	size_t nsame;          /* weights equal in both (no module) */
	bool conv1d;           /* fan_in_fan_out */
	bool tie;              /* ensure_weight_tying: an embedding of a model that ties its output head */
	const char *base_name; /* base_model_name_or_path */
} xresult;

/* Writes the adapter directory (or bundle) o->output: adapter_config.json, adapter_model.safetensors (the
 * factors, then the kept tensors read from `to`), MANIFEST; one transaction. false: said. */
bool lx_write_adapter(const xopts *o, xresult *r);

/* The squared error sum_(i,j) (vt - vf - lf rf)_ij^2 of the factors written, lf [rows, r] and rf [r, cols]
 * as rounded to the written type, vt and vf [rows, cols] (lx_error.c): the residuals on `threads`
 * threads, their sum in row-major order whatever the threads. False when out of memory. */
bool lx_squared_error(const float *vf, const float *vt, const float *lf, const float *rf, int64_t rows, int64_t cols,
		      int64_t r, int threads, double *err);

#endif /* TOOLS_LORAEXTRACT_H */
