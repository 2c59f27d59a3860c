/* zstd_frames.c: see zstd_frames.h. */
#include "zstd_frames.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

#define ZSTD_MAGIC 0xfd2fb528u
#define SKIPPABLE_MASK 0xfffffff0u
#define SKIPPABLE_MAGIC 0x184d2a50u
#define CHECKSUM_FLAG 0x04 /* in the Frame_Header_Descriptor, the frame's fifth byte */
#define MAX_HEADER 18      /* magic, descriptor, window, dictionary id and content size at their largest */

struct zframes {
	int fd;
	ZSTD_DStream *ds;
	XXH64_state_t *xxh;
	unsigned char *in;  /* file bytes [in_at, in_at + in_len), of which [in_pos, in_len) are not decoded yet */
	size_t in_len, in_pos;
	uint64_t in_at;
	bool eof;           /* the file has no byte after in_at + in_len */
	bool in_frame;      /* between a frame's first byte and its end */
	bool checked;       /* the current frame has a checksum, checked here */
	uint64_t block;     /* the current block's first byte in the file (its 3-byte header) */
	uint64_t limit;     /* and the byte after it: libzstd reads no further */
	bool last;          /* the current block is the frame's last */
	bool flushed;       /* the last call gave out everything libzstd had decoded */
	uint64_t out_pos;   /* bytes of the decompressed stream given out */
	zf_fault cur;       /* the current frame's place (kind ZF_OK), or the failure */
};

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

bool zframes_magic(const void *head, size_t len)
{
	if (len < 4)
		return false;
	uint32_t m = le32(head);
	return m == ZSTD_MAGIC || (m & SKIPPABLE_MASK) == SKIPPABLE_MAGIC;
}

zframes *zframes_create(int fd)
{
	zframes *z = calloc(1, sizeof *z);
	if (!z)
		return NULL;
	z->fd = fd;
	z->ds = ZSTD_createDStream();
	z->xxh = XXH64_createState();
	z->in = malloc(ZF_CHUNK);
	if (!z->ds || !z->xxh || !z->in) {
		zframes_free(z);
		return NULL;
	}
	return z;
}

void zframes_free(zframes *z)
{
	if (!z)
		return;
	ZSTD_freeDStream(z->ds);
	XXH64_freeState(z->xxh);
	free(z->in);
	free(z);
}

const zf_fault *zframes_fault(const zframes *z)
{
	return &z->cur;
}

static bool fail_at(zframes *z, zf_kind kind, uint64_t file_pos)
{
	z->cur.kind = kind;
	z->cur.file_pos = file_pos;
	z->cur.out_pos = z->out_pos;
	return false;
}

static uint64_t here(const zframes *z)
{
	return z->in_at + z->in_pos;
}

/* At least `want` undecoded bytes in the buffer (want <= ZF_CHUNK), or all the file has left. */
static bool fill(zframes *z, size_t want)
{
	if (z->in_len - z->in_pos >= want || z->eof)
		return true;
	memmove(z->in, z->in + z->in_pos, z->in_len - z->in_pos);
	z->in_at += z->in_pos;
	z->in_len -= z->in_pos;
	z->in_pos = 0;
	while (z->in_len < want && !z->eof) {
		ssize_t k = pread(z->fd, z->in + z->in_len, ZF_CHUNK - z->in_len, (off_t)(z->in_at + z->in_len));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			z->cur.err_no = errno;
			return fail_at(z, ZF_IO, z->in_at + z->in_len);
		}
		z->eof = k == 0;
		z->in_len += (size_t)k;
	}
	return true;
}

/* The 3-byte block header h, at byte `at` of the file: its block becomes the current one. */
static void set_block(zframes *z, const unsigned char *h, uint64_t at)
{
	uint32_t v = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16;
	unsigned type = v >> 1 & 3; /* raw, RLE (one byte repeated), compressed; 3 is reserved: libzstd says so */
	z->block = at;
	z->limit = at + 3 + (type == 1 ? 1 : type == 3 ? 0 : v >> 3);
	z->last = v & 1;
}

/* The block that begins where the current one ends (z->limit, the next undecoded byte). */
static bool next_block(zframes *z)
{
	if (!fill(z, 3))
		return false;
	if (z->in_len - z->in_pos < 3)
		return fail_at(z, ZF_TRUNCATED, z->in_at + z->in_len);
	set_block(z, z->in + z->in_pos, here(z));
	return true;
}

/* Past a skippable frame of `size` bytes after its 8-byte header. */
static bool skip_frame(zframes *z, uint64_t size)
{
	uint64_t end = here(z) + 8 + size;
	if (end <= z->in_at + z->in_len) {
		z->in_pos = (size_t)(end - z->in_at);
		return true;
	}
	unsigned char last;
	ssize_t k;
	do
		k = pread(z->fd, &last, 1, (off_t)(end - 1));
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		z->cur.err_no = errno;
		return fail_at(z, ZF_IO, end - 1);
	}
	if (k == 0)
		return fail_at(z, ZF_TRUNCATED, end - 1);
	z->in_at = end;
	z->in_len = z->in_pos = 0;
	z->eof = false;
	return true;
}

/* At a frame's first byte: a zstd frame, its checksum flag moved here from libzstd's copy and its first
 * block found, or a skippable frame, passed over. */
static bool begin_frame(zframes *z)
{
	if (!fill(z, MAX_HEADER + 3))
		return false;
	size_t have = z->in_len - z->in_pos;
	unsigned char *h = z->in + z->in_pos;
	z->cur.frame++;
	z->cur.file_start = here(z);
	z->cur.out_start = z->out_pos;
	uint32_t m = have >= 4 ? le32(h) : 0;
	if ((m & SKIPPABLE_MASK) == SKIPPABLE_MAGIC)
		return have < 8 ? fail_at(z, ZF_TRUNCATED, z->in_at + z->in_len) : skip_frame(z, le32(h + 4));
	if (m != ZSTD_MAGIC)
		return fail_at(z, have < 4 ? ZF_TRUNCATED : ZF_NOT_ZSTD, have < 4 ? z->in_at + z->in_len : here(z));
	if (have < 5)
		return fail_at(z, ZF_TRUNCATED, z->in_at + z->in_len);
	static const unsigned char dict_bytes[4] = {0, 1, 2, 4}, fcs_bytes[4] = {0, 2, 4, 8};
	unsigned fhd = h[4], single = fhd >> 5 & 1, fcs = fhd >> 6;
	size_t header = 5 + (single ? 0 : 1) + dict_bytes[fhd & 3] + (fcs == 0 ? single : fcs_bytes[fcs]);
	if (have < header + 3) /* the header and the first block's: fill stopped short only at the end */
		return fail_at(z, ZF_TRUNCATED, z->in_at + z->in_len);
	z->checked = fhd & CHECKSUM_FLAG;
	if (z->checked) {
		h[4] &= (unsigned char)~CHECKSUM_FLAG;
		XXH64_reset(z->xxh, 0);
	}
	z->in_frame = true;
	z->flushed = true;
	/* libzstd reads the frame header with the first block */
	set_block(z, h + header, here(z) + header);
	return true;
}

/* After libzstd ended a frame: its checksum, when it has one. */
static bool end_frame(zframes *z)
{
	z->in_frame = false;
	if (!z->checked)
		return true;
	if (!fill(z, 4))
		return false;
	if (z->in_len - z->in_pos < 4)
		return fail_at(z, ZF_TRUNCATED, z->in_at + z->in_len);
	if ((uint32_t)XXH64_digest(z->xxh) != le32(z->in + z->in_pos))
		return fail_at(z, ZF_CHECKSUM, here(z));
	z->in_pos += 4;
	return true;
}

/* One call of libzstd on what is left of the current block, into out[0, cap). */
static bool decode(zframes *z, unsigned char *out, size_t cap, size_t *n)
{
	if (here(z) == z->limit && z->flushed) {
		if (z->last) /* the frame should have ended with this block */
			return fail_at(z, ZF_DATA, z->block);
		if (!next_block(z))
			return false;
	}
	if (!fill(z, 1))
		return false;
	size_t avail = z->in_len - z->in_pos;
	uint64_t room = z->limit - here(z);
	if (avail == 0 && room > 0)
		return fail_at(z, ZF_TRUNCATED, here(z));
	ZSTD_inBuffer ib = {z->in + z->in_pos, room < avail ? (size_t)room : avail, 0};
	ZSTD_outBuffer ob = {out, cap, 0};
	size_t r = ZSTD_decompressStream(z->ds, &ob, &ib);
	if (ZSTD_isError(r)) {
		z->cur.why = ZSTD_getErrorName(r);
		return fail_at(z, ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? ZF_NOMEM : ZF_DATA, z->block);
	}
	z->in_pos += ib.pos;
	if (z->checked)
		XXH64_update(z->xxh, out, ob.pos);
	*n += ob.pos;
	z->out_pos += ob.pos;
	z->flushed = ob.pos < ob.size;
	return r == 0 ? end_frame(z) : true;
}

bool zframes_read(zframes *z, void *dst, size_t cap, size_t *got)
{
	*got = 0;
	if (z->cur.kind != ZF_OK)
		return false;
	unsigned char *out = dst;
	size_t n = 0;
	bool ok = true;
	while (n < cap && ok) {
		if (z->in_frame) {
			ok = decode(z, out + n, cap - n, &n);
		} else if (!(ok = fill(z, 1))) {
			break;
		} else if (z->in_pos == z->in_len) {
			break; /* the end of the file, between frames */
		} else {
			ok = begin_frame(z);
		}
	}
	/* the bytes before a failure go out first; the failure with the next call */
	*got = n;
	return n > 0 || ok;
}
