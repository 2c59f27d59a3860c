/*
 * manifest_hash.c: the hashes of a MANIFEST (manifest.h). Every file is read once, in order, from its first
 * byte to its last (a bundle entry is decompressed forward, and a shard may be tens of GB): a .safetensors
 * file's header first, then its data in chunks, each chunk fed to the whole file's hash and to the hash of
 * the tensor (or tensors) it holds.
 */
#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "manifest_impl.h"
#include "safetensors.h"

/* ------------------------------------------------------------------------------------ reading */

lq_status manifest_read_path(void *arg, uint64_t offset, void *dst, size_t len, char *err)
{
	const char *path = arg;
	/* opened per call: a chunk is 4 MiB, so the open costs nothing, and no descriptor outlives the call */
	int fd;
	lq_status st = fmt_open_input(path, &fd, NULL, err);
	if (st != LQ_OK)
		return st;
	unsigned char *p = dst;
	size_t done = 0;
	while (done < len) {
		if (offset + done > (uint64_t)INT64_MAX) {
			st = fmt_fail(err, LQ_ERR_IO, "cannot read '%s': offset %" PRIu64 " is too large", path,
				      offset + done);
			break;
		}
		ssize_t n = pread(fd, p + done, len - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			st = fmt_fail(err, LQ_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
			break;
		}
		if (n == 0) {
			st = fmt_fail(err, LQ_ERR_IO, "cannot read '%s': it ends at byte %" PRIu64 ", before byte %" PRIu64
				      " (the file changed while it was read)", path, offset + done, offset + len);
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	return st;
}

/* -------------------------------------------------------------------------------------- hashing */

void manifest_hex16(const unsigned char h[16], char out[HASH_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
	out[HASH_HEX] = '\0';
}

void manifest_canonical(XXH128_hash_t h, unsigned char out[16])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, h);
	memcpy(out, c.digest, 16);
}

void manifest_hash_free(manifest_hash *h)
{
	if (!h)
		return;
	free(h->qpath);
	free(h->hdr);
	XXH3_freeState(h->whole);
	XXH3_freeState(h->tensor);
	st_file_free(h->r.st);
	free(h->r.tensors);
	free(h);
}

static const st_file *parsed(const manifest_hash *h)
{
	return h->r.st && h->r.parse_status == LQ_OK ? h->r.st : NULL;
}

static void finish(manifest_hash *h)
{
	const st_file *sf = parsed(h);
	for (; sf && h->ti < sf->ntensors; h->ti++) /* tensors of no bytes at the end of the data */
		h->r.tensors[h->ti] = XXH3_128bits_digest(h->tensor);
	h->r.whole = XXH3_128bits_digest(h->whole);
	h->done = true;
}

manifest_hash *manifest_hash_begin(const char *path, uint64_t size)
{
	manifest_hash *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	char q[512];
	h->qpath = strdup(fmt_quote(path, q, sizeof q));
	h->whole = XXH3_createState();
	h->tensor = XXH3_createState();
	h->size = size;
	if (!h->qpath || !h->whole || !h->tensor)
		goto fail;
	XXH3_128bits_reset(h->whole);
	XXH3_128bits_reset(h->tensor);
	if (fmt_ends_with(path, ".safetensors")) {
		if (!(h->r.st = st_file_create()))
			goto fail;
		if (size < 8) {
			const unsigned char none[8] = {0};
			h->r.parse_status = st_file_parse(h->r.st, none, 0, size, h->qpath); /* says what is wrong */
		} else {
			h->header_pending = true;
			h->hdr_len = 8;
			if (!(h->hdr = malloc(8)))
				goto fail;
		}
	}
	if (size == 0)
		finish(h);
	return h;
fail:
	manifest_hash_free(h);
	return NULL;
}

/* Gathers header bytes from d (*took says how many it used): the 8-byte length N, then the N bytes of
 * JSON, which are then parsed into r.st. A length that cannot be (past the file's end, over the limit)
 * is parsed as 8 bytes, for st_file_parse to say what is wrong. Only a failed allocation is an error: a
 * header that does not parse is r.parse_status, with its message in r.st. */
static lq_status take_header(manifest_hash *h, const unsigned char *d, size_t len, size_t *took, char *err)
{
	size_t k = h->hdr_len - h->pos < len ? (size_t)(h->hdr_len - h->pos) : len;
	memcpy(h->hdr + h->pos, d, k);
	h->pos += k;
	*took = k;
	if (h->pos < h->hdr_len)
		return LQ_OK;
	if (h->hdr_len == 8) {
		uint64_t n = st_header_length(h->hdr);
		if (n > ST_MAX_HEADER || n > h->size - 8) {
			h->header_pending = false;
			h->r.parse_status = st_file_parse(h->r.st, h->hdr, 8, h->size, h->qpath);
			return LQ_OK;
		}
		if (n > 0) {
			unsigned char *p = realloc(h->hdr, (size_t)(8 + n));
			if (!p)
				return fmt_fail(err, LQ_ERR_NOMEM, "%s: out of memory for a header of %" PRIu64 " bytes",
						h->qpath, n);
			h->hdr = p;
			h->hdr_len = 8 + n;
			return LQ_OK;
		}
	}
	h->header_pending = false;
	h->r.parse_status = st_file_parse(h->r.st, h->hdr, (size_t)h->hdr_len, h->size, h->qpath);
	free(h->hdr);
	h->hdr = NULL;
	if (parsed(h) && h->r.st->ntensors && !(h->r.tensors = malloc(h->r.st->ntensors * sizeof *h->r.tensors)))
		return fmt_fail(err, LQ_ERR_NOMEM, "%s: out of memory", h->qpath);
	return LQ_OK;
}

/* Data bytes: each goes to the hash of the tensor that holds it. The tensors are contiguous from
 * data_start to the end of the file, in data order: a piece ends some of them and begins at most one. */
static void take_data(manifest_hash *h, const unsigned char *d, size_t n)
{
	const st_file *sf = parsed(h);
	for (uint64_t a = h->pos - (sf ? sf->data_start : 0), b = a + n; sf && h->ti < sf->ntensors;) {
		const st_tensor *t = &sf->tensors[h->ti];
		uint64_t lo = t->begin > a ? t->begin : a, hi = t->end < b ? t->end : b;
		if (hi > lo)
			XXH3_128bits_update(h->tensor, d + (lo - a), (size_t)(hi - lo));
		if (t->end > b)
			break;
		h->r.tensors[h->ti++] = XXH3_128bits_digest(h->tensor);
		XXH3_128bits_reset(h->tensor);
	}
	h->pos += n;
}

lq_status manifest_hash_put(manifest_hash *h, const void *data, size_t len, char *err)
{
	const unsigned char *d = data;
	if (len > h->size - h->pos)
		return fmt_fail(err, LQ_ERR_ARG, "%s: more than its %" PRIu64 " bytes", h->qpath, h->size);
	XXH3_128bits_update(h->whole, d, len);
	while (len > 0 && h->header_pending) {
		size_t took;
		lq_status st = take_header(h, d, len, &took, err);
		if (st != LQ_OK)
			return st;
		d += took;
		len -= took;
	}
	if (len > 0)
		take_data(h, d, len);
	if (h->pos == h->size && !h->done)
		finish(h);
	return LQ_OK;
}

lq_status manifest_hash_file(const manifest_file *f, unsigned char *buf, manifest_hash **out, char *err)
{
	*out = NULL;
	manifest_hash *h = manifest_hash_begin(f->path, f->size);
	if (!h)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	for (uint64_t pos = 0; pos < f->size;) {
		size_t n = f->size - pos < CHUNK ? (size_t)(f->size - pos) : CHUNK;
		lq_status st = f->read(f->arg, pos, buf, n, err);
		if (st == LQ_OK)
			st = manifest_hash_put(h, buf, n, err);
		if (st != LQ_OK) {
			manifest_hash_free(h);
			return st;
		}
		pos += n;
	}
	*out = h;
	return LQ_OK;
}
