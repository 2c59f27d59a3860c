/*
 * out_model.h: the output side of the tools: where the output goes (and the checks on that place),
 * its shards (the input's layout, a size limit, or one file), a writer per shard (out_writer.h: the
 * safetensors one), the index, config.json, the carried files, the MANIFEST, and the rename into place.
 *
 * OUTPUT is a model directory, a .safetensors file, a bundle (.tar.zst or .tar: the directory written,
 * then archived reproducibly, bundle.h) or "-", a safetensors stream on standard output (its tensors in
 * the order the tool declares them, which is the order it makes them: the official layout would need every
 * tensor's constants before the first byte goes out).
 *
 * Shard jobs: with om_set_part(I, N) only the output shards of part I are written, straight into the
 * output directory under temporary names renamed at the end; om_begin on a directory that holds every
 * planned shard (and nothing else), or om_set_finish, completes it: it checks each shard's size and header
 * against the plan and writes the index, config.json, the carried files and the MANIFEST, so that N parts
 * and a finish give the bytes of one run.
 *
 * Use: om_place_check, om_init, om_set_origin, om_add or om_add_group for every output tensor (in plan
 * order), om_layout
 * (sizes are known from here on), om_set_part, om_begin, om_open (the executor then writes through the
 * writers, om_writer, of the shards om_shard_todo names), om_finish, om_commit; om_free removes whatever
 * was not committed.
 */
#ifndef FORMATS_OUT_MODEL_H
#define FORMATS_OUT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bnb.h"
#include "hf_model.h"
#include "hf_out.h"
#include "manifest.h"
#include "out_writer.h"
#include "safetensors.h"

typedef struct out_model {
	const char *path;   /* OUTPUT as given */
	bool is_dir;        /* a model directory (or a bundle of one), not a .safetensors file or a stream */
	bool bundle;        /* OUTPUT ends in .tar.zst or .tar */
	bool stream;        /* OUTPUT is "-" */
	int zstd_level;     /* bundles: --zstd-level (default BUNDLE_DEFAULT_LEVEL) */
	int zstd_threads;   /* bundles: zstd workers (-T; at least 1) */
	manifest_origin origin;
	size_t part, nparts;/* --shard I/N: part = I - 1; nparts 0: the whole output */
	bool finish;        /* --finish, or a directory of completed parts found by om_begin */
	bool *todo;         /* per shard: written by this run */
	bool *linked;       /* per shard: a completed part taken as it is (finish) */
	char **part_tmp;    /* per shard: its temporary name in the output directory (parts) */
	size_t nshards;
	const out_writer_ops *format; /* the shards' container */
	out_writer *writers; /* per shard */
	char **files;       /* shard file names */
	char **names;       /* every tensor added, in order, and its shard: the index */
	size_t *shard_of;
	size_t nnames, cap;
	uint64_t bytes;     /* tensor data in all shards (after om_layout) */
	hf_out *out;
	bool made_dir;      /* a part made the output directory: removed again unless the part is committed */
} out_model;

/* Whether OUTPUT is "-" (standard output) or names a bundle. */
bool om_is_stream(const char *output);
bool om_is_bundle(const char *output);

/* Whether OUTPUT may be written for the inputs, model m (NULL: none) and the adapters (their paths as given: a
 * directory, a file in one, or a bundle; NULL when none): not an input, not inside an input directory, not
 * containing an input's directory or file, neither where its name is nor where it leads through a link,
 * every path compared by its real path (out_place.h). Standard output ("-") always may. LQ_ERR_ARG when it
 * may not, LQ_ERR_IO when OUTPUT's directory cannot be resolved, LQ_ERR_NOMEM; the message in err. */
lq_status om_place_check(const hf_model *m, const char *const *adapters, size_t nadapters, const char *output,
			 char *err);

/* The output shard of each of n units (a tensor or a group of tensors kept together) of `bytes` bytes,
 * from input shard `in_shard`: one file for a .safetensors or "-" OUTPUT, else the input's layout, or
 * with max_shard_size > 0 consecutive units up to that size (a larger unit alone). Returns the shard
 * count. */
size_t om_assign_shards(const char *output, uint64_t max_shard_size, const uint64_t *bytes, const size_t *in_shard,
			size_t n, size_t in_shards, size_t *out_shard);

lq_status om_init(out_model *om, const char *output, size_t nshards, char *err);
/* What the MANIFEST says made the output (the strings must outlive om). */
void om_set_origin(out_model *om, const char *tool, const char *const *keys, const char *const *values, size_t n);
/* Declares a tensor in shard `shard`; returns the writer's id, or -1 with the message in err. */
int32_t om_add(out_model *om, size_t shard, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
	       char *err);
/* Declares the parts that the 4-bit group of weight `weight` (n elements, state s) has in shard `shard`,
 * in bnb_part order: each named by bnb_part_name and laid out by bnb_part_layout or, where as_is (NULL:
 * nowhere) has a tensor for it, typed and shaped as that tensor is stored (a group copied as it was: its
 * quant_state keeps its own length). ids[k] gets part k's writer id, -1 for a part the group lacks.
 * LQ_ERR_UNSUPPORTED, "tensor name too long", when a name needs more than BNB_NAME_MAX bytes; LQ_ERR_ARG
 * when om_add fails; the message in err. */
lq_status om_add_group(out_model *om, size_t shard, const char *weight, const bnb_state *s, int64_t n,
		       const st_tensor *const *as_is, int32_t ids[BNB_NPARTS], char *err);
lq_status om_layout(out_model *om, char *err);
/* The writer of shard `shard`, for the executor's sink (st_exec.h); owned by om. */
const out_writer *om_writer(const out_model *om, size_t shard);

/* --shard I/N (part = I - 1 < nparts): this run writes the shards of part I only: consecutive shards,
 * balanced by bytes (each shard goes to the part its middle byte falls in). After om_layout; needs a
 * directory OUTPUT (LQ_ERR_ARG otherwise). */
lq_status om_set_part(out_model *om, size_t part, size_t nparts, char *err);
/* --finish: complete a directory of parts (om_begin fails when one is missing). */
void om_set_finish(out_model *om);
/* Whether this run writes shard s (the executor skips the tasks of the others). */
bool om_shard_todo(const out_model *om, size_t s);
/* Whether this run writes anything to the shards (false for a finish, or a part with no shard). */
bool om_has_work(const out_model *om);

/* Starts the temporary output (LQ_ERR_EXISTS without force) and checks there is room for extra_bytes
 * more than the tensors (config, carried files). */
lq_status om_begin(out_model *om, bool force, uint64_t extra_bytes, char *err);
/* Opens the shard files this run writes under their temporary names (messages name the final ones), or
 * standard output. */
lq_status om_open(out_model *om, char *err);
/* Completes the shards; for a directory writes the index (several shards), config_text (NULL: none),
 * the files m carries, and the MANIFEST. A part only completes its shards. */
lq_status om_finish(out_model *om, const hf_model *m, uint64_t total_parameters, const char *config_text,
		    size_t config_len, char *err);
lq_status om_commit(out_model *om, char *err);
void om_free(out_model *om);

/* The bytes of m's carried files and config, for om_begin. */
uint64_t om_carried_bytes(const hf_model *m);

/* Whether OUTPUT carries m's files, and so whether the entries m leaves out (m->skipped) are worth saying:
 * m is a model directory (or a bundle of one) and OUTPUT a directory or a bundle, not a .safetensors file or
 * a stream, which carry nothing. */
bool om_carries_files(const hf_model *m, const char *output);

#endif /* FORMATS_OUT_MODEL_H */
