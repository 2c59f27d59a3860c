/*
 * fuzz_bundle.c: the bundle reader (formats/bundle_read.c) under libFuzzer (`make fuzz FUZZ_TARGET=bundle`),
 * and under tests/fuzz/replay.c in `make check`. The input is a whole archive file (.tar or .tar.zst),
 * written to a scratch file and opened with bundle_open(), which reads files only. Whatever the bytes, an
 * archive it accepts must keep every promise of bundle.h (relative, unique, findable names, none the
 * folder of another; what is held is the file or its safetensors header; every byte reads back through
 * bundle_read, in order and out of it, the same as the scan saw), and a refused one leaves nothing behind
 * and a message that names the archive and prints safely. bundle_open_visit accepts and refuses what
 * bundle_open does, and its visitor sees every entry in order, whole, under its name (the final one, or
 * in the top-level directory the scan drops at its end). A broken promise aborts.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)            \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

/* Entries larger than this are read at their ends only: zstd makes gigabytes of a few bytes, and reading
 * them all would make the fuzzer time out on an input the reader handles correctly. */
#define READ_ALL_LIMIT ((uint64_t)4 << 20)

/* The scratch file the inputs are written to: one per process, under $TMPDIR, removed at exit. */
static char scratch_dir[4096], scratch_file[4200];

static void remove_scratch(void)
{
	unlink(scratch_file);
	rmdir(scratch_dir);
}

static const char *scratch_path(void)
{
	if (!scratch_file[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(scratch_dir, sizeof scratch_dir, "%s/fuzz-bundle-XXXXXX", base && *base ? base : "/tmp");
		REQUIRE(mkdtemp(scratch_dir) != NULL);
		snprintf(scratch_file, sizeof scratch_file, "%s/input.tar.zst", scratch_dir);
		atexit(remove_scratch);
	}
	return scratch_file;
}

static void put_input(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0);
	for (size_t at = 0; at < size;) {
		ssize_t k = write(fd, data + at, size - at);
		REQUIRE(k > 0);
		at += (size_t)k;
	}
	REQUIRE(close(fd) == 0);
}

static bool printable(const char *s)
{
	size_t n = strnlen(s, FMT_ERRBUF);
	if (n == 0 || n == FMT_ERRBUF)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void check_name(const char *name)
{
	size_t len = strlen(name);
	REQUIRE(len > 0 && len <= BUNDLE_MAX_NAME);
	for (size_t i = 0; i < len; i++)
		REQUIRE((unsigned char)name[i] >= 0x20 && name[i] != 0x7f && name[i] != '\\');
	/* relative, each component a name: not empty, "." or ".." */
	for (const char *p = name;;) {
		size_t k = strcspn(p, "/");
		REQUIRE(k > 0 && !(k == 1 && p[0] == '.') && !(k == 2 && p[0] == '.' && p[1] == '.'));
		if (!p[k])
			break;
		p += k + 1;
	}
}

/* No file is also the folder of another ("a" and "a/b"). */
static void check_not_folder(bundle *b, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < bundle_count(b); i++)
		REQUIRE(strncmp(bundle_entry_at(b, i)->name, name, len) != 0 || bundle_entry_at(b, i)->name[len] != '/');
}

static bool is_safetensors(const char *name)
{
	size_t n = strlen(name);
	return n > 12 && strcmp(name + n - 12, ".safetensors") == 0;
}

/* Reads [off, off + len) of entry i and checks it against what the scan held of it. */
static void read_range(bundle *b, size_t i, uint64_t off, size_t len, uint8_t *buf)
{
	const bundle_entry *e = bundle_entry_at(b, i);
	lq_status st = bundle_read(b, i, off, buf, len);
	REQUIRE(st == LQ_OK); /* the archive has not changed: the second pass sees what the first saw */
	if (off < e->head_len) {
		size_t n = e->head_len - off < len ? (size_t)(e->head_len - off) : len;
		REQUIRE(memcmp(buf, e->head + off, n) == 0);
	}
}

static void check_accepted(bundle *b, const char *path)
{
	size_t n = bundle_count(b);
	REQUIRE(n >= 1 && n <= BUNDLE_MAX_ENTRIES);
	REQUIRE(strcmp(bundle_path(b), path) == 0);
	uint64_t held = 0;
	for (size_t i = 0; i < n; i++) {
		const bundle_entry *e = bundle_entry_at(b, i);
		REQUIRE(e && e->name && e->head);
		check_name(e->name);
		if (n <= 256)
			check_not_folder(b, e->name);
		REQUIRE(bundle_find(b, e->name) == (int64_t)i); /* unique, and found */
		REQUIRE(e->head_len <= e->size && e->head[e->head_len] == '\0');
		if (!is_safetensors(e->name)) {
			REQUIRE(e->head_len == e->size && e->size <= BUNDLE_SMALL_LIMIT);
		} else if (e->size < 8) {
			REQUIRE(e->head_len == e->size);
		} else {
			uint64_t hn = 0;
			for (int k = 7; k >= 0; k--)
				hn = hn << 8 | (uint8_t)e->head[k];
			REQUIRE(hn > e->size - 8 ? e->head_len == 8 : e->head_len == 8 + hn && hn <= ST_MAX_HEADER);
			/* what hf_model does with it next: whatever the header says, no crash */
			st_file *f = st_file_create();
			REQUIRE(f != NULL);
			lq_status st = st_file_parse(f, e->head, (size_t)e->head_len, e->size, e->name);
			REQUIRE(st == LQ_OK || st == LQ_ERR_CORRUPT || st == LQ_ERR_UNSUPPORTED || st == LQ_ERR_NOMEM);
			st_file_free(f);
		}
		held += e->head_len;
	}
	REQUIRE(held <= BUNDLE_SMALL_TOTAL);
	REQUIRE(bundle_find(b, "") == -1);

	/* every byte, in archive order, in pieces of an odd size */
	enum { PIECE = 4093 };
	static uint8_t buf[PIECE];
	for (size_t i = 0; i < n; i++) {
		const bundle_entry *e = bundle_entry_at(b, i);
		if (e->size <= READ_ALL_LIMIT)
			for (uint64_t off = 0; off < e->size; off += PIECE)
				read_range(b, i, off, e->size - off < PIECE ? (size_t)(e->size - off) : PIECE, buf);
		else
			read_range(b, i, e->size - 1, 1, buf);
	}
	/* then backwards: the last byte of each entry from the last entry to the first (the cursor starts
	 * again), and the first byte */
	for (size_t i = n; i-- > 0;) {
		const bundle_entry *e = bundle_entry_at(b, i);
		if (e->size > 0) {
			read_range(b, i, e->size - 1, 1, buf);
			read_range(b, i, 0, 1, buf);
		}
	}
	/* past the end: refused, and the bundle still reads */
	const bundle_entry *last = bundle_entry_at(b, n - 1);
	REQUIRE(bundle_read(b, n - 1, last->size, buf, 1) == LQ_ERR_ARG);
	REQUIRE(bundle_read(b, n, 0, buf, 1) == LQ_ERR_ARG);
	REQUIRE(bundle_read(b, n - 1, UINT64_MAX, buf, 1) == LQ_ERR_ARG);
	REQUIRE(printable(bundle_error(b)));
	if (last->size > 0)
		read_range(b, n - 1, 0, 1, buf);
}

/* bundle_open_visit's promises: entries in archive order, each from offset 0 with its bytes in order to
 * its end, under its name as the scan read it: the final name, or the final name in the top-level
 * directory that the end of the scan drops. The visitor gives up past VISIT_LIMIT bytes (a zstd bomb), which stops
 * the scan with its own status. */
#define VISIT_LIMIT ((uint64_t)16 << 20)
typedef struct visit_log {
	size_t n;          /* entries begun */
	uint64_t pos, all; /* bytes of the current entry, of all */
	uint64_t sizes[64];
	uint64_t sums[64]; /* FNV-1a of each entry's bytes as the scan streamed them */
	char names[64][BUNDLE_MAX_NAME + 1];
	bool stopped;
} visit_log;

static lq_status log_visit(void *arg, size_t entry, const char *name, uint64_t size, uint64_t offset, const void *data,
			   size_t len, char *err)
{
	visit_log *v = arg;
	(void)data;
	if (v->n == 0 || entry != v->n - 1) { /* the next entry begins: the one before it ended */
		REQUIRE(entry == v->n && offset == 0);
		REQUIRE(v->n == 0 || v->pos == v->sizes[(v->n - 1) % 64]);
		v->n++;
		v->pos = 0;
		v->sizes[entry % 64] = size;
		v->sums[entry % 64] = 14695981039346656037ull;
		REQUIRE(strlen(name) <= BUNDLE_MAX_NAME);
		strcpy(v->names[entry % 64], name);
	}
	REQUIRE(offset == v->pos && size == v->sizes[entry % 64] && len <= size - offset);
	REQUIRE(strcmp(name, v->names[entry % 64]) == 0);
	for (size_t i = 0; i < len; i++)
		v->sums[entry % 64] = (v->sums[entry % 64] ^ ((const uint8_t *)data)[i]) * 1099511628211ull;
	v->pos += len;
	v->all += len;
	if (v->all > VISIT_LIMIT) {
		v->stopped = true;
		return fmt_fail(err, LQ_ERR_IO, "visited enough");
	}
	return LQ_OK;
}

/* FNV-1a of entry i as bundle_read gives it, in pieces of odd sizes. */
static uint64_t read_sum(bundle *b, size_t i)
{
	static uint8_t buf[4093];
	uint64_t h = 14695981039346656037ull, size = bundle_entry_at(b, i)->size;
	for (uint64_t off = 0, k = 1; off < size; k = k * 7 % sizeof buf + 1) {
		size_t n = size - off < k ? (size_t)(size - off) : (size_t)k;
		REQUIRE(bundle_read(b, i, off, buf, n) == LQ_OK);
		for (size_t j = 0; j < n; j++)
			h = (h ^ buf[j]) * 1099511628211ull;
		off += n;
	}
	return h;
}

static void check_visit(const char *path, lq_status opened, bundle *plain)
{
	bundle *b = bundle_create();
	static visit_log v;
	memset(&v, 0, sizeof v);
	if (!b)
		return;
	lq_status st = bundle_open_visit(b, path, log_visit, &v);
	if (!v.stopped) {
		REQUIRE(st == opened);
		if (st == LQ_OK) {
			REQUIRE(v.n == bundle_count(b) && bundle_count(b) == bundle_count(plain));
			REQUIRE(v.pos == v.sizes[(v.n - 1) % 64]);
			for (size_t i = v.n > 64 ? v.n - 64 : 0; i < v.n; i++) {
				const char *fin = bundle_entry_at(b, i)->name, *seen = v.names[i % 64];
				size_t drop = strlen(seen) - strlen(fin);
				REQUIRE(strlen(seen) >= strlen(fin) && strcmp(seen + drop, fin) == 0 &&
					(drop == 0 || (drop >= 2 && seen[drop - 1] == '/' && !memchr(seen, '/', drop - 1))));
				REQUIRE(v.sizes[i % 64] == bundle_entry_at(b, i)->size);
				/* what bundle_read serves (held header, small tensors, cursor) is what the scan saw */
				if (v.sizes[i % 64] <= READ_ALL_LIMIT)
					REQUIRE(read_sum(plain, i) == v.sums[i % 64]);
			}
		}
	} else {
		REQUIRE(st == LQ_ERR_IO && strcmp(bundle_error(b), "visited enough") == 0 && bundle_count(b) == 0);
	}
	bundle_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = scratch_path();
	put_input(path, data, size);
	bundle *b = bundle_create();
	if (!b)
		return 0;
	lq_status st = bundle_open(b, path);
	if (st == LQ_OK) {
		check_accepted(b, path);
	} else {
		REQUIRE(st == LQ_ERR_CORRUPT || st == LQ_ERR_NOMEM);
		REQUIRE(bundle_count(b) == 0 && bundle_entry_at(b, 0) == NULL && bundle_find(b, "config.json") == -1);
		const char *err = bundle_error(b);
		REQUIRE(printable(err));
		REQUIRE(strncmp(err, path, strlen(path)) == 0 && strncmp(err + strlen(path), ": ", 2) == 0);
	}
	check_visit(path, st, b);
	bundle_free(b);
	return 0;
}
