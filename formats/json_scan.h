/*
 * json_scan.h: a strict, allocation-light JSON reader over a byte buffer, for the inputs whose exact
 * text matters: the safetensors header (integers up to 2^64 - 1 that must not pass through a double,
 * duplicate keys that must be seen, a nesting limit) and config.json (edited in place, so every byte we do
 * not change stays as it was). cJSON serves where a tree of values is enough.
 *
 * A scanner is a cursor; each call consumes one construct and returns false with a message and the byte
 * position on the first error. The caller drives the grammar (recursive descent).
 */
#ifndef FORMATS_JSON_SCAN_H
#define FORMATS_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 128

typedef struct json_scan {
	const unsigned char *start, *p, *end;
	int depth;
	char err[256];
	size_t err_pos; /* byte offset of the error from start */
} json_scan;

void json_scan_init(json_scan *s, const void *buf, size_t len);

/* Byte offset of the cursor. */
size_t json_pos(const json_scan *s);

/* Skips whitespace (space, tab, CR, LF) and returns the next byte, or -1 at the end. */
int json_peek(json_scan *s);

/* Consumes byte c after whitespace; false (with a message) if the next byte is not c. */
bool json_expect(json_scan *s, char c);

/* Consumes c if it is next (after whitespace) and returns true; otherwise consumes nothing. */
bool json_accept(json_scan *s, char c);

/* Parses a string and returns it decoded (escapes resolved, UTF-8), NUL-terminated, in a malloc'd buffer
 * (*len excludes the terminator; the string may itself contain NUL from \u0000). */
bool json_string(json_scan *s, char **out, size_t *len);

/* Parses a JSON number that must be a non-negative integer without sign, fraction or exponent, that fits
 * in 64 bits. */
bool json_u64(json_scan *s, uint64_t *out);

/* Skips one value of any type, nesting at most JSON_MAX_DEPTH deep. */
bool json_skip_value(json_scan *s);

/* After the top-level value: only whitespace may follow. */
bool json_end(json_scan *s);

/* Sets the error (printf-style) at the cursor and returns false. */
bool json_fail(json_scan *s, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* True when buf[0..len) is well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF); else
 * *bad_pos is the offset of the first bad byte. */
bool json_utf8_valid(const void *buf, size_t len, size_t *bad_pos);

#endif /* FORMATS_JSON_SCAN_H */
