/*
 * st_read.c: the safetensors reader (safetensors.h). Every value of the header is checked before it is
 * used; the checks are those of the official reader (safetensors 0.8), in the order of
 * shared/specs/safetensors.md, plus the ones it lacks.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_scan.h"

static lq_status spool_marker(void *arg, uint64_t pos, void *dst, size_t len, char *err);

static lq_status stream_marker(void *arg, uint64_t pos, void *dst, size_t len, char *err);

static const struct {
	const char *name;
	unsigned bits;
} dtypes[ST_DTYPE_COUNT] = {
	[ST_BOOL] = {"BOOL", 8},       [ST_F4] = {"F4", 4},
	[ST_F6_E2M3] = {"F6_E2M3", 6}, [ST_F6_E3M2] = {"F6_E3M2", 6},
	[ST_U8] = {"U8", 8},           [ST_I8] = {"I8", 8},
	[ST_F8_E5M2] = {"F8_E5M2", 8}, [ST_F8_E4M3] = {"F8_E4M3", 8},
	[ST_F8_E8M0] = {"F8_E8M0", 8}, [ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
	[ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
	[ST_I16] = {"I16", 16},        [ST_U16] = {"U16", 16},
	[ST_F16] = {"F16", 16},        [ST_BF16] = {"BF16", 16},
	[ST_I32] = {"I32", 32},        [ST_U32] = {"U32", 32},
	[ST_F32] = {"F32", 32},        [ST_C64] = {"C64", 64},
	[ST_F64] = {"F64", 64},        [ST_I64] = {"I64", 64},
	[ST_U64] = {"U64", 64},
};

const char *st_dtype_name(st_dtype dtype)
{
	return (unsigned)dtype < ST_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

unsigned st_dtype_bits(st_dtype dtype)
{
	return (unsigned)dtype < ST_DTYPE_COUNT ? dtypes[dtype].bits : 0;
}

bool st_dtype_parse(const char *name, st_dtype *out)
{
	for (int i = 0; i < ST_DTYPE_COUNT; i++)
		if (strcmp(name, dtypes[i].name) == 0) {
			*out = (st_dtype)i;
			return true;
		}
	return false;
}

bool st_dtype_to_lq(st_dtype dtype, lq_dtype *out)
{
	switch (dtype) {
	case ST_F32: *out = LQ_DTYPE_F32; return true;
	case ST_F16: *out = LQ_DTYPE_F16; return true;
	case ST_BF16: *out = LQ_DTYPE_BF16; return true;
	case ST_U8: *out = LQ_DTYPE_U8; return true;
	default: return false;
	}
}

st_dtype st_dtype_from_lq(lq_dtype dtype)
{
	switch (dtype) {
	case LQ_DTYPE_F32: return ST_F32;
	case LQ_DTYPE_F16: return ST_F16;
	case LQ_DTYPE_BF16: return ST_BF16;
	default: return ST_U8;
	}
}

bool st_tensor_bytes(st_dtype dtype, uint64_t nelem, uint64_t *bytes)
{
	uint64_t bits;
	if (!fmt_mul_u64(nelem, st_dtype_bits(dtype), &bits) || bits % 8 != 0)
		return false;
	*bytes = bits / 8;
	return true;
}

st_file *st_file_create(void)
{
	st_file *f = calloc(1, sizeof *f);
	if (f) {
		f->fd = -1;
		f->file = (pooled_file)POOLED_FILE_INIT;
	}
	return f;
}

static void clear(st_file *f)
{
	for (size_t i = 0; i < f->ntensors; i++)
		free(f->tensors[i].name);
	for (size_t i = 0; i < f->nmeta; i++) {
		free(f->meta_keys[i]);
		free(f->meta_values[i]);
	}
	free(f->tensors);
	free(f->meta_keys);
	free(f->meta_values);
	free(f->by_name);
	f->tensors = NULL;
	f->meta_keys = f->meta_values = NULL;
	f->by_name = NULL;
	f->ntensors = f->nmeta = 0;
}

void st_file_free(st_file *f)
{
	if (!f)
		return;
	clear(f);
	if (f->reader == spool_marker)
		close(f->fd);
	pooled_close(&f->file, f->path, f->err);
	free(f->path);
	free(f);
}

const char *st_file_error(const st_file *f)
{
	return f->err;
}

/* ------------------------------------------------------------------------------ header parsing */

typedef struct parser {
	st_file *f;
	json_scan js;
	const char *name; /* file name for messages */
	size_t cap_tensors, cap_meta;
} parser;

/* A header error at the scanner's position: "file: header byte 123: message". */
static lq_status header_fail(parser *p)
{
	return fmt_fail(p->f->err, LQ_ERR_CORRUPT, "%s: header byte %zu: %s", p->name, 8 + p->js.err_pos, p->js.err);
}

/* The same inside the entry of a tensor: "file: header byte 123: tensor 'x': message". */
static lq_status tensor_fail(parser *p, const char *qname)
{
	return fmt_fail(p->f->err, LQ_ERR_CORRUPT, "%s: header byte %zu: tensor '%s': %s", p->name, 8 + p->js.err_pos,
			qname, p->js.err);
}

static bool has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

static lq_status parse_metadata(parser *p)
{
	st_file *f = p->f;
	json_scan *js = &p->js;
	if (json_peek(js) == 'n') /* null: the official reader takes it as no metadata */
		return json_skip_value(js) ? LQ_OK : header_fail(p);
	if (!json_expect(js, '{'))
		return header_fail(p);
	if (json_accept(js, '}'))
		return LQ_OK;
	do {
		char *key = NULL, *value = NULL;
		size_t klen = 0, vlen = 0;
		if (!json_string(js, &key, &klen) || !json_expect(js, ':')) {
			free(key);
			return header_fail(p);
		}
		if (json_peek(js) != '"') {
			char q[128];
			json_fail(js, "__metadata__ value of '%s' is not a string", fmt_quote(key, q, sizeof q));
			free(key);
			return header_fail(p);
		}
		if (!json_string(js, &value, &vlen)) {
			free(key);
			return header_fail(p);
		}
		if (strlen(key) != klen || strlen(value) != vlen) {
			/* \u0000 would cut the string short for every C caller: refused, never truncated */
			char q[128];
			json_fail(js, "__metadata__ entry '%s' contains a NUL character", fmt_quote_n(key, klen, q, sizeof q));
			free(key);
			free(value);
			return header_fail(p);
		}
		for (size_t i = 0; i < f->nmeta; i++)
			if (strcmp(f->meta_keys[i], key) == 0) {
				char q[128];
				json_fail(js, "__metadata__ key '%s' appears twice", fmt_quote(key, q, sizeof q));
				free(key);
				free(value);
				return header_fail(p);
			}
		if (f->nmeta == p->cap_meta) {
			size_t cap = p->cap_meta ? 2 * p->cap_meta : 8;
			char **k = realloc(f->meta_keys, cap * sizeof *k);
			if (k)
				f->meta_keys = k;
			char **v = k ? realloc(f->meta_values, cap * sizeof *v) : NULL;
			if (v)
				f->meta_values = v;
			if (!k || !v) {
				free(key);
				free(value);
				return fmt_fail(f->err, LQ_ERR_NOMEM, "%s: out of memory", p->name);
			}
			p->cap_meta = cap;
		}
		f->meta_keys[f->nmeta] = key;
		f->meta_values[f->nmeta++] = value;
	} while (json_accept(js, ','));
	return json_expect(js, '}') ? LQ_OK : header_fail(p);
}

/* [u64, ...] into out (at most max entries; *n = count). */
static bool parse_u64_array(json_scan *js, uint64_t *out, int max, int *n, const char *what, bool *too_many)
{
	*n = 0;
	*too_many = false;
	if (!json_expect(js, '['))
		return false;
	if (json_accept(js, ']'))
		return true;
	do {
		uint64_t v;
		if (!json_u64(js, &v))
			return false;
		if (*n == max) {
			*too_many = true;
			return json_fail(js, "%s has more than %d entries", what, max);
		}
		out[(*n)++] = v;
	} while (json_accept(js, ','));
	return json_expect(js, ']');
}

static lq_status parse_tensor(parser *p, st_tensor *t, const char *qname)
{
	json_scan *js = &p->js;
	bool have_dtype = false, have_shape = false, have_offsets = false;
	if (!json_expect(js, '{'))
		return tensor_fail(p, qname);
	if (!json_accept(js, '}')) {
		do {
			char *field = NULL;
			size_t flen = 0;
			if (!json_string(js, &field, &flen) || !json_expect(js, ':')) {
				free(field);
				return tensor_fail(p, qname);
			}
			/* a name with \u0000 in it is some other, unknown, field */
			bool *seen = strlen(field) != flen ? NULL
				     : strcmp(field, "dtype") == 0 ? &have_dtype
				     : strcmp(field, "shape") == 0 ? &have_shape
				     : strcmp(field, "data_offsets") == 0 ? &have_offsets : NULL;
			if (seen && *seen) {
				json_fail(js, "field '%s' appears twice", field);
				free(field);
				return tensor_fail(p, qname);
			}
			if (seen == &have_dtype) {
				char *dt = NULL;
				size_t dtlen = 0;
				if (json_peek(js) != '"') {
					json_fail(js, "dtype is not a string");
				} else if (json_string(js, &dt, &dtlen) &&
					   (strlen(dt) != dtlen || !st_dtype_parse(dt, &t->dtype))) {
					char q[64];
					json_fail(js, "unknown dtype '%s'", fmt_quote_n(dt, dtlen, q, sizeof q));
				}
				bool ok = dt && js->err[0] == '\0';
				free(dt);
				if (!ok) {
					free(field);
					return tensor_fail(p, qname);
				}
			} else if (seen == &have_shape) {
				uint64_t dims[ST_MAX_DIMS];
				bool too_many;
				if (!parse_u64_array(js, dims, ST_MAX_DIMS, &t->ndim, "shape", &too_many)) {
					free(field);
					if (too_many)
						return fmt_fail(p->f->err, LQ_ERR_UNSUPPORTED,
								"%s: tensor '%s': more than %d dimensions", p->name, qname,
								ST_MAX_DIMS);
					return tensor_fail(p, qname);
				}
				for (int d = 0; d < t->ndim; d++) {
					if (dims[d] > (uint64_t)INT64_MAX) {
						json_fail(js, "dimension %d is too large", d);
						free(field);
						return tensor_fail(p, qname);
					}
					t->shape[d] = (int64_t)dims[d];
				}
			} else if (seen == &have_offsets) {
				uint64_t off[2];
				int n;
				bool too_many;
				bool ok = parse_u64_array(js, off, 2, &n, "data_offsets", &too_many);
				if (ok && n != 2)
					ok = json_fail(js, "data_offsets must hold two numbers");
				if (!ok) {
					free(field);
					return tensor_fail(p, qname);
				}
				t->begin = off[0];
				t->end = off[1];
			} else if ((js->depth = 3, !json_skip_value(js))) {
				/* an unknown field: ignored, as the official reader does. Its parser (serde_json) fails
				 * when a value opens its 128th level of nesting, one level before json_skip_value does:
				 * the depth counts the header object, this tensor's object and that one level. */
				free(field);
				return tensor_fail(p, qname);
			}
			if (seen)
				*seen = true;
			free(field);
		} while (json_accept(js, ','));
		if (!json_expect(js, '}'))
			return tensor_fail(p, qname);
	}
	if (!have_dtype || !have_shape || !have_offsets) {
		json_fail(js, "missing field '%s'",
			  !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
		return tensor_fail(p, qname);
	}
	return LQ_OK;
}

static lq_status parse_header_json(parser *p, const unsigned char *json, size_t len)
{
	st_file *f = p->f;
	json_scan *js = &p->js;
	json_scan_init(js, json, len);
	bool seen_meta = false;
	if (!json_expect(js, '{'))
		return header_fail(p);
	if (!json_accept(js, '}')) {
		do {
			char *name = NULL;
			size_t nlen;
			if (!json_string(js, &name, &nlen) || !json_expect(js, ':')) {
				free(name);
				return header_fail(p);
			}
			char q[160];
			fmt_quote_n(name, nlen, q, sizeof q);
			if (strlen(name) == nlen && strcmp(name, "__metadata__") == 0) {
				free(name);
				if (seen_meta) {
					json_fail(js, "__metadata__ appears twice");
					return header_fail(p);
				}
				seen_meta = true;
				lq_status st = parse_metadata(p);
				if (st != LQ_OK)
					return st;
				continue;
			}
			if (has_control(name, nlen)) {
				free(name);
				json_fail(js, "tensor name '%s' contains a control character", q);
				return header_fail(p);
			}
			if (f->ntensors == p->cap_tensors) {
				size_t cap = p->cap_tensors ? 2 * p->cap_tensors : 64;
				st_tensor *t = realloc(f->tensors, cap * sizeof *t);
				if (!t) {
					free(name);
					return fmt_fail(f->err, LQ_ERR_NOMEM, "%s: out of memory", p->name);
				}
				f->tensors = t;
				p->cap_tensors = cap;
			}
			st_tensor *t = &f->tensors[f->ntensors++];
			memset(t, 0, sizeof *t);
			t->name = name;
			lq_status st = parse_tensor(p, t, q);
			if (st != LQ_OK)
				return st;
		} while (json_accept(js, ','));
		if (!json_expect(js, '}'))
			return header_fail(p);
	}
	return json_end(js) ? LQ_OK : header_fail(p);
}

static int by_offsets(const void *a, const void *b)
{
	const st_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

/* The checks on offsets and sizes, after the JSON is known to be well-formed. */
static lq_status check_layout(parser *p)
{
	st_file *f = p->f;
	if (f->ntensors > 1) /* tensors is NULL when there are none, and qsort takes no NULL */
		qsort(f->tensors, f->ntensors, sizeof *f->tensors, by_offsets);
	uint64_t at = 0;
	for (size_t i = 0; i < f->ntensors; i++) {
		st_tensor *t = &f->tensors[i];
		char q[160];
		fmt_quote(t->name, q, sizeof q);
		if (t->end < t->begin)
			return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
					"] end before they begin", p->name, q, t->begin, t->end);
		if (t->begin != at)
			return fmt_fail(f->err, LQ_ERR_CORRUPT,
					"%s: tensor '%s': data begins at offset %" PRIu64 " but the previous tensor ends at %"
					PRIu64 " (%s)", p->name, q, t->begin, at, t->begin > at ? "a gap" : "overlapping data");
		uint64_t nelem = 1;
		for (int d = 0; d < t->ndim; d++)
			if (!fmt_mul_u64(nelem, (uint64_t)t->shape[d], &nelem))
				return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: tensor '%s': shape overflows", p->name, q);
		uint64_t bits, bytes;
		if (!fmt_mul_u64(nelem, st_dtype_bits(t->dtype), &bits))
			return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: tensor '%s': size overflows", p->name, q);
		if (bits % 8 != 0)
			return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: tensor '%s': %" PRIu64 " elements of %s are not a whole "
					"number of bytes", p->name, q, nelem, st_dtype_name(t->dtype));
		bytes = bits / 8;
		if (t->end - t->begin != bytes)
			return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %"
					PRIu64 " bytes but %s of %" PRIu64 " elements needs %" PRIu64, p->name, q, t->begin,
					t->end, t->end - t->begin, st_dtype_name(t->dtype), nelem, bytes);
		t->nelem = nelem;
		at = t->end;
	}
	uint64_t expect;
	if (f->file_size == ST_SIZE_FROM_HEADER && fmt_add_u64(f->data_start, at, &expect))
		f->file_size = expect; /* a stream: its size is what the header says */
	if (!fmt_add_u64(f->data_start, at, &expect) || expect != f->file_size)
		return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: the tensors end at byte %" PRIu64 " of the data but the file "
				"holds %" PRIu64 " data bytes (%s)", p->name, at, f->file_size - f->data_start,
				f->file_size - f->data_start > at ? "trailing bytes" : "truncated file");
	/* names: sorted index, duplicates */
	f->by_name = malloc((f->ntensors ? f->ntensors : 1) * sizeof *f->by_name);
	if (!f->by_name)
		return fmt_fail(f->err, LQ_ERR_NOMEM, "%s: out of memory", p->name);
	for (size_t i = 0; i < f->ntensors; i++)
		f->by_name[i] = &f->tensors[i];
	qsort(f->by_name, f->ntensors, sizeof *f->by_name, by_name);
	for (size_t i = 1; i < f->ntensors; i++)
		if (strcmp(f->by_name[i]->name, f->by_name[i - 1]->name) == 0) {
			char q[160];
			return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: tensor '%s' appears twice in the header", p->name,
					fmt_quote(f->by_name[i]->name, q, sizeof q));
		}
	return LQ_OK;
}

lq_status st_file_parse(st_file *f, const void *buf, size_t len, uint64_t file_size, const char *name)
{
	clear(f);
	f->err[0] = '\0';
	f->file_size = file_size;
	const unsigned char *b = buf;
	if (file_size < 8 || len < 8)
		return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: file of %" PRIu64 " bytes is too short for a safetensors "
				"header", name, file_size);
	uint64_t n = st_header_length(b);
	f->header_len = n;
	if (n > ST_MAX_HEADER)
		return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: header length %" PRIu64 " exceeds the limit of %llu bytes",
				name, n, ST_MAX_HEADER);
	if (n > file_size - 8)
		return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: header length %" PRIu64 " runs past the end of the file (%"
				PRIu64 " bytes)", name, n, file_size);
	if (len < 8 + n)
		return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: header truncated", name);
	f->data_start = 8 + n;
	size_t bad;
	if (!json_utf8_valid(b + 8, (size_t)n, &bad))
		return fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: header byte %zu: not valid UTF-8", name, 8 + bad);
	parser p = {.f = f, .name = name};
	lq_status st = parse_header_json(&p, b + 8, (size_t)n);
	if (st == LQ_OK)
		st = check_layout(&p);
	if (st != LQ_OK)
		clear(f);
	return st;
}

/* --------------------------------------------------------------------------------- file access */

static lq_status pread_full(st_file *f, uint64_t pos, void *dst, size_t len)
{
	int fd;
	lq_status st = pooled_acquire(&f->file, &fd, f->path, f->err);
	if (st != LQ_OK)
		return st;
	char *d = dst;
	while (len > 0 && st == LQ_OK) {
		ssize_t got = pread(fd, d, len > ((size_t)1 << 30) ? (size_t)1 << 30 : len, (off_t)pos);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			st = fmt_fail(f->err, LQ_ERR_IO, "cannot read '%s': %s", f->path, strerror(errno));
		else if (got == 0)
			st = fmt_fail(f->err, LQ_ERR_IO, "cannot read '%s': unexpected end of file at byte %" PRIu64
				      " (did it change while being read?)", f->path, pos);
		else {
			d += got;
			pos += (uint64_t)got;
			len -= (size_t)got;
		}
	}
	pooled_release(&f->file);
	return st;
}

/* st_file_open_stream's tag in f->reader: reads go through stream_read_at, never through this. */
static lq_status stream_marker(void *arg, uint64_t pos, void *dst, size_t len, char *err)
{
	(void)arg, (void)pos, (void)dst, (void)len;
	return fmt_fail(err, LQ_ERR_ARG, "not a reader");
}

/* read(2) until len bytes or the end; *got says how many came. */
static lq_status stream_read(st_file *f, void *dst, size_t len, size_t *got)
{
	lq_status st = fmt_fd_read(f->fd, dst, len, got, f->path, f->err);
	f->stream_pos += (uint64_t)*got;
	return st;
}

/* A stream goes forward only: what lies before pos is read and dropped. */
static lq_status stream_read_at(st_file *f, uint64_t pos, void *dst, size_t len)
{
	if (pos < f->stream_pos)
		return fmt_fail(f->err, LQ_ERR_ARG, "%s: byte %" PRIu64 " was asked for after byte %" PRIu64
				" (a stream is read once, in order)", f->path, pos, f->stream_pos);
	char drop[1 << 16];
	size_t got;
	while (f->stream_pos < pos) {
		uint64_t gap = pos - f->stream_pos;
		lq_status st = stream_read(f, drop, gap < sizeof drop ? (size_t)gap : sizeof drop, &got);
		if (st != LQ_OK)
			return st;
		if (got == 0)
			break;
	}
	lq_status st = f->stream_pos == pos ? stream_read(f, dst, len, &got) : LQ_OK;
	if (st == LQ_OK && (f->stream_pos != pos + len))
		st = fmt_fail(f->err, LQ_ERR_IO, "cannot read '%s': the stream ends at byte %" PRIu64 ", before the "
			      "%" PRIu64 " bytes its header announces", f->path, f->stream_pos, f->file_size);
	return st;
}

/* st_file_stream_spool's tag in f->reader: the data lies in the unlinked file f->fd from its byte 0 on. */
static lq_status spool_marker(void *arg, uint64_t pos, void *dst, size_t len, char *err)
{
	(void)arg, (void)pos, (void)dst, (void)len;
	return fmt_fail(err, LQ_ERR_ARG, "not a reader");
}

static lq_status spool_read_at(st_file *f, uint64_t pos, void *dst, size_t len)
{
	char *p = dst;
	uint64_t at = pos - f->data_start;
	while (len) {
		ssize_t got = pread(f->fd, p, len, (off_t)at);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return fmt_fail(f->err, LQ_ERR_IO, "cannot read the copy of '%s': %s", f->path,
					got < 0 ? strerror(errno) : "it is shorter than written");
		p += got;
		at += (uint64_t)got;
		len -= (size_t)got;
	}
	return LQ_OK;
}

static lq_status read_full(st_file *f, uint64_t pos, void *dst, size_t len)
{
	if (f->reader == spool_marker)
		return pos < f->data_start ? fmt_fail(f->err, LQ_ERR_ARG, "%s: the header is not kept", f->path)
					   : spool_read_at(f, pos, dst, len);
	if (f->reader == stream_marker)
		return stream_read_at(f, pos, dst, len);
	if (f->reader)
		return f->reader(f->reader_arg, pos, dst, len, f->err);
	return pread_full(f, pos, dst, len);
}

/* The checks of st_file_open on the first bytes, read through read_full. */
static lq_status open_common(st_file *f, uint64_t size)
{
	const char *path = f->path;
	unsigned char prefix[8] = {0};
	if (size < 8)
		return st_file_parse(f, prefix, 0, size, path);
	lq_status st = read_full(f, 0, prefix, 8);
	if (st != LQ_OK)
		return st;
	uint64_t n = st_header_length(prefix);
	if (n > ST_MAX_HEADER || n > size - 8)
		return st_file_parse(f, prefix, 8, size, path); /* reports the bad length */
	unsigned char *hdr = malloc((size_t)(8 + n));
	if (!hdr)
		return fmt_fail(f->err, LQ_ERR_NOMEM, "%s: out of memory for a header of %" PRIu64 " bytes", path, n);
	memcpy(hdr, prefix, 8);
	st = read_full(f, 8, hdr + 8, (size_t)n);
	if (st == LQ_OK)
		st = st_file_parse(f, hdr, (size_t)(8 + n), size, path);
	free(hdr);
	return st;
}

static lq_status set_path(st_file *f, const char *path)
{
	f->err[0] = '\0';
	free(f->path);
	f->path = strdup(path);
	if (!f->path)
		return fmt_fail(f->err, LQ_ERR_NOMEM, "out of memory");
	pooled_close(&f->file, f->path, f->err);
	if (f->reader == spool_marker)
		close(f->fd);
	f->fd = -1;
	f->reader = NULL;
	f->reader_arg = NULL;
	return LQ_OK;
}

lq_status st_file_open(st_file *f, const char *path)
{
	lq_status st = set_path(f, path);
	if (st != LQ_OK)
		return st;
	uint64_t size;
	if ((st = pooled_open_input(&f->file, path, &size, f->err)) != LQ_OK)
		return st;
	return open_common(f, size);
}

lq_status st_file_open_reader(st_file *f, const char *name, uint64_t file_size, st_read_fn reader, void *arg)
{
	lq_status st = set_path(f, name);
	if (st != LQ_OK)
		return st;
	f->reader = reader;
	f->reader_arg = arg;
	return open_common(f, file_size);
}

lq_status st_file_open_stream(st_file *f, int fd, const char *name)
{
	lq_status st = set_path(f, name);
	if (st != LQ_OK)
		return st;
	f->fd = fd;
	f->reader = stream_marker;
	f->stream_pos = 0;
	fmt_pipe_grow(fd);
	/* the size is not known before the header: the header's length first, then the header, whose last
	 * data offset gives it */
	unsigned char prefix[8] = {0};
	size_t got;
	if ((st = stream_read(f, prefix, 8, &got)) != LQ_OK)
		return st;
	if (got < 8)
		return st_file_parse(f, prefix, got, got, name);
	uint64_t n = st_header_length(prefix);
	if (n > ST_MAX_HEADER)
		return st_file_parse(f, prefix, 8, ST_SIZE_FROM_HEADER, name); /* reports the bad length */
	unsigned char *hdr = malloc((size_t)(8 + n));
	if (!hdr)
		return fmt_fail(f->err, LQ_ERR_NOMEM, "%s: out of memory for a header of %" PRIu64 " bytes", name, n);
	memcpy(hdr, prefix, 8);
	st = stream_read(f, hdr + 8, (size_t)n, &got);
	if (st == LQ_OK)
		st = got < n ? st_file_parse(f, hdr, 8 + got, 8 + got, name) /* reports the short header */
			     : st_file_parse(f, hdr, (size_t)(8 + n), ST_SIZE_FROM_HEADER, name);
	free(hdr);
	return st;
}

lq_status st_file_stream_end(st_file *f)
{
	if (f->reader != stream_marker)
		return LQ_OK;
	if (f->stream_pos < f->file_size) {
		char drop;
		lq_status st = stream_read_at(f, f->file_size - 1, &drop, 1);
		if (st != LQ_OK)
			return st;
	}
	size_t got;
	char extra;
	lq_status st = stream_read(f, &extra, 1, &got);
	if (st == LQ_OK && got)
		st = fmt_fail(f->err, LQ_ERR_CORRUPT, "%s: bytes follow the last tensor (at byte %" PRIu64 ")", f->path,
			      f->file_size);
	return st;
}

lq_status st_file_stream_spool(st_file *f, const char *tmpdir)
{
	if (f->reader != stream_marker || f->stream_pos != f->data_start)
		return fmt_fail(f->err, LQ_ERR_ARG, "%s: not a stream at its data", f->path);
	char *tmp = fmt_join(tmpdir && *tmpdir ? tmpdir : "/tmp", "/", ".lq-stream-XXXXXX");
	if (!tmp)
		return fmt_fail(f->err, LQ_ERR_NOMEM, "out of memory");
	int fd = mkstemp(tmp);
	int saved = errno;
	if (fd >= 0)
		unlink(tmp); /* nothing to remove on any exit: the copy lives as long as the descriptor */
	lq_status st = fd < 0 ? fmt_fail(f->err, LQ_ERR_IO, "cannot make a copy of %s in '%s': %s", f->path,
					 tmpdir && *tmpdir ? tmpdir : "/tmp", strerror(saved))
			      : LQ_OK;
	free(tmp);
	if (st != LQ_OK)
		return st;
	size_t cap = (size_t)1 << 20;
	char *buf = malloc(cap);
	uint64_t at = 0, total = f->file_size - f->data_start;
	if (!buf)
		st = fmt_fail(f->err, LQ_ERR_NOMEM, "out of memory");
	while (st == LQ_OK && at < total) {
		size_t want = total - at < cap ? (size_t)(total - at) : cap, got;
		st = stream_read(f, buf, want, &got);
		if (st == LQ_OK && got < want)
			st = fmt_fail(f->err, LQ_ERR_IO, "cannot read '%s': the stream ends at byte %" PRIu64 ", before the "
				      "%" PRIu64 " bytes its header announces", f->path, f->stream_pos, f->file_size);
		for (size_t done = 0; st == LQ_OK && done < got;) {
			ssize_t w = pwrite(fd, buf + done, got - done, (off_t)(at + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				st = fmt_fail(f->err, LQ_ERR_IO, "cannot write the copy of %s in '%s': %s", f->path,
					      tmpdir && *tmpdir ? tmpdir : "/tmp", w < 0 ? strerror(errno) : "no progress");
			else
				done += (size_t)w;
		}
		at += got;
		if (st == LQ_OK && fmt_cancelled(NULL))
			st = fmt_fail(f->err, LQ_ERR_CANCELLED, "interrupted");
	}
	free(buf);
	if (st == LQ_OK)
		st = st_file_stream_end(f);
	if (st != LQ_OK) {
		close(fd);
		return st;
	}
	f->fd = fd;
	f->reader = spool_marker;
	return LQ_OK;
}

lq_status st_file_read(st_file *f, const st_tensor *t, uint64_t offset, void *dst, size_t len)
{
	uint64_t tsize = t->end - t->begin;
	if (offset > tsize || len > tsize - offset)
		return fmt_fail(f->err, LQ_ERR_ARG, "%s: read past the end of tensor '%s'", f->path, t->name);
	if (!pooled_is_open(&f->file) && !f->reader)
		return fmt_fail(f->err, LQ_ERR_ARG, "%s: no file to read from", f->path ? f->path : "?");
	return read_full(f, f->data_start + t->begin + offset, dst, len);
}

const st_tensor *st_file_find(const st_file *f, const char *name)
{
	size_t lo = 0, hi = f->ntensors;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(f->by_name[mid]->name, name);
		if (c == 0)
			return f->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *st_file_meta(const st_file *f, const char *key)
{
	for (size_t i = 0; i < f->nmeta; i++)
		if (strcmp(f->meta_keys[i], key) == 0)
			return f->meta_values[i];
	return NULL;
}
