/*
 * bundle_read.c: reading model bundles (bundle.h). The reader decodes the zstd frames itself
 * (zstd_frames.h: a failure is laid at the entries it concerns), scans the tar once through libarchive
 * (tar, nothing else) and then serves tensor bytes through a cursor that only ever decompresses forward.
 */
#include "bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_impl.h"
#include "safetensors.h"
#include "zstd_frames.h"

/* Whether path ends with ext after a name of one byte or more (".tar" alone names no bundle). */
static bool named_with(const char *path, const char *ext)
{
	return strlen(path) > strlen(ext) && fmt_ends_with(path, ext);
}

bool bundle_path_is_bundle(const char *path, bool *compressed)
{
	static const char *const zst[] = {".tar.zst", ".tar.zstd", ".tzst"};
	for (size_t i = 0; i < sizeof zst / sizeof *zst; i++)
		if (named_with(path, zst[i])) {
			*compressed = true;
			return true;
		}
	if (named_with(path, ".tar")) {
		*compressed = false;
		return true;
	}
	return false;
}

/* What a libarchive handle reads the tar stream through: the file itself, by pread from its own offset
 * so that several handles share one descriptor, or its zstd frames decoded here (zstd_frames.h), so
 * that a failure can be laid at the entries whose bytes it concerns. */
typedef struct file_source {
	struct bundle *b;
	int fd;
	uint64_t off;
	char *buf;     /* IO_CHUNK bytes */
	zframes *z;    /* a compressed archive: its decoder (NULL: a .tar) */
} file_source;

/* A cursor: a handle that has read the headers of entries [0, cur) and pos bytes of entry cur - 1. A
 * compressed archive is read forward only, so a read before every cursor starts one again from the
 * beginning. Several cursors serve a reader whose reads go forward in several places at once: qinspect
 * walks a checkpoint by name, and a .safetensors file keeps its tensors by dtype, then name, so each
 * dtype's tensors are a forward stream of their own. */
typedef struct cursor {
	struct archive *a;
	file_source src;
	size_t cur;
	uint64_t pos;
	uint64_t used; /* the clock when it last served a read */
} cursor;

#define BUNDLE_CURSORS 4

/* The small tensors of a compressed bundle's .safetensors entry, kept by the scan that decompresses them
 * anyway: a quant_state, a quant map. Readers fetch them apart from the weights (hf_tensors lists every
 * group's quant_state before any weight is read), and each would otherwise cost a cursor's pass. */
#define BUNDLE_SMALL_TENSOR 4096
#define BUNDLE_SMALL_TENSORS_TOTAL ((uint64_t)64 << 20) /* apart from BUNDLE_SMALL_TOTAL: never a refusal */
typedef struct held_piece {
	uint64_t off; /* in the entry */
	size_t len;
	char *bytes;
} held_piece;

typedef struct held_pieces {
	held_piece *p; /* sorted by off, not overlapping */
	size_t n;
} held_pieces;

struct bundle {
	char *path;
	int fd;
	bool compressed;
	uint64_t file_size;
	bundle_entry *e;
	held_pieces *small; /* per entry, beside e */
	size_t n, cap;
	size_t *by_name; /* entry indices sorted by name, for bundle_find */
	char *top;       /* the top-level directory dropped from every name, or NULL */
	uint64_t (*span)[2]; /* per entry, beside e: its bytes in the tar stream, header to data end */
	zf_fault fault;  /* the zstd failure a source met, for the message of the read that failed */
	uint64_t *start; /* each entry's first byte in the tar stream, counting entry bytes only */
	cursor cursors[BUNDLE_CURSORS];
	uint64_t clock;  /* reads served, for the cursors' last use */
	uint64_t decoded; /* entry bytes the cursors have read, skipped ones included */
	char *scratch;
	char err[FMT_ERRBUF];
};

bundle *bundle_create(void)
{
	bundle *b = calloc(1, sizeof *b);
	if (b)
		b->fd = -1;
	return b;
}

static void cursor_drop(cursor *c)
{
	if (c->a)
		archive_read_free(c->a);
	free(c->src.buf);
	zframes_free(c->src.z);
	*c = (cursor){.src.fd = -1};
}

static void clear(bundle *b)
{
	for (int k = 0; k < BUNDLE_CURSORS; k++)
		cursor_drop(&b->cursors[k]);
	free(b->start);
	b->start = NULL;
	for (size_t i = 0; i < b->n; i++) {
		free(b->e[i].name);
		free(b->e[i].head);
		for (size_t k = 0; b->small && k < b->small[i].n; k++)
			free(b->small[i].p[k].bytes);
		if (b->small)
			free(b->small[i].p);
	}
	free(b->e);
	free(b->small);
	free(b->span);
	b->small = NULL;
	b->span = NULL;
	b->fault = (zf_fault){.kind = ZF_OK};
	free(b->by_name);
	free(b->top);
	free(b->scratch);
	free(b->path);
	if (b->fd >= 0)
		close(b->fd);
	b->e = NULL;
	b->by_name = NULL;
	b->top = b->scratch = b->path = NULL;
	b->n = b->cap = 0;
	b->fd = -1;
}

void bundle_free(bundle *b)
{
	if (!b)
		return;
	clear(b);
	free(b);
}

size_t bundle_count(const bundle *b)
{
	return b->n;
}

const bundle_entry *bundle_entry_at(const bundle *b, size_t i)
{
	return i < b->n ? &b->e[i] : NULL;
}

const char *bundle_path(const bundle *b)
{
	return b->path;
}

const char *bundle_error(const bundle *b)
{
	return b->err;
}

int64_t bundle_find(const bundle *b, const char *name)
{
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(b->e[b->by_name[mid]].name, name);
		if (c == 0)
			return (int64_t)b->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* libarchive's errno, as ours: a failed read(2) is I/O, anything it says about the bytes is corrupt. */
static lq_status archive_status(struct archive *a)
{
	switch (archive_errno(a)) {
	case ENOMEM:
		return LQ_ERR_NOMEM;
	case EIO: case EBADF: case ENXIO: case EISDIR: case EACCES: case EPERM: case EINTR: case ESTALE:
		return LQ_ERR_IO;
	default:
		return LQ_ERR_CORRUPT;
	}
}

/* The entries whose bytes (header or data) lie in bytes [from, to) of the tar stream, as far as the scan
 * has seen them: *first and the count. */
static size_t entries_in(const bundle *b, uint64_t from, uint64_t to, size_t *first)
{
	size_t k = 0;
	*first = 0;
	for (size_t i = 0; i < b->n && b->span; i++)
		if (b->span[i][0] < to && b->span[i][1] > from && k++ == 0)
			*first = i;
	return k;
}

/* A frame whose content is not what its checksum says: the fault is in one of the entries it holds,
 * which can be anywhere in it, so each of them is named, or the first and the last. */
static lq_status checksum_failed(bundle *b, const zf_fault *f)
{
	size_t first, k = entries_in(b, f->out_start, f->out_pos, &first);
	char frame[160], qa[256], qb[256];
	snprintf(frame, sizeof frame, "zstd frame %" PRIu64 " (bytes %" PRIu64 " to %" PRIu64 " of the file)", f->frame,
		 f->file_start, f->file_pos + 3);
	if (k == 0)
		return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: corrupt archive: %s fails its checksum", b->path, frame);
	fmt_quote(b->e[first].name, qa, sizeof qa);
	if (k == 1)
		return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry '%s': corrupt archive: %s, which holds its bytes, fails "
				"its checksum", b->path, qa, frame);
	fmt_quote(b->e[first + k - 1].name, qb, sizeof qb);
	if (k == 2)
		return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry '%s' or '%s': corrupt archive: %s, which holds their "
				"bytes, fails its checksum", b->path, qa, qb, frame);
	return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: one of the %zu entries from '%s' to '%s': corrupt archive: %s, "
			"which holds their bytes, fails its checksum", b->path, k, qa, qb, frame);
}

/* The zstd failure a source met, where it was (`label` and `qname` as archive_failed's). */
static lq_status zstd_failed(bundle *b, const char *label, const char *qname)
{
	zf_fault f = b->fault;
	b->fault = (zf_fault){.kind = ZF_OK};
	char where[320] = "";
	if (label)
		snprintf(where, sizeof where, " %s '%s'", label, qname);
	switch (f.kind) {
	case ZF_IO:
		return fmt_fail(b->err, LQ_ERR_IO, "cannot read '%s': %s", b->path, strerror(f.err_no));
	case ZF_NOMEM:
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
	case ZF_CHECKSUM:
		return checksum_failed(b, &f);
	case ZF_TRUNCATED:
		return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s:%s%s truncated archive (the file ends inside zstd frame %"
				PRIu64 ", which begins at byte %" PRIu64 ")", b->path, where, label ? ":" : "", f.frame,
				f.file_start);
	case ZF_NOT_ZSTD:
		return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s:%s%s corrupt archive (byte %" PRIu64 ": data after the end "
				"of the zstd stream)", b->path, where, label ? ":" : "", f.file_pos);
	default:
		return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s:%s%s corrupt archive (zstd frame %" PRIu64 ", byte %" PRIu64
				" of the file: %s)", b->path, where, label ? ":" : "", f.frame, f.file_pos,
				f.why ? f.why : "cannot decode");
	}
}

/* "model.tar.zst: entry 'model.safetensors': truncated archive (Truncated tar archive)": what libarchive
 * said, or the zstd decoder, after where it was (`label` "entry" or "after entry" and a name already
 * quoted, or neither). */
static lq_status archive_failed(bundle *b, struct archive *a, const char *label, const char *qname)
{
	if (b->fault.kind != ZF_OK)
		return zstd_failed(b, label, qname);
	const char *msg = archive_error_string(a);
	char qm[320];
	fmt_quote(msg ? msg : "libarchive gave no reason", qm, sizeof qm);
	lq_status st = archive_status(a);
	const char *what = st == LQ_ERR_NOMEM		    ? "out of memory"
			   : st == LQ_ERR_IO		    ? "cannot read the archive"
			   : strstr(qm, "runcated")	    ? "truncated archive"
			   : strstr(qm, "Unrecognized archive") ? "not a tar or tar.zst archive"
							    : "corrupt archive";
	if (label)
		return fmt_fail(b->err, st, "%s: %s '%s': %s (%s)", b->path, label, qname, what, qm);
	return fmt_fail(b->err, st, "%s: %s (%s)", b->path, what, qm);
}

/* A handle reading the archive from its first byte: the tar stream, from the file or from its zstd
 * decoder; libarchive is given no filter and no format but tar. */
static la_ssize_t source_read(struct archive *a, void *arg, const void **buf)
{
	file_source *src = arg;
	*buf = src->buf;
	if (src->z) {
		size_t got;
		if (zframes_read(src->z, src->buf, IO_CHUNK, &got))
			return (la_ssize_t)got;
		src->b->fault = *zframes_fault(src->z);
		archive_set_error(a, EILSEQ, "zstd");
		return -1;
	}
	ssize_t k;
	do
		k = pread(src->fd, src->buf, IO_CHUNK, (off_t)src->off);
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		archive_set_error(a, errno, "%s", strerror(errno));
		return -1;
	}
	src->off += (uint64_t)k;
	return k;
}

/* An uncompressed tar skips an entry's data without reading it (past the end of a truncated file too,
 * as lseek would: the scan checks the total against the file's size). */
static la_int64_t source_skip(struct archive *a, void *arg, la_int64_t request)
{
	(void)a;
	file_source *src = arg;
	src->off += (uint64_t)request;
	return request;
}

/* A handle on the archive from its first byte, reading through src (its buffers allocated here). */
static lq_status open_handle(bundle *b, file_source *src, struct archive **out)
{
	*out = NULL;
	src->b = b;
	src->fd = b->fd;
	src->off = 0;
	if (!src->buf && !(src->buf = malloc(IO_CHUNK)))
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
	zframes_free(src->z);
	src->z = NULL;
	if (b->compressed && !(src->z = zframes_create(b->fd)))
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
	struct archive *a = archive_read_new();
	if (!a)
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
	if (archive_read_support_filter_none(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK) {
		const char *msg = archive_error_string(a);
		lq_status st = fmt_fail(b->err, LQ_ERR_IO, "cannot read '%s': libarchive cannot decode it (%s)", b->path,
					msg ? msg : "no tar support");
		archive_read_free(a);
		return st;
	}
	/* a compressed stream cannot skip: libarchive reads through what it passes over */
	if (archive_read_open2(a, src, NULL, source_read, b->compressed ? NULL : source_skip, NULL) != ARCHIVE_OK) {
		lq_status st = archive_failed(b, a, NULL, NULL);
		archive_read_free(a);
		return st;
	}
	*out = a;
	return LQ_OK;
}

/* An archive name taken apart: one leading "./" dropped, and a directory's trailing '/'. */
typedef struct name_parts {
	const char *s;
	size_t len;
	size_t ncomp; /* components: 0 for "." */
	size_t first; /* length of the first */
} name_parts;

/* Why a name is refused, or NULL. */
static const char *split_name(const char *raw, bool is_dir, name_parts *p)
{
	size_t len = strlen(raw);
	if (len == 0)
		return "has an empty name";
	if (len > BUNDLE_MAX_NAME)
		return "has a name longer than " STR(BUNDLE_MAX_NAME) " bytes";
	if (raw[0] == '/')
		return "has an absolute name";
	const char *why = bundle_bad_chars(raw, len);
	if (why)
		return why;
	const char *s = raw;
	if (len >= 2 && s[0] == '.' && s[1] == '/') {
		s += 2;
		len -= 2;
	} else if (is_dir && len == 1 && s[0] == '.') {
		len = 0;
	}
	if (is_dir && len > 0 && s[len - 1] == '/')
		len--;
	*p = (name_parts){s, len, 0, 0};
	if (len == 0)
		return is_dir ? NULL : "has an empty name";
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/')
			continue;
		size_t clen = i - start;
		if (clen == 2 && s[start] == '.' && s[start + 1] == '.')
			return "has '..' in its name";
		if (clen == 0 || (clen == 1 && s[start] == '.'))
			return "has an empty or '.' component in its name";
		if (p->ncomp++ == 0)
			p->first = clen;
		start = i + 1;
	}
	return NULL;
}

/* Why an entry's type is refused (NULL: a regular file or a directory). A hard link is a regular file's
 * header with a link name: checked first. */
static const char *bad_type(struct archive_entry *ae)
{
	if (archive_entry_hardlink(ae))
		return "is a hard link";
	switch (archive_entry_filetype(ae)) {
	case AE_IFREG:
		if (archive_entry_symlink(ae))
			return "is a symbolic link";
		/* holes that libarchive would fill: not a file our writer makes, and not one to trust */
		return archive_entry_sparse_count(ae) > 0 ? "is a sparse file" : NULL;
	case AE_IFDIR:
		return NULL;
	case AE_IFLNK:
		return "is a symbolic link";
	case AE_IFCHR:
	case AE_IFBLK:
		return "is a device file";
	case AE_IFIFO:
		return "is a FIFO";
	case AE_IFSOCK:
		return "is a socket";
	default:
		return "is not a regular file";
	}
}

static const char *entry_name(struct archive_entry *ae)
{
	const char *raw = archive_entry_pathname(ae);
	return raw ? raw : archive_entry_pathname_utf8(ae);
}

/* What the scan knows of the layout so far: the one top-level directory, or files outside any. */
typedef struct scan {
	bundle *b;
	struct archive *a;
	file_source src;
	size_t headers;
	size_t nfiles;
	bool one_top;  /* every file so far lies in the directory `top` names */
	char *top;     /* the first file's top-level directory (NULL when it has none) */
	uint64_t held; /* bytes kept in memory */
	uint64_t pieces; /* bytes of small tensors kept */
	bundle_visit_fn visit; /* bundle_open_visit's */
	void *visit_arg;
	char *buf;     /* visit: what is not kept passes through here */
} scan;

static lq_status refuse(bundle *b, const char *qname, const char *why)
{
	return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry '%s' %s", b->path, qname, why);
}

/* Whether every file so far lies in one top-level directory, the first file's: this one too (s, len is
 * its first component, ncomp its number of components). */
static lq_status track_top(scan *sc, const char *s, size_t len, size_t ncomp)
{
	bool first = sc->nfiles++ == 0;
	if (ncomp == 1) {
		sc->one_top = false;
	} else if (first) {
		if (!(sc->top = strndup(s, len)))
			return fmt_fail(sc->b->err, LQ_ERR_NOMEM, "%s: out of memory", sc->b->path);
		sc->one_top = true;
	} else if (sc->one_top && (strlen(sc->top) != len || memcmp(sc->top, s, len) != 0)) {
		sc->one_top = false;
	}
	return LQ_OK;
}

/* len bytes of the current entry's data into dst: everything or a failure naming the entry. */
static lq_status read_data(bundle *b, struct archive *a, char *dst, size_t len, const char *qname)
{
	for (size_t got = 0; got < len;) {
		la_ssize_t k = archive_read_data(a, dst + got, len - got);
		if (k < 0)
			return archive_failed(b, a, "entry", qname);
		if (k == 0)
			return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry '%s': truncated archive (%zu of %zu bytes)",
					b->path, qname, got, len);
		got += (size_t)k;
	}
	return LQ_OK;
}

static lq_status hold(scan *sc, uint64_t bytes, const char *qname)
{
	uint64_t total;
	if (!fmt_add_u64(sc->held, bytes, &total) || total > BUNDLE_SMALL_TOTAL)
		return fmt_fail(sc->b->err, LQ_ERR_CORRUPT, "%s: entry '%s': the entries held in memory would exceed %"
				PRIu64 " bytes", sc->b->path, qname, BUNDLE_SMALL_TOTAL);
	sc->held = total;
	return LQ_OK;
}

/* Bytes [offset, offset + len) of entry e to the visitor, if there is one, under the entry's name as the
 * scan has it (a top-level directory that every entry turns out to lie in is dropped after the scan). */
static lq_status to_visitor(scan *sc, const bundle_entry *e, uint64_t offset, const void *data, size_t len)
{
	if (!sc->visit)
		return LQ_OK;
	return sc->visit(sc->visit_arg, (size_t)(e - sc->b->e), e->name, e->size, offset, data, len, sc->b->err);
}

/* The small tensors of a .safetensors entry of a compressed bundle, from its header (one that does not
 * parse keeps none: the tool that reads it says what is wrong), within what may be held. */
static lq_status plan_small(scan *sc, const bundle_entry *e, held_pieces *h)
{
	if (!sc->b->compressed || !bundle_is_safetensors(e->name) || e->head_len <= 8)
		return LQ_OK;
	st_file *f = st_file_create();
	if (!f)
		return fmt_fail(sc->b->err, LQ_ERR_NOMEM, "%s: out of memory", sc->b->path);
	lq_status st = LQ_OK;
	if (st_file_parse(f, e->head, (size_t)e->head_len, e->size, e->name) == LQ_OK && f->ntensors &&
	    !(h->p = calloc(f->ntensors, sizeof *h->p)))
		st = fmt_fail(sc->b->err, LQ_ERR_NOMEM, "%s: out of memory", sc->b->path);
	for (size_t i = 0; h->p && i < f->ntensors && st == LQ_OK; i++) {
		const st_tensor *t = &f->tensors[i];
		uint64_t len = t->end - t->begin;
		if (len == 0 || len > BUNDLE_SMALL_TENSOR || sc->pieces + len > BUNDLE_SMALL_TENSORS_TOTAL)
			continue;
		held_piece *p = &h->p[h->n];
		*p = (held_piece){f->data_start + t->begin, (size_t)len, malloc((size_t)len)};
		if (!p->bytes)
			st = fmt_fail(sc->b->err, LQ_ERR_NOMEM, "%s: out of memory", sc->b->path);
		else
			h->n++, sc->pieces += len;
	}
	st_file_free(f);
	return st;
}

static int by_piece_offset(const void *a, const void *b)
{
	const held_piece *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* The rest of an entry, past what is kept: to the visitor and into the small tensors' pieces, or, with
 * neither, decompressed and dropped. */
static lq_status scan_rest(scan *sc, const bundle_entry *e, held_pieces *h, const char *qname)
{
	bundle *b = sc->b;
	if (!sc->visit && h->n == 0)
		return archive_read_data_skip(sc->a) == ARCHIVE_OK ? LQ_OK : archive_failed(b, sc->a, "entry", qname);
	if (!sc->buf && !(sc->buf = malloc(IO_CHUNK)))
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
	if (h->n > 1)
		qsort(h->p, h->n, sizeof *h->p, by_piece_offset);
	size_t k = 0;
	for (uint64_t at = e->head_len; at < e->size;) {
		size_t n = e->size - at < IO_CHUNK ? (size_t)(e->size - at) : IO_CHUNK;
		lq_status st = read_data(b, sc->a, sc->buf, n, qname);
		if (st == LQ_OK)
			st = to_visitor(sc, e, at, sc->buf, n);
		if (st != LQ_OK)
			return st;
		/* the pieces this chunk holds bytes of (tensors do not overlap, and lie after the header) */
		for (size_t j = k; j < h->n && h->p[j].off < at + n; j++) {
			held_piece *p = &h->p[j];
			uint64_t lo = p->off > at ? p->off : at, hi = p->off + p->len < at + n ? p->off + p->len : at + n;
			if (hi > lo)
				memcpy(p->bytes + (lo - p->off), sc->buf + (lo - at), (size_t)(hi - lo));
			if (p->off + p->len <= at + n && j == k)
				k++;
		}
		at += n;
	}
	return LQ_OK;
}

/* What is kept of an entry: all of it, or a .safetensors file's 8 + N bytes; the rest is decompressed and
 * dropped here (or given to the visitor), so that a truncated or corrupt archive fails now and not halfway
 * through a conversion. */
static lq_status scan_data(scan *sc, bundle_entry *e, const char *qname)
{
	bundle *b = sc->b;
	uint64_t keep = e->size;
	bool weights = bundle_is_safetensors(e->name);
	if (weights)
		keep = e->size < 8 ? e->size : 8;
	else if (e->size > BUNDLE_SMALL_LIMIT)
		return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry '%s' holds %" PRIu64 " bytes, more than the %" PRIu64
				" a file that is not .safetensors may hold", b->path, qname, e->size, BUNDLE_SMALL_LIMIT);
	lq_status st = hold(sc, keep, qname);
	if (st != LQ_OK)
		return st;
	e->head = malloc((size_t)keep + 1);
	if (!e->head)
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
	if ((st = read_data(b, sc->a, e->head, (size_t)keep, qname)) != LQ_OK)
		return st;
	e->head_len = keep;
	if ((st = to_visitor(sc, e, 0, e->head, (size_t)keep)) != LQ_OK)
		return st;
	if (weights && keep == 8) {
		uint64_t n = st_header_length(e->head);
		/* a length past the entry's end is kept as 8 bytes: the safetensors parser says what is wrong */
		if (n <= e->size - 8) {
			if (n > ST_MAX_HEADER)
				return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry '%s': safetensors header of %" PRIu64
						" bytes exceeds the limit of %llu bytes", b->path, qname, n, ST_MAX_HEADER);
			if ((st = hold(sc, n, qname)) != LQ_OK)
				return st;
			char *p = realloc(e->head, (size_t)(8 + n) + 1);
			if (!p)
				return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
			e->head = p;
			if ((st = read_data(b, sc->a, e->head + 8, (size_t)n, qname)) != LQ_OK ||
			    (st = to_visitor(sc, e, 8, e->head + 8, (size_t)n)) != LQ_OK)
				return st;
			e->head_len = 8 + n;
		}
	}
	e->head[e->head_len] = '\0';
	held_pieces *h = &b->small[e - b->e];
	if ((st = plan_small(sc, e, h)) != LQ_OK)
		return st;
	return e->head_len < e->size ? scan_rest(sc, e, h, qname) : LQ_OK;
}

/* One header of the scan: refused, skipped (an allowed directory) or added. */
static lq_status scan_entry(scan *sc, struct archive_entry *ae)
{
	bundle *b = sc->b;
	char q[256];
	const char *raw = entry_name(ae);
	if (!raw)
		return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry %zu has a name that cannot be read", b->path,
				sc->headers);
	fmt_quote(raw, q, sizeof q);
	if (++sc->headers > BUNDLE_MAX_ENTRIES)
		return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: more than %d entries", b->path, BUNDLE_MAX_ENTRIES);
	const char *why = bad_type(ae);
	if (why)
		return refuse(b, q, why);
	bool is_dir = archive_entry_filetype(ae) == AE_IFDIR;
	name_parts p;
	if ((why = split_name(raw, is_dir, &p)))
		return refuse(b, q, why);
	if (is_dir) /* a folder: its files name it; its data, if any, is skipped */
		return LQ_OK;
	lq_status st = track_top(sc, p.s, p.first, p.ncomp);
	if (st != LQ_OK)
		return st;
	la_int64_t size = archive_entry_size(ae);
	if (!archive_entry_size_is_set(ae) || size < 0)
		return refuse(b, q, "has no size");
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		bundle_entry *e = realloc(b->e, cap * sizeof *e);
		if (!e)
			return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
		b->e = e;
		held_pieces *h = realloc(b->small, cap * sizeof *h);
		if (!h)
			return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
		b->small = h;
		uint64_t(*span)[2] = realloc(b->span, cap * sizeof *span);
		if (!span)
			return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
		b->span = span;
		b->cap = cap;
	}
	bundle_entry *e = &b->e[b->n];
	*e = (bundle_entry){strndup(p.s, p.len), (uint64_t)size, NULL, 0};
	b->small[b->n] = (held_pieces){NULL, 0};
	/* its bytes in the tar stream, for a message about the frame that holds them: the header (pax's
	 * included) and the data */
	b->span[b->n][0] = (uint64_t)archive_read_header_position(sc->a);
	b->span[b->n][1] = (uint64_t)archive_filter_bytes(sc->a, 0) + (uint64_t)size;
	if (!e->name)
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
	b->n++;
	return scan_data(sc, e, q);
}

/* libarchive stops at the tar's end-of-archive blocks: what follows them in the file, the rest of the
 * frame with its checksum, more frames, garbage or half a frame, is decoded here to the last byte. */
static lq_status drain_zstd(bundle *b, scan *sc)
{
	size_t got;
	while (zframes_read(sc->src.z, sc->src.buf, IO_CHUNK, &got))
		if (got == 0)
			return LQ_OK;
	b->fault = *zframes_fault(sc->src.z);
	char q[256];
	return zstd_failed(b, "after entry", fmt_quote(b->e[b->n - 1].name, q, sizeof q));
}

static int by_name_cmp(const void *x, const void *y, void *arg)
{
	const bundle *b = arg;
	return strcmp(b->e[*(const size_t *)x].name, b->e[*(const size_t *)y].name);
}

/* The first of the sorted names that is not below key. */
static size_t lower_bound(const bundle *b, const char *key)
{
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(b->e[b->by_name[mid]].name, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* After the scan: the top-level directory dropped from the names, which must then be unique, and no name
 * both a file and a folder of other files. */
static lq_status finish_names(bundle *b)
{
	if (b->top) {
		size_t drop = strlen(b->top) + 1;
		for (size_t i = 0; i < b->n; i++)
			memmove(b->e[i].name, b->e[i].name + drop, strlen(b->e[i].name + drop) + 1);
	}
	b->by_name = malloc(b->n * sizeof *b->by_name);
	if (!b->by_name)
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
	for (size_t i = 0; i < b->n; i++)
		b->by_name[i] = i;
	qsort_r(b->by_name, b->n, sizeof *b->by_name, by_name_cmp, b);
	for (size_t i = 1; i < b->n; i++)
		if (strcmp(b->e[b->by_name[i - 1]].name, b->e[b->by_name[i]].name) == 0) {
			char q[256];
			return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry '%s' appears twice", b->path,
					fmt_quote(b->e[b->by_name[i]].name, q, sizeof q));
		}
	for (size_t i = 0; i < b->n; i++) {
		const char *name = b->e[i].name;
		size_t len = strlen(name);
		char *key = malloc(len + 2);
		if (!key)
			return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
		memcpy(key, name, len);
		memcpy(key + len, "/", 2);
		size_t k = lower_bound(b, key);
		bool below = k < b->n && strncmp(b->e[b->by_name[k]].name, key, len + 1) == 0;
		free(key);
		if (below) {
			char q[256], q2[256];
			return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry '%s' lies in '%s', which is a file", b->path,
					fmt_quote(b->e[b->by_name[k]].name, q, sizeof q), fmt_quote(name, q2, sizeof q2));
		}
	}
	return LQ_OK;
}

static lq_status scan_archive(bundle *b, bundle_visit_fn visit, void *arg)
{
	scan sc = {.b = b, .visit = visit, .visit_arg = arg};
	/* the compression is told by the bytes, not the name */
	unsigned char magic[4];
	ssize_t k;
	do
		k = pread(b->fd, magic, sizeof magic, 0);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return fmt_fail(b->err, LQ_ERR_IO, "cannot read '%s': %s", b->path, strerror(errno));
	b->compressed = zframes_magic(magic, (size_t)k);
	lq_status st = open_handle(b, &sc.src, &sc.a);
	if (st != LQ_OK)
		goto done;
	for (;;) {
		struct archive_entry *ae;
		int r = archive_read_next_header(sc.a, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			char q[256];
			const char *prev = b->n ? fmt_quote(b->e[b->n - 1].name, q, sizeof q) : NULL;
			st = archive_failed(b, sc.a, prev ? "after entry" : NULL, prev);
			goto done;
		}
		if ((st = scan_entry(&sc, ae)) != LQ_OK)
			goto done;
	}
	if (b->n == 0) {
		st = fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: the archive holds no files", b->path);
		goto done;
	}
	/* a tar on disk is skipped with lseek, which goes past the end of a truncated file without a word */
	if (!b->compressed && archive_filter_bytes(sc.a, -1) > (la_int64_t)b->file_size) {
		char q[256];
		st = fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: entry '%s': truncated archive", b->path,
			      fmt_quote(b->e[b->n - 1].name, q, sizeof q));
		goto done;
	}
	if (b->compressed && (st = drain_zstd(b, &sc)) != LQ_OK)
		goto done;
	if (sc.one_top) {
		b->top = sc.top; /* every file lies in it: `tar -cf x.tar model` */
		sc.top = NULL;
	}
	if ((st = finish_names(b)) != LQ_OK)
		goto done;
	if (!(b->start = malloc(b->n * sizeof *b->start))) {
		st = fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
		goto done;
	}
	for (size_t i = 0, at = 0; i < b->n; at += b->e[i++].size)
		b->start[i] = at;
done:
	if (sc.a)
		archive_read_free(sc.a);
	free(sc.buf);
	free(sc.src.buf);
	zframes_free(sc.src.z);
	free(sc.top);
	return st;
}

lq_status bundle_open(bundle *b, const char *path)
{
	return bundle_open_visit(b, path, NULL, NULL);
}

lq_status bundle_open_visit(bundle *b, const char *path, bundle_visit_fn visit, void *arg)
{
	clear(b);
	b->err[0] = '\0';
	b->path = strdup(path);
	if (!b->path)
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", path);
	lq_status st;
	struct stat sb;
	if ((st = fmt_open_input(path, &b->fd, &sb, b->err)) == LQ_OK) {
		b->file_size = (uint64_t)sb.st_size;
		st = scan_archive(b, visit, arg);
	}
	if (st != LQ_OK) {
		/* nothing half-read is left behind; the path stays, for bundle_path and messages */
		char *keep = b->path;
		b->path = NULL;
		clear(b);
		b->path = keep;
	}
	return st;
}

/* ------------------------------------------------------------------------------------ the cursor */

static lq_status changed(bundle *b)
{
	return fmt_fail(b->err, LQ_ERR_CORRUPT, "%s: changed since it was opened", b->path);
}

/* The next file's header, which must be the one the scan saw there (directories it allowed are passed). */
static lq_status cursor_next(bundle *b, cursor *c)
{
	for (;;) {
		struct archive_entry *ae;
		int r = archive_read_next_header(c->a, &ae);
		if (r == ARCHIVE_EOF)
			return changed(b);
		if (r != ARCHIVE_OK) {
			char q[256];
			const char *prev = c->cur ? fmt_quote(b->e[c->cur - 1].name, q, sizeof q) : NULL;
			return archive_failed(b, c->a, prev ? "after entry" : NULL, prev);
		}
		const char *raw = entry_name(ae);
		bool is_dir = archive_entry_filetype(ae) == AE_IFDIR;
		name_parts p;
		if (!raw || bad_type(ae) || split_name(raw, is_dir, &p))
			return changed(b);
		size_t tl = b->top ? strlen(b->top) : 0;
		if (is_dir)
			continue;
		if (b->top) {
			if (p.len <= tl + 1 || memcmp(p.s, b->top, tl) != 0 || p.s[tl] != '/')
				return changed(b);
			p.s += tl + 1;
			p.len -= tl + 1;
		}
		if (c->cur >= b->n)
			return changed(b);
		const bundle_entry *e = &b->e[c->cur];
		if (strlen(e->name) != p.len || memcmp(e->name, p.s, p.len) != 0 ||
		    archive_entry_size(ae) != (la_int64_t)e->size)
			return changed(b);
		c->cur++;
		c->pos = 0;
		return LQ_OK;
	}
}

/* Where a cursor stands in the tar stream (entry bytes only), or 0 when it has read nothing. */
static uint64_t cursor_at(const bundle *b, const cursor *c)
{
	return c->a && c->cur ? b->start[c->cur - 1] + c->pos : 0;
}

/* The cursor to read byte `offset` of entry i with: the nearest one at or before it, which only has to
 * go forward; else one not in use, or the one used least recently, started again. */
static cursor *cursor_for(bundle *b, size_t i, uint64_t offset)
{
	uint64_t target = b->start[i] + offset;
	cursor *best = NULL, *idle = NULL, *oldest = &b->cursors[0];
	for (int k = 0; k < BUNDLE_CURSORS; k++) {
		cursor *c = &b->cursors[k];
		if (!c->a) {
			idle = idle ? idle : c;
			continue;
		}
		if (c->used < oldest->used || !oldest->a)
			oldest = c;
		bool behind = c->cur < i + 1 || (c->cur == i + 1 && c->pos <= offset);
		if (behind && (!best || cursor_at(b, c) > cursor_at(b, best)))
			best = c;
	}
	/* a cursor far behind is not worth moving when one can start afresh for little more */
	if (best && idle && target - cursor_at(b, best) > target / 2)
		best = NULL;
	return best ? best : idle ? idle : oldest;
}

/* A cursor at byte `offset` of entry i: forward from where it is, or from the archive's start. */
static lq_status cursor_seek(bundle *b, cursor *c, size_t i, uint64_t offset)
{
	lq_status st;
	if (!c->a || c->cur > i + 1 || (c->cur == i + 1 && c->pos > offset)) {
		cursor_drop(c);
		if ((st = open_handle(b, &c->src, &c->a)) != LQ_OK)
			return st;
	}
	while (c->cur < i + 1)
		if ((st = cursor_next(b, c)) != LQ_OK)
			return st;
	if (c->pos < offset && !b->scratch && !(b->scratch = malloc(IO_CHUNK)))
		return fmt_fail(b->err, LQ_ERR_NOMEM, "%s: out of memory", b->path);
	char q[256];
	fmt_quote(b->e[i].name, q, sizeof q);
	while (c->pos < offset) {
		size_t n = offset - c->pos < IO_CHUNK ? (size_t)(offset - c->pos) : IO_CHUNK;
		if ((st = read_data(b, c->a, b->scratch, n, q)) != LQ_OK)
			return st;
		c->pos += n;
		b->decoded += n;
	}
	return LQ_OK;
}

uint64_t bundle_decoded(const bundle *b)
{
	return b->decoded;
}

lq_status bundle_read(bundle *b, size_t i, uint64_t offset, void *dst, size_t len)
{
	if (i >= b->n)
		return fmt_fail(b->err, LQ_ERR_ARG, "%s: no entry %zu (the archive has %zu)", b->path ? b->path : "bundle",
				i, b->n);
	const bundle_entry *e = &b->e[i];
	if (offset > e->size || len > e->size - offset) {
		char q[256];
		return fmt_fail(b->err, LQ_ERR_ARG, "%s: entry '%s': %zu bytes at byte %" PRIu64 " asked for, it has %"
				PRIu64, b->path, fmt_quote(e->name, q, sizeof q), len, offset, e->size);
	}
	if (len == 0)
		return LQ_OK;
	if (offset + len <= e->head_len) {
		memcpy(dst, e->head + offset, len);
		return LQ_OK;
	}
	/* a small tensor's bytes: the last piece that begins at or before offset, if it holds them all */
	const held_pieces *h = &b->small[i];
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->p[mid].off <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && offset + len <= h->p[lo - 1].off + h->p[lo - 1].len) {
		memcpy(dst, h->p[lo - 1].bytes + (offset - h->p[lo - 1].off), len);
		return LQ_OK;
	}
	cursor *c = cursor_for(b, i, offset);
	c->used = ++b->clock;
	lq_status st = cursor_seek(b, c, i, offset);
	if (st == LQ_OK) {
		char q[256];
		st = read_data(b, c->a, dst, len, fmt_quote(e->name, q, sizeof q));
		if (st == LQ_OK) {
			c->pos += len;
			b->decoded += len;
		}
	}
	if (st != LQ_OK)
		cursor_drop(c); /* it starts again from the beginning next time */
	return st;
}

lq_status bundle_entry_read(void *arg, uint64_t offset, void *dst, size_t len, char *err)
{
	const bundle_entry_ref *r = arg;
	lq_status st = bundle_read(r->b, r->entry, offset, dst, len);
	if (st != LQ_OK)
		fmt_fail(err, st, "%s", bundle_error(r->b));
	return st;
}
