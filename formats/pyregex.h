/*
 * pyregex.h: Python regular expressions (the syntax of Python's `re` module) as POSIX extended regular
 * expressions for regcomp(3), within bounds. Model files carry Python regexes that name modules: the keys
 * of PEFT's rank_pattern and alpha_pattern (peft.c), and the entries of transformers'
 * llm_int8_skip_modules (hf_select.c). They come from files anyone can write, so what reaches regcomp is
 * bounded here: nothing else in the formats compiles a pattern read from a file.
 *
 * Facts the translation stands on:
 * - Python's re backtracks; glibc's regexec runs an automaton. For a pattern written to match a whole
 *   string (regexec of "^(...)$", Python's re.fullmatch, or re.match followed by a test of where the match
 *   ends) both accept the same set of strings: lazy quantifiers change which match Python finds first, not
 *   whether one exists.
 * - Translated: literals; `.` (any character but a newline, as in Python without DOTALL); escapes \d \w \s
 *   and \D \W \S (ASCII classes), \A \Z, \n \t \r \f \v, an escaped punctuation character; bracket
 *   expressions with ranges and the escapes above; groups `(...)`, `(?:...)`, `(?P<name>...)`;
 *   alternation; `* + ?` and `{m}` `{m,}` `{,n}` `{m,n}`, greedy or lazy; `^` and `$`; a brace that
 *   does not start a quantifier is a literal, as in Python.
 * - Refused (Python has them, ERE has not): lookahead and lookbehind, backreferences, (?P=name), inline
 *   flags, comments, conditionals, possessive quantifiers, \b \B, \x \u \N and octal escapes; and what
 *   Python refuses itself (an unbalanced parenthesis, an unterminated bracket, a quantifier on nothing).
 * - Known differences, on names no model has: Python's \d \w \s also match non-ASCII digits, letters and
 *   spaces, and its `$` also matches before a newline that ends the string.
 * - Bounds. glibc's regcomp copies what `+` or a counted repetition repeats, recurses once per group,
 *   and takes exponential time on a repetition of something that can match the empty string:
 *   "(a||...||)+b" (400 bytes; found by tests/fuzz/fuzz_peft.c) or twenty-five "(a*)*" in a row held it for
 *   minutes without answering signals, (a{32767}){32767} took gigabytes, and 30000 nested groups
 *   overflowed its stack. Python compiles such patterns at once (or gives up at ~500 nested groups), but
 *   no module name needs them: a pattern that repeats what can match the empty string, nests groups deeper
 *   than PYRE_MAX_DEPTH, or holds more than PYRE_MAX_SIZE atoms once its repetitions are counted out is
 *   refused like a lookaround. Within those bounds regcomp takes well under a millisecond.
 */
#ifndef FORMATS_PYREGEX_H
#define FORMATS_PYREGEX_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "fmt.h"

#define PYRE_MAX_DEPTH 64   /* nested groups */
#define PYRE_MAX_SIZE 4096  /* atoms, each repetition counted out: "a{3}" is 3, "(ab){2}x" is 7 */

typedef enum pyre_status {
	PYRE_OK,
	PYRE_REFUSED, /* what ERE cannot say, or beyond the bounds */
	PYRE_NOMEM,
} pyre_status;

/* Flags of the translation. PYRE_NO_END: the ERE will be run on a proper prefix of the string Python
 * matches against (transformers' skip entries are matched from the start of a module path up to a
 * boundary), so py's `$` and \Z, which mean the end of the whole string, must match nowhere. */
#define PYRE_NO_END 1u

/* Appends to b a POSIX ERE that matches, as a whole, the strings Python regex py matches as a whole.
 * *size (may be NULL) receives the pattern's atoms as counted for PYRE_MAX_SIZE. PYRE_REFUSED leaves a
 * partial translation in b, to be discarded; PYRE_NOMEM sets b->oom. */
pyre_status pyre_to_ere(const char *py, fmt_buf *b, unsigned flags, uint64_t *size);

/* regcomp(re, before + ERE(py) + after, REG_EXTENDED | REG_NOSUB): before and after are ERE text of the
 * caller's (anchors, a prefix group). On PYRE_OK the caller owns re and regfree()s it; otherwise re is
 * not to be used. A regcomp failure (never seen within the bounds) is PYRE_REFUSED. */
pyre_status pyre_compile(regex_t *re, const char *before, const char *py, const char *after, unsigned flags,
			 uint64_t *size);

/* Whether a POSIX ERE (given on a command line: loramerge --key-map) is within the same bounds (nesting,
 * size, no repetition of what can match the empty string), so that regcomp answers at once and within
 * its stack. PYRE_OK (also for a syntax error, which regcomp reports), PYRE_REFUSED, PYRE_NOMEM. */
pyre_status pyre_check_ere(const char *ere);

#endif /* FORMATS_PYREGEX_H */
