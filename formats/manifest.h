/*
 * manifest.h: the MANIFEST of an output (a model directory or a bundle): per file its size and XXH3-128,
 * per tensor of every .safetensors file its dtype, shape and XXH3-128 of its bytes, and the tool, version
 * and options that made it; and the check of a directory or bundle against it. The format (JSON,
 * "manifest": 1) is documented in man/libquant-formats.5 and stable: nothing in it depends on where, when,
 * on which device or with how many threads it was made, so that the same conversion gives the same bytes.
 * Hashing is in manifest_hash.c, writing the text in manifest_build.c, reading it back and checking files
 * against it in manifest_verify.c.
 *
 * XXH3-128 is printed as its canonical (big-endian) form in lowercase hex, as xxhsum does.
 *
 * The text, byte for byte:
 *
 *   {
 *     "manifest": 1,
 *     "tool": "nf4quant",
 *     "version": "0.5.0",
 *     "options": {"quant_type": "nf4", "blocksize": "64"},
 *     "files": [
 *       {"path": "config.json", "size": 1234, "xxh3_128": "<32 hex>"},
 *       {"path": "model.safetensors", "size": 5678, "xxh3_128": "<32 hex>", "tensors": [
 *         {"name": "a.weight", "dtype": "U8", "shape": [32, 1], "xxh3_128": "<32 hex>"},
 *         {"name": "b.weight", "dtype": "BF16", "shape": [], "xxh3_128": "<32 hex>"}
 *       ]}
 *     ]
 *   }
 *
 * two-space indent, files sorted bytewise by path, tensors in the order of their data in the file,
 * options in the order given, strings escaped as JSON requires (\" \\ and \u00XX for control characters;
 * other bytes as they are), a newline at the end.
 */
#ifndef FORMATS_MANIFEST_H
#define FORMATS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fmt.h"

#define MANIFEST_NAME "MANIFEST"
/* A manifest longer than this is refused when read (a hostile bundle). */
#define MANIFEST_MAX_SIZE ((size_t)256 << 20)

/* What made the output: the tool's name and version, and its options that shape the bytes, as key/value
 * strings (paths, -T, --device, -q, -v, -f, --shard are never among them). */
typedef struct manifest_origin {
	const char *tool;
	const char *version;
	const char *const *keys;
	const char *const *values;
	size_t noptions;
} manifest_origin;

/* A file being hashed by its holder, who has its bytes passing by anyway (a bundle's scan decompresses
 * every entry): manifest_hash_begin, then manifest_hash_put with the bytes in order, all `size` of them,
 * in pieces of any length. A .safetensors file (by its name) is hashed tensor by tensor as well, its
 * header checked as st_file_parse checks it. */
typedef struct manifest_hash manifest_hash;

manifest_hash *manifest_hash_begin(const char *path, uint64_t size); /* NULL: out of memory */
/* LQ_ERR_ARG past `size` bytes, LQ_ERR_NOMEM; a header that does not parse is not an error here (the
 * check reports it). */
lq_status manifest_hash_put(manifest_hash *h, const void *data, size_t len, char *err);
void manifest_hash_free(manifest_hash *h); /* NULL is a no-op */

/* A file of the output: its path inside it ("model-00001-of-00002.safetensors"), its size, and how to
 * read its bytes (called with consecutive offsets from 0, in order; the callee sets its own message in
 * err, FMT_ERRBUF bytes, and returns a status), or, for manifest_verify, its bytes already hashed (all
 * of them; `read` is then not called). */
typedef struct manifest_file {
	const char *path;
	uint64_t size;
	lq_status (*read)(void *arg, uint64_t offset, void *dst, size_t len, char *err);
	void *arg;
	const manifest_hash *hashed;
} manifest_file;

/* A reader for manifest_file over a file on disk: arg is the file's path (const char *). */
lq_status manifest_read_path(void *arg, uint64_t offset, void *dst, size_t len, char *err);

/* Hashes the files (reading each once; .safetensors files are also hashed tensor by tensor, their headers
 * checked as st_file_parse checks them) and returns the manifest's text (malloc'd, NUL-terminated, *len
 * its size). LQ_ERR_IO / LQ_ERR_CORRUPT / LQ_ERR_NOMEM with a message naming the file. A file named
 * MANIFEST among `files`, a path given twice, and a path, tool, version or option that is not valid UTF-8
 * (the text would not be JSON) are refused (LQ_ERR_ARG). */
lq_status manifest_build(const manifest_origin *origin, const manifest_file *files, size_t nfiles, char **text,
			 size_t *len, char *err);

/* One thing found wrong by manifest_verify: a line such as "model.safetensors: tensor 'x.weight': bytes
 * differ from the manifest (xxh3_128 ... here, ... listed)". */
typedef void (*manifest_report_fn)(void *arg, const char *message);

/* Checks the files of an output against its manifest's text: every file listed is there with its size
 * and hash, no other file is (MANIFEST itself is not among `files`), every tensor listed is in its file
 * with its dtype, shape and hash, and no other tensor is. Each mismatch is reported through `report`
 * (all of them, not only the first: a corrupted tensor names the tensor as well as the file), and
 * *mismatches gets their count; the call returns LQ_OK when it could do the check, whatever it found.
 * LQ_ERR_CORRUPT when the manifest itself is not one (the message says where), LQ_ERR_IO when a file
 * cannot be read, LQ_ERR_ARG when a path is given twice in `files`. `report` may be NULL (only counted).
 * The origin read from the manifest (tool, version) is in *tool / *version when not NULL (malloc'd; NULL
 * on failure). */
lq_status manifest_verify(const char *manifest_text, size_t len, const manifest_file *files, size_t nfiles,
			  manifest_report_fn report, void *arg, size_t *mismatches, char **tool, char **version,
			  char *err);

#endif /* FORMATS_MANIFEST_H */
