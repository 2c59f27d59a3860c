/*
 * bundle.h: model bundles (shared/specs/safetensors.md, "Reproducible bundles"): one .tar.zst (or .tar)
 * holding the files of a model directory, through libarchive, compressed with libzstd.
 *
 * Writing (bundle_write.c): bundle_write() archives files of a directory, its folders' included
 * ("1_Pooling/config.json": a file's entry names its folders; there are no directory entries), entries sorted
 * bytewise by their relative names, in the pax restricted format with fixed metadata (mtime 0, uid/gid 0, no
 * user or group names, mode 0644, no atime/ctime, bytes_in_last_block 1), so that the same files give the
 * same archive bytes on any machine and with any thread count (for a given zstd version).
 *
 * Reading (bundle_read.c): bundle_open() scans the archive once, checking every entry (the rules below) and
 * keeping in memory what a tool reads before the tensors: entries that are not .safetensors files whole
 * (configs, index, tokenizer files), and of each .safetensors entry its first 8 + N bytes (the header).
 * Tensor bytes are then read with bundle_read() through cursors that decompress forward: reading the entries
 * in archive order, as the tools do, costs one more pass over the archive. A read goes to the nearest cursor
 * before it; with none near, one of BUNDLE_CURSORS (4) starts again from the beginning (correct, only
 * slower). So a reader that goes forward in a few places at once (qinspect walking a .safetensors file whose
 * tensors are laid out by dtype, then name) pays a few passes, not one per step back. Nothing is unpacked to
 * disk.
 *
 * What an archive may hold (hostile input: anything else is LQ_ERR_CORRUPT, naming the archive and the
 * entry): regular files whose names are relative, without "..", empty or "." components, backslashes or
 * control characters, at most BUNDLE_MAX_NAME bytes, each name once, in folders or not
 * ("1_Pooling/config.json"), no name both a file and the folder of another ("a" and "a/b"); and directory
 * entries under the same rules for their names, which are passed over (a folder is what its files name).
 * One leading "./" is dropped; when every file lies in one top-level directory ("model/config.json", as
 * `tar -cf x.tar model` makes) that directory is dropped too (a model directory always has files of its
 * own). No symbolic or hard links, no device files, FIFOs or sockets, at most BUNDLE_MAX_ENTRIES entries,
 * entries kept in memory at most BUNDLE_SMALL_LIMIT bytes each and BUNDLE_SMALL_TOTAL in all, a
 * .safetensors header at most ST_MAX_HEADER bytes. A truncated archive, a zstd frame that does not
 * decode or fails its checksum, and bytes after the last frame are LQ_ERR_CORRUPT as well; a zstd frame
 * is decoded here (zstd_frames.h), so the message names the entries whose bytes the failing frame or
 * block holds, not the entry being read when the failure showed.
 */
#ifndef FORMATS_BUNDLE_H
#define FORMATS_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fmt.h"

#define BUNDLE_MAX_ENTRIES 100000
#define BUNDLE_MAX_NAME 1024
#define BUNDLE_SMALL_LIMIT ((uint64_t)64 << 20)
#define BUNDLE_SMALL_TOTAL ((uint64_t)512 << 20)
#define BUNDLE_DEFAULT_LEVEL 3

/* Whether path names a bundle: "*.tar.zst" (*compressed true) or "*.tar" (false). */
bool bundle_path_is_bundle(const char *path, bool *compressed);

/* ------------------------------------------------------------------------------------ writing */

/* Writes the regular files names[0..n) of directory `dir` (relative names, "config.json" or
 * "1_Pooling/config.json"; none the folder of another) into a new archive at `path`, which must not exist
 * (LQ_ERR_EXISTS), entries sorted bytewise whatever the order given. When
 * path ends in .tar.zst the tar stream is compressed with libzstd at `level` (1..19) with `threads` worker
 * threads (at least one is used: zstd's multithreaded format, whose bytes are the same for every worker
 * count), checksummed; a .tar path is written uncompressed. The file is synced before the call returns;
 * on failure it is removed. LQ_ERR_IO (with errno's text), LQ_ERR_ARG (a bad name or level), LQ_ERR_NOMEM.
 * `display` names the archive in messages (the path it will be renamed to); NULL: path. */
lq_status bundle_write(const char *path, const char *display, const char *dir, char *const *names, size_t n,
		       int level, int threads, char *err);

/* ------------------------------------------------------------------------------------ reading */

typedef struct bundle_entry {
	char *name;     /* as the model directory would name it (prefixes dropped) */
	uint64_t size;
	char *head;     /* what is held in memory: the whole entry (not .safetensors), or its 8 + N header */
	uint64_t head_len;
} bundle_entry;

typedef struct bundle bundle;

bundle *bundle_create(void);
void bundle_free(bundle *b); /* NULL is a no-op */

/* Opens and scans the archive at path (.tar.zst, .tar.zstd, .tzst or .tar: the compression is found from
 * the bytes, not the name). LQ_ERR_IO when it cannot be read, LQ_ERR_CORRUPT for an entry that breaks a
 * rule above, with a message naming the archive and the entry. */
lq_status bundle_open(bundle *b, const char *path);

/* What bundle_open_visit gives its visitor: bytes [offset, offset + len) of entry `entry` (archive order)
 * of `size` bytes, named `name` as the scan reads it: as bundle_entry_at will name it, or, when every file
 * turns out to lie in one top-level directory, with that directory before it (only the end of the scan
 * tells). Each entry's bytes come in order, from
 * offset 0 with len 0 or more, to its end (an empty entry: one call with len 0); directories are not
 * visited. A status other than LQ_OK stops the scan, which returns it; the visitor's message goes to err
 * (FMT_ERRBUF bytes), bundle_error's. */
typedef lq_status (*bundle_visit_fn)(void *arg, size_t entry, const char *name, uint64_t size, uint64_t offset,
				     const void *data, size_t len, char *err);

/* bundle_open, with every byte of every entry also given to `visit` as the scan decompresses it: a caller
 * that needs every byte once (qinspect --verify hashing them) needs no second pass. */
lq_status bundle_open_visit(bundle *b, const char *path, bundle_visit_fn visit, void *arg);

size_t bundle_count(const bundle *b);
/* Entries in archive order. */
const bundle_entry *bundle_entry_at(const bundle *b, size_t i);
/* The index of the entry of that name, or -1. */
int64_t bundle_find(const bundle *b, const char *name);
const char *bundle_path(const bundle *b);

/* Reads len bytes of entry i from byte `offset` into dst: from memory where held, else through the
 * cursor. LQ_ERR_ARG past the entry's end; LQ_ERR_IO / LQ_ERR_CORRUPT when the archive cannot be read
 * again or has changed since bundle_open (an entry of another name or size where the scan saw this one). */
lq_status bundle_read(bundle *b, size_t i, uint64_t offset, void *dst, size_t len);

const char *bundle_error(const bundle *b);

/* Entry bytes that bundle_read has had decompressed (or read, for a .tar) so far, those it passed over
 * included, the scan aside: what the order of the reads costs. */
uint64_t bundle_decoded(const bundle *b);

/* An entry as a byte source for the readers that take (arg, offset, dst, len, err), st_file_open_reader's
 * and the manifest's: arg points to a bundle_entry_ref, which must outlive the reader. */
typedef struct bundle_entry_ref {
	bundle *b;
	size_t entry;
} bundle_entry_ref;

lq_status bundle_entry_read(void *arg, uint64_t offset, void *dst, size_t len, char *err);

#endif /* FORMATS_BUNDLE_H */
