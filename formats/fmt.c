/* fmt.c: see fmt.h. */
#include "fmt.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
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

size_t fmt_char(const char *s, size_t len, bool *safe)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char c = u[0];
	*safe = false;
	if (c < 0x80) {
		*safe = c >= 0x20 && c != 0x7f;
		return 1;
	}
	size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (n == 0 || n > len)
		return 1;
	uint32_t cp = c & (0x7fu >> n);
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 1;
		cp = cp << 6 | (u[i] & 0x3fu);
	}
	/* overlong forms, surrogates and code points past U+10FFFF are not UTF-8 */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 1;
	/* C1 controls steer terminals as much as C0 ones; line and paragraph separators break a line; the
	 * bidirectional marks, embeddings, overrides and isolates reorder what follows on the line */
	*safe = !(cp <= 0x9f || cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
		  (cp >= 0x2066 && cp <= 0x2069));
	return n;
}

const char *fmt_quote_n(const char *s, size_t len, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	/* its whole length shown, to cut only what does not fit */
	size_t whole = 0;
	for (size_t i = 0; i < len;) {
		bool safe;
		size_t k = fmt_char(s + i, len - i, &safe);
		whole += safe ? k : 1;
		i += k;
	}
	size_t n = 0, room = whole < size ? size - 1 : size > 4 ? size - 4 : 0;
	for (size_t i = 0; i < len;) {
		bool safe;
		size_t k = fmt_char(s + i, len - i, &safe);
		size_t put = safe ? k : 1;
		if (n + put > room)
			break;
		if (safe)
			memcpy(buf + n, s + i, k);
		else
			buf[n] = '?';
		n += put;
		i += k;
	}
	if (whole >= size && size >= 4) { /* cut between characters, and marked */
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

bool fmt_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

bool fmt_starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

char *fmt_join(const char *a, const char *sep, const char *b)
{
	size_t na = strlen(a), ns = strlen(sep), nb = strlen(b);
	char *p = malloc(na + ns + nb + 1);
	if (p) {
		memcpy(p, a, na);
		memcpy(p + na, sep, ns);
		memcpy(p + na + ns, b, nb + 1);
	}
	return p;
}

char *fmt_dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

const char *fmt_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
	size_t n = (size_t)snprintf(buf, size, "[");
	for (int d = 0; d < ndim && n < size; d++)
		n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, d ? ", " : "", shape[d]);
	if (n < size)
		snprintf(buf + n, size - n, "]");
	return buf;
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

/* What a file that is not a regular one is, for messages. */
static const char *file_kind(mode_t mode)
{
	return S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) ? "a character device" : S_ISBLK(mode) ? "a block device" :
	       S_ISSOCK(mode) ? "a socket" : S_ISDIR(mode) ? "a directory" : "not a file";
}

lq_status fmt_open_input_at(int dirfd, const char *path, int flags, int *fd, struct stat *sb, char *err)
{
	struct stat own;
	if (!sb)
		sb = &own;
	*fd = -1;
	errno = 0; /* stays 0 unless the open itself fails (fd_pool.c makes room on EMFILE) */
	int f = openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | flags);
	if (f < 0) {
		int e = errno;
		fmt_fail(err, LQ_ERR_IO, "cannot open '%s': %s", path, strerror(e));
		errno = e; /* for a caller that makes room on EMFILE */
		return LQ_ERR_IO;
	}
	if (fstat(f, sb) != 0) {
		int e = errno;
		close(f);
		return fmt_fail(err, LQ_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
	}
	if (!S_ISREG(sb->st_mode)) {
		close(f);
		return fmt_fail(err, LQ_ERR_IO, "cannot read '%s': not a regular file (%s)", path, file_kind(sb->st_mode));
	}
	int fl = fcntl(f, F_GETFL);
	if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		int e = errno;
		close(f);
		return fmt_fail(err, LQ_ERR_IO, "cannot open '%s': %s", path, strerror(e));
	}
	*fd = f;
	return LQ_OK;
}

lq_status fmt_open_input(const char *path, int *fd, struct stat *sb, char *err)
{
	return fmt_open_input_at(AT_FDCWD, path, 0, fd, sb, err);
}

lq_status fmt_read_small_at(int dirfd, const char *path, int flags, size_t limit, char **out, size_t *len, char *err)
{
	int fd;
	struct stat sb;
	lq_status st = fmt_open_input_at(dirfd, path, flags, &fd, &sb, err);
	if (st != LQ_OK)
		return st;
	/* as large as the file says it is (it may grow while it is read: up to limit + 1, which is refused) */
	size_t cap = (uint64_t)sb.st_size < limit ? (size_t)sb.st_size + 1 : limit + 1, n = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (!buf) {
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
			break;
		}
		if (n == cap) {
			if (cap > limit)
				break;
			cap = cap > limit / 2 ? limit + 1 : 2 * cap;
			char *b = realloc(buf, cap + 1);
			if (!b) {
				free(buf);
				buf = NULL;
				continue;
			}
			buf = b;
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			st = fmt_fail(err, LQ_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (st == LQ_OK && n > limit)
		st = fmt_fail(err, LQ_ERR_CORRUPT, "%s: larger than %zu bytes", path, limit);
	if (st != LQ_OK) {
		free(buf);
		return st;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return LQ_OK;
}

lq_status fmt_read_small(const char *path, size_t limit, char **out, size_t *len, char *err)
{
	return fmt_read_small_at(AT_FDCWD, path, 0, limit, out, len, err);
}

char *fmt_temp_path(const char *path, const char *tag)
{
	/* dirname and basename as POSIX has them: "a/b/" is "b" in "a", "b" is "b" in "." */
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	size_t start = len;
	while (start > 0 && path[start - 1] != '/')
		start--;
	const char *name = path + start;
	size_t nlen = len - start;
	size_t dlen = start;
	while (dlen > 1 && path[dlen - 1] == '/')
		dlen--;
	const char *dir = start == 0 ? "." : path;
	if (start == 0)
		dlen = 1;
	/* "." NAME "." TAG "-XXXXXX" within NAME_MAX bytes */
	size_t room = NAME_MAX - 1 - 1 - strlen(tag) - 7;
	if (nlen > room) {
		nlen = room;
		while (nlen > 0 && ((unsigned char)name[nlen] & 0xc0) == 0x80)
			nlen--; /* not inside a UTF-8 sequence */
	}
	const char *sep = dir[dlen - 1] == '/' ? "" : "/";
	size_t n = dlen + 1 + 1 + nlen + 1 + strlen(tag) + 8;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%.*s%s.%.*s.%s-XXXXXX", (int)dlen, dir, sep, (int)nlen, name, tag);
	return p;
}

/* ------------------------------------------------------------------ reads and writes on a pipe */

static bool (*cancel_check)(const char *step);

void fmt_set_cancel_check(bool (*check)(const char *step))
{
	cancel_check = check;
}

bool fmt_cancelled(const char *step)
{
	return cancel_check && cancel_check(step);
}

/* Waits until fd is ready for `events`; LQ_ERR_CANCELLED as soon as the cancel check says so. A hang-up
 * or an error counts as ready: the read or write that follows reports it. */
static lq_status wait_ready(int fd, short events, const char *name, char *err)
{
	for (;;) {
		if (fmt_cancelled(NULL))
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
 * part-filled pages). Anything else (a file, a socket): all of it. The guess of a kernel without
 * RWF_NOWAIT on pipes (Linux 6.3 and later have it): while the reader takes less than the pipe holds, it
 * writes a page at a time. */
static size_t write_room(int fd, size_t len)
{
	int cap = fcntl(fd, F_GETPIPE_SZ);
	int queued = 0;
	if (cap <= 0 || ioctl(fd, FIONREAD, &queued) != 0)
		return len;
	size_t room = queued == 0 ? (size_t)cap : 4096;
	return len < room ? len : room;
}

/* One write(2) of up to len bytes to pipe fd that never waits: what fits now, or -1 with EAGAIN when
 * nothing does, or -1 with EOPNOTSUPP, EINVAL or ENOSYS where the kernel cannot do it (before Linux
 * 6.3: RWF_NOWAIT on a pipe). */
static ssize_t write_nowait(int fd, const void *src, size_t len)
{
#ifdef RWF_NOWAIT
	struct iovec v = {.iov_base = (void *)(uintptr_t)src, .iov_len = len};
	return pwritev2(fd, &v, 1, -1, RWF_NOWAIT);
#else
	(void)fd, (void)src, (void)len;
	errno = EOPNOTSUPP;
	return -1;
#endif
}

lq_status fmt_fd_write(int fd, const void *src, size_t len, const char *name, char *err)
{
	const char *s = src;
	/* on a pipe, as much as fits at each call (fewer, larger writes: a pipe of 1 MiB takes 1 MiB, not 4 KiB
	 * while its reader has not emptied it); a file or a socket takes all of it */
	bool nowait = fcntl(fd, F_GETPIPE_SZ) > 0;
	while (len > 0) {
		size_t want = len > ((size_t)1 << 30) ? (size_t)1 << 30 : len;
		ssize_t put;
		if (nowait) {
			if (fmt_cancelled(NULL))
				return fmt_fail(err, LQ_ERR_CANCELLED, "interrupted");
			put = write_nowait(fd, s, want);
			if (put < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) {
				nowait = false;
				continue;
			}
			if (put < 0 && errno == EAGAIN) {
				lq_status st = wait_ready(fd, POLLOUT, name, err);
				if (st != LQ_OK)
					return st;
				continue;
			}
		} else {
			lq_status st = wait_ready(fd, POLLOUT, name, err);
			if (st != LQ_OK)
				return st;
			put = write(fd, s, write_room(fd, want));
		}
		if (put < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (put < 0)
			return fmt_fail(err, LQ_ERR_IO, "cannot write '%s': %s", name, strerror(errno));
		s += put;
		len -= (size_t)put;
	}
	return LQ_OK;
}

void fmt_pipe_grow(int fd)
{
	int cap = fcntl(fd, F_GETPIPE_SZ);
	if (cap > 0 && cap < FMT_PIPE_BYTES)
		(void)fcntl(fd, F_SETPIPE_SZ, FMT_PIPE_BYTES);
}

const cJSON *fmt_json_member(const cJSON *obj, const char *key)
{
	const cJSON *found = NULL;
	if (cJSON_IsObject(obj))
		for (const cJSON *c = obj->child; c; c = c->next)
			if (c->string && strcmp(c->string, key) == 0)
				found = c;
	return found;
}
