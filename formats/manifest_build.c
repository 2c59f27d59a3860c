/*
 * manifest_build.c: writing a MANIFEST (manifest.h). Written by hand, byte for byte, so that its text
 * depends on nothing but the files and the origin.
 */
#include "manifest.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "json_scan.h"
#include "manifest_impl.h"
#include "safetensors.h"

static void hash_hex(XXH128_hash_t h, char out[HASH_HEX + 1])
{
	unsigned char c[16];
	manifest_canonical(h, c);
	manifest_hex16(c, out);
}

/* A JSON string: \" \\ and \u00XX for control characters; every other byte as it is. */
static void put_string(fmt_buf *b, const char *s)
{
	fmt_buf_put(b, "\"", 1);
	for (const char *run = s;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		fmt_buf_put(b, run, (size_t)(s - run));
		if (c == '\0')
			break;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			fmt_buf_put(b, esc, 2);
		} else {
			fmt_buf_printf(b, "\\u%04x", c);
		}
		run = s + 1;
	}
	fmt_buf_put(b, "\"", 1);
}

static void put_hash(fmt_buf *b, XXH128_hash_t h)
{
	char hex[HASH_HEX + 1];
	hash_hex(h, hex);
	fmt_buf_puts(b, "\"xxh3_128\": \"");
	fmt_buf_put(b, hex, HASH_HEX);
	fmt_buf_puts(b, "\"");
}

/* A name the manifest holds must be valid UTF-8, so that the manifest is JSON (RFC 8259). */
static lq_status check_text(const char *s, const char *what, char *err)
{
	if (json_utf8_valid(s, strlen(s), NULL))
		return LQ_OK;
	char q[512];
	return fmt_fail(err, LQ_ERR_ARG, "%s '%s' is not valid UTF-8: a MANIFEST cannot list it", what,
			fmt_quote(s, q, sizeof q));
}

/* The files sorted by path, duplicates and MANIFEST refused. */
static lq_status sort_files(const manifest_file *files, size_t nfiles, const manifest_file ***out, char *err)
{
	const manifest_file **v = malloc((nfiles ? nfiles : 1) * sizeof *v);
	if (!v)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < nfiles; i++)
		v[i] = &files[i];
	if (nfiles > 1)
		qsort(v, nfiles, sizeof *v, manifest_by_path);
	char q[512];
	lq_status st = LQ_OK;
	for (size_t i = 0; i < nfiles && st == LQ_OK; i++) {
		if (i > 0 && strcmp(v[i]->path, v[i - 1]->path) == 0)
			st = fmt_fail(err, LQ_ERR_ARG, "'%s' is given twice", fmt_quote(v[i]->path, q, sizeof q));
		else if (strcmp(v[i]->path, MANIFEST_NAME) == 0)
			st = fmt_fail(err, LQ_ERR_ARG, "a file named %s cannot be listed in the manifest", MANIFEST_NAME);
	}
	if (st != LQ_OK) {
		free(v);
		return st;
	}
	*out = v;
	return LQ_OK;
}

static void put_file(fmt_buf *b, const manifest_file *f, const hashed *r)
{
	fmt_buf_puts(b, "    {\"path\": ");
	put_string(b, f->path);
	fmt_buf_printf(b, ", \"size\": %" PRIu64 ", ", f->size);
	put_hash(b, r->whole);
	if (!r->st) {
		fmt_buf_puts(b, "}");
		return;
	}
	if (r->st->ntensors == 0) {
		fmt_buf_puts(b, ", \"tensors\": []}");
		return;
	}
	fmt_buf_puts(b, ", \"tensors\": [\n");
	for (size_t i = 0; i < r->st->ntensors; i++) {
		const st_tensor *t = &r->st->tensors[i];
		fmt_buf_puts(b, "      {\"name\": ");
		put_string(b, t->name);
		fmt_buf_printf(b, ", \"dtype\": \"%s\", \"shape\": [", st_dtype_name(t->dtype));
		for (int d = 0; d < t->ndim; d++)
			fmt_buf_printf(b, "%s%" PRId64, d ? ", " : "", t->shape[d]);
		fmt_buf_puts(b, "], ");
		put_hash(b, r->tensors[i]);
		fmt_buf_puts(b, i + 1 < r->st->ntensors ? "},\n" : "}\n");
	}
	fmt_buf_puts(b, "    ]}");
}

lq_status manifest_build(const manifest_origin *origin, const manifest_file *files, size_t nfiles, char **text,
			 size_t *len, char *err)
{
	*text = NULL;
	*len = 0;
	const char *tool = origin && origin->tool ? origin->tool : "";
	const char *version = origin && origin->version ? origin->version : "";
	size_t nopt = origin ? origin->noptions : 0;
	lq_status st = check_text(tool, "tool name", err);
	if (st == LQ_OK)
		st = check_text(version, "version", err);
	for (size_t i = 0; i < nopt && st == LQ_OK; i++) {
		if ((st = check_text(origin->keys[i], "option", err)) == LQ_OK)
			st = check_text(origin->values[i], "option value", err);
		for (size_t k = 0; k < i && st == LQ_OK; k++)
			if (strcmp(origin->keys[k], origin->keys[i]) == 0) {
				char q[256];
				st = fmt_fail(err, LQ_ERR_ARG, "option '%s' is given twice",
					      fmt_quote(origin->keys[i], q, sizeof q));
			}
	}
	for (size_t i = 0; i < nfiles && st == LQ_OK; i++)
		st = check_text(files[i].path, "file name", err);
	if (st != LQ_OK)
		return st;
	const manifest_file **sorted = NULL;
	if ((st = sort_files(files, nfiles, &sorted, err)) != LQ_OK)
		return st;
	unsigned char *buf = malloc(CHUNK);
	fmt_buf b = {0};
	if (!buf) {
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}

	fmt_buf_puts(&b, "{\n  \"manifest\": 1,\n  \"tool\": ");
	put_string(&b, tool);
	fmt_buf_puts(&b, ",\n  \"version\": ");
	put_string(&b, version);
	fmt_buf_puts(&b, ",\n  \"options\": {");
	for (size_t i = 0; i < nopt; i++) {
		if (i)
			fmt_buf_puts(&b, ", ");
		put_string(&b, origin->keys[i]);
		fmt_buf_puts(&b, ": ");
		put_string(&b, origin->values[i]);
	}
	fmt_buf_puts(&b, nfiles ? "},\n  \"files\": [\n" : "},\n  \"files\": []\n}\n");
	for (size_t i = 0; i < nfiles; i++) {
		manifest_hash *h;
		if ((st = manifest_hash_file(sorted[i], buf, &h, err)) == LQ_OK && h->r.st && h->r.parse_status != LQ_OK)
			st = fmt_fail(err, h->r.parse_status, "%s", st_file_error(h->r.st));
		if (st == LQ_OK) {
			put_file(&b, sorted[i], &h->r);
			fmt_buf_puts(&b, i + 1 < nfiles ? ",\n" : "\n  ]\n}\n");
		}
		manifest_hash_free(h);
		if (st != LQ_OK)
			goto done;
	}
	if (b.oom) {
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		goto done;
	}
	*text = b.p;
	*len = b.len;
	b.p = NULL;
done:
	free(b.p);
	free(sorted);
	free(buf);
	return st;
}
