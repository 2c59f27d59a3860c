/* cli.c: see cli.h. */
#include "cli.h"

#include <cjson/cJSON.h>

#include <fnmatch.h>
#include <getopt.h>
#include <libquant.h>

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt.h"

int cli_verbosity = 0;
static const char *progname = "?";
static volatile sig_atomic_t interrupted;
static bool progress_shown;

void cli_init(const char *name)
{
	const char *slash = strrchr(name, '/');
	progname = slash ? slash + 1 : name;
}

const char *cli_progname(void)
{
	return progname;
}

/* buf formatted, with every character a terminal would not show as text (fmt_char) made one '?', in place. */
static void vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	vsnprintf(buf, size, fmt, ap);
	size_t len = strlen(buf), n = 0;
	for (size_t i = 0; i < len;) {
		bool safe;
		size_t k = fmt_char(buf + i, len - i, &safe);
		if (safe)
			memmove(buf + n, buf + i, k);
		else
			buf[n] = '?';
		n += safe ? k : 1;
		i += k;
	}
	buf[n] = '\0';
}

static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
	char buf[4096];
	vformat(buf, sizeof buf, fmt, ap);
	if (progress_shown)
		cli_progress_end();
	fprintf(stderr, "%s: %s%s\n", progname, prefix, buf);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage("", fmt, ap);
	va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
	if (cli_verbosity < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmessage("warning: ", fmt, ap);
	va_end(ap);
}

void cli_info(int level, const char *fmt, ...)
{
	if (cli_verbosity < level)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmessage("", fmt, ap);
	va_end(ap);
}

void cli_plan(bool to_stdout, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!to_stdout && cli_verbosity >= 1) {
		vmessage("", fmt, ap);
	} else if (to_stdout && cli_verbosity >= 0) {
		char buf[4096];
		vformat(buf, sizeof buf, fmt, ap);
		printf("%s\n", buf);
	}
	va_end(ap);
}

void cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage("", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", progname);
	exit(CLI_EXIT_USAGE);
}

bool cli_parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	if (!*s)
		return false;
	long v = strtol(s, &end, 10);
	if (*end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool cli_parse_part(const char *s, long *part, long *nparts)
{
	const char *slash = strchr(s, '/');
	if (!slash || slash == s || slash - s > 15)
		return false;
	char i[16];
	memcpy(i, s, (size_t)(slash - s));
	i[slash - s] = '\0';
	long a, n;
	if (!cli_parse_int(i, 1, 1000000, &a) || !cli_parse_int(slash + 1, 1, 1000000, &n) || a > n)
		return false;
	*part = a - 1;
	*nparts = n;
	return true;
}

bool cli_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{"", 1},          {"B", 1},
		{"K", 1ull << 10}, {"KiB", 1ull << 10}, {"KB", 1000},       {"kB", 1000},
		{"M", 1ull << 20}, {"MiB", 1ull << 20}, {"MB", 1000000},
		{"G", 1ull << 30}, {"GiB", 1ull << 30}, {"GB", 1000000000},
		{"T", 1ull << 40}, {"TiB", 1ull << 40}, {"TB", 1000000000000ull},
	};
	if (*s < '0' || *s > '9')
		return false;
	uint64_t v = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++)
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return false;
	for (size_t i = 0; i < sizeof units / sizeof *units; i++)
		if (strcmp(p, units[i].suffix) == 0)
			return !__builtin_mul_overflow(v, units[i].mult, out);
	return false;
}

const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *const unit[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	double v = (double)bytes;
	int u = 0;
	while (v >= 1000 && u < 5) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, unit[u]);
	return buf;
}

double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress(const char *what, uint64_t done, uint64_t total)
{
	static double last, start;
	if (cli_verbosity < 0 || !isatty(STDERR_FILENO))
		return;
	double now = cli_now();
	if (!progress_shown)
		start = now;
	if (progress_shown && now - last < 0.1 && done < total)
		return;
	last = now;
	char a[32], b[32], r[32];
	double rate = now > start ? (double)done / (now - start) : 0;
	fprintf(stderr, "\r%s: %s %3d%%  %s / %s  %s/s   ", progname, what,
		total ? (int)(100.0 * (double)done / (double)total) : 100, cli_human_bytes(done, a, sizeof a),
		cli_human_bytes(total, b, sizeof b), cli_human_bytes((uint64_t)rate, r, sizeof r));
	progress_shown = true;
}

void cli_progress_end(void)
{
	if (progress_shown) {
		fprintf(stderr, "\r\033[K");
		progress_shown = false;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static const char *stop_at; /* LQ_TEST_STOP_AT */

/* The cancel check of the formats' long steps (fmt.h). For the tests: when LQ_TEST_STOP_AT names the step
 * about to begin, the process stops itself there (SIGSTOP), so that a test can send its signal at exactly
 * that point however slow the machine, then let it go on (SIGCONT). */
static bool cancel_check(const char *step)
{
	if (step && stop_at && strcmp(step, stop_at) == 0) {
		raise(SIGSTOP);
		/* a signal sent while it was stopped may be handled by another thread (or, under valgrind, a
		 * moment later): up to a second for it */
		for (int i = 0; i < 100 && !interrupted; i++)
			nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
	}
	return cli_interrupted();
}

void cli_install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGXFSZ, SIG_IGN);
	/* a stream blocked on a stalled pipe looks at the flag while it waits, and so do the steps that
	 * finish an output */
	stop_at = getenv("LQ_TEST_STOP_AT");
	fmt_set_cancel_check(cancel_check);
}

bool cli_interrupted(void)
{
	return interrupted != 0;
}

void cli_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

bool cli_flush_stdout(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return true;
	cli_error("cannot write to standard output: %s", errno ? strerror(errno) : "write error");
	return false;
}

void cli_common_option(int opt, char **argv, cli_common *c, void (*usage)(void))
{
	long v;
	switch (opt) {
	case CLI_OPT_DEVICE:
		if (strcmp(optarg, "cpu") != 0 && strcmp(optarg, "cuda") != 0 && strcmp(optarg, "all") != 0 &&
		    strcmp(optarg, "auto") != 0 && !(strncmp(optarg, "cuda:", 5) == 0 && cli_parse_int(optarg + 5, 0, 1024, &v)))
			cli_usage_error("invalid --device '%s' (cpu, cuda, cuda:N, all or auto)", optarg);
		c->device = optarg;
		break;
	case 'T':
		if (!cli_parse_int(optarg, 0, 4096, &v))
			cli_usage_error("invalid --threads '%s' (0 to 4096)", optarg);
		c->threads = (int)v;
		break;
	case 'f':
		c->force = true;
		break;
	case 'n':
		c->dry_run = true;
		break;
	case CLI_OPT_JSON:
		c->json = true;
		break;
	case 'q':
		cli_verbosity = cli_verbosity > 0 ? 0 : -1;
		break;
	case 'v':
		cli_verbosity = cli_verbosity < 0 ? 0 : cli_verbosity + 1;
		break;
	case 'h':
		usage();
		exit(CLI_EXIT_OK);
	case 'V':
		printf("%s %s (libquant %s)\n", cli_progname(), LQ_VERSION_STRING, lq_version_string());
		exit(CLI_EXIT_OK);
	case ':':
		cli_usage_error("option '%s' needs a value", argv[optind - 1]);
	default:
		if (optopt)
			cli_usage_error("invalid option '-%c'", optopt);
		cli_usage_error("invalid option '%s'", argv[optind - 1]);
	}
}

bool cli_parse_float_dtype(const char *s, lq_dtype *out)
{
	if (strcmp(s, "bf16") == 0 || strcmp(s, "bfloat16") == 0)
		*out = LQ_DTYPE_BF16;
	else if (strcmp(s, "fp16") == 0 || strcmp(s, "float16") == 0)
		*out = LQ_DTYPE_F16;
	else if (strcmp(s, "fp32") == 0 || strcmp(s, "float32") == 0)
		*out = LQ_DTYPE_F32;
	else
		return false;
	return true;
}

bool cli_parse_qtype(const char *s, lq_qtype *out)
{
	if (strcmp(s, "nf4") == 0)
		*out = LQ_QTYPE_NF4;
	else if (strcmp(s, "fp4") == 0)
		*out = LQ_QTYPE_FP4;
	else
		return false;
	return true;
}

bool cli_output_option(int opt, cli_output *o)
{
	long v;
	switch (opt) {
	case CLI_OPT_MAX_SHARD_SIZE:
		if (!cli_parse_size(optarg, &o->max_shard_size) || o->max_shard_size == 0)
			cli_usage_error("invalid --max-shard-size '%s' (a size such as 5GB, 500MB or 2GiB)", optarg);
		return true;
	case CLI_OPT_SHARD:
		if (!cli_parse_part(optarg, &o->part, &o->nparts))
			cli_usage_error("invalid --shard '%s' (I/N with 1 <= I <= N, e.g. 2/8)", optarg);
		return true;
	case CLI_OPT_FINISH:
		o->finish = true;
		return true;
	case CLI_OPT_ZSTD_LEVEL:
		if (!cli_parse_int(optarg, 1, 19, &v))
			cli_usage_error("invalid --zstd-level '%s' (1 to 19)", optarg);
		o->zstd_level = (int)v;
		return true;
	default:
		return false;
	}
}

void cli_list_add(const char ***list, size_t *n, const char *s)
{
	const char **l = realloc(*list, (*n + 1) * sizeof *l);
	if (!l) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAILURE);
	}
	l[(*n)++] = s;
	*list = l;
}

bool cli_glob_any(const char *name, const char **globs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(globs[i], name, 0) == 0)
			return true;
	return false;
}

void cli_adapter_arg(const char *arg, char **path, double *weight)
{
	if (!(*path = strdup(arg))) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAILURE);
	}
	*weight = 1.0;
	const char *colon = strrchr(arg, ':');
	struct stat sb;
	if (!colon || stat(arg, &sb) == 0)
		return;
	const char *num = colon + 1;
	char *end = NULL;
	double v = 0;
	if (*num && !isspace((unsigned char)*num))
		v = strtod(num, &end);
	if (!end || end == num || *end)
		cli_usage_error("'%s' does not exist, and '%s' after its last ':' is not a weight (ADAPTER:WEIGHT takes "
				"a number)", arg, num);
	/* the scaling it multiplies is a float32 */
	if (!isfinite(v) || fabs(v) > FLT_MAX)
		cli_usage_error("invalid weight '%s' in '%s' (a finite number, within float32's range)", num, arg);
	(*path)[colon - arg] = '\0';
	*weight = v;
}

const char *cli_default_device(void)
{
	const char *d = getenv("LQ_DEVICE");
	if (!d || !*d)
		return "auto";
	/* the forms --device takes; whether such a device exists is for opening it to say */
	const char *n = strncmp(d, "cuda:", 5) == 0 ? d + 5 : NULL;
	bool ok = strcmp(d, "cpu") == 0 || strcmp(d, "cuda") == 0 || strcmp(d, "all") == 0 || strcmp(d, "auto") == 0 ||
		  (n && *n && strspn(n, "0123456789") == strlen(n) && strlen(n) <= 3);
	if (!ok)
		cli_usage_error("invalid LQ_DEVICE '%s' (cpu, cuda, cuda:N, all or auto)", d);
	return d;
}

lq_ctx_options cli_ctx_options(const cli_common *c)
{
	const char *cpu = getenv("LQ_CPU");
	lq_ctx_options o = {.threads = c->threads, .cpu = LQ_CPU_BEST};
	if (cpu && *cpu) {
		if (lq_cpu_path_from_name(cpu, &o.cpu) != LQ_OK)
			cli_usage_error("invalid LQ_CPU '%s' (scalar, avx2 or avx512)", cpu);
		if (!lq_cpu_path_supported(o.cpu))
			cli_usage_error("LQ_CPU=%s: this CPU does not run the %s kernels", cpu, cpu);
	}
	return o;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as exactly v (cJSON's own printing accepts a
 * neighbour), so that a reader gets the bits the tool computed; null when v is not finite. */
cJSON *cli_json_number(double v)
{
	if (!isfinite(v))
		return cJSON_CreateNull();
	char buf[32];
	for (int digits = 15; digits <= 17; digits++) {
		snprintf(buf, sizeof buf, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return cJSON_CreateRaw(buf);
}

void cli_device_why(const lq_ctx *ctx)
{
	const char *why = lq_ctx_device_why(ctx);
	if (*why)
		cli_info(1, "--device auto: %s", why);
}
