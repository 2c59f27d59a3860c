/*
 * qinspect_adapter.h: qinspect --adapter ADAPTER BASE [MERGED], what a merge of the adapters into BASE
 * keeps of them (man/qinspect.1, ADAPTER REPORT): the figures of fidelity.h per module, per layer and
 * overall, with M the merged weight as MERGED holds it, or, without MERGED, as the 4-bit merge computes it
 * (requantized exactly as loramerge --requantize writes it). qinspect_adapter.c plans and measures;
 * qinspect_adapter_write.c writes the table, CSV and JSON, qinspect_adapter_html.c the HTML page.
 */
#ifndef TOOLS_QINSPECT_ADAPTER_H
#define TOOLS_QINSPECT_ADAPTER_H

#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "fidelity.h"
#include "merge_plan.h"
#include "report_file.h"

typedef struct qi_adapter_args {
	const char *base, *merged;  /* merged NULL: M computed here */
	merge_request rq;           /* the adapters and weights; quant: a float base's 4-bit form */
	fidelity_limits limits;     /* --erased-survival, --erased-residual */
	bool min_survival_set;
	double min_survival;        /* --min-survival: the gate */
	const char **globs;         /* --tensor: the modules measured */
	size_t nglobs;
	const char *html;
	bool csv;
	int top;                    /* how many modules the table's summary lists, lowest survival first */
	cli_common *common;
} qi_adapter_args;

/* What the writers read. */
typedef struct qi_adapter_report {
	const qi_adapter_args *args;
	bool base_quantized;        /* BASE is a bitsandbytes 4-bit checkpoint (else float: Wq its 4-bit form) */
	const char *device;
	fidelity_report fid;        /* the modules, in name order */
	double seconds;
} qi_adapter_report;

/* The run of qinspect --adapter; inputs holds what was named so far, outputs are kept off it. Returns the
 * exit status: 1 for an error or a module below --min-survival. */
int qi_adapter_main(const qi_adapter_args *a, report_inputs *inputs);

/* A one-line description of where M comes from and what Wq is, for the table, CSV and HTML. */
const char *qi_adapter_base_kind(const qi_adapter_report *r);

/* The writers; false on a write error (errno set). */
bool qi_adapter_write_table(const qi_adapter_report *r, FILE *f);
bool qi_adapter_write_csv(const qi_adapter_report *r, FILE *f);
bool qi_adapter_write_json(const qi_adapter_report *r, FILE *f);
bool qi_adapter_write_html(const qi_adapter_report *r, FILE *f);

#endif /* TOOLS_QINSPECT_ADAPTER_H */
