/*
 * report_file.h: where a tool's report may go, and how it is written (qinspect's --html file and its
 * standard output, loramerge's --fidelity report). A report (a file, or standard output when it is a
 * file) is refused when it is, contains, or lies inside something the tool reads: the inputs as given, the files they lead to (shards, config.json, an index's
 * directory), each by its real path, links resolved, and by identity (device and inode): the rule of
 * out_place.h, which nf4quant and loramerge apply to their OUTPUT, in a report's words. The report
 * is written under a temporary name beside it and renamed into place, so that only that name is ever
 * replaced (a link there is replaced itself, never followed), and with the permissions the umask gives
 * (0644 under the usual 022), as every other output of the toolchain.
 */
#ifndef TOOLS_REPORT_FILE_H
#define TOOLS_REPORT_FILE_H

#include <stdbool.h>
#include <stdio.h>

#include "hf_model.h"
#include "out_place.h"

/* What the tool reads, as out_place.h registers it. */
typedef out_inputs report_inputs;

/* NULL when out of memory. */
report_inputs *report_inputs_create(void);
void report_inputs_free(report_inputs *in); /* NULL is a no-op */

/* Adds an input as given on the command line (a directory, a file; an index.json's directory with it).
 * A path that does not resolve adds nothing (opening it will say why). false when out of memory. */
bool report_inputs_add_path(report_inputs *in, const char *path);

/* Adds what an opened model reads: its shards (a bundle's file is the input itself) and config.json.
 * false when out of memory. */
bool report_inputs_add_model(report_inputs *in, const hf_model *m);

/* Whether the report `path` may be written (`what` names it in messages: "--html file"): it must not exist
 * unless force, not be a directory or the file standard output writes to, and not be, contain or lie
 * inside an input (for a link, neither where it points nor where it is). Prints the message when not. */
bool report_file_ok(const report_inputs *in, const char *what, const char *path, bool force);

/* Whether standard output, when it is a regular file, is none of the inputs and not inside one (`qinspect
 * --json X >> X`). Prints the message when not. */
bool report_stdout_ok(const report_inputs *in);

/* Writes the report with write(arg, file) to path (checked by report_file_ok just before): a temporary
 * file in its directory, synced, renamed into place; removed on failure. Prints the message on failure. */
bool report_file_write(const char *path, const char *what, bool force, const report_inputs *in,
		       bool (*write)(const void *arg, FILE *f), const void *arg);

#endif /* TOOLS_REPORT_FILE_H */
