/*
 * pyregex.c: Python regexes as bounded POSIX EREs (pyregex.h).
 */
#include "pyregex.h"

#include <stdlib.h>
#include <string.h>

/* One bracket expression of a Python regex, from just after its '[', into b; *pp is left after its ']'.
 * False when ERE cannot say it. */
static bool bracket_to_ere(const char **pp, fmt_buf *b)
{
	const char *p = *pp;
	bool neg = false, rbracket = false, dash = false, lbracket = false, caret = false;
	fmt_buf items = {0};
	if (*p == '^') {
		neg = true;
		p++;
	}
	bool first = true;
	int prev = -1; /* the previous item when it was a single literal character, for ranges */
	for (;;) {
		if (*p == '\0')
			goto fail; /* unterminated: Python refuses it too */
		if (*p == ']' && !first)
			break;
		first = false;
		int c;
		if (*p == '\\') {
			p++;
			switch (*p) {
			case 'd': fmt_buf_puts(&items, "0-9"); p++; prev = -1; continue;
			case 'w': fmt_buf_puts(&items, "A-Za-z0-9_"); p++; prev = -1; continue;
			case 's': fmt_buf_puts(&items, "[:space:]"); p++; prev = -1; continue;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'f': c = '\f'; break;
			case 'v': c = '\v'; break;
			case '\0': goto fail;
			default:
				if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
					goto fail; /* \D \W \S \xhh \uXXXX \N{...}, octal: not here */
				c = (unsigned char)*p;
			}
			p++;
		} else if (*p == '-' && prev >= 0 && p[1] != ']' && p[1] != '\0') {
			/* a range prev-hi */
			p++;
			int hi;
			if (*p == '\\') {
				p++;
				if (*p == '\0' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
					goto fail;
			}
			hi = (unsigned char)*p++;
			if (prev == ']' || prev == '-' || prev == '^' || prev == '[' || hi == ']' || hi == '-' || hi == '^' ||
			    hi == '[' || hi < prev)
				goto fail;
			/* the low end was written as a literal already: add the rest */
			fmt_buf_put(&items, "-", 1);
			const char h = (char)hi;
			fmt_buf_put(&items, &h, 1);
			prev = -1;
			continue;
		} else {
			c = (unsigned char)*p++;
		}
		prev = c;
		if (c == ']')
			rbracket = true;
		else if (c == '-')
			dash = true;
		else if (c == '[')
			lbracket = true;
		else if (c == '^')
			caret = true;
		else {
			const char ch = (char)c;
			fmt_buf_put(&items, &ch, 1);
			continue;
		}
	}
	*pp = p + 1;
	if (items.oom) {
		b->oom = true;
		free(items.p);
		return false;
	}
	const bool any = rbracket || items.len || lbracket;
	if (caret && !any && !neg && !dash) {
		fmt_buf_puts(b, "\\^"); /* [\^] alone: a literal caret */
		free(items.p);
		return true;
	}
	fmt_buf_puts(b, neg ? "[^" : "[");
	if (rbracket)
		fmt_buf_puts(b, "]");
	if (items.len)
		fmt_buf_put(b, items.p, items.len);
	if (lbracket)
		fmt_buf_puts(b, "["); /* followed by '^', '-' or ']': never read as "[:" */
	if (dash && caret && !any && !neg) {
		fmt_buf_puts(b, "-^]");
	} else {
		if (caret)
			fmt_buf_puts(b, "^");
		if (dash)
			fmt_buf_puts(b, "-");
		fmt_buf_puts(b, "]");
	}
	free(items.p);
	return true;
fail:
	free(items.p);
	return false;
}

/* One open group of the pattern, for the bounds of pyregex.h. */
typedef struct ere_frame {
	uint64_t size;       /* atoms so far, repetitions counted out */
	uint64_t last_size;  /* those of the last item: what a quantifier repeats */
	bool has_last;       /* there is an item a quantifier may follow */
	bool last_nullable;  /* the last item can match the empty string */
	bool alt_before;     /* the current alternative, before its last item, can */
	bool alt_nullable;   /* the current alternative, so far, can */
	bool nullable;       /* a finished alternative can */
	bool beyond;         /* refused for a bound, not for its syntax */
} ere_frame;

static bool ere_item(ere_frame *f, bool nullable, uint64_t size)
{
	f->size += size;
	f->last_size = size;
	f->has_last = true;
	f->last_nullable = nullable;
	f->alt_before = f->alt_nullable;
	f->alt_nullable = f->alt_nullable && nullable;
	f->beyond = f->size > PYRE_MAX_SIZE;
	return !f->beyond;
}

/* A quantifier {lo,hi} (hi < 0: unbounded) on the last item. */
static bool ere_repeat(ere_frame *f, uint64_t lo, int64_t hi)
{
	if (!f->has_last)
		return false; /* nothing to repeat, or a quantifier after one: Python refuses both */
	const bool loops = hi < 0 || hi > 1;
	uint64_t copies = hi < 0 ? lo + 1 : (uint64_t)hi;
	if (copies == 0)
		copies = 1;
	if ((loops && f->last_nullable) || copies > PYRE_MAX_SIZE || f->last_size * copies > PYRE_MAX_SIZE) {
		f->beyond = true;
		return false;
	}
	f->size += f->last_size * (copies - 1);
	f->last_size *= copies;
	f->has_last = false;
	f->last_nullable = lo == 0 || f->last_nullable;
	f->alt_nullable = f->alt_before && f->last_nullable;
	f->beyond = f->size > PYRE_MAX_SIZE;
	return !f->beyond;
}

/* The count written in [q, end), or some number above PYRE_MAX_SIZE when it is larger. */
static uint64_t ere_count(const char *q, const char *end)
{
	uint64_t n = 0;
	for (; q < end; q++)
		n = n > PYRE_MAX_SIZE ? n : n * 10 + (uint64_t)(*q - '0');
	return n;
}

/* translate() reads a POSIX ERE rather than a Python regex (pyre_check_ere). */
#define POSIX_INPUT 0x100u

/* A POSIX bracket expression from just after its '[': past its ']', or NULL when it has none. */
static const char *skip_posix_bracket(const char *p)
{
	if (*p == '^')
		p++;
	if (*p == ']')
		p++; /* a leading ']' is a member */
	for (; *p && *p != ']'; p++)
		if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			const char close[3] = {p[1], ']', '\0'};
			const char *end = strstr(p + 2, close);
			if (!end)
				return NULL;
			p = end + 1;
		}
	return *p ? p + 1 : NULL;
}

/* What `$` and \Z become: the end of the subject, or (PYRE_NO_END) nothing at all: any character, then
 * the start of the subject. */
static const char *end_anchor(unsigned flags)
{
	return flags & PYRE_NO_END ? "(.^)" : "$";
}

/* py as an ERE into b; *size its atoms. False when it uses what ERE lacks or goes beyond the bounds;
 * *beyond then says which. */
static bool translate(const char *py, fmt_buf *b, unsigned flags, uint64_t *size, bool *beyond)
{
	const char *p = py;
	ere_frame st[PYRE_MAX_DEPTH + 1] = {{.alt_nullable = true}};
	int depth = 0;
	while (*p) {
		const char c = *p;
		ere_frame *f = &st[depth];
		if (flags & POSIX_INPUT) {
			/* escapes and brackets of POSIX (and GNU) syntax: only their size matters here; a
			 * backreference may match the empty string */
			if (c == '\\') {
				if (!p[1] || !ere_item(f, p[1] >= '0' && p[1] <= '9', 1))
					goto fail;
				p += 2;
				continue;
			}
			if (c == '[') {
				if (!(p = skip_posix_bracket(p + 1)) || !ere_item(f, false, 1))
					goto fail;
				continue;
			}
		}
		if (c == '\\') {
			const char e = p[1];
			p += 2;
			/* \A and \Z match the empty string; every other escape one character */
			if (!ere_item(f, e == 'A' || e == 'Z', 1))
				goto fail;
			switch (e) {
			case 'd': fmt_buf_puts(b, "[0-9]"); break;
			case 'D': fmt_buf_puts(b, "[^0-9]"); break;
			case 'w': fmt_buf_puts(b, "[A-Za-z0-9_]"); break;
			case 'W': fmt_buf_puts(b, "[^A-Za-z0-9_]"); break;
			case 's': fmt_buf_puts(b, "[[:space:]]"); break;
			case 'S': fmt_buf_puts(b, "[^[:space:]]"); break;
			case 'A': fmt_buf_puts(b, "^"); break;
			case 'Z': fmt_buf_puts(b, end_anchor(flags)); break;
			case 'n': fmt_buf_puts(b, "\n"); break;
			case 't': fmt_buf_puts(b, "\t"); break;
			case 'r': fmt_buf_puts(b, "\r"); break;
			case 'f': fmt_buf_puts(b, "\f"); break;
			case 'v': fmt_buf_puts(b, "\v"); break;
			case '\0': goto fail;
			default:
				if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
					goto fail; /* \b \B backreferences \x \u \N octal */
				if (strchr(".[]()*+?{}|^$\\", e)) {
					const char esc[3] = {'\\', e, '\0'};
					fmt_buf_puts(b, esc);
				} else {
					const char lit[4] = {'[', e, ']', '\0'};
					fmt_buf_puts(b, lit);
				}
			}
			continue;
		}
		if (c == '[') {
			p++;
			if (!bracket_to_ere(&p, b) || !ere_item(f, false, 1))
				goto fail;
			continue;
		}
		if (c == '(') {
			if (depth == PYRE_MAX_DEPTH) {
				st[depth].beyond = true;
				goto fail;
			}
			st[++depth] = (ere_frame){.alt_nullable = true};
			if (p[1] == '?') {
				if (p[2] == ':') {
					p += 3;
				} else if (p[2] == 'P' && p[3] == '<') {
					const char *end = strchr(p + 4, '>');
					if (!end)
						goto fail;
					p = end + 1;
				} else {
					goto fail; /* lookaround, (?P=name), inline flags, comments */
				}
			} else {
				p++;
			}
			fmt_buf_puts(b, "(");
			continue;
		}
		if (c == ')') {
			/* Unbalanced: Python refuses it, and here it would close the group around the key, so that
			 * "x)|(.*" matched every module (found by tests/fuzz/fuzz_peft.c, as a regcomp timeout) */
			if (depth == 0)
				goto fail;
			const ere_frame g = st[depth--];
			if (!ere_item(&st[depth], g.nullable || g.alt_nullable, g.size + 1))
				goto fail;
			fmt_buf_puts(b, ")");
			p++;
			continue;
		}
		if (c == '|') {
			f->nullable = f->nullable || f->alt_nullable;
			f->alt_nullable = true;
			f->has_last = false;
			fmt_buf_puts(b, "|");
			p++;
			continue;
		}
		if (c == '*' || c == '+' || c == '?') {
			if (!ere_repeat(f, c == '+' ? 1 : 0, c == '?' ? 1 : -1))
				goto fail;
			const char q[2] = {c, '\0'};
			fmt_buf_puts(b, q);
			p++;
			if (flags & POSIX_INPUT)
				continue; /* a '?' or '+' that follows is another quantifier */
			if (*p == '?')
				p++; /* lazy: the same whole-string matches */
			else if (*p == '+')
				goto fail; /* possessive */
			continue;
		}
		if (c == '{') {
			/* a quantifier {m}, {m,}, {,n}, {m,n}; else a literal brace, as in Python */
			const char *q = p + 1;
			const char *m0 = q;
			while (*q >= '0' && *q <= '9')
				q++;
			const bool has_m = q > m0;
			bool ok = false;
			if (*q == '}') {
				ok = has_m;
			} else if (*q == ',') {
				q++;
				while (*q >= '0' && *q <= '9')
					q++;
				ok = *q == '}';
			}
			if (!ok) {
				if (!ere_item(f, false, 1))
					goto fail;
				fmt_buf_puts(b, "[{]");
				p++;
				continue;
			}
			const char *comma = memchr(p + 1, ',', (size_t)(q - p - 1));
			const uint64_t lo = ere_count(p + 1, comma ? comma : q);
			const int64_t hi = !comma ? (int64_t)lo : comma + 1 == q ? -1 : (int64_t)ere_count(comma + 1, q);
			if (!ere_repeat(f, lo, hi))
				goto fail;
			fmt_buf_puts(b, "{");
			if (!has_m)
				fmt_buf_puts(b, "0");
			fmt_buf_put(b, p + 1, (size_t)(q - p));
			p = q + 1;
			if (flags & POSIX_INPUT)
				continue;
			if (*p == '?')
				p++;
			else if (*p == '+')
				goto fail;
			continue;
		}
		if (c == '}') {
			if (!ere_item(f, false, 1))
				goto fail;
			fmt_buf_puts(b, "[}]");
			p++;
			continue;
		}
		/* '^' and '$' match the empty string; '.' any character but a newline; any other character itself */
		if (!ere_item(f, c == '^' || c == '$', 1))
			goto fail;
		if (c == '.')
			fmt_buf_puts(b, "[^\n]");
		else if (c == '$')
			fmt_buf_puts(b, end_anchor(flags));
		else
			fmt_buf_put(b, p, 1);
		p++;
	}
	*size = st[0].size;
	*beyond = false;
	return depth == 0; /* an unclosed group: Python refuses it too */
fail:
	*beyond = false;
	for (int i = 0; i <= depth; i++)
		*beyond = *beyond || st[i].beyond;
	return false;
}

pyre_status pyre_to_ere(const char *py, fmt_buf *b, unsigned flags, uint64_t *size)
{
	uint64_t n = 0;
	bool beyond;
	const bool ok = translate(py, b, flags, &n, &beyond);
	if (size)
		*size = n;
	return b->oom ? PYRE_NOMEM : ok ? PYRE_OK : PYRE_REFUSED;
}

pyre_status pyre_compile(regex_t *re, const char *before, const char *py, const char *after, unsigned flags,
			 uint64_t *size)
{
	fmt_buf b = {0};
	fmt_buf_puts(&b, before);
	pyre_status st = pyre_to_ere(py, &b, flags, size);
	fmt_buf_puts(&b, after);
	if (b.oom)
		st = PYRE_NOMEM;
	if (st == PYRE_OK) {
		const int rc = regcomp(re, b.p, REG_EXTENDED | REG_NOSUB);
		st = rc == 0 ? PYRE_OK : rc == REG_ESPACE ? PYRE_NOMEM : PYRE_REFUSED;
	}
	free(b.p);
	return st;
}


pyre_status pyre_check_ere(const char *ere)
{
	fmt_buf scratch = {0};
	uint64_t size;
	bool beyond;
	const bool ok = translate(ere, &scratch, POSIX_INPUT, &size, &beyond);
	const bool oom = scratch.oom;
	free(scratch.p);
	return oom ? PYRE_NOMEM : ok || !beyond ? PYRE_OK : PYRE_REFUSED; /* a syntax error: regcomp's to report */
}
