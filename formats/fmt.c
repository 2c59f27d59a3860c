/* fmt.c: see fmt.h. */
#include "fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

lq_status fmt_fail(char *err, lq_status status, const char *fmt, ...)
{
	/* formatted aside first: err itself may be one of the arguments (a message prefixed) */
	char msg[FMT_ERRBUF];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	memcpy(err, msg, strlen(msg) + 1);
	return status;
}

const char *fmt_quote_n(const char *s, size_t len, char *buf, size_t size)
{
	size_t n = 0;
	if (size == 0)
		return buf;
	for (size_t i = 0; i < len && n + 4 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		/* C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F) steer terminals as much as C0 ones */
		if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) {
			buf[n++] = '?';
			i++;
			continue;
		}
		buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n + 4 >= size && len > n) {
		/* cut: back off to a UTF-8 boundary and mark it */
		while (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0x80)
			n--;
		if (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0xc0)
			n--;
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

const char *fmt_quote(const char *s, char *buf, size_t size)
{
	return fmt_quote_n(s, strlen(s), buf, size);
}

void fmt_buf_put(fmt_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void fmt_buf_puts(fmt_buf *b, const char *s)
{
	fmt_buf_put(b, s, strlen(s));
}

void fmt_buf_printf(fmt_buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		fmt_buf_put(b, tmp, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	fmt_buf_put(b, big, (size_t)n);
	free(big);
}

lq_status fmt_read_small(const char *path, size_t limit, char **out, size_t *len, char *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return fmt_fail(err, LQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
	char *buf = malloc(limit + 1);
	if (!buf) {
		fclose(f);
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	}
	size_t n = fread(buf, 1, limit + 1, f);
	bool failed = ferror(f);
	fclose(f);
	if (failed) {
		free(buf);
		return fmt_fail(err, LQ_ERR_IO, "cannot read '%s'", path);
	}
	if (n > limit) {
		free(buf);
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: larger than %zu bytes", path, limit);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return LQ_OK;
}

/* ------------------------------------------------------------------ reads and writes on a pipe */

static bool (*cancel_check)(void);

void fmt_set_cancel_check(bool (*check)(void))
{
	cancel_check = check;
}

static bool cancelled(void)
{
	return cancel_check && cancel_check();
}

/* Waits until fd is ready for `events`; LQ_ERR_CANCELLED as soon as the cancel check says so. A hang-up
 * or an error counts as ready: the read or write that follows reports it. */
static lq_status wait_ready(int fd, short events, const char *name, char *err)
{
	for (;;) {
		if (cancelled())
			return fmt_fail(err, LQ_ERR_CANCELLED, "interrupted");
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, FMT_WAIT_MS);
		if (r > 0)
			return LQ_OK;
		if (r < 0 && errno != EINTR)
			return fmt_fail(err, LQ_ERR_IO, "cannot wait for '%s': %s", name, strerror(errno));
	}
}

lq_status fmt_fd_read(int fd, void *dst, size_t len, size_t *got, const char *name, char *err)
{
	char *d = dst;
	*got = 0;
	while (*got < len) {
		/* after POLLIN a read returns what is there without waiting for the rest */
		lq_status st = wait_ready(fd, POLLIN, name, err);
		if (st != LQ_OK)
			return st;
		size_t want = len - *got > ((size_t)1 << 30) ? (size_t)1 << 30 : len - *got;
		ssize_t k = read(fd, d + *got, want);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return fmt_fail(err, LQ_ERR_IO, "cannot read '%s': %s", name, strerror(errno));
		if (k == 0)
			break;
		*got += (size_t)k;
	}
	return LQ_OK;
}

/* How much one write(2) to fd may carry without waiting, fd being ready: on a pipe, its whole capacity
 * when it is empty, else one page (POLLOUT promises a free page, not more: the bytes in a pipe may sit in
 * part-filled pages). Anything else (a file, a socket): all of it. */
static size_t write_room(int fd, size_t len)
{
	int cap = fcntl(fd, F_GETPIPE_SZ);
	int queued = 0;
	if (cap <= 0 || ioctl(fd, FIONREAD, &queued) != 0)
		return len;
	size_t room = queued == 0 ? (size_t)cap : 4096;
	return len < room ? len : room;
}

lq_status fmt_fd_write(int fd, const void *src, size_t len, const char *name, char *err)
{
	const char *s = src;
	while (len > 0) {
		lq_status st = wait_ready(fd, POLLOUT, name, err);
		if (st != LQ_OK)
			return st;
		size_t want = write_room(fd, len > ((size_t)1 << 30) ? (size_t)1 << 30 : len);
		ssize_t put = write(fd, s, want);
		if (put < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (put < 0)
			return fmt_fail(err, LQ_ERR_IO, "cannot write '%s': %s", name, strerror(errno));
		s += put;
		len -= (size_t)put;
	}
	return LQ_OK;
}
