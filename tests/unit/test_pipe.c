/*
 * test_pipe.c: a stream's pipes (formats/fmt.c fmt_fd_write, fmt_pipe_grow). A pipe is 64 KiB unless
 * someone makes it larger; the stream reader and writer make theirs FMT_PIPE_BYTES, and a write to a pipe
 * carries as much as fits, not one page at a time while the reader has not emptied it. Write(2) calls are
 * counted from /proc/thread-self/io (syscw); where the kernel cannot say, or cannot write to a pipe without
 * waiting (RWF_NOWAIT, Linux 6.3), the test says so and checks nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fmt.h"
#include "safetensors.h"
#include "test.h"

/* Write(2) calls of this thread so far, or -1 where the kernel does not count them. */
static long long write_calls(void)
{
	FILE *f = fopen("/proc/thread-self/io", "r");
	char line[128];
	long long n = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "syscw: %lld", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* Whether a pipe can be made FMT_PIPE_BYTES here (pipe-max-size, the user's quota). */
static bool pipes_can_grow(void)
{
	int p[2];
	if (pipe(p) != 0)
		return false;
	bool ok = fcntl(p[1], F_SETPIPE_SZ, FMT_PIPE_BYTES) >= FMT_PIPE_BYTES;
	close(p[0]);
	close(p[1]);
	return ok;
}

/* Whether pwritev2(RWF_NOWAIT) writes to a pipe on this kernel. */
static bool pipe_nowait_works(void)
{
	int p[2];
	if (pipe(p) != 0)
		return false;
	char c = 'x';
	struct iovec v = {.iov_base = &c, .iov_len = 1};
	bool ok = pwritev2(p[1], &v, 1, -1, RWF_NOWAIT) == 1;
	close(p[0]);
	close(p[1]);
	return ok;
}

/* Reads exactly len bytes of fd. */
static bool read_all(int fd, unsigned char *dst, size_t len)
{
	while (len) {
		ssize_t k = read(fd, dst, len);
		if (k <= 0)
			return false;
		dst += k;
		len -= (size_t)k;
	}
	return true;
}

/* The pipes of `nf4quant - -o -` start at 64 KiB; the stream's reader and writer make them 1 MiB. */
TEST(stream_pipes_grow)
{
	if (!pipes_can_grow()) {
		test_note("stream_pipes_grow: SKIP: pipes cannot be made %d bytes here", FMT_PIPE_BYTES);
		return;
	}
	int a[2], b[2];
	if (!CHECK(pipe(a) == 0 && pipe(b) == 0))
		return;
	CHECK(fcntl(a[1], F_GETPIPE_SZ) < FMT_PIPE_BYTES);
	st_writer *w = st_writer_create();
	const int64_t count = 4;
	const unsigned char data[4] = {1, 2, 3, 4};
	CHECK(w && st_writer_add(w, "t", ST_U8, 1, &count) == 0);
	CHECK_INT(st_writer_open_stream(w, a[1], "the pipe"), LQ_OK);
	CHECK_INT(fcntl(a[1], F_GETPIPE_SZ), FMT_PIPE_BYTES);
	CHECK_INT(st_writer_write(w, 0, 0, data, sizeof data), LQ_OK);
	CHECK_INT(st_writer_finish(w), LQ_OK);
	const size_t size = (size_t)st_writer_file_size(w);
	st_writer_free(w);
	close(a[1]);
	/* the same bytes into a pipe of the default size, read back as a stream */
	unsigned char *bytes = malloc(size);
	CHECK(bytes && read_all(a[0], bytes, size));
	CHECK(fcntl(b[0], F_GETPIPE_SZ) < FMT_PIPE_BYTES);
	CHECK(write(b[1], bytes, size) == (ssize_t)size);
	close(b[1]);
	st_file *f = st_file_create();
	CHECK_INT(st_file_open_stream(f, b[0], "the pipe"), LQ_OK);
	CHECK_INT(fcntl(b[0], F_GETPIPE_SZ), FMT_PIPE_BYTES);
	const st_tensor *t = st_file_find(f, "t");
	unsigned char back[4] = {0};
	CHECK(t && st_file_read(f, t, 0, back, sizeof back) == LQ_OK && memcmp(back, data, sizeof data) == 0);
	st_file_free(f);
	free(bytes);
	close(a[0]);
	close(b[0]);
}

/* A pipe that holds a page already (its reader has not emptied it) takes the next 48 KiB in one write,
 * not in twelve of a page each. */
TEST(fd_write_pipe_fills_in_one_write)
{
	if (write_calls() < 0 || !pipe_nowait_works()) {
		test_note("fd_write_pipe_fills_in_one_write: SKIP: no /proc/thread-self/io or no RWF_NOWAIT on pipes");
		return;
	}
	int p[2];
	if (!CHECK(pipe(p) == 0))
		return;
	const size_t first = 4096, len = 48 << 10;
	unsigned char *src = malloc(first + len), *back = malloc(first + len);
	if (!CHECK(src && back))
		return;
	for (size_t i = 0; i < first + len; i++)
		src[i] = (unsigned char)(i * 7 + 3);
	CHECK(write(p[1], src, first) == (ssize_t)first);
	char err[FMT_ERRBUF] = "";
	const long long before = write_calls();
	CHECK_INT(fmt_fd_write(p[1], src + first, len, "the pipe", err), LQ_OK);
	const long long calls = write_calls() - before;
	test_context("%lld write calls for %zu bytes", calls, len);
	CHECK(calls <= 2);
	test_context("%s", "");
	CHECK(read_all(p[0], back, first + len) && memcmp(back, src, first + len) == 0);
	free(src);
	free(back);
	close(p[0]);
	close(p[1]);
}
