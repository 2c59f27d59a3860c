/*
 * manifest_impl.h: what the three parts of manifest.h share, manifest_hash.c (hashing), manifest_build.c
 * (writing the text) and manifest_verify.c (reading it back, checking files against it); nothing else
 * includes it.
 */
#ifndef FORMATS_MANIFEST_IMPL_H
#define FORMATS_MANIFEST_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "manifest.h"
#include "safetensors.h"

#define CHUNK ((size_t)4 << 20)
#define HASH_HEX 32

/* What one pass over a file gives. */
typedef struct hashed {
	XXH128_hash_t whole;
	st_file *st;             /* a .safetensors file: its header, when it parses */
	lq_status parse_status;  /* LQ_OK when it parsed */
	XXH128_hash_t *tensors;  /* st's tensors, in data order */
} hashed;

/* A file being hashed, fed its bytes in order (manifest.h). */
struct manifest_hash {
	char *qpath;          /* the path, quoted for messages */
	uint64_t size, pos;   /* its size; the bytes taken so far */
	bool header_pending;  /* a .safetensors file whose header is still being gathered */
	unsigned char *hdr;   /* that header so far */
	uint64_t hdr_len;     /* what it needs: 8, then 8 + N once N is known */
	size_t ti;            /* the tensor the next data byte belongs to */
	bool done;
	XXH3_state_t *whole, *tensor;
	hashed r;
};

/* Reads f once, from byte 0 to its end, in chunks through buf (CHUNK bytes), into *out (manifest_hash_free
 * frees it). LQ_ERR_NOMEM, or what f->read or manifest_hash_put returns, with their message in err. */
lq_status manifest_hash_file(const manifest_file *f, unsigned char *buf, manifest_hash **out, char *err);

/* The canonical (big-endian) bytes of a hash, as xxhsum prints them. */
void manifest_canonical(XXH128_hash_t h, unsigned char out[16]);
/* 16 bytes as 32 lowercase hex digits and a NUL. */
void manifest_hex16(const unsigned char h[16], char out[HASH_HEX + 1]);

/* qsort's comparison of manifest_file pointers by path. */
static inline int manifest_by_path(const void *a, const void *b)
{
	return strcmp((*(const manifest_file *const *)a)->path, (*(const manifest_file *const *)b)->path);
}

#endif /* FORMATS_MANIFEST_IMPL_H */
