/*
 * manifest_verify.c: checking a directory or bundle against its MANIFEST (manifest.h). The manifest is
 * read back with json_scan, which keeps sizes exact up to 2^64 - 1 (cJSON's doubles would not) and lets
 * every key and type be checked as it comes: a manifest travels inside bundles and is hostile input.
 */
#include "manifest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "manifest_impl.h"
#include "safetensors.h"

/* -------------------------------------------------------------------------------------- parsing */

/* A manifest as read. */
typedef struct mf_tensor {
	char *name;
	st_dtype dtype;
	int ndim;
	size_t dims; /* its shape: ndim values from this index of the file's dims */
	unsigned char hash[16];
} mf_tensor;

typedef struct mf_file {
	char *path;
	uint64_t size;
	unsigned char hash[16];
	bool has_tensors;
	mf_tensor *tensors;
	size_t ntensors, cap;
	const mf_tensor **by_name;
	int64_t *dims;
	size_t ndims, cap_dims;
} mf_file;

typedef struct mf {
	char *tool, *version;
	mf_file *files;
	size_t nfiles, cap;
	const mf_file **by_path;
} mf;

static void mf_free(mf *m)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		mf_file *f = &m->files[i];
		for (size_t k = 0; k < f->ntensors; k++)
			free(f->tensors[k].name);
		free(f->tensors);
		free(f->by_name);
		free(f->dims);
		free(f->path);
	}
	free(m->files);
	free(m->by_path);
	free(m->tool);
	free(m->version);
}

/* arr (of *cap elements of `size` bytes) grown to hold n + 1, or NULL (arr unchanged). */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return arr;
	size_t c = *cap ? 2 * *cap : 8;
	void *q = c <= SIZE_MAX / size ? realloc(arr, c * size) : NULL;
	if (q)
		*cap = c;
	return q;
}

/* A string without NUL (a C string cannot hold one, and nothing we write has one). */
static bool read_string(json_scan *js, const char *what, char **out)
{
	size_t n = 0;
	*out = NULL;
	if (json_peek(js) != '"')
		return json_fail(js, "%s is not a string", what);
	if (!json_string(js, out, &n))
		return false;
	if (strlen(*out) != n) {
		free(*out);
		*out = NULL;
		return json_fail(js, "%s contains a NUL character", what);
	}
	return true;
}

static bool read_u64(json_scan *js, const char *what, uint64_t *out)
{
	int c = json_peek(js);
	if (c != '-' && (c < '0' || c > '9'))
		return json_fail(js, "%s is not a number", what);
	return json_u64(js, out);
}

static int hex_value(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool read_hash(json_scan *js, unsigned char out[16])
{
	char *s;
	if (!read_string(js, "xxh3_128", &s))
		return false;
	bool ok = strlen(s) == HASH_HEX;
	for (int i = 0; ok && i < 16; i++) {
		int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
		if ((ok = hi >= 0 && lo >= 0))
			out[i] = (unsigned char)(hi << 4 | lo);
	}
	free(s);
	return ok || json_fail(js, "xxh3_128 is not 32 lowercase hexadecimal digits");
}

/* Keys of an object, each once: `names` lists the keys allowed, `seen` has a flag for each. Returns the
 * index of the key read, -1 after an error. */
static int read_key(json_scan *js, const char *const *names, int nnames, bool *seen, const char *where)
{
	char *key;
	if (!read_string(js, "a key", &key))
		return -1;
	int k = 0;
	while (k < nnames && strcmp(key, names[k]) != 0)
		k++;
	char q[128];
	if (k == nnames)
		json_fail(js, "unknown key '%s' in %s", fmt_quote(key, q, sizeof q), where);
	else if (seen[k])
		json_fail(js, "key '%s' appears twice in %s", key, where);
	free(key);
	if (k == nnames || seen[k] || !json_expect(js, ':'))
		return -1;
	seen[k] = true;
	return k;
}

static bool missing_key(json_scan *js, const char *const *names, int nnames, const bool *seen, const char *where)
{
	for (int k = 0; k < nnames; k++)
		if (!seen[k])
			return json_fail(js, "%s has no key '%s'", where, names[k]);
	return true;
}

static bool read_shape(json_scan *js, mf_file *f, mf_tensor *t)
{
	t->dims = f->ndims;
	t->ndim = 0;
	if (json_peek(js) != '[')
		return json_fail(js, "shape is not a list");
	json_expect(js, '[');
	if (json_accept(js, ']'))
		return true;
	do {
		uint64_t v;
		if (!read_u64(js, "a dimension", &v))
			return false;
		if (t->ndim == ST_MAX_DIMS)
			return json_fail(js, "shape has more than %d dimensions", ST_MAX_DIMS);
		if (v > (uint64_t)INT64_MAX)
			return json_fail(js, "dimension %d is too large", t->ndim);
		int64_t *dims = grow(f->dims, &f->cap_dims, f->ndims, sizeof *dims);
		if (!dims)
			return json_fail(js, "out of memory");
		f->dims = dims;
		f->dims[f->ndims++] = (int64_t)v;
		t->ndim++;
	} while (json_accept(js, ','));
	return json_expect(js, ']');
}

static bool read_tensor(json_scan *js, mf_file *f)
{
	static const char *const names[] = {"name", "dtype", "shape", "xxh3_128"};
	bool seen[4] = {false};
	mf_tensor *tensors = grow(f->tensors, &f->cap, f->ntensors, sizeof *tensors);
	if (!tensors)
		return json_fail(js, "out of memory");
	f->tensors = tensors;
	mf_tensor *t = &f->tensors[f->ntensors++];
	memset(t, 0, sizeof *t);
	if (json_peek(js) != '{')
		return json_fail(js, "a tensor is not an object");
	json_expect(js, '{');
	if (json_accept(js, '}'))
		return missing_key(js, names, 4, seen, "a tensor");
	do {
		char *dt;
		switch (read_key(js, names, 4, seen, "a tensor")) {
		case 0:
			if (!read_string(js, "name", &t->name))
				return false;
			break;
		case 1: {
			if (!read_string(js, "dtype", &dt))
				return false;
			bool known = st_dtype_parse(dt, &t->dtype);
			char q[64];
			if (!known)
				json_fail(js, "unknown dtype '%s'", fmt_quote(dt, q, sizeof q));
			free(dt);
			if (!known)
				return false;
			break;
		}
		case 2:
			if (!read_shape(js, f, t))
				return false;
			break;
		case 3:
			if (!read_hash(js, t->hash))
				return false;
			break;
		default:
			return false;
		}
	} while (json_accept(js, ','));
	return json_expect(js, '}') && missing_key(js, names, 4, seen, "a tensor");
}

static bool read_file(json_scan *js, mf *m)
{
	static const char *const names[] = {"path", "size", "xxh3_128", "tensors"};
	bool seen[4] = {false};
	mf_file *files = grow(m->files, &m->cap, m->nfiles, sizeof *files);
	if (!files)
		return json_fail(js, "out of memory");
	m->files = files;
	mf_file *f = &m->files[m->nfiles++];
	memset(f, 0, sizeof *f);
	if (json_peek(js) != '{')
		return json_fail(js, "a file is not an object");
	json_expect(js, '{');
	if (json_accept(js, '}'))
		return missing_key(js, names, 3, seen, "a file");
	do {
		switch (read_key(js, names, 4, seen, "a file")) {
		case 0:
			if (!read_string(js, "path", &f->path))
				return false;
			break;
		case 1:
			if (!read_u64(js, "size", &f->size))
				return false;
			break;
		case 2:
			if (!read_hash(js, f->hash))
				return false;
			break;
		case 3:
			f->has_tensors = true;
			if (json_peek(js) != '[')
				return json_fail(js, "tensors is not a list");
			json_expect(js, '[');
			if (json_accept(js, ']'))
				break;
			do
				if (!read_tensor(js, f))
					return false;
			while (json_accept(js, ','));
			if (!json_expect(js, ']'))
				return false;
			break;
		default:
			return false;
		}
	} while (json_accept(js, ','));
	if (!json_expect(js, '}') || !missing_key(js, names, 3, seen, "a file"))
		return false;
	char q[512];
	if (strcmp(f->path, MANIFEST_NAME) == 0)
		return json_fail(js, "the manifest lists itself");
	/* tensors are listed for every .safetensors file and for no other */
	if (f->has_tensors != fmt_ends_with(f->path, ".safetensors"))
		return json_fail(js, "file '%s' %s", fmt_quote(f->path, q, sizeof q),
				 f->has_tensors ? "is not a .safetensors file but lists tensors"
						: "is a .safetensors file but lists no tensors");
	return true;
}

static bool read_options(json_scan *js, char ***keys, size_t *nkeys, size_t *cap)
{
	if (json_peek(js) != '{')
		return json_fail(js, "options is not an object");
	json_expect(js, '{');
	if (json_accept(js, '}'))
		return true;
	do {
		char *key, *value;
		if (!read_string(js, "an option", &key))
			return false;
		char **k = grow(*keys, cap, *nkeys, sizeof *k);
		if (!k) {
			free(key);
			return json_fail(js, "out of memory");
		}
		*keys = k;
		(*keys)[(*nkeys)++] = key;
		if (!json_expect(js, ':') || !read_string(js, "an option's value", &value))
			return false;
		free(value);
	} while (json_accept(js, ','));
	return json_expect(js, '}');
}

static int by_cstring(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_mf_path(const void *a, const void *b)
{
	return strcmp((*(const mf_file *const *)a)->path, (*(const mf_file *const *)b)->path);
}

static int by_tensor_name(const void *a, const void *b)
{
	return strcmp((*(const mf_tensor *const *)a)->name, (*(const mf_tensor *const *)b)->name);
}

/* The lookups by name; duplicates refused. */
static lq_status index_names(mf *m, char **options, size_t noptions, char *err)
{
	char q[512];
	if (noptions > 1)
		qsort(options, noptions, sizeof *options, by_cstring);
	for (size_t i = 1; i < noptions; i++)
		if (strcmp(options[i], options[i - 1]) == 0)
			return fmt_fail(err, LQ_ERR_CORRUPT, "%s: option '%s' appears twice", MANIFEST_NAME,
					fmt_quote(options[i], q, sizeof q));
	if (!(m->by_path = malloc((m->nfiles ? m->nfiles : 1) * sizeof *m->by_path)))
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < m->nfiles; i++)
		m->by_path[i] = &m->files[i];
	if (m->nfiles > 1)
		qsort(m->by_path, m->nfiles, sizeof *m->by_path, by_mf_path);
	for (size_t i = 1; i < m->nfiles; i++)
		if (strcmp(m->by_path[i]->path, m->by_path[i - 1]->path) == 0)
			return fmt_fail(err, LQ_ERR_CORRUPT, "%s: file '%s' is listed twice", MANIFEST_NAME,
					fmt_quote(m->by_path[i]->path, q, sizeof q));
	for (size_t i = 0; i < m->nfiles; i++) {
		mf_file *f = &m->files[i];
		if (!(f->by_name = malloc((f->ntensors ? f->ntensors : 1) * sizeof *f->by_name)))
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		for (size_t k = 0; k < f->ntensors; k++)
			f->by_name[k] = &f->tensors[k];
		if (f->ntensors > 1)
			qsort(f->by_name, f->ntensors, sizeof *f->by_name, by_tensor_name);
		for (size_t k = 1; k < f->ntensors; k++)
			if (strcmp(f->by_name[k]->name, f->by_name[k - 1]->name) == 0) {
				char qt[256];
				return fmt_fail(err, LQ_ERR_CORRUPT, "%s: file '%s': tensor '%s' is listed twice",
						MANIFEST_NAME, fmt_quote(f->path, q, sizeof q),
						fmt_quote(f->by_name[k]->name, qt, sizeof qt));
			}
	}
	return LQ_OK;
}

static lq_status parse(const char *text, size_t len, mf *m, char *err)
{
	static const char *const names[] = {"manifest", "tool", "version", "options", "files"};
	bool seen[5] = {false};
	size_t bad;
	if (len > MANIFEST_MAX_SIZE)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: %zu bytes, more than a manifest may hold (%zu)", MANIFEST_NAME, len,
				MANIFEST_MAX_SIZE);
	if (!json_utf8_valid(text, len, &bad))
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: byte %zu: not valid UTF-8", MANIFEST_NAME, bad);
	json_scan js;
	json_scan_init(&js, text, len);
	char **options = NULL;
	size_t noptions = 0, cap_options = 0;
	bool ok = json_peek(&js) == '{' || json_fail(&js, "not a JSON object");
	if (ok && (json_expect(&js, '{'), json_accept(&js, '}')))
		ok = missing_key(&js, names, 5, seen, "the manifest");
	else if (ok) {
		do {
			uint64_t version;
			switch (read_key(&js, names, 5, seen, "the manifest")) {
			case 0:
				ok = read_u64(&js, "manifest", &version) &&
				     (version == 1 || json_fail(&js, "manifest version %" PRIu64 ", not 1", version));
				break;
			case 1:
				ok = read_string(&js, "tool", &m->tool);
				break;
			case 2:
				ok = read_string(&js, "version", &m->version);
				break;
			case 3:
				ok = read_options(&js, &options, &noptions, &cap_options);
				break;
			case 4:
				ok = json_peek(&js) == '[' || json_fail(&js, "files is not a list");
				if (ok && (json_expect(&js, '['), !json_accept(&js, ']'))) {
					do
						ok = read_file(&js, m);
					while (ok && json_accept(&js, ','));
					ok = ok && json_expect(&js, ']');
				}
				break;
			default:
				ok = false;
			}
		} while (ok && json_accept(&js, ','));
		ok = ok && json_expect(&js, '}') && missing_key(&js, names, 5, seen, "the manifest");
	}
	ok = ok && json_end(&js);
	lq_status st = ok ? index_names(m, options, noptions, err)
			  : fmt_fail(err, LQ_ERR_CORRUPT, "%s: byte %zu: %s", MANIFEST_NAME, js.err_pos, js.err);
	for (size_t i = 0; i < noptions; i++)
		free(options[i]);
	free(options);
	return st;
}

/* ------------------------------------------------------------------------------------ verifying */

typedef struct verifier {
	manifest_report_fn report;
	void *arg;
	size_t count;
} verifier;

static void say(verifier *v, const char *fmt, ...) FMT_PRINTF(2, 3);

static void say(verifier *v, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	v->count++;
	if (v->report)
		v->report(v->arg, msg);
}

static const mf_tensor *find_tensor(const mf_file *mfile, const char *name)
{
	size_t lo = 0, hi = mfile->ntensors;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(mfile->by_name[mid]->name, name);
		if (c == 0)
			return mfile->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The tensors of a .safetensors file whose header parses, against those listed. */
static void check_tensors(verifier *v, const mf_file *mfile, const hashed *r, const char *qpath)
{
	const st_file *sf = r->st;
	char qn[512], a[HASH_HEX + 1], b[HASH_HEX + 1], sa[ST_MAX_DIMS * 22 + 8], sb[ST_MAX_DIMS * 22 + 8];
	for (size_t i = 0; i < mfile->ntensors; i++) {
		const mf_tensor *mt = &mfile->tensors[i];
		const st_tensor *t = st_file_find(sf, mt->name);
		fmt_quote(mt->name, qn, sizeof qn);
		if (!t) {
			say(v, "%s: tensor '%s': missing (the manifest lists it)", qpath, qn);
			continue;
		}
		if (t->dtype != mt->dtype)
			say(v, "%s: tensor '%s': dtype %s, the manifest says %s", qpath, qn, st_dtype_name(t->dtype),
			    st_dtype_name(mt->dtype));
		/* dims is NULL when no tensor of the file has a dimension */
		const int64_t *shape = mt->ndim ? mfile->dims + mt->dims : t->shape;
		if (t->ndim != mt->ndim || memcmp(t->shape, shape, (size_t)t->ndim * sizeof *t->shape)) {
			fmt_shape(sa, sizeof sa, t->ndim, t->shape);
			fmt_shape(sb, sizeof sb, mt->ndim, shape);
			say(v, "%s: tensor '%s': shape %s, the manifest says %s", qpath, qn, sa, sb);
		}
		unsigned char h[16];
		manifest_canonical(r->tensors[t - sf->tensors], h);
		if (memcmp(h, mt->hash, 16) != 0) {
			manifest_hex16(h, a);
			manifest_hex16(mt->hash, b);
			say(v, "%s: tensor '%s': bytes differ from the manifest (xxh3_128 %s here, %s listed)", qpath, qn, a,
			    b);
		}
	}
	for (size_t i = 0; i < sf->ntensors; i++)
		if (!find_tensor(mfile, sf->tensors[i].name))
			say(v, "%s: tensor '%s': not in the manifest", qpath, fmt_quote(sf->tensors[i].name, qn, sizeof qn));
}

static lq_status check_file(verifier *v, const mf_file *mfile, const manifest_file *f, unsigned char *buf, char *err)
{
	char qpath[512];
	fmt_quote(f->path, qpath, sizeof qpath);
	bool same_size = f->size == mfile->size;
	if (!same_size)
		say(v, "%s: %" PRIu64 " bytes, the manifest says %" PRIu64, qpath, f->size, mfile->size);
	/* a file of another size differs, and reading it tells no more; a .safetensors file is still read,
	 * to name its tensors */
	if (!same_size && !mfile->has_tensors)
		return LQ_OK;
	manifest_hash *own = NULL;
	const manifest_hash *h = f->hashed;
	if (h && (!h->done || h->size != f->size))
		return fmt_fail(err, LQ_ERR_ARG, "%s: given as hashed, but %" PRIu64 " of its %" PRIu64 " bytes were",
				qpath, h->pos, f->size);
	if (!h) {
		lq_status st = manifest_hash_file(f, buf, &own, err);
		if (st != LQ_OK)
			return st;
		h = own;
	}
	const hashed *r = &h->r;
	unsigned char hh[16];
	manifest_canonical(r->whole, hh);
	if (same_size && memcmp(hh, mfile->hash, 16) != 0) {
		char a[HASH_HEX + 1], b[HASH_HEX + 1];
		manifest_hex16(hh, a);
		manifest_hex16(mfile->hash, b);
		say(v, "%s: bytes differ from the manifest (xxh3_128 %s here, %s listed)", qpath, a, b);
	}
	if (r->st && r->parse_status != LQ_OK) {
		/* st_file_parse's message begins with the name given to it */
		const char *why = st_file_error(r->st);
		size_t k = strlen(qpath);
		if (strncmp(why, qpath, k) == 0 && strncmp(why + k, ": ", 2) == 0)
			why += k + 2;
		say(v, "%s: its safetensors header no longer parses, so no tensor can be checked (%s)", qpath, why);
	} else if (r->st) {
		check_tensors(v, mfile, r, qpath);
	}
	manifest_hash_free(own);
	return LQ_OK;
}

lq_status manifest_verify(const char *manifest_text, size_t len, const manifest_file *files, size_t nfiles,
			  manifest_report_fn report, void *arg, size_t *mismatches, char **tool, char **version,
			  char *err)
{
	*mismatches = 0;
	if (tool)
		*tool = NULL;
	if (version)
		*version = NULL;
	mf m = {0};
	lq_status st = parse(manifest_text, len, &m, err);
	if (st != LQ_OK) {
		mf_free(&m);
		return st;
	}
	const manifest_file **given = NULL;
	unsigned char *buf = NULL;
	verifier v = {.report = report, .arg = arg};
	/* MANIFEST among the files is not an error here: it is simply not listed */
	given = malloc((nfiles ? nfiles : 1) * sizeof *given);
	if (!given) {
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < nfiles; i++)
		given[i] = &files[i];
	if (nfiles > 1)
		qsort(given, nfiles, sizeof *given, manifest_by_path);
	for (size_t i = 1; i < nfiles; i++)
		if (strcmp(given[i]->path, given[i - 1]->path) == 0) {
			char q[512];
			st = fmt_fail(err, LQ_ERR_ARG, "'%s' is given twice", fmt_quote(given[i]->path, q, sizeof q));
			goto done;
		}
	if (!(buf = malloc(CHUNK))) {
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	/* both lists sorted by path: one merge finds the missing, the extra and the pairs */
	for (size_t i = 0, k = 0; (i < m.nfiles || k < nfiles) && st == LQ_OK;) {
		int c = i == m.nfiles ? 1 : k == nfiles ? -1 : strcmp(m.by_path[i]->path, given[k]->path);
		char q[512];
		if (c < 0) {
			say(&v, "%s: missing (the manifest lists it, %" PRIu64 " bytes)",
			    fmt_quote(m.by_path[i]->path, q, sizeof q), m.by_path[i]->size);
			i++;
		} else if (c > 0) {
			say(&v, "%s: not in the manifest", fmt_quote(given[k]->path, q, sizeof q));
			k++;
		} else {
			st = check_file(&v, m.by_path[i++], given[k++], buf, err);
		}
	}
	if (st == LQ_OK && tool && !(*tool = strdup(m.tool)))
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	if (st == LQ_OK && version && !(*version = strdup(m.version)))
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	if (st != LQ_OK) {
		if (tool) {
			free(*tool);
			*tool = NULL;
		}
		if (version) {
			free(*version);
			*version = NULL;
		}
	}
done:
	*mismatches = v.count;
	free(given);
	free(buf);
	mf_free(&m);
	return st;
}
