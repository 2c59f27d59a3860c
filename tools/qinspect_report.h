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

/* A tensor against its reference: sums in double over the elements both hold as finite numbers, and the
 * elements that are not (NaN or infinite on either side). An element that is not finite is an error
 * without bound: when there is one, the figures say so (rmse, max_abs_err and rel_err infinite, snr_db
 * minus infinity, cosine NAN) rather than describe the other elements, and every gate fails. */
typedef struct qi_error {
	bool present;              /* the tensor was compared with a reference */
	uint64_t elements;         /* elements finite in both (those the sums hold) */
	uint64_t nonfinite;        /* elements NaN or infinite in either */
	uint64_t nonfinite_checkpoint, nonfinite_reference; /* of those, NaN or infinite in the checkpoint, in
							     * the reference (an element may be in both) */
	uint64_t differ;           /* elements whose float32 values differ at all (bit patterns) */
	double sum_err2, sum_ref2, sum_x2, dot; /* sum (x - ref)^2, sum ref^2, sum x^2, sum x * ref */
	double rmse;               /* sqrt(sum_err2 / elements) */
	double max_abs_err;        /* max |x - ref| */
	int64_t max_abs_err_index; /* its flat element index (the first, when tied; the first element that is
				    * not finite, when there is one); -1 when none */
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
	double absmax_min, absmax_mean, absmax_max; /* quantized: the dequantized absmax; NAN, all three, when
						     * a block's is not finite */
	uint64_t absmax_nonfinite; /* quantized: blocks whose dequantized absmax is NaN or infinite */
	uint64_t absmax_hist[QI_ABSMAX_BINS]; /* quantized: counts of log10(absmax) in bins of 0.2 from -6;
					       * the first and last bins also hold what is below or above; the
					       * blocks of absmax_nonfinite in none */
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
	uint64_t absmax_nonfinite; /* blocks, summed over the quantized tensors */
	/* error over every compared element of every tensor (sums added up in the tensors' order), and over
	 * the tensors quantized in the checkpoint only (copied tensors, often identical, would make the
	 * quantization look better than it is); their max_abs_err_index is the index in tensors of the
	 * tensor that holds the largest error */
	qi_error total, quantized_total;
	size_t compared_tensors, quantized_compared; /* the tensors each of them adds up */
	size_t nonfinite_tensors;  /* compared tensors with an element that is not finite */
	size_t *worst;             /* indexes into tensors, by rel_err, worst first: the compared tensors
				    * whose error is not zero */
	size_t nworst;             /* at most --top of them */
	qi_gate gates[QI_NGATES];
	bool passed;               /* no gate failed */
	double seconds;
} qi_report;

/* The gate's option name ("max-rel-err") and JSON key ("max_rel_err"): qinspect_report.c. */
const char *qi_gate_option(qi_gate_kind g);
const char *qi_gate_key(qi_gate_kind g);

/* The figures of e (rmse, rel_err, snr_db, cosine; and max_abs_err when an element is not finite) from
 * its sums and counts. */
void qi_error_finish(qi_error *e);

/* Whether e fails gate g at limit: an element that is not finite fails every gate. */
bool qi_gate_fails(qi_gate_kind g, double limit, const qi_error *e);

/* The figure of e that gate g bounds. */
double qi_gate_value(const qi_error *e, qi_gate_kind g);

/* t's bytes_total from t->bytes, and its bits_per_param and (quantized) bits_per_param_blocks from that
 * and t->params (0 when t has no parameters). */
void qi_tensor_bits(qi_tensor *t);

/* Adds the codes of a 4-bit tensor (ncodes bytes packed two to a byte as bitsandbytes stores them, the
 * last byte's low nibble unused when t->params is odd) to t->code_histogram, then sets t->code_entropy. */
void qi_tensor_codes(qi_tensor *t, const unsigned char *codes, size_t ncodes);

/* The entropy in bits of a code histogram over params elements: - sum p log2 p over the codes present. */
double qi_code_entropy(const uint64_t histogram[16], uint64_t params);

/* The figures of a 4-bit tensor's nblocks dequantized absmax values: nblocks, min, mean, max (NAN, all
 * three, when one is not finite; 0 with no blocks), absmax_nonfinite and absmax_hist. */
void qi_tensor_absmax(qi_tensor *t, const float *absmax, uint64_t nblocks);

/* The absmax_hist bin of an absmax v: log10(v) in bins of 0.2 from -6, the first and last bins also
 * holding what is below or above (v <= 0: the first). */
int qi_absmax_bin(double v);

/* A tensor's error from the sums libquant added up over its elements (lq_error_sums_add) and where its
 * elements that are not finite are: how many in the checkpoint and in the reference, and the flat index
 * of the first (-1: none), which is then max_abs_err_index. Sets present and the figures
 * (qi_error_finish). */
void qi_error_take_sums(qi_error *e, const lq_error_sums *s, uint64_t nonfinite_checkpoint,
			uint64_t nonfinite_reference, int64_t first_nonfinite);

/* The summary of r from its tensors: the sums over everything and over the quantized tensors, the totals
 * (each tensor's sums added in its order), the worst list (at most top), and for each gate set in
 * r->gates (set, limit) the tensors that fail it, gate_failed and passed. LQ_ERR_NOMEM when out of
 * memory. */
lq_status qi_summarize(qi_report *r, size_t top);

/* Frees what qi_summarize allocated in r (the worst list, the gates' lists of failed tensors); the
 * tensors and the lists of names are the caller's. */
void qi_summary_free(qi_report *r);

/* A name (or path) as the table and CSV show it: every control character (C0, DEL, C1 U+0080-U+009F), every
 * bidirectional override, isolate or mark (which make a name display as another) and every byte that is
 * not UTF-8 as '?'; other characters as they are. out: room for strlen(s) + 1 bytes (never longer). */
char *qi_plain_text(const char *s, char *out);

/* The length (1 to 4) of the valid UTF-8 sequence at p and its code point in *cp; 0 when the bytes there
 * are not one (a stray continuation byte, an overlong form, a surrogate, above U+10FFFF, cut short). */
int qi_utf8_decode(const unsigned char *p, uint32_t *cp);

/* Whether a code point is one no writer shows as is: C0, DEL, C1, and the bidirectional overrides,
 * isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C). */
bool qi_hidden_char(uint32_t cp);

/* A CSV text field, defused as the table shows names (qi_plain_text; a leading = + - @ quoted with an
 * apostrophe: read as text, not a formula); false when out of memory. */
bool qi_csv_string(FILE *f, const char *s);
/* A CSV number as %.9g, "inf" or "-inf", or nothing for NaN. */
void qi_csv_number(FILE *f, double v);

/* The writers; false on a write error (errno set). */
bool qi_write_table(const qi_report *r, FILE *f, int width); /* width: the terminal's columns, 0: no limit */
bool qi_write_json(const qi_report *r, FILE *f);
bool qi_write_csv(const qi_report *r, FILE *f);
bool qi_write_html(const qi_report *r, FILE *f);

#endif /* TOOLS_QINSPECT_REPORT_H */
