/*
 * test_bundle.c: model bundles (formats/bundle.h):
 * - what bundle_write makes reads back byte for byte through bundle_read, in order, out of order and
 *   backwards, from memory and through the cursor, and reaches bundle_open_visit's visitor whole;
 * - the bytes are the same with 1, 2 and 4 zstd workers and from one run to the next, and the tar inside
 *   has exactly the metadata the spec fixes (read back here with libarchive);
 * - archives made the way `tar` makes them ("./x", "model/x" with its "model/" entry) are taken;
 * - hostile archives (built here with libarchive's writer, by hand, or cut short) are refused with
 *   LQ_ERR_CORRUPT and a message naming the archive and the entry.
 * With LQ_BUNDLE_CORPUS=DIR the hostile archives under 64 KiB are also saved there (how
 * tests/fuzz/corpus/bundle/ was made).
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "bundle.h"
#include "safetensors.h"
#include "test.h"
#include "util.h"

/* ------------------------------------------------------------------------------------- helpers */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A fresh scratch directory under the run's temporary directory; removed by rm_tree. */
static char *scratch_dir(void)
{
	size_t n = strlen(util_tmpdir()) + 32;
	char *dir = malloc(n);
	if (!dir)
		return NULL;
	snprintf(dir, n, "%s/bundle-XXXXXX", util_tmpdir());
	if (!mkdtemp(dir)) {
		test_fail(__FILE__, __LINE__, "mkdtemp %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

static void rm_tree(char *dir)
{
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* dir/name, in a static buffer (one at a time). */
static const char *in(const char *dir, const char *name)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "%s/%s", dir, name);
	return buf;
}

static bool put_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return test_fail(__FILE__, __LINE__, "cannot create %s: %s", path, strerror(errno));
	bool ok = fwrite(data, 1, len, fp) == len;
	ok = fclose(fp) == 0 && ok;
	return ok ? true : test_fail(__FILE__, __LINE__, "cannot write %s", path);
}

static unsigned char *get_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	*len = 0;
	if (!fp)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	unsigned char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, fp);
		if (n < cap)
			break;
		unsigned char *p = realloc(buf, cap *= 2);
		if (!p)
			free(buf);
		buf = p;
	}
	fclose(fp);
	*len = n;
	return buf;
}

static bool same_file(const char *a, const char *b)
{
	size_t na, nb;
	unsigned char *pa = get_file(a, &na), *pb = get_file(b, &nb);
	bool same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
	free(pa);
	free(pb);
	return same;
}

/* Text-like bytes that zstd compresses somewhat but not to nothing. */
static unsigned char *some_bytes(size_t n, uint64_t seed)
{
	util_rng r = {seed | 1};
	unsigned char *p = malloc(n ? n : 1);
	for (size_t i = 0; p && i < n; i++)
		p[i] = (unsigned char)("abcdefgh {}\":,0123456789\n"[util_next(&r) % 25]);
	return p;
}

/* A small valid safetensors file: one F32 tensor of `count` elements, written by st_writer. */
static bool put_safetensors(const char *path, int64_t count, uint64_t seed)
{
	st_writer *w = st_writer_create();
	if (!w || st_writer_add(w, "weight", ST_F32, 1, &count) != 0 || st_writer_layout(w) != LQ_OK ||
	    st_writer_open(w, path) != LQ_OK) {
		test_fail(__FILE__, __LINE__, "st_writer: %s", w ? st_writer_error(w) : "out of memory");
		st_writer_free(w);
		return false;
	}
	unsigned char *data = some_bytes((size_t)count * 4, seed);
	bool ok = st_writer_write(w, 0, 0, data, (size_t)count * 4) == LQ_OK && st_writer_finish(w) == LQ_OK;
	if (!ok)
		test_fail(__FILE__, __LINE__, "st_writer: %s", st_writer_error(w));
	free(data);
	st_writer_free(w);
	return ok;
}

/* bundle_write with names that are string literals (its names are not const: what hf_out lists). */
static lq_status bw(const char *path, const char *display, const char *dir, const char *const *names, size_t n,
		    int level, int threads, char *err)
{
	char *copy[16];
	if (n > 16)
		return LQ_ERR_ARG;
	memcpy(copy, names, n * sizeof *names);
	return bundle_write(path, display, dir, copy, n, level, threads, err);
}

/* The model directory most tests archive: configs, an empty file, a tokenizer larger than one read, and
 * weights. */
static const char *const model_names[] = {"tokenizer.json", "model.safetensors", "config.json", "empty.txt",
					  "extra.safetensors"};
#define MODEL_N (sizeof model_names / sizeof *model_names)

static bool make_model(const char *dir)
{
	const char *config = "{\"model_type\": \"llama\", \"hidden_size\": 64}\n";
	unsigned char *tok = some_bytes(3 * 1024 * 1024 + 17, 7);
	bool ok = tok && put_file(in(dir, "config.json"), config, strlen(config)) &&
		  put_file(in(dir, "empty.txt"), "", 0) && put_file(in(dir, "tokenizer.json"), tok, 3 * 1024 * 1024 + 17) &&
		  put_safetensors(in(dir, "model.safetensors"), 300000, 11) &&
		  put_safetensors(in(dir, "extra.safetensors"), 100000, 13);
	free(tok);
	return ok;
}

static lq_status write_bundle(const char *path, const char *dir, int level, int threads)
{
	char err[FMT_ERRBUF] = "";
	lq_status st = bw(path, NULL, dir, model_names, MODEL_N, level, threads, err);
	if (st != LQ_OK)
		test_fail(__FILE__, __LINE__, "bundle_write %s: %s", path, err);
	return st;
}

/* Reads entry i of b in pieces of `piece` bytes, in the order `order` gives (0 forward, 1 backward,
 * 2 shuffled), and compares with want. */
static bool read_back(bundle *b, size_t i, const unsigned char *want, uint64_t size, size_t piece, int order)
{
	size_t npieces = size ? (size_t)((size + piece - 1) / piece) : 1;
	size_t *idx = malloc(npieces * sizeof *idx);
	unsigned char *got = malloc(piece);
	bool ok = idx && got;
	for (size_t k = 0; ok && k < npieces; k++)
		idx[k] = order == 1 ? npieces - 1 - k : k;
	if (ok && order == 2) {
		util_rng r = {0x9e3779b97f4a7c15ull};
		for (size_t k = npieces; k > 1; k--) {
			size_t j = (size_t)(util_next(&r) % k), t = idx[k - 1];
			idx[k - 1] = idx[j];
			idx[j] = t;
		}
	}
	for (size_t k = 0; ok && k < npieces; k++) {
		uint64_t off = (uint64_t)idx[k] * piece;
		size_t len = size - off < piece ? (size_t)(size - off) : piece;
		lq_status st = bundle_read(b, i, off, got, len);
		if (st != LQ_OK)
			ok = test_fail(__FILE__, __LINE__, "bundle_read entry %zu at %" PRIu64 ": %s", i, off, bundle_error(b));
		else if (memcmp(got, want + off, len) != 0)
			ok = test_fail(__FILE__, __LINE__, "entry %zu: bytes at %" PRIu64 " differ", i, off);
	}
	free(idx);
	free(got);
	return ok;
}

/* A growing buffer as a libarchive write target. */
typedef struct membuf {
	unsigned char *p;
	size_t len, cap;
} membuf;

static void mem_put(membuf *m, const void *data, size_t len)
{
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 1 << 16;
		while (cap < m->len + len)
			cap *= 2;
		unsigned char *p = realloc(m->p, cap);
		if (!p)
			abort();
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, data, len);
	m->len += len;
}

static la_ssize_t mem_write(struct archive *a, void *arg, const void *buf, size_t len)
{
	(void)a;
	mem_put(arg, buf, len);
	return (la_ssize_t)len;
}

/* A member of a hand-made archive. type: 0 regular, else an AE_IF* value; link: a symlink's target, or
 * (hard) a hard link's. */
typedef struct member {
	const char *name;
	const char *data;
	mode_t type;
	const char *link;
	bool hard;
	size_t len; /* of data; 0: strlen */
} member;

/* The tar bytes of members, through libarchive's writer (which writes whatever it is told). */
static membuf make_tar(const member *m, size_t n)
{
	membuf out = {0};
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open(a, &out, NULL, mem_write, NULL) != ARCHIVE_OK)
		test_fail(__FILE__, __LINE__, "archive_write_open: %s", archive_error_string(a));
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		mode_t type = m[i].type ? m[i].type : AE_IFREG;
		size_t len = m[i].len ? m[i].len : m[i].data ? strlen(m[i].data) : 0;
		archive_entry_set_pathname(e, m[i].name);
		archive_entry_set_filetype(e, type);
		archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
		if (m[i].hard)
			archive_entry_set_hardlink(e, m[i].link);
		else if (m[i].link)
			archive_entry_set_symlink(e, m[i].link);
		if (type == AE_IFCHR)
			archive_entry_set_rdev(e, 0x0105);
		archive_entry_set_size(e, type == AE_IFREG && !m[i].hard ? (la_int64_t)len : 0);
		int r = archive_write_header(a, e);
		if (r < ARCHIVE_WARN)
			test_fail(__FILE__, __LINE__, "archive_write_header '%s': %s", m[i].name, archive_error_string(a));
		if (len && type == AE_IFREG && !m[i].hard)
			archive_write_data(a, m[i].data, len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	return out;
}

static membuf zstd_of(const membuf *t)
{
	membuf out = {0};
	size_t cap = ZSTD_compressBound(t->len);
	out.p = malloc(cap);
	out.len = out.p ? ZSTD_compress(out.p, cap, t->p, t->len, 3) : 0;
	if (ZSTD_isError(out.len))
		out.len = 0;
	out.cap = cap;
	return out;
}

/* The same with a content checksum, as bundle_write and the zstd program write frames. */
static membuf zstd_checked_of(const membuf *t)
{
	membuf out = {0};
	size_t cap = ZSTD_compressBound(t->len);
	ZSTD_CCtx *c = ZSTD_createCCtx();
	out.p = malloc(cap);
	if (c && out.p && !ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)))
		out.len = ZSTD_compress2(c, out.p, cap, t->p, t->len);
	if (ZSTD_isError(out.len))
		out.len = 0;
	out.cap = cap;
	ZSTD_freeCCtx(c);
	return out;
}

/* A ustar header by hand, for what libarchive's writer will not make. */
static void octal(unsigned char *dst, size_t width, uint64_t v)
{
	dst[width - 1] = '\0';
	for (size_t i = width - 1; i-- > 0; v >>= 3)
		dst[i] = (unsigned char)('0' + (v & 7));
}

static void raw_header(unsigned char h[512], const char *name, char type, uint64_t size)
{
	memset(h, 0, 512);
	memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
	octal(h + 100, 8, 0644);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	octal(h + 136, 12, 0);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	octal(h + 148, 7, sum);
}

/* The one archive of the healthy files the hostile cases are made beside. */
static const member base[] = {
	{"config.json", "{\"model_type\": \"llama\"}", 0, NULL, false, 0},
	{"model.safetensors", "\x10\0\0\0\0\0\0\0{}              ", 0, NULL, false, 24},
};

static void save_corpus(const char *name, const membuf *m)
{
	const char *dir = getenv("LQ_BUNDLE_CORPUS");
	if (!dir || !*dir || m->len >= 65536)
		return;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	put_file(path, m->p ? (const void *)m->p : "", m->len);
}

/* ------------------------------------------------------------------------------- round trips */

TEST(bundle_round_trip)
{
	char *dir = scratch_dir(), *out = scratch_dir();
	if (!dir || !out || !make_model(dir)) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	const char *path = in(out, "model.tar.zst");
	char archive[4096];
	snprintf(archive, sizeof archive, "%s", path);
	if (write_bundle(archive, dir, 3, 2) != LQ_OK) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	bundle *b = bundle_create();
	lq_status st = bundle_open(b, archive);
	if (!CHECK(st == LQ_OK) || !CHECK_INT(bundle_count(b), MODEL_N)) {
		test_fail(__FILE__, __LINE__, "%s", bundle_error(b));
		goto done;
	}
	CHECK_STR(bundle_path(b), archive);
	/* archive order is bytewise order whatever order the names came in */
	static const char *const sorted[] = {"config.json", "empty.txt", "extra.safetensors", "model.safetensors",
					     "tokenizer.json"};
	for (size_t i = 0; i < MODEL_N; i++) {
		const bundle_entry *e = bundle_entry_at(b, i);
		test_context("entry %s", sorted[i]);
		CHECK_STR(e->name, sorted[i]);
		CHECK_INT(bundle_find(b, sorted[i]), i);
		size_t len;
		unsigned char *want = get_file(in(dir, sorted[i]), &len);
		if (!CHECK(want != NULL))
			continue;
		CHECK_INT(e->size, len);
		if (strstr(e->name, ".safetensors")) {
			uint64_t n = 0;
			for (int k = 7; k >= 0; k--)
				n = n << 8 | want[k];
			CHECK_INT(e->head_len, 8 + n); /* the header only */
			CHECK(e->head_len < e->size);
		} else {
			CHECK_INT(e->head_len, len); /* whole */
			CHECK(e->head[e->head_len] == '\0');
		}
		CHECK(memcmp(e->head, want, (size_t)e->head_len) == 0);
		free(want);
	}
	test_context("%s", "");
	CHECK_INT(bundle_find(b, "missing.json"), -1);
	CHECK(bundle_entry_at(b, MODEL_N) == NULL);

	/* every byte, in order over all entries, then out of order, then backwards, in odd pieces */
	static const int orders[] = {0, 2, 1};
	static const size_t pieces[] = {65537, 100003, 1 << 20};
	for (int o = 0; o < 3; o++)
		for (size_t i = 0; i < MODEL_N; i++) {
			size_t len;
			unsigned char *want = get_file(in(dir, sorted[i]), &len);
			test_context("order %d, entry %s", orders[o], sorted[i]);
			read_back(b, i, want, len, pieces[o], orders[o]);
			free(want);
		}
	/* the two weight files in turn, against archive order: each read of the first starts the cursor again */
	{
		size_t lx, lm;
		unsigned char *x = get_file(in(dir, "extra.safetensors"), &lx), *m = get_file(in(dir, "model.safetensors"), &lm);
		unsigned char buf[4096];
		for (int k = 0; k < 4 && x && m; k++) {
			test_context("alternating, round %d", k);
			CHECK(bundle_read(b, 3, lm - 4096 - (size_t)k, buf, 4096) == LQ_OK &&
			      memcmp(buf, m + lm - 4096 - k, 4096) == 0);
			CHECK(bundle_read(b, 2, lx / 2 + (size_t)k, buf, 4096) == LQ_OK && memcmp(buf, x + lx / 2 + k, 4096) == 0);
			/* a straddle of the header held in memory and the data after it */
			size_t h = (size_t)bundle_entry_at(b, 2)->head_len;
			CHECK(bundle_read(b, 2, h - 100, buf, 200) == LQ_OK && memcmp(buf, x + h - 100, 200) == 0);
		}
		free(x);
		free(m);
	}
	test_context("%s", "");

	/* the weights, parsed from what the scan kept, as hf_model does */
	st_file *f = st_file_create();
	const bundle_entry *w = bundle_entry_at(b, 3);
	CHECK(f && st_file_parse(f, w->head, (size_t)w->head_len, w->size, "model.safetensors") == LQ_OK);
	CHECK(f && f->ntensors == 1 && f->data_start == w->head_len);
	st_file_free(f);

	/* past the end: LQ_ERR_ARG, and the cursor still works after it */
	unsigned char one;
	CHECK(bundle_read(b, 0, bundle_entry_at(b, 0)->size, &one, 1) == LQ_ERR_ARG);
	CHECK_CONTAINS(bundle_error(b), "config.json");
	CHECK(bundle_read(b, 0, UINT64_MAX, &one, 1) == LQ_ERR_ARG);
	CHECK(bundle_read(b, MODEL_N, 0, &one, 1) == LQ_ERR_ARG);
	CHECK(bundle_read(b, 1, 0, &one, 0) == LQ_OK); /* nothing from an empty file */
	CHECK(bundle_read(b, 3, 5, &one, 1) == LQ_OK);
	CHECK(bundle_read(b, 3, bundle_entry_at(b, 3)->size - 1, &one, 1) == LQ_OK);

	/* opened again, the same bundle object */
	CHECK(bundle_open(b, archive) == LQ_OK && bundle_count(b) == MODEL_N);
done:
	bundle_free(b);
	bundle_free(NULL);
	rm_tree(dir);
	rm_tree(out);
}

/* ------------------------------------------------------------------------------ the visitor */

/* What bundle_open_visit's visitor saw: each entry's bytes put together, and anything out of order. */
typedef struct visited {
	unsigned char *data[8];
	uint64_t got[8], size[8];
	char *name[8];
	size_t n;
	int calls, bad;
	int fail_at; /* the call that returns LQ_ERR_IO, or 0 */
} visited;

static lq_status see(void *arg, size_t entry, const char *name, uint64_t size, uint64_t offset, const void *data,
		     size_t len, char *err)
{
	visited *v = arg;
	if (++v->calls == v->fail_at)
		return fmt_fail(err, LQ_ERR_IO, "the visitor stops here");
	if (entry >= 8 || entry > v->n || (entry == v->n && offset != 0)) {
		v->bad++;
		return LQ_OK;
	}
	if (entry == v->n) { /* a new entry, in archive order */
		v->name[entry] = strdup(name);
		v->size[entry] = size;
		v->data[entry] = malloc(size ? (size_t)size : 1);
		v->n++;
	}
	if (offset != v->got[entry] || size != v->size[entry] || len > size - offset || strcmp(name, v->name[entry])) {
		v->bad++;
		return LQ_OK;
	}
	memcpy(v->data[entry] + offset, data, len);
	v->got[entry] += len;
	return LQ_OK;
}

static void visited_free(visited *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->data[i]);
		free(v->name[i]);
	}
}

/* Every byte of every entry reaches the visitor, in order, under the names bundle_entry_at gives (the
 * empty file too); the entries then read back as bundle_open's do; a visitor's error stops the scan. */
TEST(bundle_visitor_sees_every_byte)
{
	char *dir = scratch_dir(), *out = scratch_dir();
	if (!dir || !out || !make_model(dir)) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	char zst[4096], tar[4096];
	snprintf(zst, sizeof zst, "%s", in(out, "model.tar.zst"));
	snprintf(tar, sizeof tar, "%s", in(out, "model.tar"));
	if (write_bundle(zst, dir, 3, 2) != LQ_OK || write_bundle(tar, dir, 3, 1) != LQ_OK) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	const char *const paths[] = {zst, tar};
	for (int k = 0; k < 2; k++) {
		test_context("%s", k ? "tar" : "tar.zst");
		visited v = {0};
		bundle *b = bundle_create();
		if (!CHECK(b && bundle_open_visit(b, paths[k], see, &v) == LQ_OK)) {
			test_fail(__FILE__, __LINE__, "%s", b ? bundle_error(b) : "out of memory");
		} else if (CHECK_INT(v.bad, 0) && CHECK_INT(v.n, MODEL_N) && CHECK_INT(bundle_count(b), MODEL_N)) {
			for (size_t i = 0; i < MODEL_N; i++) {
				const bundle_entry *e = bundle_entry_at(b, i);
				size_t len;
				unsigned char *want = get_file(in(dir, e->name), &len);
				test_context("%s, entry %s", k ? "tar" : "tar.zst", e->name);
				CHECK_STR(v.name[i], e->name);
				CHECK(want && v.got[i] == len && memcmp(v.data[i], want, len) == 0);
				/* what the scan kept, and the cursor, as without a visitor */
				CHECK(memcmp(e->head, want, (size_t)e->head_len) == 0);
				if (want)
					read_back(b, i, want, len, 100003, 0);
				free(want);
			}
		}
		visited_free(&v);
		/* a visitor's error: its status and message, and nothing opened */
		for (int at = 1; at <= 7; at += 3) {
			visited w = {.fail_at = at};
			test_context("%s, the visitor fails at call %d", k ? "tar" : "tar.zst", at);
			CHECK_INT(bundle_open_visit(b, paths[k], see, &w), LQ_ERR_IO);
			CHECK_STR(bundle_error(b), "the visitor stops here");
			CHECK_INT(bundle_count(b), 0);
			visited_free(&w);
		}
		bundle_free(b);
	}
	test_context("%s", "");
	/* a top-level directory: the visitor is given the names as the scan reads them, before the directory,
	 * which only the end of the scan shows to hold every file, is dropped */
	static const member top[] = {
		{"model/", NULL, AE_IFDIR, NULL, false, 0},
		{"model/config.json", "{\"a\": 1}", 0, NULL, false, 0},
		{"model/model.safetensors", "\x10\0\0\0\0\0\0\0{}              ", 0, NULL, false, 24},
	};
	membuf t = make_tar(top, 3);
	membuf z = zstd_of(&t);
	char path[4096];
	snprintf(path, sizeof path, "%s/top.tar.zst", out);
	visited v = {0};
	bundle *b = bundle_create();
	if (put_file(path, z.p, z.len) && CHECK(b && bundle_open_visit(b, path, see, &v) == LQ_OK) &&
	    CHECK_INT(v.n, 2) && CHECK_INT(v.bad, 0)) {
		CHECK_STR(v.name[0], "model/config.json");
		CHECK_STR(v.name[1], "model/model.safetensors");
		CHECK_STR(bundle_entry_at(b, 0)->name, "config.json");
		CHECK(v.got[0] == 8 && memcmp(v.data[0], "{\"a\": 1}", 8) == 0);
		CHECK(v.got[1] == 24 && memcmp(v.data[1], "\x10\0\0\0\0\0\0\0{}              ", 24) == 0);
	}
	visited_free(&v);
	bundle_free(b);
	free(t.p);
	free(z.p);
	rm_tree(dir);
	rm_tree(out);
}

/* Reads that go forward in three places of one entry at once, in turns, decompress a few times the entry,
 * not once per turn (as a single cursor, started again at every step back, would); the bytes are right. */
TEST(bundle_interleaved_streams)
{
	char *dir = scratch_dir(), *out = scratch_dir();
	size_t piece = 64u << 10, big = 0;
	unsigned char *data = NULL, *got = malloc(piece);
	static const char *const names[] = {"big.safetensors"};
	char err[FMT_ERRBUF] = "", path[4096];
	if (!dir || !out || !got || !put_safetensors(in(dir, "big.safetensors"), 3 << 20, 5) ||
	    !(data = get_file(in(dir, "big.safetensors"), &big))) {
		free(data);
		free(got);
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	snprintf(path, sizeof path, "%s", in(out, "big.tar.zst"));
	bundle *b = bundle_create();
	if (CHECK(bw(path, NULL, dir, names, 1, 1, 1, err) == LQ_OK) && CHECK(b && bundle_open(b, path) == LQ_OK)) {
		/* the 12 MiB of data after the header in three thirds, a piece of each in turn */
		size_t h = (size_t)bundle_entry_at(b, 0)->head_len, third = (big - h) / 3, bad = 0;
		for (size_t at = 0; at + piece <= third; at += piece)
			for (size_t k = 0; k < 3; k++) {
				size_t off = h + k * third + at;
				if (bundle_read(b, 0, off, got, piece) != LQ_OK || memcmp(got, data + off, piece) != 0)
					bad++;
			}
		CHECK_INT(bad, 0);
		test_note("interleaved: %.2f times the entry decompressed", (double)bundle_decoded(b) / (double)big);
		CHECK(bundle_decoded(b) > big / 2);
		CHECK(bundle_decoded(b) <= 3 * (uint64_t)big);
		/* and one step back to the start: a cursor starts again, and it is counted */
		uint64_t before = bundle_decoded(b);
		CHECK(bundle_read(b, 0, h, got, piece) == LQ_OK && memcmp(got, data + h, piece) == 0);
		CHECK(bundle_decoded(b) >= before + piece);
	}
	bundle_free(b);
	free(data);
	free(got);
	rm_tree(dir);
	rm_tree(out);
}

/* A compressed bundle's small tensors (a quant_state, a quant map: at most 4096 bytes) are kept by the
 * scan: reading them decompresses nothing, wherever the cursors are; a large tensor still goes through a
 * cursor; a .tar keeps none (its reads are cheap). */
TEST(bundle_small_tensors_held)
{
	char *dir = scratch_dir(), *out = scratch_dir();
	if (!dir || !out) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	/* big (4 MiB) between small ones, a small one at the very end, one of exactly 4096 bytes, one of 4097 */
	static const struct {
		const char *name;
		int64_t count; /* U8 elements */
	} ts[] = {{"a.quant_map", 64}, {"b.big", 4 << 20}, {"c.quant_state", 301}, {"d.edge", 4096}, {"e.over", 4097},
		  {"f.last", 7}};
	enum { NT = sizeof ts / sizeof *ts };
	st_writer *w = st_writer_create();
	bool ok = w != NULL;
	for (int i = 0; ok && i < NT; i++)
		ok = st_writer_add(w, ts[i].name, ST_U8, 1, &ts[i].count) == i;
	ok = ok && st_writer_layout(w) == LQ_OK && st_writer_open(w, in(dir, "model.safetensors")) == LQ_OK;
	for (int i = 0; ok && i < NT; i++) {
		unsigned char *d = some_bytes((size_t)ts[i].count, (uint64_t)i + 1);
		ok = d && st_writer_write(w, i, 0, d, (size_t)ts[i].count) == LQ_OK;
		free(d);
	}
	ok = ok && st_writer_finish(w) == LQ_OK;
	st_writer_free(w);
	size_t flen = 0;
	unsigned char *file = ok ? get_file(in(dir, "model.safetensors"), &flen) : NULL;
	st_file *f = st_file_create();
	if (!CHECK(file && f && st_file_parse(f, file, flen, flen, "m") == LQ_OK)) {
		free(file);
		st_file_free(f);
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	static const char *const names[] = {"model.safetensors"};
	static const char *const kinds[] = {"model.tar.zst", "model.tar"};
	char err[FMT_ERRBUF] = "", path[4096];
	unsigned char buf[8192];
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof path, "%s", in(out, kinds[k]));
		bundle *b = bundle_create();
		if (!CHECK(bw(path, NULL, dir, names, 1, 3, 1, err) == LQ_OK) || !CHECK(b && bundle_open(b, path) == LQ_OK)) {
			bundle_free(b);
			continue;
		}
		/* the big one first, to its end: the cursor is then past every small one but the last */
		const st_tensor *big = st_file_find(f, "b.big");
		uint64_t at = f->data_start + big->begin;
		CHECK(bundle_read(b, 0, at + big->end - big->begin - 100, buf, 100) == LQ_OK &&
		      memcmp(buf, file + at + big->end - big->begin - 100, 100) == 0);
		for (int i = 0; i < NT; i++) {
			const st_tensor *t = st_file_find(f, ts[i].name);
			uint64_t off = f->data_start + t->begin, len = t->end - t->begin;
			if (len > sizeof buf)
				continue;
			test_context("%s, %s", kinds[k], ts[i].name);
			uint64_t before = bundle_decoded(b);
			CHECK(bundle_read(b, 0, off, buf, (size_t)len) == LQ_OK && memcmp(buf, file + off, (size_t)len) == 0);
			/* and a part of it, and a range that begins inside it and ends past it */
			CHECK(bundle_read(b, 0, off + 1, buf, 1) == LQ_OK && buf[0] == file[off + 1]);
			bool held = k == 0 && len <= 4096;
			if (held)
				CHECK_INT(bundle_decoded(b) - before, 0);
			else
				CHECK(bundle_decoded(b) > before);
			if (off + len < flen)
				CHECK(bundle_read(b, 0, off + len - 1, buf, 2) == LQ_OK && memcmp(buf, file + off + len - 1, 2) == 0);
		}
		test_context("%s", "");
		bundle_free(b);
	}
	free(file);
	st_file_free(f);
	rm_tree(dir);
	rm_tree(out);
}

/* The same files give the same bytes: 1, 2 and 4 workers, two runs. The data is larger than several of
 * zstd's jobs at level 1 (2 MiB each), so the workers really split it. */
TEST(bundle_deterministic)
{
	char *dir = scratch_dir(), *out = scratch_dir();
	size_t big = 12u << 20;
	unsigned char *data = some_bytes(big, 3);
	if (!dir || !out || !data || !make_model(dir) || !put_file(in(dir, "big.safetensors"), data, big)) {
		free(data);
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	free(data);
	static const char *const names[] = {"model.safetensors", "big.safetensors", "config.json", "tokenizer.json"};
	static const int threads[] = {1, 2, 4, 2, 0};
	char paths[5][4096];
	for (int i = 0; i < 5; i++) {
		snprintf(paths[i], sizeof paths[i], "%s/t%d-%d.tar.zst", out, threads[i], i);
		char err[FMT_ERRBUF] = "";
		lq_status st = bw(paths[i], NULL, dir, names, 4, 1, threads[i], err);
		if (!CHECK(st == LQ_OK))
			test_fail(__FILE__, __LINE__, "%s", err);
	}
	CHECK(same_file(paths[0], paths[1])); /* -T 1 and -T 2 */
	CHECK(same_file(paths[0], paths[2])); /* -T 4 */
	CHECK(same_file(paths[1], paths[3])); /* a second run */
	CHECK(same_file(paths[0], paths[4])); /* 0 is one worker */
	/* a given order of names does not matter either */
	static const char *const reversed[] = {"tokenizer.json", "config.json", "big.safetensors", "model.safetensors"};
	char err[FMT_ERRBUF] = "", p[4096];
	snprintf(p, sizeof p, "%s/reversed.tar.zst", out);
	CHECK(bw(p, NULL, dir, reversed, 4, 1, 3, err) == LQ_OK);
	CHECK(same_file(paths[0], p));
	/* another level: other bytes */
	snprintf(p, sizeof p, "%s/level5.tar.zst", out);
	CHECK(bw(p, NULL, dir, names, 4, 5, 2, err) == LQ_OK);
	CHECK(!same_file(paths[0], p));
	size_t n;
	free(get_file(paths[0], &n));
	test_note("%zu bytes of archive, the same with 1, 2 and 4 workers and in two runs", n);
	rm_tree(dir);
	rm_tree(out);
}

/* The tar inside, read back with libarchive: what the spec fixes, and nothing else. */
TEST(bundle_tar_properties)
{
	char *dir = scratch_dir(), *out = scratch_dir();
	char longname[200];
	memset(longname, 'x', 150);
	memcpy(longname + 150, ".json", 6);
	if (!dir || !out || !make_model(dir) || !put_file(in(dir, longname), "{}", 2)) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	const char *names[] = {"tokenizer.json", "model.safetensors", longname, "config.json", "empty.txt"};
	char path[4096], err[FMT_ERRBUF] = "";
	snprintf(path, sizeof path, "%s/m.tar.zst", out);
	if (!CHECK(bw(path, NULL, dir, names, 5, 3, 2, err) == LQ_OK)) {
		test_fail(__FILE__, __LINE__, "%s", err);
		goto done;
	}
	/* the zstd frame carries a checksum */
	size_t zlen;
	unsigned char *z = get_file(path, &zlen);
	CHECK(z && zlen > 5 && z[0] == 0x28 && z[1] == 0xb5 && z[2] == 0x2f && z[3] == 0xfd && (z[4] & 0x04));
	/* the tar: blocks of 512, ending right after the two zero blocks (bytes_in_last_block 1) */
	membuf t = {0};
	{
		ZSTD_DCtx *d = ZSTD_createDCtx();
		ZSTD_inBuffer inb = {z, zlen, 0};
		unsigned char tmp[1 << 16];
		while (d && inb.pos < inb.size) {
			ZSTD_outBuffer ob = {tmp, sizeof tmp, 0};
			size_t r = ZSTD_decompressStream(d, &ob, &inb);
			if (!CHECK(!ZSTD_isError(r)))
				break;
			mem_put(&t, tmp, ob.pos);
		}
		ZSTD_freeDCtx(d);
	}
	free(z);
	CHECK(t.len % 512 == 0 && t.len >= 1024);
	static const unsigned char zeros[1024];
	CHECK(t.len >= 1024 && memcmp(t.p + t.len - 1024, zeros, 1024) == 0);
	CHECK(t.len > 512 && memcmp(t.p + 257, "ustar\0" "00", 8) == 0); /* POSIX ustar magic */

	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	CHECK(archive_read_open_memory(a, t.p, t.len) == ARCHIVE_OK);
	struct archive_entry *e;
	char prev[300] = "";
	int count = 0, pax = 0;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		test_context("entry %s", name);
		CHECK(strcmp(prev, name) < 0);
		snprintf(prev, sizeof prev, "%s", name);
		CHECK_INT(archive_entry_filetype(e), AE_IFREG);
		CHECK_INT(archive_entry_mode(e), AE_IFREG | 0644);
		CHECK(archive_entry_mtime_is_set(e) && archive_entry_mtime(e) == 0 && archive_entry_mtime_nsec(e) == 0);
		CHECK(!archive_entry_atime_is_set(e) && !archive_entry_ctime_is_set(e) && !archive_entry_birthtime_is_set(e));
		CHECK_INT(archive_entry_uid(e), 0);
		CHECK_INT(archive_entry_gid(e), 0);
		CHECK(!archive_entry_uname(e) || !*archive_entry_uname(e));
		CHECK(!archive_entry_gname(e) || !*archive_entry_gname(e));
		CHECK(archive_entry_hardlink(e) == NULL && archive_entry_symlink(e) == NULL);
		/* pax restricted: plain ustar where ustar can say it, a pax header only for the long name */
		int fmt = archive_format(a);
		if (strlen(name) > 100) {
			CHECK_INT(fmt, ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE);
			pax++;
		} else {
			CHECK_INT(fmt, ARCHIVE_FORMAT_TAR_USTAR);
		}
		count++;
	}
	test_context("%s", "");
	CHECK_INT(count, 5);
	CHECK_INT(pax, 1);
	archive_read_free(a);
	free(t.p);
done:
	rm_tree(dir);
	rm_tree(out);
}

/* A .tar is the archive inside the .tar.zst, uncompressed; both read back. */
TEST(bundle_tar_uncompressed)
{
	bool c = true;
	CHECK(bundle_path_is_bundle("a/m.tar", &c) && !c);
	CHECK(bundle_path_is_bundle("m.tar.zst", &c) && c);
	CHECK(bundle_path_is_bundle("m.tzst", &c) && c);
	CHECK(bundle_path_is_bundle("m.tar.zstd", &c) && c);
	CHECK(!bundle_path_is_bundle("m.zst", &c) && !bundle_path_is_bundle("m.safetensors", &c) &&
	      !bundle_path_is_bundle(".tar", &c));

	char *dir = scratch_dir(), *out = scratch_dir();
	if (!dir || !out || !make_model(dir)) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	char zp[4096], tp[4096], hp[4096];
	snprintf(zp, sizeof zp, "%s/m.tar.zst", out);
	snprintf(tp, sizeof tp, "%s/m.tar", out);
	snprintf(hp, sizeof hp, "%s/tmp.archive", out);
	if (write_bundle(zp, dir, 3, 1) != LQ_OK || write_bundle(tp, dir, 3, 1) != LQ_OK)
		goto done;
	size_t zl, tl;
	unsigned char *z = get_file(zp, &zl), *t = get_file(tp, &tl);
	unsigned char *u = z && t ? malloc(tl + 1) : NULL;
	CHECK(u && ZSTD_decompress(u, tl + 1, z, zl) == tl && memcmp(u, t, tl) == 0);
	free(z);
	free(t);
	free(u);
	bundle *b = bundle_create();
	CHECK(bundle_open(b, tp) == LQ_OK && bundle_count(b) == MODEL_N);
	size_t len;
	unsigned char *want = get_file(in(dir, "model.safetensors"), &len);
	int64_t i = bundle_find(b, "model.safetensors");
	CHECK(i == 3 && want && read_back(b, (size_t)i, want, len, 30001, 2));
	free(want);
	bundle_free(b);
	/* written under a temporary name: the name it will have decides (hf_out's x.archive) */
	char err[FMT_ERRBUF] = "";
	CHECK(bw(hp, zp, dir, model_names, MODEL_N, 3, 1, err) == LQ_OK);
	CHECK(same_file(hp, zp));
done:
	rm_tree(dir);
	rm_tree(out);
}

/* What `tar -cf x.tar -C model .` and `tar -cf x.tar model` make: the prefix is dropped. */
TEST(bundle_prefixes)
{
	char *out = scratch_dir();
	if (!out)
		return;
	static const member dot[] = {
		{"./", NULL, AE_IFDIR, NULL, false, 0},
		{"./config.json", "{\"a\": 1}", 0, NULL, false, 0},
		{"./model.safetensors", "\x10\0\0\0\0\0\0\0{}              ", 0, NULL, false, 24},
	};
	static const member top[] = {
		{"model/", NULL, AE_IFDIR, NULL, false, 0},
		{"model/config.json", "{\"a\": 1}", 0, NULL, false, 0},
		{"model/model.safetensors", "\x10\0\0\0\0\0\0\0{}              ", 0, NULL, false, 24},
	};
	static const member dot_top[] = {
		{".", NULL, AE_IFDIR, NULL, false, 0},
		{"./model/config.json", "{\"a\": 1}", 0, NULL, false, 0},
		{"./model", NULL, AE_IFDIR, NULL, false, 0},
		{"./model/model.safetensors", "\x10\0\0\0\0\0\0\0{}              ", 0, NULL, false, 24},
	};
	static const member top_no_dir[] = {
		{"m/config.json", "{\"a\": 1}", 0, NULL, false, 0},
		{"m/model.safetensors", "\x10\0\0\0\0\0\0\0{}              ", 0, NULL, false, 24},
	};
	static const struct {
		const char *name;
		const member *m;
		size_t n;
	} cases[] = {{"dot", dot, 3}, {"top", top, 3}, {"dot_top", dot_top, 4}, {"top_no_dir", top_no_dir, 2}};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		test_context("%s", cases[c].name);
		membuf t = make_tar(cases[c].m, cases[c].n);
		membuf z = zstd_of(&t);
		char path[4096];
		snprintf(path, sizeof path, "%s/%s.tar.zst", out, cases[c].name);
		put_file(path, z.p, z.len);
		char cname[64];
		snprintf(cname, sizeof cname, "ok-%s.tar.zst", cases[c].name);
		save_corpus(cname, &z);
		bundle *b = bundle_create();
		lq_status st = bundle_open(b, path);
		if (CHECK(st == LQ_OK) && CHECK_INT(bundle_count(b), 2)) {
			CHECK_STR(bundle_entry_at(b, 0)->name, "config.json");
			CHECK_STR(bundle_entry_at(b, 1)->name, "model.safetensors");
			CHECK(bundle_find(b, "model.safetensors") == 1);
			/* past the head: the cursor's second pass sees the same names through the prefix */
			unsigned char buf[14];
			CHECK(bundle_read(b, 1, 10, buf, 14) == LQ_OK && memcmp(buf, "              ", 14) == 0);
			CHECK(bundle_read(b, 1, 8, buf, 2) == LQ_OK && memcmp(buf, "{}", 2) == 0);
		} else {
			test_fail(__FILE__, __LINE__, "%s", bundle_error(b));
		}
		bundle_free(b);
		free(t.p);
		free(z.p);
	}
	test_context("%s", "");
	/* a small bundle from bundle_write, both kinds, for the fuzzing corpus */
	if (getenv("LQ_BUNDLE_CORPUS")) {
		char *dir = scratch_dir();
		const char *cfg = "{\"model_type\": \"llama\"}";
		static const char *const names[] = {"config.json", "model.safetensors"};
		char p[4096], err[FMT_ERRBUF];
		if (dir && put_file(in(dir, "config.json"), cfg, strlen(cfg)) &&
		    put_safetensors(in(dir, "model.safetensors"), 64, 1))
			for (int k = 0; k < 2; k++) {
				snprintf(p, sizeof p, "%s/ok-written%s", out, k ? ".tar" : ".tar.zst");
				if (CHECK(bw(p, NULL, dir, names, 2, 3, 1, err) == LQ_OK)) {
					membuf m = {0};
					m.p = get_file(p, &m.len);
					save_corpus(k ? "ok-written.tar" : "ok-written.tar.zst", &m);
					free(m.p);
				}
			}
		rm_tree(dir);
	}
	rm_tree(out);
}

/* Folders: a sentence-transformers model keeps its modules in them (1_Pooling/config.json,
 * 2_Dense/model.safetensors). bundle_write archives nested names in bytewise order, with no directory
 * entries and the fixed metadata of every file; the reader takes them back, and archives that tar makes
 * with directory entries at any depth; a top-level directory is dropped only when every file lies in it. */
TEST(bundle_nested)
{
	char *dir = scratch_dir(), *out = scratch_dir();
	if (!dir || !out) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	const char *pooling = "{\"word_embedding_dimension\": 384}\n";
	mkdir(in(dir, "1_Pooling"), 0755);
	mkdir(in(dir, "2_Dense"), 0755);
	mkdir(in(dir, "a"), 0755);
	mkdir(in(dir, "a/b"), 0755);
	if (!put_file(in(dir, "1_Pooling/config.json"), pooling, strlen(pooling)) ||
	    !put_safetensors(in(dir, "2_Dense/model.safetensors"), 200000, 3) ||
	    !put_file(in(dir, "2_Dense/config.json"), "{}", 2) || !put_file(in(dir, "a/b/c.txt"), "c", 1) ||
	    !put_file(in(dir, "a.json"), "{}", 2) || !put_safetensors(in(dir, "model.safetensors"), 1000, 4) ||
	    !put_file(in(dir, "config.json"), "{}", 2)) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	static const char *const names[] = {"model.safetensors", "a/b/c.txt", "2_Dense/model.safetensors", "config.json",
					    "1_Pooling/config.json", "a.json", "2_Dense/config.json"};
	/* bytewise: '.' (0x2e) before '/' (0x2f), digits before capitals before lower case */
	static const char *const sorted[] = {"1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors",
					     "a.json", "a/b/c.txt", "config.json", "model.safetensors"};
	const size_t n = sizeof names / sizeof *names;
	for (int k = 0; k < 2; k++) {
		char path[4096], err[FMT_ERRBUF] = "";
		snprintf(path, sizeof path, "%s/nested%s", out, k ? ".tar" : ".tar.zst");
		test_context("%s", path);
		if (!CHECK(bw(path, NULL, dir, names, n, 3, 2, err) == LQ_OK)) {
			test_note("%s", err);
			continue;
		}
		/* what libarchive reads: the sorted names, regular files only, the fixed metadata */
		struct archive *a = archive_read_new();
		archive_read_support_filter_zstd(a);
		archive_read_support_format_tar(a);
		struct archive_entry *e;
		size_t i = 0;
		if (CHECK(archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK))
			for (; archive_read_next_header(a, &e) == ARCHIVE_OK; i++)
				if (CHECK(i < n)) {
					CHECK_STR(archive_entry_pathname(e), sorted[i]);
					CHECK_INT(archive_entry_mode(e), AE_IFREG | 0644);
					CHECK(archive_entry_mtime(e) == 0 && archive_entry_uid(e) == 0);
				}
		CHECK_INT(i, n);
		archive_read_free(a);
		bundle *b = bundle_create();
		if (CHECK(bundle_open(b, path) == LQ_OK) && CHECK_INT(bundle_count(b), n)) {
			for (size_t j = 0; j < n; j++) {
				const bundle_entry *be = bundle_entry_at(b, j);
				CHECK_STR(be->name, sorted[j]);
				CHECK(bundle_find(b, sorted[j]) == (int64_t)j);
				size_t len;
				unsigned char *want = get_file(in(dir, sorted[j]), &len);
				if (CHECK(want && len == be->size))
					read_back(b, j, want, len, 65536, 2);
				free(want);
			}
			CHECK_INT(bundle_entry_at(b, 2)->head_len, 8 + st_header_length(bundle_entry_at(b, 2)->head));
		} else {
			test_note("%s", bundle_error(b));
		}
		bundle_free(b);
	}
	test_context("%s", "");
	/* what tar makes: directory entries at any depth; one top-level directory dropped, not two */
	static const member with_dirs[] = {
		{"m/", NULL, AE_IFDIR, NULL, false, 0},
		{"m/config.json", "{}", 0, NULL, false, 0},
		{"m/1_Pooling/", NULL, AE_IFDIR, NULL, false, 0},
		{"m/1_Pooling/config.json", "{\"a\": 1}", 0, NULL, false, 0},
		{"m/2_Normalize/", NULL, AE_IFDIR, NULL, false, 0},
		{"m/model.safetensors", "\x10\0\0\0\0\0\0\0{}              ", 0, NULL, false, 24},
	};
	static const member two_tops[] = {
		{"m/a", "x", 0, NULL, false, 0},
		{"n/b", "y", 0, NULL, false, 0},
	};
	static const member mixed[] = {
		{"m/a", "x", 0, NULL, false, 0},
		{"b", "y", 0, NULL, false, 0},
	};
	static const member deep_first[] = {
		{"./1_Pooling/config.json", "{\"a\": 1}", 0, NULL, false, 0},
		{"./config.json", "{}", 0, NULL, false, 0},
	};
	static const struct {
		const char *name;
		const member *m;
		size_t n;
		const char *first, *second;
	} cases[] = {{"with_dirs", with_dirs, 6, "config.json", "1_Pooling/config.json"},
		     {"two_tops", two_tops, 2, "m/a", "n/b"},
		     {"mixed", mixed, 2, "m/a", "b"},
		     {"deep_first", deep_first, 2, "1_Pooling/config.json", "config.json"}};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		test_context("%s", cases[c].name);
		membuf t = make_tar(cases[c].m, cases[c].n);
		membuf z = zstd_of(&t);
		char path[4096], cname[64];
		snprintf(path, sizeof path, "%s/%s.tar.zst", out, cases[c].name);
		snprintf(cname, sizeof cname, "ok-nested-%s.tar.zst", cases[c].name);
		save_corpus(cname, &z);
		put_file(path, z.p, z.len);
		bundle *b = bundle_create();
		if (CHECK(bundle_open(b, path) == LQ_OK) && CHECK(bundle_count(b) >= 2)) {
			CHECK_STR(bundle_entry_at(b, 0)->name, cases[c].first);
			CHECK_STR(bundle_entry_at(b, 1)->name, cases[c].second);
			/* the cursor passes the directory entries and drops the same prefix */
			size_t last = bundle_count(b) - 1;
			const bundle_entry *e = bundle_entry_at(b, last);
			unsigned char buf[64];
			CHECK(e->size <= sizeof buf && bundle_read(b, last, 0, buf, (size_t)e->size) == LQ_OK);
		} else {
			test_note("%s", bundle_error(b));
		}
		bundle_free(b);
		free(t.p);
		free(z.p);
	}
	test_context("%s", "");
	rm_tree(dir);
	rm_tree(out);
}

/* A zstd frame that does not decode to what it held: the message names the entries whose bytes the
 * frame held, not the entry being read when the decoder noticed. One frame over the whole archive (what
 * bundle_write makes): its entries, first to last. Frames that each hold part of the tar (pzstd, or
 * frames concatenated): the entries of the failing frame only. A block that does not decode: the entry
 * whose bytes it begins. */
TEST(bundle_corrupt_frame_blame)
{
	char *out = scratch_dir();
	if (!out)
		return;
	/* incompressible data: zstd stores it in raw blocks, so a changed byte decodes, wrongly, and only the
	 * checksum tells */
	size_t big = 300000;
	unsigned char *rb = malloc(big), *rc = malloc(big);
	util_rng r = {12345};
	for (size_t i = 0; rb && rc && i < big; i++) {
		rb[i] = (unsigned char)util_next(&r);
		rc[i] = (unsigned char)util_next(&r);
	}
	if (!rb || !rc) {
		free(rb);
		free(rc);
		rm_tree(out);
		return;
	}
	const member m[] = {
		{"a.json", "{\"a\": 1}", 0, NULL, false, 0},
		{"b.bin", (const char *)rb, 0, NULL, false, big},
		{"c.bin", (const char *)rc, 0, NULL, false, big},
		{"d.json", "{\"d\": 4}", 0, NULL, false, 0},
	};
	membuf t = make_tar(m, 4);
	unsigned char *c_at = memmem(t.p, t.len, rc, 64);
	if (!CHECK(c_at != NULL))
		goto done;
	size_t c0 = (size_t)(c_at - t.p);
	char path[4096];
	snprintf(path, sizeof path, "%s/blame.tar.zst", out);

	/* one frame: a byte of c.bin's data changed in its raw block */
	membuf z = zstd_checked_of(&t);
	unsigned char *hit = memmem(z.p, z.len, rc + 1000, 64);
	if (CHECK(hit != NULL)) {
		hit[10] ^= 0x01;
		put_file(path, z.p, z.len);
		bundle *b = bundle_create();
		CHECK(bundle_open(b, path) == LQ_ERR_CORRUPT);
		CHECK_CONTAINS(bundle_error(b), "one of the 4 entries from 'a.json' to 'd.json': corrupt archive: zstd frame 1 "
						"(bytes 0 to ");
		CHECK_CONTAINS(bundle_error(b), "which holds their bytes, fails its checksum");
		bundle_free(b);
	}
	free(z.p);

	/* three frames: [0, c0 + 1000), [c0 + 1000, c0 + 200000), the rest; the second holds c.bin's bytes only */
	size_t cut[4] = {0, c0 + 1000, c0 + 200000, t.len};
	membuf zz = {0};
	size_t second = 0;
	for (int k = 0; k < 3; k++) {
		membuf part = {t.p + cut[k], cut[k + 1] - cut[k], 0};
		membuf zp = zstd_checked_of(&part);
		if (k == 1)
			second = zz.len;
		mem_put(&zz, zp.p, zp.len);
		free(zp.p);
	}
	unsigned char *hit2 = memmem(zz.p + second, zz.len - second, rc + 50000, 64);
	if (CHECK(hit2 != NULL)) {
		hit2[3] ^= 0x80;
		put_file(path, zz.p, zz.len);
		bundle *b = bundle_create();
		CHECK(bundle_open(b, path) == LQ_ERR_CORRUPT);
		char want[200];
		snprintf(want, sizeof want, "entry 'c.bin': corrupt archive: zstd frame 2 (bytes %zu to ", second);
		CHECK_CONTAINS(bundle_error(b), want);
		CHECK_CONTAINS(bundle_error(b), "which holds its bytes, fails its checksum");
		bundle_free(b);
		hit2[3] ^= 0x80;
	}
	/* the same frames, the first block header of the second made a reserved type: c.bin, to the byte */
	/* the frame header's size from its descriptor (RFC 8878 3.1.1.1) */
	unsigned fhd = zz.p[second + 4], single = fhd >> 5 & 1, fcs = fhd >> 6;
	static const size_t dict_bytes[4] = {0, 1, 2, 4}, fcs_bytes[4] = {0, 2, 4, 8};
	size_t hsize = 5 + (single ? 0 : 1) + dict_bytes[fhd & 3] + (fcs == 0 ? single : fcs_bytes[fcs]);
	if (CHECK(second + hsize + 3 < zz.len)) {
		zz.p[second + hsize] |= 0x06;
		put_file(path, zz.p, zz.len);
		bundle *b = bundle_create();
		CHECK(bundle_open(b, path) == LQ_ERR_CORRUPT);
		char want[200];
		snprintf(want, sizeof want, "entry 'c.bin': corrupt archive (zstd frame 2, byte %zu of the file: ",
			 second + hsize);
		CHECK_CONTAINS(bundle_error(b), want);
		bundle_free(b);
	}
	free(zz.p);
done:
	free(t.p);
	free(rb);
	free(rc);
	rm_tree(out);
}

/* ------------------------------------------------------------------------------- hostile input */

typedef struct hostile {
	const char *name;     /* the case, and its file's name */
	membuf bytes;         /* the archive */
	lq_status want;
	const char *entry;    /* expected in the message, or NULL */
} hostile;

/* Opens bytes as `name` in dir: refused with `want`, a message naming the archive (and the entry), nothing
 * left in the bundle. */
static void expect_refused(const char *dir, hostile *h)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, h->name);
	test_context("%s", h->name);
	if (!put_file(path, h->bytes.p ? (const void *)h->bytes.p : "", h->bytes.len))
		return;
	save_corpus(h->name, &h->bytes);
	bundle *b = bundle_create();
	lq_status st = bundle_open(b, path);
	if (!CHECK_INT(st, h->want))
		test_note("%s: accepted or wrong status: %s", h->name, bundle_error(b));
	CHECK_CONTAINS(bundle_error(b), path);
	if (h->entry)
		CHECK_CONTAINS(bundle_error(b), h->entry);
	CHECK_INT(bundle_count(b), 0);
	if (getenv("LQ_BUNDLE_VERBOSE"))
		test_note("%s", bundle_error(b));
	unsigned char x;
	CHECK(bundle_read(b, 0, 0, &x, 1) == LQ_ERR_ARG);
	for (const char *c = bundle_error(b); *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			test_fail(__FILE__, __LINE__, "control character in the message: %s", bundle_error(b));
			break;
		}
	bundle_free(b);
	remove(path);
}

/* base + one more member, as a .tar.zst */
static membuf with(const member *extra, size_t n, bool compress)
{
	member m[8];
	memcpy(m, base, sizeof base);
	if (n)
		memcpy(m + 2, extra, n * sizeof *extra);
	membuf t = make_tar(m, 2 + n);
	if (!compress)
		return t;
	membuf z = zstd_of(&t);
	free(t.p);
	return z;
}

TEST(bundle_hostile)
{
	char *dir = scratch_dir();
	if (!dir)
		return;
	char longname[1500];
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	size_t hugelen = 2u << 20;
	char *hugename = malloc(hugelen + 1);
	if (!hugename)
		return;
	memset(hugename, 'h', hugelen);
	hugename[hugelen] = '\0';

	hostile cases[64];
	size_t n = 0;
#define CASE(nm, bytes_, want_, entry_) (cases[n++] = (hostile){nm, bytes_, want_, entry_})
#define ONE(...) ((const member[]){__VA_ARGS__})
	CASE("absolute.tar.zst", with(ONE({"/etc/evil.txt", "x", 0, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'/etc/evil.txt' has an absolute name");
	CASE("traversal.tar.zst", with(ONE({"../evil.txt", "x", 0, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'../evil.txt' has '..'");
	CASE("traversal-inner.tar", with(ONE({"m/../../evil.txt", "x", 0, NULL, false, 0}), 1, false), LQ_ERR_CORRUPT,
	     "'m/../../evil.txt'");
	CASE("dot-component.tar", with(ONE({"a/./b", "x", 0, NULL, false, 0}), 1, false), LQ_ERR_CORRUPT, "'a/./b'");
	CASE("double-slash.tar", with(ONE({"a//b", "x", 0, NULL, false, 0}), 1, false), LQ_ERR_CORRUPT, "'a//b'");
	CASE("symlink.tar.zst", with(ONE({"link.json", NULL, AE_IFLNK, "/etc/passwd", false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'link.json' is a symbolic link");
	CASE("hardlink.tar.zst", with(ONE({"hard.json", NULL, 0, "config.json", true, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'hard.json' is a hard link");
	CASE("device.tar.zst", with(ONE({"dev", NULL, AE_IFCHR, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'dev' is a device file");
	CASE("blockdev.tar", with(ONE({"blk", NULL, AE_IFBLK, NULL, false, 0}), 1, false), LQ_ERR_CORRUPT,
	     "'blk' is a device file");
	CASE("fifo.tar.zst", with(ONE({"fifo", NULL, AE_IFIFO, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT, "'fifo' is a FIFO");
	CASE("traversal-dir.tar", with(ONE({"../up/", NULL, AE_IFDIR, NULL, false, 0}), 1, false), LQ_ERR_CORRUPT,
	     "'../up/' has '..'");
	CASE("absolute-dir.tar.zst", with(ONE({"/etc/", NULL, AE_IFDIR, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'/etc/' has an absolute name");
	CASE("traversal-nested.tar.zst", with(ONE({"1_Pooling/../../evil", "x", 0, NULL, false, 0}), 1, true),
	     LQ_ERR_CORRUPT, "'1_Pooling/../../evil' has '..'");
	CASE("symlink-nested.tar", with(ONE({"1_Pooling/config.json", NULL, AE_IFLNK, "/etc/passwd", false, 0}), 1, false),
	     LQ_ERR_CORRUPT, "'1_Pooling/config.json' is a symbolic link");
	CASE("fifo-nested.tar.zst", with(ONE({"a/b/fifo", NULL, AE_IFIFO, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'a/b/fifo' is a FIFO");
	CASE("file-and-folder.tar.zst", with(ONE({"config.json/x", "x", 0, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'config.json/x' lies in 'config.json', which is a file");
	CASE("file-and-folder-apart.tar", with(ONE({"a", "x", 0, NULL, false, 0}, {"a.json", "x", 0, NULL, false, 0},
						  {"a/b", "x", 0, NULL, false, 0}), 3, false),
	     LQ_ERR_CORRUPT, "'a/b' lies in 'a', which is a file");
	CASE("duplicate-nested.tar.zst", with(ONE({"d/x", "x", 0, NULL, false, 0}, {"./d/x", "y", 0, NULL, false, 0}), 2, true),
	     LQ_ERR_CORRUPT, "'d/x' appears twice");
	CASE("duplicate.tar.zst", with(ONE({"config.json", "{}", 0, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'config.json' appears twice");
	CASE("duplicate-dot.tar", with(ONE({"./config.json", "{}", 0, NULL, false, 0}), 1, false), LQ_ERR_CORRUPT,
	     "'config.json' appears twice");
	CASE("control.tar.zst", with(ONE({"bad\nname\033[2J", "x", 0, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "'bad?name?[2J' has a control character");
	CASE("backslash.tar", with(ONE({"a\\b", "x", 0, NULL, false, 0}), 1, false), LQ_ERR_CORRUPT, "has a backslash");
	CASE("long-name.tar.zst", with(ONE({longname, "x", 0, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT,
	     "longer than 1024 bytes");
	CASE("huge-pax.tar.zst", with(ONE({hugename, "x", 0, NULL, false, 0}), 1, true), LQ_ERR_CORRUPT, "model.safetensors");
	{
		/* a pax header that claims 8 GiB: refused before anything is allocated for it */
		membuf t = with(NULL, 0, false);
		unsigned char h[512];
		raw_header(h, "PaxHeader/x", 'x', ((uint64_t)8 << 30) - 1);
		t.len -= 1024;
		mem_put(&t, h, 512);
		mem_put(&t, "30 path=aaaaaaaaaaaaaaaaaaaaa\n", 30);
		static const unsigned char zero[2048];
		mem_put(&t, zero, 512 - 30 + 1024);
		CASE("pax-size.tar", t, LQ_ERR_CORRUPT, "model.safetensors");
		membuf z = zstd_of(&t);
		CASE("pax-size.tar.zst", z, LQ_ERR_CORRUPT, "model.safetensors");
	}
	{
		/* a .safetensors header longer than ST_MAX_HEADER: refused on its first 8 bytes */
		membuf t = {0};
		unsigned char h[512];
		uint64_t n8 = ST_MAX_HEADER + 8;
		raw_header(h, "model.safetensors", '0', 8 + n8 + 16);
		mem_put(&t, h, 512);
		unsigned char len8[8];
		for (int i = 0; i < 8; i++)
			len8[i] = (unsigned char)(n8 >> (8 * i));
		mem_put(&t, len8, 8);
		static const unsigned char zero[1024];
		mem_put(&t, zero, 504);
		membuf z = zstd_of(&t);
		free(t.p);
		CASE("st-header-limit.tar.zst", z, LQ_ERR_CORRUPT, "'model.safetensors': safetensors header of");
	}
	{
		/* a tar header whose checksum is wrong, after a good entry */
		membuf t = with(NULL, 0, false);
		t.len -= 1024;
		unsigned char h[512];
		raw_header(h, "x.json", '0', 1);
		h[0] ^= 1;
		mem_put(&t, h, 512);
		static const unsigned char zero[1536];
		mem_put(&t, zero, 1536);
		CASE("bad-checksum.tar", t, LQ_ERR_CORRUPT, "after entry 'model.safetensors'");
	}
	{
		/* cut in the middle: of the zstd frame, of the tar, and of a large entry (the lseek case) */
		char *big = (char *)some_bytes(3u << 20, 5);
		member m[] = {{"config.json", "{}", 0, NULL, false, 0}, {"model.safetensors", big, 0, NULL, false, 3u << 20}};
		memcpy(big, "\x10\0\0\0\0\0\0\0", 8);
		membuf t = make_tar(m, 2);
		membuf z = zstd_of(&t);
		membuf zc = {malloc(z.len), z.len / 2, z.len};
		memcpy(zc.p, z.p, z.len);
		CASE("truncated.tar.zst", zc, LQ_ERR_CORRUPT, "truncated archive");
		membuf zt = {malloc(z.len), z.len - 4, z.len};
		memcpy(zt.p, z.p, z.len);
		CASE("truncated-checksum.tar.zst", zt, LQ_ERR_CORRUPT, "'model.safetensors'");
		membuf tc = {malloc(t.len), t.len / 2, t.len};
		memcpy(tc.p, t.p, t.len);
		CASE("truncated.tar", tc, LQ_ERR_CORRUPT, "'model.safetensors': truncated archive");
		membuf tb = {malloc(t.len), 1024 + 2 * (1u << 20), t.len}; /* a whole number of the reader's blocks */
		memcpy(tb.p, t.p, t.len);
		CASE("truncated-block.tar", tb, LQ_ERR_CORRUPT, "'model.safetensors': truncated archive");
		membuf zg = {malloc(z.len + 16), z.len + 16, z.len + 16};
		memcpy(zg.p, z.p, z.len);
		memcpy(zg.p + z.len, "garbage garbage!", 16);
		CASE("garbage-after.tar.zst", zg, LQ_ERR_CORRUPT, "data after the end of the zstd stream");
		free(z.p);
		free(t.p);
		free(big);
	}
	{
		/* small archives with garbage after the frame: libarchive sees it as it fills its buffer */
		membuf z = with(NULL, 0, true);
		mem_put(&z, "\x28\xb5\x2f\xfd garbage", 12);
		CASE("garbage-small.tar.zst", z, LQ_ERR_CORRUPT, NULL);
		membuf z2 = with(NULL, 0, true);
		mem_put(&z2, "trailing", 8);
		CASE("trailing-small.tar.zst", z2, LQ_ERR_CORRUPT, NULL);
	}
	{
		/* after the end of the tar, more zero blocks than libarchive reads ahead (as GNU tar's blocking
		 * pads, only more): what follows them in the file is found by the frame walk alone */
		membuf t = with(NULL, 0, false);
		unsigned char *pad = calloc(1, 1 << 20);
		mem_put(&t, pad, 1 << 20);
		free(pad);
		membuf z = zstd_of(&t);
		free(t.p);
		membuf zg = {malloc(z.len + 16), z.len + 16, z.len + 16};
		memcpy(zg.p, z.p, z.len);
		memcpy(zg.p + z.len, "garbage garbage!", 16);
		CASE("garbage-after-padding.tar.zst", zg, LQ_ERR_CORRUPT, "data after the end of the zstd stream");
		membuf zs = {malloc(z.len + 12), z.len + 12, z.len + 12};
		memcpy(zs.p, z.p, z.len);
		memcpy(zs.p + z.len, "\x50\x2a\x4d\x18\x10\0\0\0abcd", 12); /* a skippable frame cut short */
		CASE("skippable-cut.tar.zst", zs, LQ_ERR_CORRUPT, "truncated archive (the file ends inside zstd frame 2");
		z.len -= 2;
		CASE("truncated-padding.tar.zst", z, LQ_ERR_CORRUPT, "truncated archive (the file ends inside zstd frame 1");
	}
	{
		membuf t = {0};
		mem_put(&t, "this is not an archive", 22);
		CASE("garbage.tar", t, LQ_ERR_CORRUPT, "not a tar");
		membuf z = zstd_of(&t);
		CASE("not-a-tar.tar.zst", z, LQ_ERR_CORRUPT, "not a tar");
		membuf corrupt = with(NULL, 0, true);
		corrupt.p[corrupt.len / 2] ^= 0x55;
		corrupt.p[corrupt.len / 2 + 1] ^= 0x55;
		CASE("bitflip.tar.zst", corrupt, LQ_ERR_CORRUPT, NULL);
	}
	{
		/* other compressions are not decoded: a gzip'd tar is not a bundle */
		membuf g = {0};
		struct archive *a = archive_write_new();
		archive_write_set_format_pax_restricted(a);
		archive_write_add_filter_gzip(a);
		archive_write_open(a, &g, NULL, mem_write, NULL);
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, "config.json");
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, 2);
		archive_write_header(a, e);
		archive_write_data(a, "{}", 2);
		archive_entry_free(e);
		archive_write_close(a);
		archive_write_free(a);
		CASE("gzip.tar.gz.tar", g, LQ_ERR_CORRUPT, "not a tar");
	}
	CASE("empty.tar.zst", ((membuf){NULL, 0, 0}), LQ_ERR_CORRUPT, "not a tar");
	{
		static const unsigned char zero[1024];
		membuf t = {0};
		mem_put(&t, zero, 1024);
		CASE("empty-tar.tar", t, LQ_ERR_CORRUPT, "holds no files");
		membuf z = zstd_of(&t);
		CASE("empty-tar.tar.zst", z, LQ_ERR_CORRUPT, "holds no files");
		CASE("only-dir.tar", make_tar(ONE({"./", NULL, AE_IFDIR, NULL, false, 0}), 1), LQ_ERR_CORRUPT,
		     "holds no files");
	}
	{
		/* a file that is not .safetensors, too large to be held in memory: refused on its header */
		membuf t = {0};
		unsigned char h[512];
		raw_header(h, "big.json", '0', BUNDLE_SMALL_LIMIT + 1);
		mem_put(&t, h, 512);
		static const unsigned char zero[1024];
		mem_put(&t, zero, 1024);
		CASE("small-limit.tar", t, LQ_ERR_CORRUPT, "'big.json' holds");
	}
	if (!CHECK(n <= sizeof cases / sizeof *cases))
		return;
	for (size_t i = 0; i < n; i++) {
		expect_refused(dir, &cases[i]);
		free(cases[i].bytes.p);
	}
	test_context("%s", "");
	test_note("%zu hostile archives refused", n);
	free(hugename);
	rm_tree(dir);
#undef CASE
#undef ONE
}

/* An archive whose .safetensors header length runs past its end is taken: the parser says what is wrong
 * later, with the safetensors message. */
TEST(bundle_absurd_safetensors_length)
{
	char *dir = scratch_dir();
	if (!dir)
		return;
	static const member m[] = {
		{"a.safetensors", "\xff\xff\xff\xff\xff\xff\xff\xff{}", 0, NULL, false, 0},
		{"b.safetensors", "abc", 0, NULL, false, 0},
	};
	membuf t = make_tar(m, 2);
	const char *path = in(dir, "absurd.tar");
	char p[4096];
	snprintf(p, sizeof p, "%s", path);
	put_file(p, t.p, t.len);
	free(t.p);
	bundle *b = bundle_create();
	if (CHECK(bundle_open(b, p) == LQ_OK)) {
		CHECK_INT(bundle_entry_at(b, 0)->head_len, 8);
		CHECK_INT(bundle_entry_at(b, 1)->head_len, 3);
		unsigned char buf[2];
		CHECK(bundle_read(b, 0, 8, buf, 2) == LQ_OK && memcmp(buf, "{}", 2) == 0);
		st_file *f = st_file_create();
		const bundle_entry *e = bundle_entry_at(b, 0);
		CHECK(st_file_parse(f, e->head, (size_t)e->head_len, e->size, "a.safetensors") == LQ_ERR_CORRUPT);
		st_file_free(f);
	} else {
		test_fail(__FILE__, __LINE__, "%s", bundle_error(b));
	}
	bundle_free(b);
	rm_tree(dir);
}

/* More entries than BUNDLE_MAX_ENTRIES: refused. */
TEST(bundle_max_entries)
{
	char *dir = scratch_dir();
	if (!dir)
		return;
	membuf t = {0};
	unsigned char h[512];
	for (int i = 0; i <= BUNDLE_MAX_ENTRIES; i++) {
		char name[32];
		snprintf(name, sizeof name, "f%06d", i);
		raw_header(h, name, '0', 0);
		mem_put(&t, h, 512);
	}
	static const unsigned char zero[1024];
	mem_put(&t, zero, 1024);
	membuf z = zstd_of(&t);
	free(t.p);
	char p[4096];
	snprintf(p, sizeof p, "%s/many.tar.zst", dir);
	put_file(p, z.p, z.len);
	free(z.p);
	bundle *b = bundle_create();
	CHECK(bundle_open(b, p) == LQ_ERR_CORRUPT);
	CHECK_CONTAINS(bundle_error(b), "more than 100000 entries");
	bundle_free(b);
	rm_tree(dir);
}

/* The archive rewritten under an open bundle: the cursor's second pass says so. */
TEST(bundle_changed_since_open)
{
	char *dir = scratch_dir(), *out = scratch_dir();
	if (!dir || !out || !make_model(dir)) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	char p[4096];
	snprintf(p, sizeof p, "%s/m.tar", out);
	if (write_bundle(p, dir, 3, 1) != LQ_OK)
		goto done;
	bundle *b = bundle_create();
	if (!CHECK(bundle_open(b, p) == LQ_OK)) {
		bundle_free(b);
		goto done;
	}
	/* the same bytes, one name changed in place (the size stays, the checksum is fixed by hand) */
	size_t len;
	unsigned char *t = get_file(p, &len);
	unsigned char *h = t ? memmem(t, len, "model.safetensors", 17) : NULL;
	if (CHECK(h != NULL)) {
		h[0] = 'M';
		unsigned char *hd = h; /* the name is the first field of its header */
		memset(hd + 148, ' ', 8);
		unsigned sum = 0;
		for (int i = 0; i < 512; i++)
			sum += hd[i];
		octal(hd + 148, 7, sum);
		int fd = open(p, O_WRONLY);
		CHECK(fd >= 0 && pwrite(fd, t, len, 0) == (ssize_t)len);
		if (fd >= 0)
			close(fd);
		unsigned char buf[16];
		int64_t i = bundle_find(b, "model.safetensors");
		CHECK(i >= 0 && bundle_read(b, (size_t)i, bundle_entry_at(b, (size_t)i)->head_len, buf, 16) == LQ_ERR_CORRUPT);
		CHECK_CONTAINS(bundle_error(b), "changed since it was opened");
		CHECK_CONTAINS(bundle_error(b), p);
		/* what is held in memory is still served */
		CHECK(bundle_read(b, 0, 0, buf, 2) == LQ_OK);
	}
	free(t);
	bundle_free(b);
done:
	rm_tree(dir);
	rm_tree(out);
}

/* bundle_write's refusals: nothing is left behind, and an existing file is not touched. */
TEST(bundle_write_errors)
{
	char *dir = scratch_dir(), *out = scratch_dir();
	if (!dir || !out || !make_model(dir)) {
		rm_tree(dir);
		rm_tree(out);
		return;
	}
	char p[4096], err[FMT_ERRBUF];
	snprintf(p, sizeof p, "%s/m.tar.zst", out);
	struct stat sb;
	put_file(p, "keep", 4);
	CHECK(bw(p, "final.tar.zst", dir, model_names, MODEL_N, 3, 1, err) == LQ_ERR_EXISTS);
	CHECK_CONTAINS(err, "cannot write 'final.tar.zst'");
	CHECK(stat(p, &sb) == 0 && sb.st_size == 4);
	remove(p);

	static const struct {
		const char *name;
		lq_status want;
		const char *msg;
	} bad[] = {
		{"missing.json", LQ_ERR_IO, "cannot read"},
		{"a/b", LQ_ERR_IO, "cannot read"},
		{"..", LQ_ERR_ARG, "not a relative file name"},
		{"/etc/passwd", LQ_ERR_ARG, "not a relative file name"},
		{"a//b", LQ_ERR_ARG, "not a relative file name"},
		{"a/../b", LQ_ERR_ARG, "not a relative file name"},
		{"a/", LQ_ERR_ARG, "not a relative file name"},
		{"config.json/x", LQ_ERR_ARG, "'config.json' is a file and the folder of 'config.json/x'"},
		{"", LQ_ERR_ARG, "empty name"},
		{"x\ty", LQ_ERR_ARG, "control character"},
		{"x\\y", LQ_ERR_ARG, "backslash"},
		{"config.json", LQ_ERR_ARG, "given twice"},
		{"mod\xc3\xa8le.json", LQ_ERR_ARG, "not ASCII"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		test_context("name '%s'", bad[i].name);
		const char *names[] = {"config.json", bad[i].name};
		err[0] = '\0';
		CHECK_INT(bw(p, NULL, dir, names, 2, 3, 1, err), bad[i].want);
		CHECK_CONTAINS(err, bad[i].msg);
		CHECK(stat(p, &sb) != 0 && errno == ENOENT);
	}
	test_context("%s", "");
	CHECK(bw(p, NULL, dir, model_names, MODEL_N, 0, 1, err) == LQ_ERR_ARG);
	CHECK(bw(p, NULL, dir, model_names, MODEL_N, 20, 1, err) == LQ_ERR_ARG);
	CHECK(bw(p, NULL, dir, model_names, 0, 3, 1, err) == LQ_ERR_ARG);
	CHECK(bw(in(out, "m.zip"), NULL, dir, model_names, MODEL_N, 3, 1, err) == LQ_ERR_ARG);
	/* a directory where a file is named */
	mkdir(in(dir, "sub"), 0755);
	const char *names[] = {"sub"};
	CHECK(bw(p, NULL, dir, names, 1, 3, 1, err) == LQ_ERR_ARG);
	CHECK_CONTAINS(err, "not a regular file");
	CHECK(stat(p, &sb) != 0);
	/* a directory that cannot be written into */
	CHECK(bw("/nonexistent-dir/m.tar", NULL, dir, model_names, MODEL_N, 3, 1, err) ==
	      LQ_ERR_IO);
	CHECK_CONTAINS(err, "cannot write '/nonexistent-dir/m.tar': No such file or directory");
	rm_tree(dir);
	rm_tree(out);
}
