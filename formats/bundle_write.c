/*
 * bundle_write.c: writing model bundles (bundle.h). The writer drives libarchive's pax writer into our own
 * libzstd stream, so that every parameter that decides the bytes is set here rather than by a libarchive
 * default.
 */
#include "bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "bundle_impl.h"

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* Where libarchive's tar stream goes: straight to the file, or through our zstd stream first. */
typedef struct sink {
	int fd;
	const char *display;
	ZSTD_CCtx *cctx; /* NULL: a .tar */
	void *zbuf;
	size_t zcap;
	char *err;
	lq_status status; /* the first failure inside a callback: its message is in err */
} sink;

/* The first failure is the one reported: libarchive's own message after a failed callback says less. */
static lq_status sink_fail(sink *s, lq_status st, const char *why)
{
	if (s->status == LQ_OK) {
		s->status = st;
		fmt_fail(s->err, st, "cannot write '%s': %s", s->display, why);
	}
	return st;
}

static lq_status sink_zfail(sink *s, size_t code)
{
	char why[160];
	snprintf(why, sizeof why, "zstd: %.120s", ZSTD_getErrorName(code));
	return sink_fail(s, ZSTD_getErrorCode(code) == ZSTD_error_memory_allocation ? LQ_ERR_NOMEM : LQ_ERR_IO, why);
}

static lq_status sink_put(sink *s, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t k = write(s->fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return sink_fail(s, LQ_ERR_IO, strerror(k < 0 ? errno : ENOSPC));
		p += k;
		len -= (size_t)k;
	}
	return LQ_OK;
}

static la_ssize_t sink_write(struct archive *a, void *arg, const void *buf, size_t len)
{
	(void)a;
	sink *s = arg;
	if (s->status != LQ_OK)
		return -1;
	if (!s->cctx)
		return sink_put(s, buf, len) == LQ_OK ? (la_ssize_t)len : -1;
	ZSTD_inBuffer in = {buf, len, 0};
	while (in.pos < in.size) {
		ZSTD_outBuffer out = {s->zbuf, s->zcap, 0};
		size_t r = ZSTD_compressStream2(s->cctx, &out, &in, ZSTD_e_continue);
		if (ZSTD_isError(r)) {
			sink_zfail(s, r);
			return -1;
		}
		if (sink_put(s, s->zbuf, out.pos) != LQ_OK)
			return -1;
	}
	return (la_ssize_t)len;
}

/* Ends the zstd frame (with its checksum). */
static lq_status sink_end(sink *s)
{
	if (!s->cctx)
		return LQ_OK;
	size_t left;
	do {
		ZSTD_inBuffer in = {NULL, 0, 0};
		ZSTD_outBuffer out = {s->zbuf, s->zcap, 0};
		left = ZSTD_compressStream2(s->cctx, &out, &in, ZSTD_e_end);
		if (ZSTD_isError(left))
			return sink_zfail(s, left);
		if (sink_put(s, s->zbuf, out.pos) != LQ_OK)
			return s->status;
	} while (left != 0);
	return LQ_OK;
}

/* Every parameter that decides the bytes, set explicitly. Workers are at least one: zstd's multithreaded
 * format cuts the input into the same jobs whatever their number, the single-threaded one does not. */
static lq_status sink_zstd(sink *s, int level, int threads)
{
	s->cctx = ZSTD_createCCtx();
	s->zcap = ZSTD_CStreamOutSize();
	s->zbuf = malloc(s->zcap);
	if (!s->cctx || !s->zbuf)
		return sink_fail(s, LQ_ERR_NOMEM, "out of memory");
	size_t r = ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_nbWorkers, threads > 1 ? threads : 1);
	return ZSTD_isError(r) ? sink_zfail(s, r) : LQ_OK;
}

/* libarchive failed: our callback's message when it was ours, else libarchive's. */
static lq_status archive_write_failed(sink *s, struct archive *a)
{
	if (s->status != LQ_OK)
		return s->status;
	const char *why = archive_error_string(a);
	return sink_fail(s, archive_errno(a) == ENOMEM ? LQ_ERR_NOMEM : LQ_ERR_IO, why ? why : "libarchive failed");
}

/* One file: a header with the fixed metadata, then its bytes in IO_CHUNK pieces. */
static lq_status write_entry(sink *s, struct archive *a, const char *dir, const char *name, char *buf,
			     uint64_t *held)
{
	char *path = fmt_join(dir, "/", name);
	if (!path)
		return sink_fail(s, LQ_ERR_NOMEM, "out of memory");
	lq_status st = LQ_OK;
	struct archive_entry *e = NULL;
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		st = fmt_fail(s->err, LQ_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(sb.st_mode)) {
		st = fmt_fail(s->err, LQ_ERR_ARG, "cannot archive '%s': not a regular file", path);
		goto done;
	}
	const uint64_t size = (uint64_t)sb.st_size;
	/* what the reader would refuse to hold in memory, refused now rather than after the work is done */
	if (!bundle_is_safetensors(name)) {
		if (size > BUNDLE_SMALL_LIMIT || size > BUNDLE_SMALL_TOTAL - *held) {
			st = fmt_fail(s->err, LQ_ERR_ARG, "cannot archive '%s': a bundle holds files that are not "
				      ".safetensors in memory, at most %" PRIu64 " bytes each and %" PRIu64 " in all",
				      path, BUNDLE_SMALL_LIMIT, BUNDLE_SMALL_TOTAL);
			goto done;
		}
		*held += size;
	}
	e = archive_entry_new();
	if (!e) {
		st = sink_fail(s, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	/* no uname/gname, atime, ctime or birthtime: unset, they are not written */
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		st = archive_write_failed(s, a);
		goto done;
	}
	for (uint64_t at = 0; at < size;) {
		if (fmt_cancelled(NULL)) {
			st = fmt_fail(s->err, LQ_ERR_CANCELLED, "interrupted");
			goto done;
		}
		size_t want = size - at < IO_CHUNK ? (size_t)(size - at) : IO_CHUNK;
		ssize_t k = read(fd, buf, want);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			st = fmt_fail(s->err, LQ_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
			goto done;
		}
		if (k == 0) {
			/* libarchive would pad the entry with zeros: the archive would not hold the file */
			st = fmt_fail(s->err, LQ_ERR_IO, "cannot read '%s': it ends at byte %" PRIu64 " of %" PRIu64
				      " (changed while it was archived)", path, at, size);
			goto done;
		}
		if (archive_write_data(a, buf, (size_t)k) != k) {
			st = archive_write_failed(s, a);
			goto done;
		}
		at += (uint64_t)k;
	}
	if (archive_write_finish_entry(a) != ARCHIVE_OK)
		st = archive_write_failed(s, a);
done:
	archive_entry_free(e);
	if (fd >= 0)
		close(fd);
	free(path);
	return st;
}

static int by_strcmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Whether a relative name's components are all real names: none empty, "." or "..". */
static bool components_ok(const char *name)
{
	for (const char *p = name;;) {
		size_t len = strcspn(p, "/");
		if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[len])
			return true;
		p += len + 1;
	}
}

/* The names as given: relative paths of files, once each, none a folder of another, what the reader
 * takes back; sorted into `sorted`. */
static lq_status check_names(char *const *names, size_t n, const char **sorted, const char *disp, char *err)
{
	char q[256];
	if (n == 0)
		return fmt_fail(err, LQ_ERR_ARG, "cannot write '%s': no files to archive", disp);
	if (n > BUNDLE_MAX_ENTRIES)
		return fmt_fail(err, LQ_ERR_ARG, "cannot write '%s': %zu files, more than the %d a bundle may hold", disp,
				n, BUNDLE_MAX_ENTRIES);
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		size_t len = strlen(name);
		const char *why = bundle_bad_chars(name, len);
		if (len == 0)
			why = "has an empty name";
		else if (len > BUNDLE_MAX_NAME)
			why = "has a name longer than " STR(BUNDLE_MAX_NAME) " bytes";
		else if (name[0] == '/' || !components_ok(name))
			why = "is not a relative file name (empty, '.' or '..' components, or a leading '/')";
		else if (!is_ascii(name))
			/* libarchive converts a name from the locale to UTF-8 for its pax header, and in the C
			 * locale the tools run in it cannot (3.6 even crashes given the UTF-8 form): refused
			 * here, with a reason, rather than half-way through the archive */
			why = "has a name that is not ASCII, which a bundle cannot hold";
		if (why)
			return fmt_fail(err, LQ_ERR_ARG, "cannot write '%s': '%s' %s", disp, fmt_quote(name, q, sizeof q), why);
		sorted[i] = name;
	}
	qsort(sorted, n, sizeof *sorted, by_strcmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0)
			return fmt_fail(err, LQ_ERR_ARG, "cannot write '%s': '%s' is given twice", disp,
					fmt_quote(sorted[i], q, sizeof q));
	/* "a" and "a/b": the names that begin with "a/" sort after "a", not always next to it ("a.json") */
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(sorted[i]), lo = i + 1, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = strncmp(sorted[mid], sorted[i], len);
			if (c < 0 || (c == 0 && (unsigned char)sorted[mid][len] < '/'))
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n && strncmp(sorted[lo], sorted[i], len) == 0 && sorted[lo][len] == '/') {
			char q2[256];
			return fmt_fail(err, LQ_ERR_ARG, "cannot write '%s': '%s' is a file and the folder of '%s'", disp,
					fmt_quote(sorted[i], q, sizeof q), fmt_quote(sorted[lo], q2, sizeof q2));
		}
	}
	return LQ_OK;
}

lq_status bundle_write(const char *path, const char *display, const char *dir, char *const *names, size_t n,
		       int level, int threads, char *err)
{
	const char *disp = display ? display : path;
	bool compressed;
	/* the name decides the compression: the name it will have (display), else the path written */
	if (!bundle_path_is_bundle(disp, &compressed) && !bundle_path_is_bundle(path, &compressed))
		return fmt_fail(err, LQ_ERR_ARG, "cannot write '%s': not a .tar.zst or .tar name", disp);
	if (compressed && (level < 1 || level > 19))
		return fmt_fail(err, LQ_ERR_ARG, "cannot write '%s': zstd level %d is not in 1..19", disp, level);
	const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
	if (!sorted)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	lq_status st = check_names(names, n, sorted, disp, err);
	if (st != LQ_OK) {
		free(sorted);
		return st;
	}

	sink s = {.fd = -1, .display = disp, .err = err, .status = LQ_OK};
	struct archive *a = NULL;
	bool created = false;
	uint64_t held = 0;
	char *buf = malloc(IO_CHUNK);
	if (!buf) {
		st = sink_fail(&s, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	s.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (s.fd < 0) {
		st = sink_fail(&s, errno == EEXIST ? LQ_ERR_EXISTS : LQ_ERR_IO, strerror(errno));
		goto done;
	}
	created = true;
	if (compressed && (st = sink_zstd(&s, level, threads)) != LQ_OK)
		goto done;
	a = archive_write_new();
	if (!a) {
		st = sink_fail(&s, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open(a, &s, NULL, sink_write, NULL) != ARCHIVE_OK) {
		st = archive_write_failed(&s, a);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		/* a signal ends the run here too, the archive removed (fmt.h) */
		if (fmt_cancelled("bundle")) {
			st = fmt_fail(err, LQ_ERR_CANCELLED, "interrupted");
			goto done;
		}
		if ((st = write_entry(&s, a, dir, sorted[i], buf, &held)) != LQ_OK)
			goto done;
	}
	if (archive_write_close(a) != ARCHIVE_OK) {
		st = archive_write_failed(&s, a);
		goto done;
	}
	if ((st = sink_end(&s)) != LQ_OK)
		goto done;
	if (fmt_cancelled("bundle-sync")) {
		st = fmt_fail(err, LQ_ERR_CANCELLED, "interrupted");
		goto done;
	}
	if (fsync(s.fd) != 0) {
		st = sink_fail(&s, LQ_ERR_IO, strerror(errno));
		goto done;
	}
	int fd = s.fd;
	s.fd = -1;
	if (close(fd) != 0)
		st = sink_fail(&s, LQ_ERR_IO, strerror(errno));
done:
	if (a) {
		/* after a failure the callback refuses what closing would write (archive_write_fail would leak
		 * libarchive's block buffer) */
		if (st != LQ_OK && s.status == LQ_OK)
			s.status = st;
		archive_write_free(a);
	}
	if (s.fd >= 0)
		close(s.fd);
	/* a file we created and did not finish is removed; one that was there (EXISTS) is not ours */
	if (st != LQ_OK && created)
		unlink(path);
	ZSTD_freeCCtx(s.cctx);
	free(s.zbuf);
	free(buf);
	free(sorted);
	return st;
}
