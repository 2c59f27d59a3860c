/*
 * zstd_frames.h: a zstd stream (RFC 8878) read from a file and decoded frame by frame, for the bundle
 * reader. Each frame's content checksum is checked here rather than by libzstd: libzstd checks it after
 * the frame's last block and then gives back nothing of that block, so a reader that lets it check
 * cannot say which bytes the failing frame held, only that the stream failed somewhere before. Here every
 * byte of a frame is given out before its checksum is compared, and a failure says which frame and which
 * bytes of the decompressed stream it covers: the caller can name what they hold.
 *
 * How: the frame header's Content_Checksum_flag is cleared in the copy handed to libzstd, which then
 * ends the frame after its last block; the four checksum bytes that follow are read here and compared
 * with XXH64 (seed 0) of the frame's content, as the format defines the checksum. libzstd is given one
 * block at a time (the block headers are read here), and the next only once the block's bytes are all
 * out: a block it refuses is then known to the byte, in the file and in the decompressed stream (libzstd
 * reports no position, and drops what it decoded in the call that fails). Skippable frames are passed
 * over; anything else where a frame should begin is a failure. Memory: a buffer of ZF_CHUNK bytes and
 * libzstd's (its window: at most 2^27 bytes, libzstd's default limit).
 */
#ifndef FORMATS_ZSTD_FRAMES_H
#define FORMATS_ZSTD_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZF_CHUNK ((size_t)1 << 20)

/* What stopped the decoding. */
typedef enum zf_kind {
	ZF_OK,
	ZF_IO,        /* the file could not be read (err_no) */
	ZF_NOMEM,
	ZF_DATA,      /* libzstd refused a frame's bytes (why) */
	ZF_CHECKSUM,  /* a frame decoded, but its content is not what its checksum says */
	ZF_TRUNCATED, /* the file ends inside a frame */
	ZF_NOT_ZSTD   /* where a frame should begin, bytes that begin none */
} zf_kind;

typedef struct zf_fault {
	zf_kind kind;
	int err_no;          /* ZF_IO */
	const char *why;     /* ZF_DATA: libzstd's name of the error (static) */
	uint64_t frame;      /* the frame, counted from 1 (skippable ones included) */
	uint64_t file_start; /* the frame's first byte in the file */
	uint64_t file_pos;   /* where in the file: the block refused, the checksum, the bytes that begin no
			      * frame, the end of the file */
	uint64_t out_start;  /* the frame's first byte in the decompressed stream */
	uint64_t out_pos;    /* bytes of the decompressed stream given out before the failure */
} zf_fault;

typedef struct zframes zframes;

/* A reader of the zstd stream in file descriptor fd (not owned), from byte 0. NULL: out of memory. */
zframes *zframes_create(int fd);
void zframes_free(zframes *z); /* NULL is a no-op */

/* Up to cap bytes of the decompressed stream into dst; *got is how many, 0 at the end of the file. On a
 * failure the bytes decoded before it are given first; the call after them returns false with
 * *got == 0 (and so does every later one) and zframes_fault says what happened. */
bool zframes_read(zframes *z, void *dst, size_t cap, size_t *got);

const zf_fault *zframes_fault(const zframes *z);

/* Whether the first bytes of a file (len of them) begin a zstd stream: a zstd or a skippable frame. */
bool zframes_magic(const void *head, size_t len);

#endif /* FORMATS_ZSTD_FRAMES_H */
