/*
 * st_write.c: the safetensors writer (safetensors.h). The layout is the official writer's: tensors sorted
 * by dtype (the Dtype enum, descending) then by name bytewise, contiguous from offset 0, compact JSON with
 * __metadata__ first and each tensor's fields in the order dtype, shape, data_offsets, padded with spaces
 * so that the data starts at a multiple of 8.
 */
#include "safetensors.h"

#include "json_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wtensor {
	char *name;
	st_dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	uint64_t nbytes;
	uint64_t begin;   /* in the data buffer, after layout */
	uint64_t written; /* bytes written so far */
	struct wrange {
		uint64_t begin, end;
	} *ranges;        /* the bytes written: sorted, disjoint, adjacent ones merged */
	size_t nranges, cap_ranges;
} wtensor;

struct st_writer {
	wtensor *t;
	size_t n, cap;
	struct meta {
		char *key, *value;
	} *meta;
	size_t nmeta;
	char *header; /* the 8-byte length and the padded JSON */
	size_t header_size;
	uint64_t data_size, file_size;
	bool laid_out, finished;
	bool keep_order;  /* st_writer_keep_order: the declaration order, not the official one */
	bool stream;      /* st_writer_open_stream: fd takes the bytes in order */
	uint64_t emitted; /* stream: bytes sent so far */
	struct piece {
		uint64_t pos;
		size_t len;
		char *data;
	} *pending;       /* stream: bytes written ahead of `emitted`, sorted by pos */
	size_t npending, cap_pending;
	int fd;           /* stream: the descriptor */
	pooled_file file; /* st_writer_open: the file, opened on demand (fd_pool.h) */
	bool created;     /* st_writer_open made the file at path */
	char *path;
	char *display; /* the name in messages, when the file is written under a temporary one */
	char err[FMT_ERRBUF];
};

st_writer *st_writer_create(void)
{
	st_writer *w = calloc(1, sizeof *w);
	if (w) {
		w->fd = -1;
		w->file = (pooled_file)POOLED_FILE_INIT;
	}
	return w;
}

void st_writer_free(st_writer *w)
{
	if (!w)
		return;
	pooled_close(&w->file, w->path ? w->path : "?", w->err);
	if (w->created && !w->finished)
		unlink(w->path); /* never leave a partial file behind */
	for (size_t i = 0; i < w->npending; i++)
		free(w->pending[i].data);
	free(w->pending);
	for (size_t i = 0; i < w->n; i++) {
		free(w->t[i].name);
		free(w->t[i].ranges);
	}
	for (size_t i = 0; i < w->nmeta; i++) {
		free(w->meta[i].key);
		free(w->meta[i].value);
	}
	free(w->t);
	free(w->meta);
	free(w->header);
	free(w->path);
	free(w->display);
	free(w);
}

lq_status st_writer_set_display_name(st_writer *w, const char *name)
{
	free(w->display);
	w->display = strdup(name);
	return w->display ? LQ_OK : fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
}

/* The file's name for messages. */
static const char *shown(const st_writer *w)
{
	return w->display ? w->display : w->path;
}

const char *st_writer_error(const st_writer *w)
{
	return w->err;
}

int32_t st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape)
{
	char q[160];
	fmt_quote(name, q, sizeof q);
	if (w->laid_out) {
		fmt_fail(w->err, LQ_ERR_ARG, "tensor '%s' added after the layout was fixed", q);
		return -1;
	}
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			fmt_fail(w->err, LQ_ERR_ARG, "tensor name '%s' contains a control character", q);
			return -1;
		}
	if (!json_utf8_valid(name, strlen(name), NULL)) {
		fmt_fail(w->err, LQ_ERR_ARG, "tensor name '%s' is not valid UTF-8", q);
		return -1;
	}
	if (strcmp(name, "__metadata__") == 0 || ndim < 0 || ndim > ST_MAX_DIMS || (unsigned)dtype >= ST_DTYPE_COUNT) {
		fmt_fail(w->err, LQ_ERR_ARG, "tensor '%s': invalid name, rank or dtype", q);
		return -1;
	}
	uint64_t nelem = 1, nbytes;
	for (int d = 0; d < ndim; d++)
		if (shape[d] < 0 || !fmt_mul_u64(nelem, (uint64_t)shape[d], &nelem)) {
			fmt_fail(w->err, LQ_ERR_ARG, "tensor '%s': invalid shape", q);
			return -1;
		}
	if (!st_tensor_bytes(dtype, nelem, &nbytes)) {
		fmt_fail(w->err, LQ_ERR_ARG, "tensor '%s': size is not a whole number of bytes", q);
		return -1;
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		wtensor *t = realloc(w->t, cap * sizeof *t);
		if (!t) {
			fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
			return -1;
		}
		w->t = t;
		w->cap = cap;
	}
	if (w->n >= INT32_MAX) {
		fmt_fail(w->err, LQ_ERR_ARG, "too many tensors");
		return -1;
	}
	wtensor *t = &w->t[w->n];
	memset(t, 0, sizeof *t);
	t->name = strdup(name);
	if (!t->name) {
		fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
		return -1;
	}
	t->dtype = dtype;
	t->ndim = ndim;
	memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
	t->nbytes = nbytes;
	return (int32_t)w->n++;
}

lq_status st_writer_set_meta(st_writer *w, const char *key, const char *value)
{
	char *v = strdup(value);
	if (!v)
		return fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < w->nmeta; i++)
		if (strcmp(w->meta[i].key, key) == 0) {
			free(w->meta[i].value);
			w->meta[i].value = v;
			return LQ_OK;
		}
	struct meta *m = realloc(w->meta, (w->nmeta + 1) * sizeof *m);
	char *k = strdup(key);
	if (!m || !k) {
		if (m)
			w->meta = m;
		free(k);
		free(v);
		return fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
	}
	w->meta = m;
	w->meta[w->nmeta].key = k;
	w->meta[w->nmeta++].value = v;
	return LQ_OK;
}

/* ----------------------------------------------------------------------------------- layout */



/* A JSON string as serde_json writes it: quote, backslash and control characters escaped (\b \t \n \f \r
 * in their short forms, the others as \u00xx), the rest raw. */
static void put_json_string(fmt_buf *b, const char *s)
{
	fmt_buf_puts(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			fmt_buf_put(b, e, 2);
		} else if (c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r') {
			char e[2] = {'\\', c == '\b' ? 'b' : c == '\t' ? 't' : c == '\n' ? 'n' : c == '\f' ? 'f' : 'r'};
			fmt_buf_put(b, e, 2);
		} else if (c < 0x20) {
			fmt_buf_printf(b, "\\u%04x", c);
		} else {
			fmt_buf_put(b, (const char *)&c, 1);
		}
	}
	fmt_buf_puts(b, "\"");
}

static int by_dtype_then_name(const void *a, const void *b)
{
	const wtensor *x = *(const wtensor *const *)a, *y = *(const wtensor *const *)b;
	if (x->dtype != y->dtype)
		return x->dtype > y->dtype ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(const wtensor *const *)a)->name, (*(const wtensor *const *)b)->name);
}

static int by_meta_key(const void *a, const void *b)
{
	return strcmp(((const struct meta *)a)->key, ((const struct meta *)b)->key);
}

lq_status st_writer_layout(st_writer *w)
{
	if (w->laid_out)
		return LQ_OK;
	lq_status st = st_writer_set_meta(w, "format", "pt");
	if (st != LQ_OK)
		return st;
	/* ids stay the declaration order; the file order is a sorted array of pointers */
	wtensor **order = malloc((w->n ? w->n : 1) * sizeof *order);
	if (!order)
		return fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < w->n; i++)
		order[i] = &w->t[i];
	qsort(order, w->n, sizeof *order, by_name);
	for (size_t i = 1; i < w->n; i++)
		if (strcmp(order[i]->name, order[i - 1]->name) == 0) {
			char q[160];
			fmt_quote(order[i]->name, q, sizeof q); /* before order is freed */
			free(order);
			return fmt_fail(w->err, LQ_ERR_ARG, "tensor '%s' declared twice", q);
		}
	for (size_t i = 0; i < w->n; i++)
		order[i] = &w->t[i];
	if (!w->keep_order)
		qsort(order, w->n, sizeof *order, by_dtype_then_name);
	/* the official writer serializes its metadata map in no fixed order; sorted keys are one such order
	 * and make the header a function of the input alone */
	qsort(w->meta, w->nmeta, sizeof *w->meta, by_meta_key);

	fmt_buf b = {0};
	fmt_buf_put(&b, "\0\0\0\0\0\0\0\0", 8);
	fmt_buf_puts(&b, "{\"__metadata__\":{");
	for (size_t i = 0; i < w->nmeta; i++) {
		if (i)
			fmt_buf_puts(&b, ",");
		put_json_string(&b, w->meta[i].key);
		fmt_buf_puts(&b, ":");
		put_json_string(&b, w->meta[i].value);
	}
	fmt_buf_puts(&b, "}");
	uint64_t at = 0;
	for (size_t i = 0; i < w->n; i++) {
		wtensor *t = order[i];
		t->begin = at;
		if (!fmt_add_u64(at, t->nbytes, &at)) {
			free(order);
			free(b.p);
			return fmt_fail(w->err, LQ_ERR_ARG, "total size overflows");
		}
		fmt_buf_puts(&b, ",");
		put_json_string(&b, t->name);
		fmt_buf_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
		for (int d = 0; d < t->ndim; d++)
			fmt_buf_printf(&b, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
		fmt_buf_printf(&b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", t->begin, at);
	}
	fmt_buf_puts(&b, "}");
	while (b.len % 8 != 0)
		fmt_buf_puts(&b, " ");
	free(order);
	if (b.oom) {
		free(b.p);
		return fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
	}
	uint64_t n = b.len - 8;
	for (int i = 0; i < 8; i++)
		b.p[i] = (char)(n >> (8 * i) & 0xff);
	w->header = b.p;
	w->header_size = b.len;
	w->data_size = at;
	w->file_size = b.len + at;
	w->laid_out = true;
	return LQ_OK;
}

const void *st_writer_header(const st_writer *w, size_t *len)
{
	*len = w->header_size;
	return w->header;
}

uint64_t st_writer_file_size(const st_writer *w)
{
	return w->file_size;
}

uint64_t st_writer_data_size(const st_writer *w)
{
	return w->data_size;
}

size_t st_writer_count(const st_writer *w)
{
	return w->n;
}

uint64_t st_writer_tensor_bytes(const st_writer *w, int32_t id)
{
	return id >= 0 && (size_t)id < w->n ? w->t[id].nbytes : 0;
}

size_t st_writer_tensor_element_size(const st_writer *w, int32_t id)
{
	return id >= 0 && (size_t)id < w->n ? (size_t)st_dtype_bits(w->t[id].dtype) / 8 : 0;
}

/* ------------------------------------------------------------------------------------- output */

static lq_status write_seq(st_writer *w, const void *src, size_t len)
{
	lq_status st = fmt_fd_write(w->fd, src, len, shown(w), w->err);
	if (st == LQ_OK)
		w->emitted += (uint64_t)len;
	return st;
}

/* A stream takes bytes in order: what comes at the stream's position goes out, with whatever was held
 * that follows it; what comes ahead of it is held. The executor writes each task's outputs while it
 * reads the next few tensors, so what is held stays within a few tasks' outputs. */
static lq_status stream_put(st_writer *w, uint64_t pos, const void *src, size_t len)
{
	if (pos < w->emitted)
		return fmt_fail(w->err, LQ_ERR_ARG, "%s: byte %" PRIu64 " written after byte %" PRIu64 " was sent",
				shown(w), pos, w->emitted);
	if (pos > w->emitted) {
		if (w->npending == w->cap_pending) {
			size_t cap = w->cap_pending ? 2 * w->cap_pending : 16;
			struct piece *p = realloc(w->pending, cap * sizeof *p);
			if (!p)
				return fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
			w->pending = p;
			w->cap_pending = cap;
		}
		char *copy = malloc(len ? len : 1);
		if (!copy)
			return fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
		memcpy(copy, src, len);
		size_t i = w->npending;
		while (i > 0 && w->pending[i - 1].pos > pos)
			i--;
		if (i < w->npending)
			memmove(w->pending + i + 1, w->pending + i, (w->npending - i) * sizeof *w->pending);
		w->pending[i] = (struct piece){pos, len, copy};
		w->npending++;
		return LQ_OK;
	}
	lq_status st = write_seq(w, src, len);
	size_t done = 0;
	while (st == LQ_OK && done < w->npending && w->pending[done].pos == w->emitted) {
		st = write_seq(w, w->pending[done].data, w->pending[done].len);
		free(w->pending[done].data);
		done++;
	}
	if (done) {
		memmove(w->pending, w->pending + done, (w->npending - done) * sizeof *w->pending);
		w->npending -= done;
	}
	return st;
}

static lq_status write_full(st_writer *w, uint64_t pos, const void *src, size_t len)
{
	if (w->stream)
		return stream_put(w, pos, src, len);
	int fd;
	lq_status st = pooled_acquire(&w->file, &fd, shown(w), w->err);
	if (st != LQ_OK)
		return st;
	const char *s = src;
	while (len > 0) {
		ssize_t put = pwrite(fd, s, len > ((size_t)1 << 30) ? (size_t)1 << 30 : len, (off_t)pos);
		if (put < 0) {
			if (errno == EINTR)
				continue;
			st = fmt_fail(w->err, LQ_ERR_IO, "cannot write '%s': %s", shown(w), strerror(errno));
			break;
		}
		s += put;
		pos += (uint64_t)put;
		len -= (size_t)put;
	}
	pooled_release(&w->file);
	return st;
}

/* Whether the writer has somewhere to write: a file or a stream. */
static bool is_open(const st_writer *w)
{
	return w->stream ? w->fd >= 0 : pooled_is_open(&w->file);
}

lq_status st_writer_open(st_writer *w, const char *path)
{
	lq_status st = st_writer_layout(w);
	if (st != LQ_OK)
		return st;
	if (is_open(w) || w->created)
		return fmt_fail(w->err, LQ_ERR_ARG, "writer already open");
	free(w->path);
	w->path = strdup(path);
	if (!w->path)
		return fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
	if ((st = pooled_create(&w->file, path, shown(w), w->err)) != LQ_OK)
		return st;
	w->created = true;
	return write_full(w, 0, w->header, w->header_size);
}

void st_writer_keep_order(st_writer *w)
{
	w->keep_order = true;
}

lq_status st_writer_open_stream(st_writer *w, int fd, const char *name)
{
	lq_status st = st_writer_layout(w);
	if (st != LQ_OK)
		return st;
	if (is_open(w) || w->created)
		return fmt_fail(w->err, LQ_ERR_ARG, "writer already open");
	if ((st = st_writer_set_display_name(w, name)) != LQ_OK)
		return st;
	w->fd = fd;
	w->stream = true;
	w->emitted = 0;
	fmt_pipe_grow(fd);
	return write_full(w, 0, w->header, w->header_size);
}

lq_status st_writer_write(st_writer *w, int32_t id, uint64_t offset, const void *buf, size_t len)
{
	if (id < 0 || (size_t)id >= w->n || !is_open(w))
		return fmt_fail(w->err, LQ_ERR_ARG, "write to an unknown tensor");
	wtensor *t = &w->t[id];
	if (offset > t->nbytes || len > t->nbytes - offset)
		return fmt_fail(w->err, LQ_ERR_ARG, "write past the end of tensor '%s'", t->name);
	if (len == 0)
		return LQ_OK;
	/* Every byte once: a write over bytes already written is refused, so that the count st_writer_finish
	 * checks means every byte. i: the first range that ends at or after offset. */
	uint64_t end = offset + len;
	size_t lo = 0, hi = t->nranges;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->ranges[mid].end < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t i = lo;
	struct wrange *r = t->ranges;
	if (i < t->nranges && r[i].begin < end && r[i].end > offset)
		return fmt_fail(w->err, LQ_ERR_ARG, "tensor '%s': bytes %" PRIu64 " to %" PRIu64 " written twice", t->name,
				offset > r[i].begin ? offset : r[i].begin, end < r[i].end ? end : r[i].end);
	if (t->nranges == t->cap_ranges && !(i < t->nranges && (r[i].end == offset || r[i].begin == end))) {
		size_t cap = t->cap_ranges ? 2 * t->cap_ranges : 4;
		r = realloc(t->ranges, cap * sizeof *r);
		if (!r)
			return fmt_fail(w->err, LQ_ERR_NOMEM, "out of memory");
		t->ranges = r;
		t->cap_ranges = cap;
	}
	lq_status st = write_full(w, w->header_size + t->begin + offset, buf, len);
	if (st != LQ_OK)
		return st;
	t->written += len;
	if (i < t->nranges && r[i].end == offset) {
		/* extends range i, and joins it to the next when they meet */
		r[i].end = end;
		if (i + 1 < t->nranges && r[i + 1].begin == end) {
			r[i].end = r[i + 1].end;
			memmove(r + i + 1, r + i + 2, (t->nranges - i - 2) * sizeof *r);
			t->nranges--;
		}
	} else if (i < t->nranges && r[i].begin == end) {
		r[i].begin = offset;
	} else {
		memmove(r + i + 1, r + i, (t->nranges - i) * sizeof *r);
		r[i] = (struct wrange){offset, end};
		t->nranges++;
	}
	return LQ_OK;
}

lq_status st_writer_finish(st_writer *w)
{
	if (!is_open(w))
		return fmt_fail(w->err, LQ_ERR_ARG, "writer not open");
	for (size_t i = 0; i < w->n; i++)
		if (w->t[i].written != w->t[i].nbytes) {
			char q[160];
			return fmt_fail(w->err, LQ_ERR_ARG, "%s: tensor '%s': %" PRIu64 " of %" PRIu64 " bytes written", shown(w),
					fmt_quote(w->t[i].name, q, sizeof q), w->t[i].written, w->t[i].nbytes);
		}
	if (w->stream) {
		/* a pipe cannot be synced; a file it was redirected to can */
		if (w->emitted != w->file_size)
			return fmt_fail(w->err, LQ_ERR_ARG, "%s: %" PRIu64 " of %" PRIu64 " bytes sent", shown(w), w->emitted,
					w->file_size);
		if (fsync(w->fd) != 0 && errno != EINVAL && errno != EROFS)
			return fmt_fail(w->err, LQ_ERR_IO, "cannot write '%s': %s", shown(w), strerror(errno));
		w->finished = true;
		return LQ_OK;
	}
	int fd;
	lq_status st = pooled_acquire(&w->file, &fd, shown(w), w->err);
	if (st != LQ_OK)
		return st;
	if (fsync(fd) != 0)
		st = fmt_fail(w->err, LQ_ERR_IO, "cannot write '%s': %s", shown(w), strerror(errno));
	pooled_release(&w->file);
	if (st != LQ_OK)
		return st;
	if ((st = pooled_close(&w->file, shown(w), w->err)) != LQ_OK)
		return st;
	w->finished = true;
	return LQ_OK;
}
