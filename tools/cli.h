/*
 * cli.h: what the three programs share on the command line: messages in one style, verbosity, sizes
 * with units, a progress line on terminals, and interruption by signals.
 */
#ifndef TOOLS_CLI_H
#define TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libquant.h>

#include "bundle.h"

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* Exit statuses, the same for every tool (documented in each man page). */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

/* Set once from main: the program's name for messages. */
void cli_init(const char *progname);
const char *cli_progname(void);

/* Verbosity: -1 quiet (errors only), 0 normal, 1 verbose, 2 more. */
extern int cli_verbosity;

/* "prog: message" on stderr, newline added; control characters and the other characters that are not
 * safe on a terminal (fmt_char: C1 controls, line separators, bidirectional overrides, bytes that are not
 * UTF-8) shown as '?'. */
void cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* "prog: warning: message", unless quiet. */
void cli_warn(const char *fmt, ...) CLI_PRINTF(1, 2);
/* "prog: message" when cli_verbosity >= level. */
void cli_info(int level, const char *fmt, ...) CLI_PRINTF(2, 3);
/* A line of a plan (what becomes of each tensor, the totals). to_stdout: the plan is the output asked for
 * (--dry-run without --json): on standard output, without the program's name, unless quiet. Otherwise
 * a detail for -v, on standard error as cli_info(1) prints it. Control characters shown as '?' either way. */
void cli_plan(bool to_stdout, const char *fmt, ...) CLI_PRINTF(2, 3);
/* A usage error: the message, a hint to --help, and exit status 2. */
void cli_usage_error(const char *fmt, ...) CLI_PRINTF(1, 2) __attribute__((noreturn));

/* Parses "123", "5GB" (10^9), "500MB", "100KB", "2GiB" (2^30), "64MiB", "1K", "1M", "1G" (powers of 1024
 * for the single letters, as zstd takes them), with overflow checks. */
bool cli_parse_size(const char *s, uint64_t *out);
/* Parses --shard's "I/N" (1 <= I <= N <= 10^6) into *part = I - 1 and *nparts = N. */
bool cli_parse_part(const char *s, long *part, long *nparts);
/* A float type as the options name it: bf16/bfloat16, fp16/float16, fp32/float32. */
bool cli_parse_float_dtype(const char *s, lq_dtype *out);
/* A 4-bit type: nf4 or fp4. */
bool cli_parse_qtype(const char *s, lq_qtype *out);
/* Parses a decimal integer in [min, max]. */
bool cli_parse_int(const char *s, long min, long max, long *out);

/* "2.14 GB", "296.2 kB", "512 B" (decimal units, as the sizes users see on the Hub). */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size);

/* Progress on stderr, only when it is a terminal and not quiet, at most ten times a second. */
void cli_progress(const char *what, uint64_t done, uint64_t total);
void cli_progress_end(void);

/* SIGINT/SIGTERM/SIGHUP set a flag that long work polls (so partial output is removed before exit): the
 * executor between chunks, a stream while it waits, and every step that finishes an output, up to the
 * rename into place (fmt_cancelled); the run then fails with "interrupted", exit status 1. SIGXFSZ is
 * ignored so that a file size limit turns into a write error like a full disk. For the tests, the
 * environment variable LQ_TEST_STOP_AT=STEP stops the process (SIGSTOP) as a step of that name begins. */
void cli_install_signals(void);
bool cli_interrupted(void);

/* The options every tool takes, with the same meaning: -T/--threads, --device, -f/--force,
 * -n/--dry-run, --json, -q/--quiet, -v/--verbose, -h/--help, -V/--version. A tool lists CLI_COMMON_LONGOPTS
 * in its getopt_long table and "T:fnqvhV" in its short options, and hands every option it does not know
 * itself to cli_common_option. */
enum { CLI_OPT_DEVICE = 1000, CLI_OPT_JSON };
#define CLI_COMMON_LONGOPTS                                                                              \
	{"device", required_argument, NULL, CLI_OPT_DEVICE}, {"threads", required_argument, NULL, 'T'},  \
	{"force", no_argument, NULL, 'f'}, {"dry-run", no_argument, NULL, 'n'},                          \
	{"json", no_argument, NULL, CLI_OPT_JSON}, {"quiet", no_argument, NULL, 'q'},                    \
	{"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'},                           \
	{"version", no_argument, NULL, 'V'}

typedef struct cli_common {
	const char *device; /* cli_default_device() unless --device */
	int threads;        /* 0: one per core */
	bool force, dry_run, json;
} cli_common;

/* Applies getopt's result `opt` (optarg, optind and optopt as getopt left them) to c; prints the help
 * (with `usage`) or the version and exits for -h and -V; a usage error for an unknown option, a missing
 * value or an invalid one. */
void cli_common_option(int opt, char **argv, cli_common *c, void (*usage)(void));

/* The options of the tools' libquant context: -T's threads, and LQ_CPU from the environment (`scalar`:
 * the reference kernels, which the tests compare with the fast ones; `avx2`, `avx512`: those; unset or
 * empty: the fastest). A usage error for another value, or for kernels this CPU does not run. */
lq_ctx_options cli_ctx_options(const cli_common *c);

/* ADAPTER[:WEIGHT]. An argument that exists as a path is a path, ':' and all. Otherwise what follows its
 * last ':' is the weight, a finite number within float32's range (the scaling it multiplies is a float32);
 * anything else there is a usage error that says so (a path that does not exist, or a weight that is not a
 * number: either way the argument is wrong). *path is malloc'd; the weight is 1 without one. */
void cli_adapter_arg(const char *arg, char **path, double *weight);

/* The device when --device is not given: LQ_DEVICE (cpu, cuda, cuda:N, all, auto; a usage error for other
 * forms), else auto. The GPU machine's test session sets it so that the command-line cases run on the GPU. */
const char *cli_default_device(void);

/* The options of the tools that write a model (nf4quant, loramerge), with the same meaning:
 * --max-shard-size, --shard I/N, --finish, --zstd-level. A tool lists CLI_OUTPUT_LONGOPTS, starts from
 * CLI_OUTPUT_DEFAULTS, and offers each option to cli_output_option before cli_common_option. */
enum { CLI_OPT_MAX_SHARD_SIZE = 1010, CLI_OPT_SHARD, CLI_OPT_FINISH, CLI_OPT_ZSTD_LEVEL };
#define CLI_OUTPUT_LONGOPTS                                                                              \
	{"max-shard-size", required_argument, NULL, CLI_OPT_MAX_SHARD_SIZE},                              \
	{"shard", required_argument, NULL, CLI_OPT_SHARD}, {"finish", no_argument, NULL, CLI_OPT_FINISH}, \
	{"zstd-level", required_argument, NULL, CLI_OPT_ZSTD_LEVEL}

typedef struct cli_output {
	uint64_t max_shard_size; /* 0: the input's layout */
	long part, nparts;       /* --shard I/N (part = I - 1); nparts 0: the whole output */
	bool finish;             /* --finish */
	int zstd_level;          /* bundles */
} cli_output;

#define CLI_OUTPUT_DEFAULTS {.zstd_level = BUNDLE_DEFAULT_LEVEL}

/* Applies getopt's result `opt` to o when it is one of those options (a usage error for an invalid
 * value): true; false for any other option. */
bool cli_output_option(int opt, cli_output *o);

/* Appends s to a growing list of strings (exits on out of memory: option parsing). */
void cli_list_add(const char ***list, size_t *n, const char *s);
/* Whether name matches one of the shell globs (fnmatch, '*' also matching '/' and '.'). */
bool cli_glob_any(const char *name, const char **globs, size_t n);

/* Flushes standard output: false, with the message, when it cannot be written (a full disk, a closed
 * pipe). The tools write their --json summary and call this before they rename the output into place, so
 * that a summary that cannot be written fails the run and leaves nothing behind. */
bool cli_flush_stdout(void);

/* For a tool whose standard output carries a summary written before its output is committed: a closed
 * pipe must fail the write (EPIPE), not kill the process with its temporary output left behind. */
void cli_ignore_sigpipe(void);

/* Wall-clock seconds since an arbitrary start. */
double cli_now(void);

/* A JSON number that reads back as exactly v (the shortest of %.15g to %.17g), null when v is not finite. */
struct cJSON *cli_json_number(double v);

/* With -v, after `--device auto`: what it chose and why ("--device auto: cpu (16 cores, ...)"). */
void cli_device_why(const lq_ctx *ctx);

#endif /* TOOLS_CLI_H */
