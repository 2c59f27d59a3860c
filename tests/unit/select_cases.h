/*
 * select_cases.h: test cases for formats/hf_select.c (which tensors transformers' 4-bit loader quantizes).
 *
 * select_cases[] are derived by hand from the transformers 5.17 source (the facts F1-F6 at the top of
 * hf_select.c): a config.json snippet, a checkpoint key with its shape, and the expected decision. A runner
 * loops over them: for each, parse `config` (NULL: no config), hf_select_create, hf_select_quantize, and
 * compare the result, the transpose flag and (when set) a substring of the reason.
 *
 * select_truth_check() replays the ground truth that tests/gpu/select_truth.py records from real
 * transformers + bitsandbytes loads (same JSON format as the meta-device sweep of every architecture).
 */
#ifndef TESTS_UNIT_SELECT_CASES_H
#define TESTS_UNIT_SELECT_CASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct select_case {
	const char *config; /* config.json text, NULL for none */
	const char *name;   /* checkpoint key */
	int ndim;
	int64_t shape[3];
	bool is_float;
	bool quantize;             /* expected */
	bool transpose;            /* expected */
	const char *reason_has;    /* expected substring of the reason, NULL: not checked */
} select_case;

extern const select_case select_cases[];
extern const size_t select_ncases;

/* Compares hf_select_quantize with every tensor of every case in the truth JSON at json_path; prints
 * each disagreement (and a summary line per case) to log when log is not NULL. Returns the number of
 * disagreements, or -1 when the file cannot be read or parsed. */
int select_truth_check(const char *json_path, FILE *log);

#endif
