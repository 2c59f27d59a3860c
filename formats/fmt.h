/*
 * fmt.h: what the format readers and writers share: message buffers, checked arithmetic on values read
 * from untrusted files, quoting of names for messages, and the small string helpers of formats/ and tools/.
 */
#ifndef FORMATS_FMT_H
#define FORMATS_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

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

/* The character that begins s (len > 0 bytes): returns its length in bytes, and sets *safe when a terminal
 * shows it as text. Not safe: the C0 controls and DEL, the C1 controls (U+0080..U+009F), the line and
 * paragraph separators (U+2028, U+2029), the bidirectional marks, embeddings, overrides and isolates
 * (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), and a byte that does not begin a valid UTF-8
 * sequence (length 1). */
size_t fmt_char(const char *s, size_t len, bool *safe);

/* s with every character that is not safe (fmt_char) shown as one '?', cut between characters to fit
 * (and marked "..."), into buf. Returns buf. For names in messages: a hostile name must not move the
 * cursor, ring the terminal or reorder the line. */
const char *fmt_quote(const char *s, char *buf, size_t size);

/* The same for a string with an explicit length (may contain NUL). */
const char *fmt_quote_n(const char *s, size_t len, char *buf, size_t size);

/* Small string helpers, one copy for formats/ and tools/. */

/* Whether s ends with suffix (s may be suffix itself). */
bool fmt_ends_with(const char *s, const char *suffix);

/* Whether s begins with prefix. */
bool fmt_starts_with(const char *s, const char *prefix);

/* a, sep and b one after the other in a malloc'd string: fmt_join(dir, "/", name), fmt_join(module, ".",
 * "weight"). NULL when out of memory. */
char *fmt_join(const char *a, const char *sep, const char *b);

/* The n bytes at s (a NUL among them copied as it is) and a NUL, malloc'd. NULL when out of memory. */
char *fmt_dup_n(const char *s, size_t n);

/* The shape of a tensor as messages write it, "[4096, 11008]" ("[]": a scalar), into buf (size > 0 bytes);
 * cut short, without its "]", when buf is too small. Returns buf. */
const char *fmt_shape(char *buf, size_t size, int ndim, const int64_t *shape);

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

/* Opens an input file for reading, the one way the tools open what they read: a regular file only. A
 * FIFO would hold open(2) until a writer came (for ever) and a device such as /dev/zero never ends, so
 * both are refused, and the open itself does not wait (O_NONBLOCK, cleared once fstat has said what it
 * is). path is relative to dirfd (AT_FDCWD: the working directory); flags adds O_NOFOLLOW, say. *fd is
 * blocking, close-on-exec; *sb (may be NULL) its fstat. LQ_ERR_IO: "cannot open 'path': why", or "cannot
 * read 'path': not a regular file (a FIFO)"; errno is open(2)'s when the open itself failed. Standard input
 * ("-") is read by design and not opened here. */
lq_status fmt_open_input_at(int dirfd, const char *path, int flags, int *fd, struct stat *sb, char *err);
lq_status fmt_open_input(const char *path, int *fd, struct stat *sb, char *err);

/* Reads a whole file of at most `limit` bytes (a config, an index) into a malloc'd, NUL-terminated buffer.
 * LQ_ERR_IO (cannot open or read, not a regular file), LQ_ERR_CORRUPT (larger), LQ_ERR_NOMEM, with a
 * message naming the file. */
lq_status fmt_read_small(const char *path, size_t limit, char **out, size_t *len, char *err);
/* The same for path relative to dirfd, opened with `flags` added (fmt_open_input_at). */
lq_status fmt_read_small_at(int dirfd, const char *path, int flags, size_t limit, char **out, size_t *len,
			    char *err);

/* A name for a temporary file or directory beside `path`, for mkstemp/mkdtemp: "DIR/.NAME.TAG-XXXXXX", NAME
 * the last component of path cut (at a character boundary) so that the whole fits NAME_MAX whatever the
 * length of path's own name. malloc'd; NULL when out of memory. */
char *fmt_temp_path(const char *path, const char *tag);

/* Reads and writes on a descriptor that may be a pipe: standard input or output of a stream. They wait
 * for the descriptor in slices of FMT_WAIT_MS and fail with LQ_ERR_CANCELLED, "interrupted", once the
 * cancel check says so. A pipe's other end can stall for ever (curl on a dead link, ssh to a lost host),
 * and the signal that should end the wait lands on whichever thread the kernel picks, usually not the
 * one blocked in read(2) or write(2), so EINTR alone would never come. The tools set the check. */
#define FMT_WAIT_MS 100
void fmt_set_cancel_check(bool (*cancelled)(const char *step));

/* Whether the run is to end (the tools' check: a signal came). The steps that finish an output call it
 * with their name ("manifest", "rename", ...) before they begin and, if they take long, with NULL as they
 * go, so that a late signal still ends the run before the output is renamed into place. */
bool fmt_cancelled(const char *step);

/* Up to len bytes, fewer only at the end of the input; *got says how many. Messages name `name`. */
lq_status fmt_fd_read(int fd, void *dst, size_t len, size_t *got, const char *name, char *err);

/* All len bytes, or an error. */
lq_status fmt_fd_write(int fd, const void *src, size_t len, const char *name, char *err);

/* Makes pipe fd hold FMT_PIPE_BYTES when it holds less (F_SETPIPE_SZ), so that a stream moves in fewer,
 * larger reads and writes with fewer wake-ups of the other end. Best effort: fd not a pipe, the limit of
 * /proc/sys/fs/pipe-max-size (1 MiB by default) or the user's pipe quota: nothing changes, no error. A pipe
 * is never made smaller. */
#define FMT_PIPE_BYTES (1 << 20)
void fmt_pipe_grow(int fd);

/* The member `key` of a JSON object as Python's json.loads, and so transformers and PEFT, see it: the last
 * of duplicate keys (cJSON's own lookup takes the first). NULL when obj is not an object or has no such key. */
struct cJSON;
const struct cJSON *fmt_json_member(const struct cJSON *obj, const char *key);

#endif /* FORMATS_FMT_H */
