/*
 * test.h: the unit-test runner's interface. A test is a function declared with TEST(name); it registers
 * itself at start-up. Checks report the file, line, both values and the context set by test_context(),
 * count a failure and let the test go on (a test stops itself with `return` where going on is pointless).
 *
 *   build/test_unit            runs every test
 *   build/test_unit -l         lists them
 *   build/test_unit -p         lists the CPU paths this machine runs (LQ_CPU=PATH build/test_unit: the
 *                              tests on that path's kernels; `make check` runs each)
 *   build/test_unit NAME...    runs those whose name contains one of the NAMEs
 *
 * Tests find the fixtures relative to the top of the tree (the Makefile runs them from there), or under
 * $LQ_TOP.
 */
#ifndef TESTS_UNIT_TEST_H
#define TESTS_UNIT_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);

#define TEST(name)                                                                          \
	static void name(void);                                                             \
	__attribute__((constructor)) static void register_##name(void) { test_register(#name, name); } \
	static void name(void)

/* Counts a failure and prints "file:line: message (context)". Returns false, for `if (!CHECK(...)) return;`. */
bool test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A short note printed with every failure until the next call (e.g. the case being checked). */
void test_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A path under the top of the source tree, in a static buffer. */
const char *test_path(const char *rel);
/* Prints an informational line (counts reported by a test). */
void test_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(cond) ((cond) ? true : test_fail(__FILE__, __LINE__, "%s", #cond))
#define CHECK_INT(a, b)                                                                                  \
	({                                                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);                                      \
		a_ == b_ ? true : test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
	})
#define CHECK_STR(a, b)                                                                                  \
	({                                                                                               \
		const char *a_ = (a), *b_ = (b);                                                         \
		(a_ && b_ && strcmp(a_, b_) == 0) ? true                                                 \
			: test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
				    b_ ? b_ : "(null)");                                                \
	})
/* Substring check, for error messages. */
#define CHECK_CONTAINS(hay, needle)                                                                      \
	({                                                                                               \
		const char *h_ = (hay), *n_ = (needle);                                                  \
		(h_ && strstr(h_, n_)) ? true                                                            \
			: test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
	})

#endif /* TESTS_UNIT_TEST_H */
