/*
 * fmt.h: what the format readers and writers share: message buffers, checked arithmetic on values read
 * from untrusted files, and quoting of names for messages.
 */
#ifndef FORMATS_FMT_H
#define FORMATS_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libquant.h"

#if defined(__GNUC__)
#define FMT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FMT_PRINTF(f, a)
#endif

#define FMT_ERRBUF 1024

/* Formats into err (FMT_ERRBUF bytes) and returns status, for `return fmt_fail(...)`. err may be one of
 * the arguments (a message prefixed with its file, say). */
lq_status fmt_fail(char *err, lq_status status, const char *fmt, ...) FMT_PRINTF(3, 4);

/* Checked arithmetic: false on overflow, *out untouched. */
static inline bool fmt_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

static inline bool fmt_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

/* s with control characters (and bytes that are not printable ASCII or UTF-8 continuation) shown as '?',
 * cut to fit, into buf. Returns buf. For names in messages: a hostile name must not move the cursor or
 * ring the terminal. */
const char *fmt_quote(const char *s, char *buf, size_t size);

/* The same for a string with an explicit length (may contain NUL). */
const char *fmt_quote_n(const char *s, size_t len, char *buf, size_t size);

/* A growing string. After a failed allocation every call is a no-op and oom stays set: check once at
 * the end. p is NUL-terminated (when not NULL) and owned by the caller. */
typedef struct fmt_buf {
	char *p;
	size_t len, cap;
	bool oom;
} fmt_buf;

void fmt_buf_put(fmt_buf *b, const char *s, size_t n);
void fmt_buf_puts(fmt_buf *b, const char *s);
void fmt_buf_printf(fmt_buf *b, const char *fmt, ...) FMT_PRINTF(2, 3);

/* Reads a whole file of at most `limit` bytes (a config, an index) into a malloc'd, NUL-terminated buffer.
 * LQ_ERR_IO (cannot open or read), LQ_ERR_CORRUPT (larger), LQ_ERR_NOMEM, with a message naming the file. */
lq_status fmt_read_small(const char *path, size_t limit, char **out, size_t *len, char *err);

/* Reads and writes on a descriptor that may be a pipe: standard input or output of a stream. They wait
 * for the descriptor in slices of FMT_WAIT_MS and fail with LQ_ERR_CANCELLED, "interrupted", once the
 * cancel check says so. A pipe's other end can stall for ever (curl on a dead link, ssh to a lost host),
 * and the signal that should end the wait lands on whichever thread the kernel picks, usually not the
 * one blocked in read(2) or write(2), so EINTR alone would never come. The tools set the check. */
#define FMT_WAIT_MS 100
void fmt_set_cancel_check(bool (*cancelled)(void));

/* Up to len bytes, fewer only at the end of the input; *got says how many. Messages name `name`. */
lq_status fmt_fd_read(int fd, void *dst, size_t len, size_t *got, const char *name, char *err);

/* All len bytes, or an error. */
lq_status fmt_fd_write(int fd, const void *src, size_t len, const char *name, char *err);

#endif /* FORMATS_FMT_H */
