/*
 * hf_out.h: the model directory a tool writes, as one transaction: every file (shards, index, config.json,
 * the carried files, the MANIFEST) is written under a temporary name beside the target (a directory, a
 * single file, or a directory archived into a bundle at the end), synced, and renamed into place at the
 * end; anything else removes it. An existing output is replaced only with force, and only when it is a
 * file, a link (itself), an empty directory or an earlier output of these tools.
 */
#ifndef FORMATS_HF_OUT_H
#define FORMATS_HF_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hf_model.h"

typedef struct hf_out hf_out;

hf_out *hf_out_create(void);
/* Removes whatever was written unless committed; NULL is a no-op. */
void hf_out_free(hf_out *o);

/* Makes the output, once committed, a bundle at final_path (bundle.h) of the directory written: call
 * before hf_out_begin with is_dir true. */
void hf_out_set_bundle(hf_out *o, int zstd_level, int threads);

/* Starts an output at final_path: a directory (is_dir) or a single file. The work happens under a
 * temporary name in final_path's parent (fmt_temp_path: ".NAME.tmp-XXXXXX", NAME cut to fit). An existing
 * final_path is LQ_ERR_EXISTS without force; with force it is replaced at the commit when it is a file or
 * a symbolic link (the link itself, never what it points to), an empty directory, or a directory that
 * holds exactly what its MANIFEST lists (an earlier output of these tools: those entries are removed,
 * nothing else); anything else is LQ_ERR_EXISTS with a message that names what is there. */
lq_status hf_out_begin(hf_out *o, const char *final_path, bool is_dir, bool force);

/* Before hf_out_begin: a directory at final_path is replaced only when it holds nothing but `names`
 * (sorted or not; no MANIFEST needed), which the commit then removes: for --finish, whose output replaces
 * the directory of the parts it consumed. */
lq_status hf_out_replace_only(hf_out *o, char *const *names, size_t n);

/* The path to write file `name` at (is_dir), or the temporary file (!is_dir, name ignored). The string is
 * owned by o and valid until the next call. */
const char *hf_out_path(hf_out *o, const char *name);

/* Writes a small file (config.json, the index) into the output directory. */
lq_status hf_out_write_file(hf_out *o, const char *name, const void *data, size_t len);

/* Copies src (following links; a regular file only, fmt_open_input) into the output directory as `name`. */
lq_status hf_out_copy_file(hf_out *o, const char *src, const char *name);

/* Fails (LQ_ERR_IO, with both figures) when the output's file system has less than `bytes` free, so
 * that a disk too small is found before any work is done. Writes still check every call. */
lq_status hf_out_check_space(hf_out *o, uint64_t bytes);

/* Copies carried file i of model m (from its directory or its bundle) into the output as is, under its
 * relative path, making the folders it lies in. */
lq_status hf_out_carry(hf_out *o, const hf_model *m, size_t i);

/* The files written so far, by relative path ("config.json", "1_Pooling/config.json": the temporary
 * directory's files and its folders', not the folders themselves), sorted bytewise, for the manifest and
 * the bundle. *names is malloc'd, each string too. */
lq_status hf_out_list(hf_out *o, char ***names, size_t *n);

/* The directory the files are being written in (a temporary one). */
const char *hf_out_dir(const hf_out *o);

/* Archives (a bundle), syncs and renames the output into place, replacing an old one when forced (checked
 * again: hf_out_begin's rules). The old output is moved aside first, then removed as checked, never
 * through a link; if the new one cannot be renamed into place, the old one is put back. fmt_cancelled is
 * asked before each step and last just before the rename, the point of no return: LQ_ERR_CANCELLED,
 * "interrupted", and nothing is changed. */
lq_status hf_out_commit(hf_out *o);

const char *hf_out_error(const hf_out *o);

/* The shard file names for n shards: "model.safetensors" for one, "model-00001-of-0000n.safetensors". */
void hf_shard_name(char *buf, size_t size, size_t i, size_t n);

#endif /* FORMATS_HF_OUT_H */
