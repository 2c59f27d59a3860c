/* json_scan.c: see json_scan.h. Grammar of RFC 8259, nothing more. */
#include "json_scan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_scan_init(json_scan *s, const void *buf, size_t len)
{
	s->start = s->p = buf;
	s->end = s->start + len;
	s->depth = 0;
	s->err[0] = '\0';
	s->err_pos = 0;
}

size_t json_pos(const json_scan *s)
{
	return (size_t)(s->p - s->start);
}

bool json_fail(json_scan *s, const char *fmt, ...)
{
	if (s->err[0])
		return false; /* keep the first, innermost message */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	s->err_pos = json_pos(s);
	return false;
}

int json_peek(json_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
	return s->p < s->end ? *s->p : -1;
}

static const char *describe(int c)
{
	static char buf[16];
	if (c < 0)
		return "end of input";
	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, sizeof buf, "'%c'", c);
	else
		snprintf(buf, sizeof buf, "byte 0x%02x", c);
	return buf;
}

bool json_expect(json_scan *s, char c)
{
	int got = json_peek(s);
	if (got != (unsigned char)c)
		return json_fail(s, "expected '%c', found %s", c, describe(got));
	s->p++;
	return true;
}

bool json_accept(json_scan *s, char c)
{
	if (json_peek(s) != (unsigned char)c)
		return false;
	s->p++;
	return true;
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool read_hex4(json_scan *s, unsigned *out)
{
	if (s->end - s->p < 4)
		return json_fail(s, "truncated \\u escape");
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int d = hex_digit(s->p[i]);
		if (d < 0)
			return json_fail(s, "bad \\u escape");
		v = v << 4 | (unsigned)d;
	}
	s->p += 4;
	*out = v;
	return true;
}

static size_t put_utf8(char *dst, unsigned cp)
{
	if (cp < 0x80) {
		dst[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (char)(0xc0 | cp >> 6);
		dst[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		dst[0] = (char)(0xe0 | cp >> 12);
		dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		dst[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	dst[0] = (char)(0xf0 | cp >> 18);
	dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	dst[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

bool json_string(json_scan *s, char **out, size_t *len)
{
	*out = NULL;
	if (!json_expect(s, '"'))
		return false;
	/* the decoded string is never longer than its encoding */
	const unsigned char *q = s->p;
	while (q < s->end && *q != '"') {
		if (*q == '\\' && q + 1 < s->end)
			q++;
		q++;
	}
	if (q >= s->end)
		return json_fail(s, "unterminated string");
	char *buf = malloc((size_t)(q - s->p) + 1);
	if (!buf)
		return json_fail(s, "out of memory");
	size_t n = 0;
	while (*s->p != '"') {
		unsigned char c = *s->p;
		if (c < 0x20) {
			free(buf);
			return json_fail(s, "control character 0x%02x in a string", c);
		}
		if (c != '\\') {
			buf[n++] = (char)c;
			s->p++;
			continue;
		}
		s->p++;
		unsigned cp;
		switch (*s->p++) {
		case '"': buf[n++] = '"'; continue;
		case '\\': buf[n++] = '\\'; continue;
		case '/': buf[n++] = '/'; continue;
		case 'b': buf[n++] = '\b'; continue;
		case 'f': buf[n++] = '\f'; continue;
		case 'n': buf[n++] = '\n'; continue;
		case 'r': buf[n++] = '\r'; continue;
		case 't': buf[n++] = '\t'; continue;
		case 'u':
			if (!read_hex4(s, &cp)) {
				free(buf);
				return false;
			}
			if (cp >= 0xd800 && cp < 0xdc00) {
				unsigned lo;
				if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u') {
					free(buf);
					return json_fail(s, "unpaired surrogate in \\u escape");
				}
				s->p += 2;
				if (!read_hex4(s, &lo)) {
					free(buf);
					return false;
				}
				if (lo < 0xdc00 || lo >= 0xe000) {
					free(buf);
					return json_fail(s, "unpaired surrogate in \\u escape");
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				free(buf);
				return json_fail(s, "unpaired surrogate in \\u escape");
			}
			/* a \u escape is at least 6 bytes and decodes to at most 4 */
			n += put_utf8(buf + n, cp);
			continue;
		default:
			s->p--;
			free(buf);
			return json_fail(s, "bad escape in a string");
		}
	}
	s->p++;
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return true;
}

bool json_u64(json_scan *s, uint64_t *out)
{
	int c = json_peek(s);
	if (c == '-')
		return json_fail(s, "negative number where a size is expected");
	if (c < '0' || c > '9')
		return json_fail(s, "expected a number, found %s", describe(c));
	const unsigned char *q = s->p;
	uint64_t v = 0;
	while (q < s->end && *q >= '0' && *q <= '9') {
		unsigned d = (unsigned)(*q - '0');
		if (v > (UINT64_MAX - d) / 10)
			return json_fail(s, "number does not fit in 64 bits");
		v = v * 10 + d;
		q++;
	}
	if (q - s->p > 1 && *s->p == '0')
		return json_fail(s, "number with a leading zero");
	if (q < s->end && (*q == '.' || *q == 'e' || *q == 'E')) {
		s->p = q;
		return json_fail(s, "fractional number where an integer is expected");
	}
	s->p = q;
	*out = v;
	return true;
}

static bool skip_number(json_scan *s)
{
	const unsigned char *q = s->p;
	if (q < s->end && *q == '-')
		q++;
	if (q >= s->end || *q < '0' || *q > '9')
		return json_fail(s, "bad number");
	if (*q == '0')
		q++;
	else
		while (q < s->end && *q >= '0' && *q <= '9')
			q++;
	if (q < s->end && *q == '.') {
		q++;
		if (q >= s->end || *q < '0' || *q > '9')
			return json_fail(s, "bad number");
		while (q < s->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < s->end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < s->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= s->end || *q < '0' || *q > '9')
			return json_fail(s, "bad number");
		while (q < s->end && *q >= '0' && *q <= '9')
			q++;
	}
	s->p = q;
	return true;
}

static bool skip_literal(json_scan *s, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return json_fail(s, "unexpected %s", describe(*s->p));
	s->p += n;
	return true;
}

bool json_skip_value(json_scan *s)
{
	int c = json_peek(s);
	char *str;
	switch (c) {
	case '{':
	case '[':
		if (++s->depth > JSON_MAX_DEPTH)
			return json_fail(s, "nesting deeper than %d", JSON_MAX_DEPTH);
		s->p++;
		if (!json_accept(s, c == '{' ? '}' : ']')) {
			do {
				if (c == '{') {
					if (!json_string(s, &str, NULL))
						return false;
					free(str);
					if (!json_expect(s, ':'))
						return false;
				}
				if (!json_skip_value(s))
					return false;
			} while (json_accept(s, ','));
			if (!json_expect(s, c == '{' ? '}' : ']'))
				return false;
		}
		s->depth--;
		return true;
	case '"':
		if (!json_string(s, &str, NULL))
			return false;
		free(str);
		return true;
	case 't':
		return skip_literal(s, "true");
	case 'f':
		return skip_literal(s, "false");
	case 'n':
		return skip_literal(s, "null");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return skip_number(s);
		return json_fail(s, "expected a value, found %s", describe(c));
	}
}

bool json_end(json_scan *s)
{
	int c = json_peek(s);
	if (c >= 0)
		return json_fail(s, "unexpected %s after the end of the JSON value", describe(c));
	return true;
}

bool json_utf8_valid(const void *buf, size_t len, size_t *bad_pos)
{
	const unsigned char *b = buf;
	size_t i = 0;
	while (i < len) {
		unsigned char c = b[i];
		size_t need;
		unsigned cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			break;
		}
		if (len - i <= need)
			break;
		size_t k;
		for (k = 1; k <= need && (b[i + k] & 0xc0) == 0x80; k++)
			cp = cp << 6 | (b[i + k] & 0x3f);
		if (k <= need || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
			break;
		i += need + 1;
	}
	if (i < len) {
		if (bad_pos)
			*bad_pos = i;
		return false;
	}
	return true;
}
