/* test_main.c: the unit-test runner (test.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include "libquant.h"
#include "test.h"

#define MAX_TESTS 512

typedef struct test_entry {
	const char *name;
	test_fn fn;
} test_entry;

static test_entry tests[MAX_TESTS];
static int ntests;
static int failures;
static const char *current;
static char context[512];

void test_register(const char *name, test_fn fn)
{
	if (ntests < MAX_TESTS)
		tests[ntests++] = (test_entry){name, fn};
}

bool test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	failures++;
	fprintf(stderr, "%s:%d: %s: ", file, line, current);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (context[0])
		fprintf(stderr, " [%s]", context);
	fputc('\n', stderr);
	return false;
}

void test_context(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(context, sizeof context, fmt, ap);
	va_end(ap);
}

void test_note(const char *fmt, ...)
{
	va_list ap;
	printf("    %s: ", current);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

const char *test_path(const char *rel)
{
	static char buf[4][4096];
	static int k;
	const char *top = getenv("LQ_TOP");
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", top ? top : ".", rel);
	return buf[k];
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const test_entry *)a)->name, ((const test_entry *)b)->name);
}

int main(int argc, char **argv)
{
	qsort(tests, (size_t)ntests, sizeof tests[0], by_name);
	if (argc > 1 && strcmp(argv[1], "-l") == 0) {
		for (int i = 0; i < ntests; i++)
			puts(tests[i].name);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "-p") == 0) {
		/* the values of LQ_CPU this CPU runs: `make check` runs the tests under each */
		static const char *const names[] = {"scalar", "avx2", "avx512"};
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
			lq_cpu_path p;
			if (lq_cpu_path_from_name(names[i], &p) == LQ_OK && lq_cpu_path_supported(p))
				puts(names[i]);
		}
		return 0;
	}
	int ran = 0, failed_tests = 0;
	for (int i = 0; i < ntests; i++) {
		bool selected = argc == 1;
		for (int a = 1; a < argc && !selected; a++)
			selected = strstr(tests[i].name, argv[a]) != NULL;
		if (!selected)
			continue;
		current = tests[i].name;
		context[0] = '\0';
		int before = failures;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		tests[i].fn();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		ran++;
		if (failures > before) {
			failed_tests++;
			printf("FAIL %s (%d failed checks)\n", tests[i].name, failures - before);
		} else {
			printf("ok   %s (%.0f ms)\n", tests[i].name, ms);
		}
		fflush(stdout);
	}
	printf("%d tests, %d failed\n", ran, failed_tests);
	if (ran == 0) {
		fprintf(stderr, "no test matched\n");
		return 1;
	}
	return failed_tests ? 1 : 0;
}
