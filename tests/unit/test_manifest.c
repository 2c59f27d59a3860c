/*
 * test_manifest.c: the MANIFEST (formats/manifest.h): its exact text, with hashes computed here with
 * XXH3_128bits in one shot; that it does not depend on the order the files are given in; that
 * manifest_verify passes a clean output and names every corruption (every byte of a tensor, the header,
 * a missing, extra or truncated file); and that a hostile manifest is refused as corrupt, with a message.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "manifest.h"
#include "safetensors.h"
#include "test.h"
#include "util.h"

/* -------------------------------------------------------------------------------- helpers */

/* A file held in memory; its reader checks that it is read once, in order, from byte 0. */
typedef struct mem_file {
	const unsigned char *data;
	size_t len;
	uint64_t next; /* the offset the next read must start at */
	bool out_of_order;
} mem_file;

static lq_status mem_read(void *arg, uint64_t offset, void *dst, size_t len, char *err)
{
	mem_file *m = arg;
	if (offset != m->next)
		m->out_of_order = true;
	m->next = offset + len;
	if (offset > m->len || len > m->len - offset)
		return fmt_fail(err, LQ_ERR_IO, "read past the end");
	memcpy(dst, m->data + offset, len);
	return LQ_OK;
}

/* The files for manifest_build / manifest_verify over mem files (reset for a new pass). */
static void mem_files(manifest_file *out, const char *const *paths, mem_file *mem, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		mem[i].next = 0;
		mem[i].out_of_order = false;
		out[i] = (manifest_file){.path = paths[i], .size = mem[i].len, .read = mem_read, .arg = &mem[i]};
	}
}

static bool all_in_order(const mem_file *mem, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (mem[i].out_of_order || mem[i].next != mem[i].len)
			return false;
	return true;
}

/* XXH3-128 as xxhsum prints it, computed in one shot: high 64 bits first. */
static const char *xxh128_hex(const void *data, size_t len, char out[33])
{
	XXH128_hash_t h = XXH3_128bits(data, len);
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
	return out;
}

/* The messages of one manifest_verify. */
typedef struct reports {
	char *msg[256];
	size_t n;
} reports;

static void collect(void *arg, const char *message)
{
	reports *r = arg;
	if (r->n < 256)
		r->msg[r->n] = strdup(message);
	r->n++;
}

static void reports_clear(reports *r)
{
	for (size_t i = 0; i < r->n && i < 256; i++)
		free(r->msg[i]);
	r->n = 0;
}

/* The message that contains every one of the needles (NULL-terminated), or NULL. */
static const char *find_report(const reports *r, ...)
{
	for (size_t i = 0; i < r->n && i < 256; i++) {
		va_list ap;
		va_start(ap, r);
		bool all = true;
		for (const char *s; (s = va_arg(ap, const char *));)
			if (!strstr(r->msg[i], s))
				all = false;
		va_end(ap);
		if (all)
			return r->msg[i];
	}
	return NULL;
}

static void print_reports(const reports *r)
{
	for (size_t i = 0; i < r->n && i < 256; i++)
		test_note("  report: %s", r->msg[i]);
}

static const manifest_origin origin = {.tool = "nf4quant", .version = "0.5.0"};

/* A scratch directory of its own for the test. */
static const char *scratch(char *buf, size_t size)
{
	snprintf(buf, size, "%s/manifest-XXXXXX", util_tmpdir());
	return mkdtemp(buf);
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	char path[4096];
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static bool write_all(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return false;
	bool ok = fwrite(data, 1, len, fp) == len;
	return fclose(fp) == 0 && ok;
}

/* A safetensors file written by st_writer at path with these tensors, filled with bytes from rng. */
typedef struct gen_tensor {
	const char *name;
	st_dtype dtype;
	int ndim;
	int64_t shape[4];
} gen_tensor;

static const gen_tensor small_model[] = {
	{"a.weight", ST_U8, 2, {4, 3}},
	{"b.bias", ST_F32, 1, {5}},
	{"c.empty", ST_BF16, 2, {0, 7}},
	{"d.scalar", ST_F16, 0, {0}},
	{"e.z", ST_U8, 0, {0}},
};

static bool gen_safetensors(const char *path, const gen_tensor *t, size_t n, uint64_t seed)
{
	st_writer *w = st_writer_create();
	util_rng rng = {seed | 1};
	bool ok = w != NULL;
	for (size_t i = 0; ok && i < n; i++)
		ok = st_writer_add(w, t[i].name, t[i].dtype, t[i].ndim, t[i].shape) == (int32_t)i;
	ok = ok && st_writer_layout(w) == LQ_OK && st_writer_open(w, path) == LQ_OK;
	for (size_t i = 0; ok && i < n; i++) {
		size_t bytes = (size_t)st_writer_tensor_bytes(w, (int32_t)i);
		unsigned char *buf = malloc(bytes ? bytes : 1);
		for (size_t k = 0; buf && k < bytes; k++)
			buf[k] = (unsigned char)util_next(&rng);
		ok = buf && st_writer_write(w, (int32_t)i, 0, buf, bytes) == LQ_OK;
		free(buf);
	}
	ok = ok && st_writer_finish(w) == LQ_OK;
	if (!ok)
		test_fail(__FILE__, __LINE__, "cannot write %s: %s", path, w ? st_writer_error(w) : "out of memory");
	st_writer_free(w);
	return ok;
}

/* A small output in memory: config.json, model.safetensors (small_model), tokenizer.json. */
typedef struct output {
	const char *paths[3];
	mem_file mem[3];
	unsigned char *own[3]; /* mem's bytes, to change and to free */
	manifest_file files[3];
	size_t n;
	st_file *st; /* model.safetensors parsed */
} output;

static bool output_make(output *o)
{
	memset(o, 0, sizeof *o);
	char dir[4096], path[4200];
	if (!CHECK(scratch(dir, sizeof dir)))
		return false;
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	bool ok = gen_safetensors(path, small_model, sizeof small_model / sizeof *small_model, 42);
	size_t len = 0;
	unsigned char *model = ok ? read_all(path, &len) : NULL;
	remove_dir(dir);
	if (!CHECK(model))
		return false;
	static const char config[] = "{\"model_type\": \"llama\"}\n", tok[] = "{\"version\": \"1.0\"}";
	o->paths[0] = "model.safetensors";
	o->own[0] = model;
	o->own[1] = (unsigned char *)strdup(config);
	o->own[2] = (unsigned char *)strdup(tok);
	o->mem[0] = (mem_file){.data = o->own[0], .len = len};
	o->paths[1] = "config.json";
	o->mem[1] = (mem_file){.data = o->own[1], .len = strlen(config)};
	o->paths[2] = "tokenizer.json";
	o->mem[2] = (mem_file){.data = o->own[2], .len = strlen(tok)};
	o->n = 3;
	o->st = st_file_create();
	return CHECK(o->st) && CHECK_INT(st_file_parse(o->st, model, len, len, "model.safetensors"), LQ_OK);
}

static void output_free(output *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->own[i]);
	st_file_free(o->st);
}

/* Verifies o against text; the status, with the reports in r. */
static lq_status output_verify(output *o, const char *text, size_t len, reports *r, size_t *mismatches)
{
	char err[FMT_ERRBUF] = "";
	mem_files(o->files, o->paths, o->mem, o->n);
	lq_status st = manifest_verify(text, len, o->files, o->n, collect, r, mismatches, NULL, NULL, err);
	if (st != LQ_OK)
		test_fail(__FILE__, __LINE__, "manifest_verify: %s", err);
	return st;
}

/* ---------------------------------------------------------------------------------- vectors */

TEST(manifest_xxh3_empty_vectors)
{
	char hex[33];
	CHECK_STR(xxh128_hex("", 0, hex), "99aa06d3014798d86001c324468d497f");
	char h64[17];
	snprintf(h64, sizeof h64, "%016llx", (unsigned long long)XXH3_64bits("", 0));
	CHECK_STR(h64, "2d06800538d394c2");
	/* the canonical form is the big-endian one */
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits("", 0));
	CHECK_INT(c.digest[0], 0x99);
	CHECK_INT(c.digest[15], 0x7f);
}

/* ------------------------------------------------------------------------------- exact text */

TEST(manifest_build_exact_text)
{
	/* model.safetensors made by hand: three tensors, one of a scalar and one of no bytes */
	static const char hdr[] = "{\"w\":{\"dtype\":\"U8\",\"shape\":[2,1],\"data_offsets\":[0,2]},"
				  "\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[2,4]},"
				  "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]}}";
	size_t n = strlen(hdr);
	unsigned char model[512] = {0};
	for (int i = 0; i < 8; i++)
		model[i] = (unsigned char)(n >> (8 * i));
	memcpy(model + 8, hdr, n);
	memcpy(model + 8 + n, "\x01\x02\x03\x04", 4);
	size_t model_len = 8 + n + 4;
	static const char config[] = "{\"x\": 1}\n";
	const char *paths[] = {"model.safetensors", "q\"uote.bin", "config.json", "a\tb.txt"};
	mem_file mem[] = {{.data = model, .len = model_len}, {.data = (const unsigned char *)"\\", .len = 1},
			  {.data = (const unsigned char *)config, .len = strlen(config)}, {.data = (const unsigned char *)"", .len = 0}};
	manifest_file files[4];
	mem_files(files, paths, mem, 4);
	static const char *const keys[] = {"quant_type", "include"}, *const values[] = {"nf4", "[\"a\\b\"]"};
	manifest_origin o = {.tool = "nf4quant", .version = "0.5.0", .keys = keys, .values = values, .noptions = 2};
	char *text = NULL, err[FMT_ERRBUF] = "";
	size_t len = 0;
	if (!CHECK_INT(manifest_build(&o, files, 4, &text, &len, err), LQ_OK)) {
		test_note("%s", err);
		return;
	}
	CHECK(all_in_order(mem, 4));
	char h_model[33], h_w[33], h_s[33], h_config[33], h_q[33], expect[4096];
	snprintf(expect, sizeof expect,
		 "{\n"
		 "  \"manifest\": 1,\n"
		 "  \"tool\": \"nf4quant\",\n"
		 "  \"version\": \"0.5.0\",\n"
		 "  \"options\": {\"quant_type\": \"nf4\", \"include\": \"[\\\"a\\\\b\\\"]\"},\n"
		 "  \"files\": [\n"
		 "    {\"path\": \"a\\u0009b.txt\", \"size\": 0, \"xxh3_128\": \"99aa06d3014798d86001c324468d497f\"},\n"
		 "    {\"path\": \"config.json\", \"size\": 9, \"xxh3_128\": \"%s\"},\n"
		 "    {\"path\": \"model.safetensors\", \"size\": %zu, \"xxh3_128\": \"%s\", \"tensors\": [\n"
		 "      {\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [2, 1], \"xxh3_128\": \"%s\"},\n"
		 "      {\"name\": \"s\", \"dtype\": \"BF16\", \"shape\": [], \"xxh3_128\": \"%s\"},\n"
		 "      {\"name\": \"e\", \"dtype\": \"F32\", \"shape\": [0, 3], \"xxh3_128\": "
		 "\"99aa06d3014798d86001c324468d497f\"}\n"
		 "    ]},\n"
		 "    {\"path\": \"q\\\"uote.bin\", \"size\": 1, \"xxh3_128\": \"%s\"}\n"
		 "  ]\n"
		 "}\n",
		 xxh128_hex(config, strlen(config), h_config), model_len, xxh128_hex(model, model_len, h_model),
		 xxh128_hex(model + 8 + n, 2, h_w), xxh128_hex(model + 8 + n + 2, 2, h_s), xxh128_hex("\\", 1, h_q));
	CHECK_STR(text, expect);
	CHECK_INT(len, strlen(expect));

	/* it reads back: no mismatch, tool and version as written */
	size_t mismatches = 99;
	char *tool = NULL, *version = NULL;
	reports r = {0};
	mem_files(files, paths, mem, 4);
	CHECK_INT(manifest_verify(text, len, files, 4, collect, &r, &mismatches, &tool, &version, err), LQ_OK);
	CHECK_INT(mismatches, 0);
	CHECK_INT(r.n, 0);
	CHECK(all_in_order(mem, 4));
	CHECK_STR(tool, "nf4quant");
	CHECK_STR(version, "0.5.0");
	free(tool);
	free(version);
	reports_clear(&r);
	free(text);
}

TEST(manifest_build_exact_text_empty)
{
	char *text = NULL, err[FMT_ERRBUF] = "";
	size_t len = 0;
	manifest_origin o = {.tool = "loramerge", .version = "1.2.3"};
	if (CHECK_INT(manifest_build(&o, NULL, 0, &text, &len, err), LQ_OK))
		CHECK_STR(text, "{\n  \"manifest\": 1,\n  \"tool\": \"loramerge\",\n  \"version\": \"1.2.3\",\n"
				"  \"options\": {},\n  \"files\": []\n}\n");
	free(text);

	/* a safetensors file of no tensors: an empty list */
	unsigned char st[10] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
	const char *paths[] = {"model.safetensors"};
	mem_file mem[] = {{.data = st, .len = sizeof st}};
	manifest_file files[1];
	mem_files(files, paths, mem, 1);
	char h[33], expect[1024];
	snprintf(expect, sizeof expect,
		 "{\n  \"manifest\": 1,\n  \"tool\": \"loramerge\",\n  \"version\": \"1.2.3\",\n  \"options\": {},\n"
		 "  \"files\": [\n    {\"path\": \"model.safetensors\", \"size\": 10, \"xxh3_128\": \"%s\", "
		 "\"tensors\": []}\n  ]\n}\n",
		 xxh128_hex(st, sizeof st, h));
	if (CHECK_INT(manifest_build(&o, files, 1, &text, &len, err), LQ_OK))
		CHECK_STR(text, expect);
	free(text);
}

TEST(manifest_build_independent_of_order)
{
	output o;
	if (!output_make(&o)) {
		output_free(&o);
		return;
	}
	char *a = NULL, *b = NULL, err[FMT_ERRBUF] = "";
	size_t alen = 0, blen = 0;
	mem_files(o.files, o.paths, o.mem, o.n);
	CHECK_INT(manifest_build(&origin, o.files, o.n, &a, &alen, err), LQ_OK);
	CHECK(all_in_order(o.mem, o.n));
	/* the same files given in the reverse order */
	manifest_file rev[3];
	mem_files(o.files, o.paths, o.mem, o.n);
	for (size_t i = 0; i < o.n; i++)
		rev[i] = o.files[o.n - 1 - i];
	CHECK_INT(manifest_build(&origin, rev, o.n, &b, &blen, err), LQ_OK);
	if (CHECK(a && b)) {
		CHECK_INT(alen, blen);
		CHECK(strcmp(a, b) == 0);
		/* files sorted bytewise, tensors in data order */
		const char *c = strstr(a, "\"config.json\""), *m = strstr(a, "\"model.safetensors\""),
			   *t = strstr(a, "\"tokenizer.json\"");
		CHECK(c && m && t && c < m && m < t);
		const char *prev = m;
		for (size_t i = 0; i < o.st->ntensors; i++) {
			char name[128];
			snprintf(name, sizeof name, "{\"name\": \"%s\"", o.st->tensors[i].name);
			const char *at = strstr(a, name);
			CHECK(at && at > prev);
			prev = at ? at : prev;
		}
	}
	free(a);
	free(b);
	output_free(&o);
}

/* Tensors larger than a 4 MiB chunk, and chunks that end inside them: each tensor's hash is that of its
 * bytes alone. */
TEST(manifest_build_tensors_across_chunks)
{
	char dir[4096], path[4200];
	if (!CHECK(scratch(dir, sizeof dir)))
		return;
	static const gen_tensor big[] = {
		{"big.a", ST_F32, 2, {1000, 1500}}, /* 6 MB */
		{"big.b", ST_F32, 1, {3}},
		{"big.c", ST_F32, 2, {1024, 1024}}, /* 4 MiB exactly */
		{"big.d", ST_F32, 1, {0}},
	};
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	size_t len = 0;
	unsigned char *data = gen_safetensors(path, big, 4, 7) ? read_all(path, &len) : NULL;
	st_file *sf = st_file_create();
	if (!CHECK(data && sf) || !CHECK_INT(st_file_parse(sf, data, len, len, "m"), LQ_OK))
		goto out;
	const char *paths[] = {"model.safetensors"};
	mem_file mem[] = {{.data = data, .len = len}};
	manifest_file files[1];
	mem_files(files, paths, mem, 1);
	char *text = NULL, err[FMT_ERRBUF] = "";
	size_t tlen;
	if (!CHECK_INT(manifest_build(&origin, files, 1, &text, &tlen, err), LQ_OK))
		goto out;
	CHECK(all_in_order(mem, 1));
	for (size_t i = 0; i < sf->ntensors; i++) {
		const st_tensor *t = &sf->tensors[i];
		char h[33], line[256];
		xxh128_hex(data + sf->data_start + t->begin, (size_t)(t->end - t->begin), h);
		snprintf(line, sizeof line, "{\"name\": \"%s\", \"dtype\": \"F32\"", t->name);
		const char *at = strstr(text, line);
		const char *nl = at ? strchr(at, '\n') : NULL;
		test_context("tensor %s", t->name);
		CHECK(at && nl && strstr(at, h) && strstr(at, h) < nl);
	}
	test_context("%s", "");
	/* and manifest_read_path reads the same bytes */
	files[0] = (manifest_file){.path = "model.safetensors", .size = len, .read = manifest_read_path, .arg = path};
	char *text2 = NULL;
	size_t tlen2;
	if (CHECK_INT(manifest_build(&origin, files, 1, &text2, &tlen2, err), LQ_OK))
		CHECK_STR(text2, text);
	free(text2);
	free(text);
out:
	st_file_free(sf);
	free(data);
	unlink(path);
	rmdir(dir);
}

/* -------------------------------------------------------------------------------- building fails */

TEST(manifest_build_refusals)
{
	char *text = NULL, err[FMT_ERRBUF] = "";
	size_t len;
	const char *paths[] = {"config.json", "MANIFEST"};
	mem_file mem[] = {{.data = (const unsigned char *)"{}", .len = 2}, {.data = (const unsigned char *)"x", .len = 1}};
	manifest_file files[2];
	mem_files(files, paths, mem, 2);
	CHECK_INT(manifest_build(&origin, files, 2, &text, &len, err), LQ_ERR_ARG);
	CHECK_CONTAINS(err, "MANIFEST");
	CHECK(text == NULL);

	const char *dup[] = {"config.json", "config.json"};
	mem_files(files, dup, mem, 2);
	CHECK_INT(manifest_build(&origin, files, 2, &text, &len, err), LQ_ERR_ARG);
	CHECK_CONTAINS(err, "'config.json' is given twice");

	/* a .safetensors file whose header does not parse: corrupt, named */
	const char *bad[] = {"model-00001-of-00002.safetensors"};
	mem_file junk[] = {{.data = (const unsigned char *)"\x05\0\0\0\0\0\0\0{\"a\":", .len = 13}};
	mem_files(files, bad, junk, 1);
	CHECK_INT(manifest_build(&origin, files, 1, &text, &len, err), LQ_ERR_CORRUPT);
	CHECK_CONTAINS(err, "model-00001-of-00002.safetensors");

	/* a name that is not UTF-8 could not be read back as JSON */
	const char *latin1[] = {"caf\xe9.txt"};
	mem_files(files, latin1, mem, 1);
	CHECK_INT(manifest_build(&origin, files, 1, &text, &len, err), LQ_ERR_ARG);
	CHECK_CONTAINS(err, "not valid UTF-8");

	/* a file that is gone, or shorter than said */
	char dir[4096], path[4200];
	if (!CHECK(scratch(dir, sizeof dir)))
		return;
	snprintf(path, sizeof path, "%s/gone.bin", dir);
	files[0] = (manifest_file){.path = "gone.bin", .size = 3, .read = manifest_read_path, .arg = path};
	CHECK_INT(manifest_build(&origin, files, 1, &text, &len, err), LQ_ERR_IO);
	CHECK_CONTAINS(err, "cannot open");
	CHECK(write_all(path, "ab", 2));
	CHECK_INT(manifest_build(&origin, files, 1, &text, &len, err), LQ_ERR_IO);
	CHECK_CONTAINS(err, "gone.bin");
	CHECK(text == NULL);
	unlink(path);
	rmdir(dir);
}

/* ----------------------------------------------------------------------------------- verifying */

TEST(manifest_verify_clean_directory)
{
	/* a directory on disk read through manifest_read_path, the fixture's files among them */
	char dir[4096];
	if (!CHECK(scratch(dir, sizeof dir)))
		return;
	static const char *const names[] = {"config.json", "model.safetensors", "generation_config.json"};
	char paths[3][4200];
	manifest_file files[3];
	for (int i = 0; i < 3; i++) {
		char rel[256];
		snprintf(rel, sizeof rel, "fixtures/models/tiny-llama/%s", names[i]);
		size_t len = 0;
		unsigned char *data = read_all(test_path(rel), &len);
		snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
		CHECK(data && write_all(paths[i], data, len));
		free(data);
		files[i] = (manifest_file){.path = names[i], .size = len, .read = manifest_read_path, .arg = paths[i]};
	}
	char *text = NULL, err[FMT_ERRBUF] = "";
	size_t len = 0;
	if (CHECK_INT(manifest_build(&origin, files, 3, &text, &len, err), LQ_OK)) {
		/* every tensor of the fixture is listed */
		st_file *sf = util_open("fixtures/models/tiny-llama/model.safetensors");
		size_t listed = 0;
		for (const char *p = text; (p = strstr(p, "{\"name\": ")); p++)
			listed++;
		if (sf)
			CHECK_INT(listed, sf->ntensors);
		st_file_free(sf);
		reports r = {0};
		size_t mismatches = 1;
		char *tool = NULL, *version = NULL;
		CHECK_INT(manifest_verify(text, len, files, 3, collect, &r, &mismatches, &tool, &version, err), LQ_OK);
		CHECK_INT(mismatches, 0);
		CHECK_STR(tool, "nf4quant");
		CHECK_STR(version, "0.5.0");
		print_reports(&r);
		reports_clear(&r);
		free(tool);
		free(version);
	} else {
		test_note("%s", err);
	}
	free(text);
	remove_dir(dir);
}

TEST(manifest_verify_reports_every_tensor_byte)
{
	output o;
	if (!output_make(&o)) {
		output_free(&o);
		return;
	}
	char *text = NULL, err[FMT_ERRBUF] = "";
	size_t len = 0, mismatches;
	mem_files(o.files, o.paths, o.mem, o.n);
	if (!CHECK_INT(manifest_build(&origin, o.files, o.n, &text, &len, err), LQ_OK)) {
		output_free(&o);
		return;
	}
	/* every byte of every tensor's data: a.weight 12, b.bias 20, d.scalar 2, e.z 1 */
	unsigned char *data = o.own[0];
	int flips = 0, missed = 0;
	for (size_t i = 0; i < o.st->ntensors; i++) {
		const st_tensor *t = &o.st->tensors[i];
		char name[160];
		snprintf(name, sizeof name, "tensor '%s': bytes differ from the manifest", t->name);
		for (uint64_t k = t->begin; k < t->end; k++) {
			size_t at = (size_t)(o.st->data_start + k);
			reports r = {0};
			data[at] ^= 0xff;
			if (output_verify(&o, text, len, &r, &mismatches) == LQ_OK) {
				flips++;
				/* the tensor, and the file it is in; nothing else */
				bool ok = mismatches == 2 && find_report(&r, "model.safetensors: ", name, (char *)NULL) &&
					  find_report(&r, "model.safetensors: bytes differ from the manifest", (char *)NULL);
				if (!ok && ++missed <= 3) {
					test_fail(__FILE__, __LINE__, "byte %" PRIu64 " of %s flipped: %zu reports", k, t->name,
						  mismatches);
					print_reports(&r);
				}
			}
			data[at] ^= 0xff;
			reports_clear(&r);
		}
	}
	CHECK_INT(flips, 12 + 20 + 2 + 1);
	CHECK_INT(missed, 0);
	/* restored: clean again */
	reports r = {0};
	CHECK_INT(output_verify(&o, text, len, &r, &mismatches), LQ_OK);
	CHECK_INT(mismatches, 0);
	reports_clear(&r);
	free(text);
	output_free(&o);
}

TEST(manifest_verify_header_byte)
{
	output o;
	if (!output_make(&o)) {
		output_free(&o);
		return;
	}
	char *text = NULL, err[FMT_ERRBUF] = "";
	size_t len = 0, mismatches;
	mem_files(o.files, o.paths, o.mem, o.n);
	if (!CHECK_INT(manifest_build(&origin, o.files, o.n, &text, &len, err), LQ_OK)) {
		output_free(&o);
		return;
	}
	unsigned char *data = o.own[0];
	reports r = {0};
	/* the '{' that opens the JSON: the header no longer parses */
	data[8] ^= 0xff;
	CHECK_INT(output_verify(&o, text, len, &r, &mismatches), LQ_OK);
	CHECK(find_report(&r, "model.safetensors: bytes differ", (char *)NULL));
	CHECK(find_report(&r, "model.safetensors: its safetensors header no longer parses", (char *)NULL));
	CHECK_INT(mismatches, 2);
	data[8] ^= 0xff;
	reports_clear(&r);

	/* a letter of a name: one tensor missing, another not listed */
	char *at = memmem(data, (size_t)o.st->data_start, "a.weight", 8);
	if (CHECK(at)) {
		at[0] = 'A';
		CHECK_INT(output_verify(&o, text, len, &r, &mismatches), LQ_OK);
		CHECK(find_report(&r, "model.safetensors: tensor 'a.weight': missing", (char *)NULL));
		CHECK(find_report(&r, "model.safetensors: tensor 'A.weight': not in the manifest", (char *)NULL));
		CHECK(find_report(&r, "model.safetensors: bytes differ", (char *)NULL));
		CHECK_INT(mismatches, 3);
		at[0] = 'a';
		reports_clear(&r);
	}
	/* every byte of the header: always reported, always naming the file */
	int missed = 0;
	for (size_t k = 0; k < (size_t)o.st->data_start; k++) {
		data[k] ^= 0xff;
		bool ok = output_verify(&o, text, len, &r, &mismatches) == LQ_OK && mismatches >= 1 &&
			  find_report(&r, "model.safetensors: bytes differ", (char *)NULL);
		for (size_t i = 0; i < r.n && i < 256; i++)
			ok = ok && strncmp(r.msg[i], "model.safetensors: ", 19) == 0;
		if (!ok && ++missed <= 3) {
			test_fail(__FILE__, __LINE__, "header byte %zu flipped: %zu reports", k, mismatches);
			print_reports(&r);
		}
		data[k] ^= 0xff;
		reports_clear(&r);
	}
	CHECK_INT(missed, 0);
	free(text);
	output_free(&o);
}

/* --------------------------------------------------------------------------- hashed by the holder */

/* manifest_verify with every file hashed ahead through manifest_hash_put, in pieces of `piece` bytes. */
static lq_status verify_pushed(output *o, const char *text, size_t len, size_t piece, reports *r, size_t *mismatches)
{
	manifest_hash *h[3] = {0};
	manifest_file files[3];
	char err[FMT_ERRBUF] = "";
	lq_status st = LQ_OK;
	for (size_t i = 0; i < o->n && st == LQ_OK; i++) {
		if (!(h[i] = manifest_hash_begin(o->paths[i], o->mem[i].len))) {
			st = LQ_ERR_NOMEM;
			break;
		}
		for (size_t at = 0; at < o->mem[i].len && st == LQ_OK; at += piece)
			st = manifest_hash_put(h[i], o->mem[i].data + at, o->mem[i].len - at < piece ? o->mem[i].len - at : piece,
					       err);
		files[i] = (manifest_file){.path = o->paths[i], .size = o->mem[i].len, .hashed = h[i]};
	}
	if (st == LQ_OK)
		st = manifest_verify(text, len, files, o->n, collect, r, mismatches, NULL, NULL, err);
	for (size_t i = 0; i < o->n; i++)
		manifest_hash_free(h[i]);
	if (st != LQ_OK)
		test_fail(__FILE__, __LINE__, "manifest_verify, pushed in pieces of %zu: %s", piece, err);
	return st;
}

static bool same_reports(const reports *a, const reports *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n && i < 256; i++)
		if (strcmp(a->msg[i], b->msg[i]) != 0)
			return false;
	return true;
}

/* Hashing pushed in pieces of any size (a bundle's scan) finds exactly what reading finds: the same
 * reports, in the same words, for the clean output, for every byte of the weights file flipped (header
 * and data), and for the file cut to every length around its header's. */
TEST(manifest_hash_pushed_equals_read)
{
	output o;
	if (!output_make(&o)) {
		output_free(&o);
		return;
	}
	char *text = NULL, err[FMT_ERRBUF] = "";
	size_t len = 0, m1, m2;
	mem_files(o.files, o.paths, o.mem, o.n);
	if (!CHECK_INT(manifest_build(&origin, o.files, o.n, &text, &len, err), LQ_OK)) {
		output_free(&o);
		return;
	}
	static const size_t pieces[] = {1, 2, 7, 8, 9, 13, 64, 1 << 20};
	unsigned char *data = o.own[0];
	size_t full = o.mem[0].len, differ = 0, cases = 0;
	/* -1: as made; 0..full-1: that byte flipped; then cut to 0..9 bytes, to the header's end and one byte
	 * either side of it, and one byte short */
	size_t hdr = (size_t)o.st->data_start;
	size_t cuts[] = {0, 1, 3, 7, 8, 9, hdr - 1, hdr, hdr + 1, full - 1};
	size_t ncuts = sizeof cuts / sizeof *cuts;
	for (long c = -1; c < (long)(full + ncuts); c++) {
		if (c >= 0 && (size_t)c < full)
			data[c] ^= 0xff;
		if ((size_t)c >= full && c >= 0)
			o.mem[0].len = cuts[(size_t)c - full];
		reports read = {0};
		if (output_verify(&o, text, len, &read, &m1) == LQ_OK) {
			for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++) {
				reports pushed = {0};
				cases++;
				if (verify_pushed(&o, text, len, pieces[p], &pushed, &m2) != LQ_OK ||
				    !same_reports(&read, &pushed) || m1 != m2) {
					if (++differ <= 3) {
						test_fail(__FILE__, __LINE__, "case %ld, pieces of %zu: %zu reports read, %zu pushed",
							  c, pieces[p], m1, m2);
						print_reports(&read);
						print_reports(&pushed);
					}
				}
				reports_clear(&pushed);
			}
			if (c < 0)
				CHECK_INT(m1, 0);
			else
				CHECK(m1 > 0);
		}
		reports_clear(&read);
		if (c >= 0 && (size_t)c < full)
			data[c] ^= 0xff;
		o.mem[0].len = full;
	}
	CHECK_INT(differ, 0);
	CHECK_INT(cases, (full + ncuts + 1) * (sizeof pieces / sizeof *pieces));

	/* the holder's mistakes: a byte past the size, a file not hashed to its end */
	manifest_hash *h = manifest_hash_begin("config.json", 4);
	if (CHECK(h)) {
		CHECK_INT(manifest_hash_put(h, "abc", 3, err), LQ_OK);
		CHECK_INT(manifest_hash_put(h, "de", 2, err), LQ_ERR_ARG);
		CHECK_CONTAINS(err, "config.json: more than its 4 bytes");
		manifest_hash_free(h);
	}
	uint64_t n = o.mem[1].len;
	if (CHECK((h = manifest_hash_begin("config.json", n)))) {
		CHECK_INT(manifest_hash_put(h, o.mem[1].data, 3, err), LQ_OK);
		size_t mm;
		char want[64];
		snprintf(want, sizeof want, "3 of its %" PRIu64 " bytes", n);
		manifest_file f = {.path = "config.json", .size = n, .hashed = h};
		CHECK_INT(manifest_verify(text, len, &f, 1, NULL, NULL, &mm, NULL, NULL, err), LQ_ERR_ARG);
		CHECK_CONTAINS(err, want);
		manifest_hash_free(h);
	}
	manifest_hash_free(NULL);
	free(text);
	output_free(&o);
}

TEST(manifest_verify_missing_extra_truncated)
{
	char dir[4096];
	if (!CHECK(scratch(dir, sizeof dir)))
		return;
	char model[4200], config[4200], extra[4200];
	snprintf(model, sizeof model, "%s/model.safetensors", dir);
	snprintf(config, sizeof config, "%s/config.json", dir);
	snprintf(extra, sizeof extra, "%s/notes.txt", dir);
	bool ok = gen_safetensors(model, small_model, sizeof small_model / sizeof *small_model, 3) &&
		  write_all(config, "{}\n", 3) && write_all(extra, "hello\n", 6);
	struct stat sb;
	ok = ok && stat(model, &sb) == 0;
	if (!CHECK(ok)) {
		remove_dir(dir);
		return;
	}
	uint64_t model_size = (uint64_t)sb.st_size;
	manifest_file files[3] = {
		{.path = "model.safetensors", .size = model_size, .read = manifest_read_path, .arg = model},
		{.path = "config.json", .size = 3, .read = manifest_read_path, .arg = config},
		{.path = "notes.txt", .size = 6, .read = manifest_read_path, .arg = extra},
	};
	char *text = NULL, err[FMT_ERRBUF] = "";
	size_t len = 0, mismatches;
	/* the manifest lists the model and config.json, not notes.txt */
	if (!CHECK_INT(manifest_build(&origin, files, 2, &text, &len, err), LQ_OK)) {
		remove_dir(dir);
		return;
	}
	reports r = {0};
	/* an extra file */
	CHECK_INT(manifest_verify(text, len, files, 3, collect, &r, &mismatches, NULL, NULL, err), LQ_OK);
	CHECK_INT(mismatches, 1);
	CHECK(find_report(&r, "notes.txt: not in the manifest", (char *)NULL));
	reports_clear(&r);
	/* a missing file */
	CHECK_INT(manifest_verify(text, len, files, 1, collect, &r, &mismatches, NULL, NULL, err), LQ_OK);
	CHECK_INT(mismatches, 1);
	CHECK(find_report(&r, "config.json: missing", (char *)NULL));
	reports_clear(&r);
	/* both, and nothing given at all */
	CHECK_INT(manifest_verify(text, len, files + 1, 2, collect, &r, &mismatches, NULL, NULL, err), LQ_OK);
	CHECK_INT(mismatches, 2);
	CHECK(find_report(&r, "model.safetensors: missing", (char *)NULL));
	CHECK(find_report(&r, "notes.txt: not in the manifest", (char *)NULL));
	reports_clear(&r);
	CHECK_INT(manifest_verify(text, len, NULL, 0, collect, &r, &mismatches, NULL, NULL, err), LQ_OK);
	CHECK_INT(mismatches, 2);
	reports_clear(&r);
	/* a truncated file: its size, and its header that no longer fits */
	CHECK_INT(truncate(model, (off_t)(model_size - 5)), 0);
	files[0].size = model_size - 5;
	CHECK_INT(manifest_verify(text, len, files, 2, collect, &r, &mismatches, NULL, NULL, err), LQ_OK);
	char want[128];
	snprintf(want, sizeof want, "model.safetensors: %" PRIu64 " bytes, the manifest says %" PRIu64, model_size - 5,
		 model_size);
	CHECK(find_report(&r, want, (char *)NULL));
	CHECK(find_report(&r, "model.safetensors: its safetensors header no longer parses", "truncated", (char *)NULL));
	CHECK_INT(mismatches, 2);
	print_reports(&r);
	reports_clear(&r);
	/* a changed config.json of the same size */
	CHECK(write_all(config, "[]\n", 3));
	files[0].size = model_size;
	CHECK_INT(truncate(model, (off_t)model_size), 0); /* zeros where the data was: the last tensor differs */
	CHECK_INT(manifest_verify(text, len, files, 2, collect, &r, &mismatches, NULL, NULL, err), LQ_OK);
	CHECK(find_report(&r, "config.json: bytes differ from the manifest (xxh3_128 ", " here, ", " listed)",
			  (char *)NULL));
	CHECK(find_report(&r, "model.safetensors: bytes differ", (char *)NULL));
	CHECK(find_report(&r, "model.safetensors: tensor '", "': bytes differ", (char *)NULL));
	print_reports(&r);
	reports_clear(&r);
	/* a file that cannot be read: an I/O error, not a mismatch */
	unlink(config);
	CHECK_INT(manifest_verify(text, len, files, 2, collect, &r, &mismatches, NULL, NULL, err), LQ_ERR_IO);
	CHECK_CONTAINS(err, "config.json");
	reports_clear(&r);
	free(text);
	remove_dir(dir);
}

TEST(manifest_verify_dtype_shape_and_exact_sizes)
{
	/* a hand-written manifest: a dtype, a shape and a size that differ; a size above 2^53 kept exact */
	static const char hdr[] = "{\"w\":{\"dtype\":\"U8\",\"shape\":[2,1],\"data_offsets\":[0,2]}}";
	size_t n = strlen(hdr);
	unsigned char model[128] = {0};
	model[0] = (unsigned char)n;
	memcpy(model + 8, hdr, n);
	model[8 + n] = 7;
	model[9 + n] = 9;
	size_t model_len = 10 + n;
	char hw[33], hm[33], text[2048];
	snprintf(text, sizeof text,
		 "{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {\"k\": \"v\"}, \"files\": ["
		 "{\"path\": \"model.safetensors\", \"size\": %zu, \"xxh3_128\": \"%s\", \"tensors\": ["
		 "{\"name\": \"w\", \"dtype\": \"I8\", \"shape\": [1, 2], \"xxh3_128\": \"%s\"}]},"
		 "{\"path\": \"x.bin\", \"size\": 9007199254740993, \"xxh3_128\": \"99aa06d3014798d86001c324468d497f\"}]}",
		 model_len, xxh128_hex(model, model_len, hm), xxh128_hex(model + 8 + n, 2, hw));
	const char *paths[] = {"model.safetensors", "x.bin"};
	mem_file mem[] = {{.data = model, .len = model_len}, {.data = (const unsigned char *)"", .len = 0}};
	manifest_file files[2];
	mem_files(files, paths, mem, 2);
	reports r = {0};
	size_t mismatches;
	char err[FMT_ERRBUF];
	CHECK_INT(manifest_verify(text, strlen(text), files, 2, collect, &r, &mismatches, NULL, NULL, err), LQ_OK);
	CHECK(find_report(&r, "model.safetensors: tensor 'w': dtype U8, the manifest says I8", (char *)NULL));
	CHECK(find_report(&r, "model.safetensors: tensor 'w': shape [2, 1], the manifest says [1, 2]", (char *)NULL));
	CHECK(find_report(&r, "x.bin: 0 bytes, the manifest says 9007199254740993", (char *)NULL));
	CHECK_INT(mismatches, 3);
	print_reports(&r);
	reports_clear(&r);
}

/* ------------------------------------------------------------------------------ hostile manifests */

TEST(manifest_verify_refuses_hostile_manifests)
{
	/* each case: a manifest that is not one, and a word its message must hold */
	char deep[1200];
	memset(deep, '[', 600);
	memset(deep + 600, ']', 600);
	deep[1199] = '\0';
	char deep_files[2048];
	snprintf(deep_files, sizeof deep_files, "{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, "
		 "\"files\": %s}", deep);
	char deep_obj[4096] = "";
	for (int i = 0; i < 500; i++)
		strcat(deep_obj, "{\"a\":");
	strcat(deep_obj, "1");
	for (int i = 0; i < 500; i++)
		strcat(deep_obj, "}");
#define HEAD "{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": ["
#define FILE_(path, size, hash) "{\"path\": " path ", \"size\": " size ", \"xxh3_128\": " hash "}"
#define ST_(tensors) "{\"path\": \"m.safetensors\", \"size\": 0, \"xxh3_128\": " \
	"\"99aa06d3014798d86001c324468d497f\", \"tensors\": [" tensors "]}"
#define T_(name, dtype, shape) "{\"name\": " name ", \"dtype\": " dtype ", \"shape\": " shape \
	", \"xxh3_128\": \"99aa06d3014798d86001c324468d497f\"}"
	struct {
		const char *text;
		const char *why;
	} cases[] = {
		{"", "not a JSON object"},
		{"not json", "not a JSON object"},
		{"[]", "not a JSON object"},
		{"{}", "no key 'manifest'"},
		{"{\"manifest\": 1}", "no key"},
		{"null", "not a JSON object"},
		{"{\"manifest\": 2, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": []}", "version 2"},
		{"{\"manifest\": \"1\", \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": []}", "not a number"},
		{"{\"manifest\": 1.0, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": []}", "fractional"},
		{"{\"manifest\": 01, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": []}", "leading zero"},
		{"{\"manifest\": 1, \"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": []}",
		 "twice"},
		{"{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": [], \"x\": 1}",
		 "unknown key 'x'"},
		{"{\"manifest\": 1, \"tool\": 5, \"version\": \"v\", \"options\": {}, \"files\": []}", "tool is not a string"},
		{"{\"manifest\": 1, \"tool\": \"t\", \"version\": null, \"options\": {}, \"files\": []}", "not a string"},
		{"{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": [], \"files\": []}", "not an object"},
		{"{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {\"a\": 1}, \"files\": []}",
		 "not a string"},
		{"{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {\"a\": \"1\", \"a\": \"2\"}, "
		 "\"files\": []}", "option 'a' appears twice"},
		{"{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": {}}", "not a list"},
		{"{\"manifest\": 1, \"tool\": \"t\\u0000x\", \"version\": \"v\", \"options\": {}, \"files\": []}", "NUL"},
		{"{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": []} x", "after the end"},
		{"{\"manifest\": 1, \"tool\": \"\xff\", \"version\": \"v\", \"options\": {}, \"files\": []}", "UTF-8"},
		{"{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": [", "a file is not an object"},
		{"{\"manifest\": 1, \"tool\": \"t", "unterminated"},
		{HEAD "1]}", "a file is not an object"},
		{HEAD "{}]}", "no key 'path'"},
		{HEAD FILE_("\"a\"", "0", "\"99AA06D3014798D86001C324468D497F\"") "]}", "lowercase hexadecimal"},
		{HEAD FILE_("\"a\"", "0", "\"99aa06d3014798d86001c324468d497\"") "]}", "32 lowercase"},
		{HEAD FILE_("\"a\"", "0", "\"99aa06d3014798d86001c324468d497fa\"") "]}", "32 lowercase"},
		{HEAD FILE_("\"a\"", "0", "\"99aa06d3014798d86001c324468d49zz\"") "]}", "hexadecimal"},
		{HEAD FILE_("\"a\"", "0", "12") "]}", "xxh3_128 is not a string"},
		{HEAD FILE_("\"a\"", "-1", "\"99aa06d3014798d86001c324468d497f\"") "]}", "negative"},
		{HEAD FILE_("\"a\"", "1.5", "\"99aa06d3014798d86001c324468d497f\"") "]}", "fractional"},
		{HEAD FILE_("\"a\"", "1e3", "\"99aa06d3014798d86001c324468d497f\"") "]}", "fractional"},
		{HEAD FILE_("\"a\"", "18446744073709551616", "\"99aa06d3014798d86001c324468d497f\"") "]}", "64 bits"},
		{HEAD FILE_("\"a\"", "99999999999999999999999", "\"99aa06d3014798d86001c324468d497f\"") "]}", "64 bits"},
		{HEAD FILE_("\"a\"", "\"3\"", "\"99aa06d3014798d86001c324468d497f\"") "]}", "size is not a number"},
		{HEAD FILE_("\"a\"", "true", "\"99aa06d3014798d86001c324468d497f\"") "]}", "size is not a number"},
		{HEAD FILE_("7", "1", "\"99aa06d3014798d86001c324468d497f\"") "]}", "path is not a string"},
		{HEAD FILE_("\"a\"", "1", "\"99aa06d3014798d86001c324468d497f\"") ","
		      FILE_("\"a\"", "2", "\"99aa06d3014798d86001c324468d497f\"") "]}", "'a' is listed twice"},
		{HEAD FILE_("\"MANIFEST\"", "1", "\"99aa06d3014798d86001c324468d497f\"") "]}", "lists itself"},
		{HEAD "{\"path\": \"a\", \"size\": 1, \"xxh3_128\": \"99aa06d3014798d86001c324468d497f\", \"mode\": 1}]}",
		 "unknown key 'mode'"},
		{HEAD "{\"path\": \"a\", \"size\": 1, \"size\": 1, \"xxh3_128\": \"99aa06d3014798d86001c324468d497f\"}]}",
		 "twice"},
		{HEAD "{\"path\": \"a\", \"size\": 1, \"xxh3_128\": \"99aa06d3014798d86001c324468d497f\", \"tensors\": []}]}",
		 "not a .safetensors file but lists tensors"},
		{HEAD FILE_("\"m.safetensors\"", "1", "\"99aa06d3014798d86001c324468d497f\"") "]}", "lists no tensors"},
		{HEAD "{\"path\": \"m.safetensors\", \"size\": 0, \"xxh3_128\": \"99aa06d3014798d86001c324468d497f\", "
		      "\"tensors\": {}}]}", "tensors is not a list"},
		{HEAD ST_("7") "]}", "a tensor is not an object"},
		{HEAD ST_("{}") "]}", "no key 'name'"},
		{HEAD ST_(T_("\"w\"", "\"X8\"", "[]")) "]}", "unknown dtype 'X8'"},
		{HEAD ST_(T_("\"w\"", "8", "[]")) "]}", "dtype is not a string"},
		{HEAD ST_(T_("\"w\"", "\"U8\"", "[-1]")) "]}", "negative"},
		{HEAD ST_(T_("\"w\"", "\"U8\"", "[1.5]")) "]}", "fractional"},
		{HEAD ST_(T_("\"w\"", "\"U8\"", "[\"1\"]")) "]}", "not a number"},
		{HEAD ST_(T_("\"w\"", "\"U8\"", "3")) "]}", "shape is not a list"},
		{HEAD ST_(T_("\"w\"", "\"U8\"", "[9223372036854775808]")) "]}", "too large"},
		{HEAD ST_(T_("\"w\"", "\"U8\"", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]")) "]}", "more than 16"},
		{HEAD ST_(T_("5", "\"U8\"", "[]")) "]}", "name is not a string"},
		{HEAD ST_(T_("\"w\"", "\"U8\"", "[]") "," T_("\"w\"", "\"U8\"", "[1]")) "]}", "tensor 'w' is listed twice"},
		{HEAD ST_("{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [], \"xxh3_128\": "
			  "\"99aa06d3014798d86001c324468d497f\", \"offset\": 0}") "]}", "unknown key 'offset'"},
		{deep, "not a JSON object"},
		{deep_files, "a file is not an object"},
		{deep_obj, "unknown key 'a'"},
	};
	const char *paths[] = {"a"};
	mem_file mem[] = {{.data = (const unsigned char *)"", .len = 0}};
	manifest_file files[1];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		test_context("case %zu: %.80s", i, cases[i].text);
		char err[FMT_ERRBUF] = "";
		char *tool = (char *)1, *version = (char *)1;
		size_t mismatches = 99;
		reports r = {0};
		mem_files(files, paths, mem, 1);
		CHECK_INT(manifest_verify(cases[i].text, strlen(cases[i].text), files, 1, collect, &r, &mismatches, &tool,
					  &version, err),
			  LQ_ERR_CORRUPT);
		CHECK(strncmp(err, "MANIFEST: ", 10) == 0);
		CHECK_CONTAINS(err, cases[i].why);
		CHECK_INT(mismatches, 0);
		CHECK_INT(r.n, 0);
		CHECK(tool == NULL && version == NULL);
		CHECK_INT(mem[0].next, 0); /* no file read */
		reports_clear(&r);
	}
	test_context("%s", "");
	/* the text is taken by its length: a NUL inside, or a text that stops early */
	static const char good[] = "{\"manifest\": 1, \"tool\": \"t\", \"version\": \"v\", \"options\": {}, \"files\": []}";
	char err[FMT_ERRBUF];
	size_t mismatches;
	char nul[sizeof good + 1];
	memcpy(nul, good, sizeof good);
	nul[sizeof good - 1] = '\0';
	CHECK_INT(manifest_verify(nul, sizeof good, NULL, 0, NULL, NULL, &mismatches, NULL, NULL, err), LQ_ERR_CORRUPT);
	CHECK_INT(manifest_verify(good, sizeof good - 3, NULL, 0, NULL, NULL, &mismatches, NULL, NULL, err),
		  LQ_ERR_CORRUPT);
	CHECK_INT(manifest_verify(good, sizeof good - 1, NULL, 0, NULL, NULL, &mismatches, NULL, NULL, err), LQ_OK);
	CHECK_INT(mismatches, 0);
	/* longer than MANIFEST_MAX_SIZE: refused before a byte is read */
	char *huge = malloc(MANIFEST_MAX_SIZE + 1);
	if (huge) {
		CHECK_INT(manifest_verify(huge, MANIFEST_MAX_SIZE + 1, NULL, 0, NULL, NULL, &mismatches, NULL, NULL, err),
			  LQ_ERR_CORRUPT);
		CHECK_CONTAINS(err, "more than a manifest may hold");
		free(huge);
	}
#undef HEAD
#undef FILE_
#undef ST_
#undef T_
}
