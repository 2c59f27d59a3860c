/*
 * hf_model.h: a Hugging Face model as the tools take it in: a model directory (one model.safetensors, or
 * shards named by model.safetensors.index.json), the index itself, or a bare .safetensors file. The model
 * directory a tool writes is hf_out.h's; its JSON files (index, config.json edits) hf_json.h's.
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

#endif /* FORMATS_HF_MODEL_H */
