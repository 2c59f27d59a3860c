/*
 * qinspect_output.h: where qinspect's outputs may go, and how the --html file is written. An output
 * (the --html file, or standard output when it is a file) is refused when it is, contains, or lies inside
 * something qinspect reads: the inputs as given, the files they lead to (shards, config.json, an index's
 * directory), each by its real path, links resolved, and by identity (device and inode): the rule of
 * out_place.h, which nf4quant and loramerge apply to their OUTPUT, in qinspect's words. The --html file
 * is written under a temporary name beside it and renamed into place, so that only that name is ever
 * replaced (a link there is replaced itself, never followed), and with the permissions the umask gives
 * (0644 under the usual 022), as every other output of the toolchain.
 */
#ifndef TOOLS_QINSPECT_OUTPUT_H
#define TOOLS_QINSPECT_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

#include "hf_model.h"
#include "out_place.h"
#include "qinspect_report.h"

/* What qinspect reads, as out_place.h registers it. */
typedef out_inputs qi_inputs;

/* NULL when out of memory. */
qi_inputs *qi_inputs_create(void);
void qi_inputs_free(qi_inputs *in); /* NULL is a no-op */

/* Adds an input as given on the command line (a directory, a file; an index.json's directory with it).
 * A path that does not resolve adds nothing (opening it will say why). false when out of memory. */
bool qi_inputs_add_path(qi_inputs *in, const char *path);

/* Adds what an opened model reads: its shards (a bundle's file is the input itself) and config.json.
 * false when out of memory. */
bool qi_inputs_add_model(qi_inputs *in, const hf_model *m);

/* Whether the --html FILE may be written: it must not exist unless force, not be a directory or the file
 * standard output writes to, and not be, contain or lie inside an input (for a link, neither where it
 * points nor where it is). Prints the message when not. */
bool qi_output_ok(const qi_inputs *in, const char *path, bool force);

/* Whether standard output, when it is a regular file, is none of the inputs and not inside one (`qinspect
 * --json X >> X`). Prints the message when not. */
bool qi_stdout_ok(const qi_inputs *in);

/* Writes the report with `write` to path (checked by qi_output_ok just before): a temporary file in its
 * directory, synced, renamed into place; removed on failure. Prints the message on failure. */
bool qi_write_output(const char *path, bool force, const qi_inputs *in, bool (*write)(const qi_report *, FILE *),
		     const qi_report *r);

#endif /* TOOLS_QINSPECT_OUTPUT_H */
