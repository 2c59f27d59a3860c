/*
 * hf_model.h: a Hugging Face model as the tools take it in: a model directory (one model.safetensors, or
 * shards named by model.safetensors.index.json), the index itself, or a bare .safetensors file; and the
 * model directory a tool writes: shards, index, config.json and the carried files, written under a
 * temporary name beside the target and renamed into place at the end.
 */
#ifndef FORMATS_HF_MODEL_H
#define FORMATS_HF_MODEL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fmt.h"
#include "safetensors.h"

#define HF_INDEX_NAME "model.safetensors.index.json"
#define HF_SINGLE_NAME "model.safetensors"
/* sentence-transformers' list of modules: the folders it names hold a module each, its weights included */
#define HF_MODULES_NAME "modules.json"
#define HF_MODULES_LIMIT ((size_t)1 << 20)
/* Files in up to this many folders below the model directory are carried ("a/b/c.json" lies in 2). */
#define HF_CARRY_DEPTH 8
/* The longest note on an entry left out. */
#define HF_NOTE_MAX 768

/* ------------------------------------------------------------------------------------ input */

struct bundle;

typedef struct hf_shard {
	char *name; /* as the index names it (relative to the model directory) */
	char *path; /* a path on disk, or "ARCHIVE:NAME" for a bundle's entry (messages) */
	st_file *st;
	struct bundle_entry_ref *ref; /* a bundle's entry: what st reads through */
} hf_shard;

typedef struct hf_model {
	char *input;      /* as given */
	char *dir;        /* the directory holding the weights (NULL for a bundle or a stream) */
	struct bundle *bundle; /* INPUT is a .tar.zst or .tar bundle: the model's files are its entries */
	bool is_model_dir;/* a model directory or index (config and carried files belong to it) */
	bool sharded;
	hf_shard *shards;
	size_t nshards;
	size_t unindexed; /* tensors found in shards that the index does not list (loaded anyway) */
	char *config_text;/* config.json as read, NULL when there is none */
	size_t config_len;
	cJSON *config;
	char **carry;     /* other files of the directory to carry over, by relative path ("tokenizer.json",
			   * "1_Pooling/config.json"), in name order */
	size_t ncarry;
	char **skipped;   /* entries not carried: "NAME: why", for the tools to say */
	size_t nskipped;
	char err[FMT_ERRBUF];
} hf_model;

hf_model *hf_model_create(void);
void hf_model_free(hf_model *m); /* NULL is a no-op */

/* Opens INPUT: a model directory, a model.safetensors.index.json, a .safetensors file, a bundle (a
 * .tar.zst or .tar holding a model directory's files, read in place: bundle.h), or "-", a safetensors
 * stream on standard input (read once, in order: st_file_open_stream). Validates every shard's header and
 * the index (a weight_map that names at least one tensor, shard names inside the directory, every
 * indexed tensor in its shard, no tensor in two shards, no shard of the indexed series that the index
 * leaves out: "model-00003-of-00003.safetensors" beside an index of the other two). Lists the files to
 * carry (a model directory's or bundle's): every regular file in it and in its folders, up to
 * HF_CARRY_DEPTH deep, but config.json (rewritten), the shards and index (rewritten), a MANIFEST at the
 * top, other weights (.safetensors, .bin, ... files: other forms or copies of the weights; in a folder
 * that modules.json names, though, they are the module's own and are carried as they are), hidden
 * entries, and symbolic links except those that stay in the model directory or lead from a Hugging Face
 * cache snapshot to its blobs (followed: the copy is a regular file); each entry left out is in
 * `skipped` with the reason. LQ_ERR_IO, LQ_ERR_CORRUPT or LQ_ERR_UNSUPPORTED with a message. */
lq_status hf_model_open(hf_model *m, const char *input);

/* Whether m was read from standard input. */
bool hf_model_is_stream(const hf_model *m);

/* The size of carried file i (for the space check). */
uint64_t hf_model_carried_size(const hf_model *m, size_t i);

/* Total elements of all tensors. */
uint64_t hf_model_parameters(const hf_model *m);

/* ------------------------------------------------------------------------------------ output */

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

/* model.safetensors.index.json as transformers writes it (indent 2, sorted keys, newline at the end).
 * names[i] is in shard file shard_files[shard_of[i]]. The string is malloc'd. */
char *hf_index_json(uint64_t total_parameters, uint64_t total_size, char *const *names, const size_t *shard_of,
		    size_t n, char *const *shard_files);

/* config.json with `member` ("\"key\": value" in JSON, multi-line allowed, written with a two-space
 * indent as transformers does) inserted as a top-level member, in sorted position when the existing keys
 * are sorted, at the end otherwise; an existing member of that key is replaced. Everything else is kept
 * byte for byte. `remove_key` (may be NULL) is removed instead when member is NULL. Returns a malloc'd
 * string or NULL with a message in err. */
char *hf_config_edit(const char *text, size_t len, const char *key, const char *member, size_t *out_len, char *err);

/* Python json.dumps(s) of a string (ASCII only, \uXXXX escapes), appended to a malloc'd buffer. */
char *hf_py_json_string(const char *s);

/* The quantization_config member of config.json ("\"quantization_config\": {...}") as transformers writes
 * it for bitsandbytes 4-bit (sorted keys, indent 2); llm_int8_skip_modules is null when skip is NULL, [] when
 * nskip is 0.
 * Returns a malloc'd string, NULL when out of memory. */
char *hf_quantization_config(lq_qtype qtype, bool double_quant, lq_dtype compute, char *const *skip, size_t nskip);

#endif /* FORMATS_HF_MODEL_H */
