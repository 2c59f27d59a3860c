/*
 * model_out.h: the output side the tools share: where the output goes (and the checks on that place),
 * its shards (the input's layout, a size limit, or one file), the safetensors writers, the index,
 * config.json, the carried files, and the rename into place.
 *
 * Use: om_place_ok, om_init, om_add for every output tensor (in plan order), om_layout (sizes are known
 * from here on), om_begin, om_open (the executor then writes through the writers), om_finish, om_commit;
 * om_free removes whatever was not committed.
 */
#ifndef TOOLS_MODEL_OUT_H
#define TOOLS_MODEL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hf_model.h"
#include "safetensors.h"

typedef struct out_model {
	const char *path;   /* OUTPUT as given */
	bool is_dir;        /* a model directory, not a .safetensors file */
	size_t nshards;
	st_writer **writers;
	char **files;       /* shard file names */
	char **names;       /* every tensor added, in order, and its shard: the index */
	size_t *shard_of;
	size_t nnames, cap;
	uint64_t bytes;     /* tensor data in all shards (after om_layout) */
	hf_out *out;
} out_model;

/* Whether OUTPUT may be written for input m: not the input, not inside it, not containing it. Prints
 * the message. */
bool om_place_ok(const hf_model *m, const char *output);

/* The output shard of each of n units (a tensor or a group of tensors kept together) of `bytes` bytes,
 * from input shard `in_shard`: one file for a .safetensors OUTPUT, else the input's layout, or with
 * max_shard_size > 0 consecutive units up to that size (a larger unit alone). Returns the shard count. */
size_t om_assign_shards(const char *output, uint64_t max_shard_size, const uint64_t *bytes, const size_t *in_shard,
			size_t n, size_t in_shards, size_t *out_shard);

lq_status om_init(out_model *om, const char *output, size_t nshards, char *err);
/* Declares a tensor in shard `shard`; returns the writer's id, or -1 with the message in err. */
int32_t om_add(out_model *om, size_t shard, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
	       char *err);
lq_status om_layout(out_model *om, char *err);
/* Starts the temporary output (LQ_ERR_EXISTS without force) and checks there is room for extra_bytes
 * more than the tensors (config, carried files). */
lq_status om_begin(out_model *om, bool force, uint64_t extra_bytes, char *err);
/* Opens the shard files under their temporary names (messages name the final ones). */
lq_status om_open(out_model *om, char *err);
/* Completes the shards; for a directory writes the index (several shards), config_text (NULL: none) and
 * the files m carries. */
lq_status om_finish(out_model *om, const hf_model *m, uint64_t total_parameters, const char *config_text,
		    size_t config_len, char *err);
lq_status om_commit(out_model *om, char *err);
void om_free(out_model *om);

/* The bytes of m's carried files and config, for om_begin. */
uint64_t om_carried_bytes(const hf_model *m);

#endif /* TOOLS_MODEL_OUT_H */
