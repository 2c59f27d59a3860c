/*
 * qinspect_report.h: what qinspect found, as its writers (the terminal table, JSON, CSV, HTML) read it.
 * qinspect.c fills a report; each writer only reads it. Every figure is computed once, here, so that the
 * four outputs never disagree.
 */
#ifndef TOOLS_QINSPECT_REPORT_H
#define TOOLS_QINSPECT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libquant.h>

#define QI_MAX_DIMS 8
#define QI_ABSMAX_BINS 40 /* the absmax distribution: log10 bins from 1e-6 to 1e2, 5 a decade */

/* A tensor against its reference: sums in double over the elements both hold as finite numbers. */
typedef struct qi_error {
	bool present;              /* the tensor was compared with a reference */
	uint64_t elements;         /* elements compared (finite in both) */
	uint64_t nonfinite;        /* elements left out: NaN or infinite in either */
	uint64_t differ;           /* elements whose float32 values differ at all (bit patterns) */
	double sum_err2, sum_ref2, sum_x2, dot; /* sum (x - ref)^2, sum ref^2, sum x^2, sum x * ref */
	double rmse;               /* sqrt(sum_err2 / elements) */
	double max_abs_err;        /* max |x - ref| */
	int64_t max_abs_err_index; /* its flat element index (the first, when tied); -1 when none */
	double rel_err;            /* sqrt(sum_err2 / sum_ref2) = |x - ref| / |ref| (Frobenius) */
	double snr_db;             /* 10 log10(sum_ref2 / sum_err2); INFINITY when identical */
	double cosine;             /* dot / sqrt(sum_x2 * sum_ref2); NAN when either is all zero */
} qi_error;

/* Where a tensor's bytes on disk go (bits per parameter breakdown). */
typedef struct qi_bytes {
	uint64_t codes;            /* 4-bit codes, or a float tensor's data */
	uint64_t absmax;           /* per-block constants: absmax (8-bit codes with double quantization) */
	uint64_t nested;           /* nested absmax (double quantization) */
	uint64_t tables;           /* quant_map, nested_quant_map, the quant_state JSON: per tensor */
} qi_bytes;

typedef struct qi_tensor {
	const char *name;
	int ndim;
	int64_t shape[QI_MAX_DIMS];
	char storage[64];          /* for people: "bf16", "nf4/64 dq (bf16)", "fp4/128 (f32)", "I64" */
	const char *dtype;         /* the element type: torch name ("bfloat16"...) of a float or of a 4-bit
				    * tensor's dequantized values, or the safetensors name ("I64") of others */
	bool quantized;
	lq_qtype qtype;            /* quantized: NF4 or FP4 */
	int32_t blocksize;
	bool double_quant;
	uint64_t params;           /* elements */
	qi_bytes bytes;
	uint64_t bytes_total;      /* every byte on disk: data, constants, tables and the quant_state */
	double bits_per_param;     /* 8 * bytes_total / params */
	double bits_per_param_blocks; /* quantized: codes and per-block constants only (4.127 for NF4 + double
				       * quantization at blocksize 64), before the per-tensor tables */
	uint64_t code_histogram[16]; /* quantized: how many elements have each code */
	double code_entropy;       /* bits: - sum p log2 p over the 16 codes */
	uint64_t nblocks;          /* quantized: blocks */
	double absmax_min, absmax_mean, absmax_max; /* quantized: the dequantized absmax */
	uint64_t absmax_hist[QI_ABSMAX_BINS]; /* quantized: counts of log10(absmax) in bins of 0.2 from -6;
					       * the first and last bins also hold what is below or above */
	int layer;                 /* the N of "layers.N." (or "h.N.", "blocks.N.", "layer.N."), -1 when none */
	qi_error err;
	bool gate_failed;          /* failed at least one gate */
} qi_tensor;

typedef enum qi_gate_kind { QI_GATE_MAX_REL_ERR, QI_GATE_MAX_RMSE, QI_GATE_MAX_ABS_ERR, QI_GATE_MIN_SNR,
			    QI_GATE_MIN_COSINE, QI_NGATES } qi_gate_kind;

typedef struct qi_gate {
	bool set;
	double limit;
	size_t *failed;            /* indexes into tensors of those that fail it */
	size_t nfailed;
} qi_gate;

typedef struct qi_report {
	const char *checkpoint, *reference; /* reference NULL: a description only */
	const char *device;        /* where the statistics were computed */
	qi_tensor *tensors;        /* in the checkpoint's order (shards, then header order) */
	size_t ntensors;
	const char **only_in_checkpoint, **only_in_reference; /* with a reference: names the other lacks */
	size_t n_only_checkpoint, n_only_reference;
	/* the whole selection */
	uint64_t params, bytes_total;
	double bits_per_param;
	qi_bytes bytes;            /* summed over every tensor */
	/* the quantized tensors */
	size_t quantized_tensors;
	uint64_t quantized_params, quantized_bytes;
	double quantized_bits_per_param, quantized_bits_per_param_blocks;
	uint64_t code_histogram[16]; /* summed over the quantized tensors */
	uint64_t absmax_hist[QI_ABSMAX_BINS];
	/* error over every compared element of every tensor (sums added up); its max_abs_err_index is the
	 * index in tensors of the tensor that holds the largest error */
	qi_error total;
	size_t *worst;             /* indexes into tensors, by rel_err, worst first (compared tensors only) */
	size_t nworst;             /* at most --top of them */
	qi_gate gates[QI_NGATES];
	bool passed;               /* no gate failed */
	double seconds;
} qi_report;

/* The gate's option name ("max-rel-err") and JSON key ("max_rel_err"): qinspect_report.c. */
const char *qi_gate_option(qi_gate_kind g);
const char *qi_gate_key(qi_gate_kind g);

/* The writers; false on a write error (errno set). */
bool qi_write_table(const qi_report *r, FILE *f, int width); /* width: the terminal's columns, 0: no limit */
bool qi_write_json(const qi_report *r, FILE *f);
bool qi_write_csv(const qi_report *r, FILE *f);
bool qi_write_html(const qi_report *r, FILE *f);

#endif /* TOOLS_QINSPECT_REPORT_H */
