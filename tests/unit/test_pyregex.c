/*
 * test_pyregex.c: the Python regex translator (formats/pyregex.c): whole-string matches equal Python's
 * re.fullmatch (pyregex_cases.inc, made by pyregex_cases.py), what ERE lacks is refused, and the bounds
 * hold: each hostile pattern is refused or compiled at once, whatever its size.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyregex.h"
#include "test.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct fullmatch_case {
	const char *pattern, *subject;
	int match;
} fullmatch_case;

static const fullmatch_case fullmatch_cases[] = {
#include "pyregex_cases.inc"
};

TEST(pyregex_whole_matches_as_python)
{
	for (size_t i = 0; i < sizeof fullmatch_cases / sizeof *fullmatch_cases; i++) {
		const fullmatch_case *c = &fullmatch_cases[i];
		test_context("re.fullmatch('%s', '%s')", c->pattern, c->subject);
		regex_t re;
		if (!CHECK_INT(pyre_compile(&re, "^(", c->pattern, ")$", 0, NULL), PYRE_OK))
			continue;
		CHECK_INT(regexec(&re, c->subject, 0, NULL, 0) == 0, c->match);
		regfree(&re);
	}
	test_note("%zu cases", sizeof fullmatch_cases / sizeof *fullmatch_cases);
}

/* $ and \Z mean the end of the whole string: PYRE_NO_END, for a proper prefix, never matches them. */
TEST(pyregex_no_end_for_prefixes)
{
	static const char *const patterns[] = {"ab$", "ab\\Z", "a(b$|c)", "(ab)$"};
	for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
		test_context("%s", patterns[i]);
		regex_t re;
		if (!CHECK_INT(pyre_compile(&re, "^(", patterns[i], ")$", PYRE_NO_END, NULL), PYRE_OK))
			continue;
		CHECK(regexec(&re, "ab", 0, NULL, 0) != 0);
		CHECK_INT(regexec(&re, "ac", 0, NULL, 0) == 0, strcmp(patterns[i], "a(b$|c)") == 0);
		regfree(&re);
	}
}

static pyre_status translate(const char *py, uint64_t *size)
{
	fmt_buf b = {0};
	const pyre_status st = pyre_to_ere(py, &b, 0, size);
	free(b.p);
	return st;
}

/* A pattern of n copies of unit between head and tail. */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	const size_t len = strlen(head) + n * strlen(unit) + strlen(tail) + 1;
	char *s = malloc(len);
	if (!s)
		return NULL;
	strcpy(s, head);
	for (size_t i = 0; i < n; i++)
		strcat(s, unit);
	strcat(s, tail);
	return s;
}

TEST(pyregex_refuses_what_ere_lacks)
{
	static const char *const refused[] = {
		"(?=a)b", "(?!a)b", "(?<=a)b", "(?<!a)b", "(a)\\1", "(?P<x>a)(?P=x)", "(?i)a", "(?#c)a", "(?(1)a|b)",
		"a*+", "a{2}+", "\\bfc", "\\Bx", "\\x41", "\\u0041", "\\N{DASH}", "\\01", "a)", "(a", "[a", "*a", "a**",
		"+", "{2}", "a\\", "[\\D]", "[a-\\d]", "[z-a]",
	};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		test_context("%s", refused[i]);
		CHECK_INT(translate(refused[i], NULL), PYRE_REFUSED);
	}
}

TEST(pyregex_bounds)
{
	/* the edges: 64 nested groups, 4096 atoms counted out */
	char *p = repeat("", "(", 64, "x");
	char *q = p ? repeat(p, ")", 64, "") : NULL;
	CHECK(q && translate(q, NULL) == PYRE_OK);
	free(p);
	free(q);
	p = repeat("", "(", 65, "x");
	q = p ? repeat(p, ")", 65, "") : NULL;
	CHECK(q && translate(q, NULL) == PYRE_REFUSED);
	free(p);
	free(q);
	uint64_t size = 0;
	CHECK_INT(translate("a{4096}", &size), PYRE_OK);
	CHECK_INT(size, 4096);
	CHECK_INT(translate("a{4097}", NULL), PYRE_REFUSED);
	CHECK_INT(translate("(a{64}){63}", &size), PYRE_OK);
	CHECK_INT(size, 65 * 63); /* a group counts one more than its content */
	CHECK_INT(translate("(a{64}){65}", NULL), PYRE_REFUSED);
	CHECK_INT(translate("a{99999999999999999999999}", NULL), PYRE_REFUSED);
	CHECK_INT(translate("(a?)+", NULL), PYRE_REFUSED); /* a repetition of what can match nothing */
	CHECK_INT(translate("(a|)*", NULL), PYRE_REFUSED);
	CHECK_INT(translate("(a?){2}", NULL), PYRE_REFUSED);
	CHECK_INT(translate("(a?)?", NULL), PYRE_OK); /* at most once: no loop */
	CHECK_INT(translate("(ab?)+", NULL), PYRE_OK);
	p = repeat("", "a", 4097, "");
	CHECK(p && translate(p, NULL) == PYRE_REFUSED); /* a literal longer than the bound */
	free(p);
}

/* The patterns that held regcomp for seconds or minutes, or overflowed its stack (issue 12, fuzzing):
 * each is answered at once. */
TEST(pyregex_hostile_patterns_answered_at_once)
{
	char *hostile[] = {
		repeat("", "(a*)*", 25, "b"),              /* 126 bytes: 44 s in regcomp before */
		repeat("(a", "|", 200, ")+b"),             /* 400 bytes of empty alternatives (fuzz_peft) */
		repeat("", "(", 30000, "x"),               /* nesting that overflowed regcomp's stack */
		repeat("", "(a{64})", 1000, ""),           /* a size that took gigabytes */
		repeat("", "((a|b)+c)?", 400, ""),
		repeat("", "[a-z]{64}", 60, ""),
	};
	const double t0 = now();
	for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
		if (!CHECK(hostile[i] != NULL))
			continue;
		test_context("hostile pattern %zu", i);
		regex_t re;
		if (pyre_compile(&re, "^(", hostile[i], ")$", 0, NULL) == PYRE_OK) {
			CHECK(i >= 4); /* the last two are within the bounds: compiled, and fast */
			regexec(&re, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", 0, NULL, 0);
			regfree(&re);
		} else {
			CHECK(i < 4);
		}
		free(hostile[i]);
	}
	const double secs = now() - t0;
	test_note("hostile patterns answered in %.3f s", secs);
	CHECK(secs < 1.0);
}

/* loramerge --key-map takes a POSIX ERE: the same bounds, its syntax left to regcomp. */
TEST(pyregex_bounds_of_posix_eres)
{
	static const char *const ok[] = {"^model\\.language_model\\.", "[[:alpha:]_]+\\.([0-9]+)", "[]a-]{2,3}",
					 "(q|k|v)_proj$", "\\1x", "(", "a**"};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		test_context("%s", ok[i]);
		CHECK_INT(pyre_check_ere(ok[i]), PYRE_OK);
	}
	char *nest = repeat("", "(", 30000, "x");
	char *stall = repeat("", "(a*)*", 25, "b");
	const char *refused[] = {nest, stall, "(a|)+", "(\\1)*", "[[:digit:]]{4097}", "(a{64}){65}"};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		test_context("refused %zu", i);
		CHECK(refused[i] && pyre_check_ere(refused[i]) == PYRE_REFUSED);
	}
	free(nest);
	free(stall);
}
