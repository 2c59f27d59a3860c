/* model_out.c: see model_out.h. */
#include "model_out.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The canonical absolute path of p, which need not exist (then its directory must). NULL when it cannot
 * be resolved, or when its last component is "." or "..", which name no new entry. */
static char *resolve_path(const char *p)
{
	char real[PATH_MAX];
	if (realpath(p, real))
		return strdup(real);
	char *copy = strdup(p);
	if (!copy)
		return NULL;
	size_t len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	char *slash = strrchr(copy, '/');
	const char *dir = slash ? (slash == copy ? "/" : copy) : ".";
	const char *base = slash ? slash + 1 : copy;
	if (slash)
		*slash = '\0';
	char *out = NULL;
	if (strcmp(base, ".") != 0 && strcmp(base, "..") != 0 && realpath(dir, real)) {
		size_t n = strlen(real) + strlen(base) + 2;
		out = malloc(n);
		if (out)
			snprintf(out, n, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base);
	}
	free(copy);
	return out;
}

bool om_place_ok(const hf_model *m, const char *output)
{
	char *out = resolve_path(output);
	if (!out) {
		cli_error("cannot use output '%s': %s", output, strerror(errno));
		return false;
	}
	char in[PATH_MAX];
	bool ok = true;
	const char *in_path = m->is_model_dir ? m->dir : m->input;
	if (realpath(in_path, in)) {
		size_t n = strlen(in);
		if (strcmp(out, in) == 0) {
			cli_error("output '%s' is the input", output);
			ok = false;
		} else if (m->is_model_dir && strncmp(out, in, n) == 0 && out[n] == '/') {
			cli_error("output '%s' is inside the input directory '%s'", output, m->dir);
			ok = false;
		} else if (strncmp(in, out, strlen(out)) == 0 && in[strlen(out)] == '/') {
			/* replacing it (-f) would delete the input */
			cli_error("output '%s' contains the input '%s'", output, m->input);
			ok = false;
		}
	}
	free(out);
	return ok;
}

size_t om_assign_shards(const char *output, uint64_t max_shard_size, const uint64_t *bytes, const size_t *in_shard,
			size_t n, size_t in_shards, size_t *out_shard)
{
	if (ends_with(output, ".safetensors")) { /* one file holds everything */
		for (size_t i = 0; i < n; i++)
			out_shard[i] = 0;
		return 1;
	}
	if (!max_shard_size) {
		for (size_t i = 0; i < n; i++)
			out_shard[i] = in_shard[i];
		return in_shards ? in_shards : 1;
	}
	size_t shard = 0;
	uint64_t used = 0;
	for (size_t i = 0; i < n; i++) {
		if (used > 0 && used + bytes[i] > max_shard_size) {
			shard++;
			used = 0;
		}
		out_shard[i] = shard;
		used += bytes[i];
	}
	return n ? shard + 1 : 1;
}

lq_status om_init(out_model *om, const char *output, size_t nshards, char *err)
{
	memset(om, 0, sizeof *om);
	om->path = output;
	om->is_dir = !ends_with(output, ".safetensors");
	om->nshards = nshards;
	om->writers = calloc(nshards, sizeof *om->writers);
	om->files = calloc(nshards, sizeof *om->files);
	if (!om->writers || !om->files)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	for (size_t s = 0; s < nshards; s++) {
		char name[64];
		hf_shard_name(name, sizeof name, s, nshards);
		om->writers[s] = st_writer_create();
		om->files[s] = strdup(name);
		if (!om->writers[s] || !om->files[s])
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	}
	return LQ_OK;
}

int32_t om_add(out_model *om, size_t shard, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
	       char *err)
{
	int32_t id = st_writer_add(om->writers[shard], name, dtype, ndim, shape);
	if (id < 0) {
		fmt_fail(err, LQ_ERR_ARG, "%s", st_writer_error(om->writers[shard]));
		return -1;
	}
	if (om->nnames == om->cap) {
		size_t cap = om->cap ? 2 * om->cap : 256;
		char **names = realloc(om->names, cap * sizeof *names);
		if (names)
			om->names = names;
		size_t *shard_of = names ? realloc(om->shard_of, cap * sizeof *shard_of) : NULL;
		if (!names || !shard_of) {
			fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
			return -1;
		}
		om->shard_of = shard_of;
		om->cap = cap;
	}
	if (!(om->names[om->nnames] = strdup(name))) {
		fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		return -1;
	}
	om->shard_of[om->nnames++] = shard;
	return id;
}

lq_status om_layout(out_model *om, char *err)
{
	om->bytes = 0;
	for (size_t s = 0; s < om->nshards; s++) {
		lq_status st = st_writer_layout(om->writers[s]);
		if (st != LQ_OK)
			return fmt_fail(err, st, "%s", st_writer_error(om->writers[s]));
		om->bytes += st_writer_data_size(om->writers[s]);
	}
	return LQ_OK;
}

uint64_t om_carried_bytes(const hf_model *m)
{
	uint64_t bytes = m->config_len + 4096;
	for (size_t i = 0; i < m->ncarry; i++) {
		struct stat sb;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", m->dir, m->carry[i]);
		if (stat(path, &sb) == 0)
			bytes += (uint64_t)sb.st_size;
	}
	return bytes;
}

lq_status om_begin(out_model *om, bool force, uint64_t extra_bytes, char *err)
{
	om->out = hf_out_create();
	if (!om->out)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	lq_status st = hf_out_begin(om->out, om->path, om->is_dir, force);
	if (st == LQ_OK)
		st = hf_out_check_space(om->out, om->bytes + extra_bytes);
	return st == LQ_OK ? LQ_OK : fmt_fail(err, st, "%s", hf_out_error(om->out));
}

lq_status om_open(out_model *om, char *err)
{
	for (size_t s = 0; s < om->nshards; s++) {
		/* messages name the file as it will be called, not its temporary name */
		char shown[4096];
		if (om->is_dir)
			snprintf(shown, sizeof shown, "%s/%s", om->path, om->files[s]);
		else
			snprintf(shown, sizeof shown, "%s", om->path);
		const char *path = hf_out_path(om->out, om->files[s]);
		lq_status st = path ? st_writer_set_display_name(om->writers[s], shown) : LQ_ERR_NOMEM;
		if (st == LQ_OK)
			st = st_writer_open(om->writers[s], path);
		if (st != LQ_OK)
			return fmt_fail(err, st, "%s", path ? st_writer_error(om->writers[s]) : "out of memory");
	}
	return LQ_OK;
}

lq_status om_finish(out_model *om, const hf_model *m, uint64_t total_parameters, const char *config_text,
		    size_t config_len, char *err)
{
	lq_status st;
	for (size_t s = 0; s < om->nshards; s++)
		if ((st = st_writer_finish(om->writers[s])) != LQ_OK)
			return fmt_fail(err, st, "%s", st_writer_error(om->writers[s]));
	if (!om->is_dir)
		return LQ_OK;
	if (om->nshards > 1) {
		char *index = hf_index_json(total_parameters, om->bytes, om->names, om->shard_of, om->nnames, om->files);
		if (!index)
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		st = hf_out_write_file(om->out, HF_INDEX_NAME, index, strlen(index));
		free(index);
		if (st != LQ_OK)
			return fmt_fail(err, st, "%s", hf_out_error(om->out));
	}
	if (!m->is_model_dir)
		return LQ_OK;
	if (config_text && (st = hf_out_write_file(om->out, "config.json", config_text, config_len)) != LQ_OK)
		return fmt_fail(err, st, "%s", hf_out_error(om->out));
	for (size_t i = 0; i < m->ncarry; i++) {
		char src[PATH_MAX];
		snprintf(src, sizeof src, "%s/%s", m->dir, m->carry[i]);
		if ((st = hf_out_copy_file(om->out, src, m->carry[i])) != LQ_OK)
			return fmt_fail(err, st, "%s", hf_out_error(om->out));
	}
	return LQ_OK;
}

lq_status om_commit(out_model *om, char *err)
{
	lq_status st = hf_out_commit(om->out);
	return st == LQ_OK ? LQ_OK : fmt_fail(err, st, "%s", hf_out_error(om->out));
}

void om_free(out_model *om)
{
	for (size_t s = 0; s < om->nshards; s++) {
		if (om->writers)
			st_writer_free(om->writers[s]); /* an unfinished shard file is removed */
		if (om->files)
			free(om->files[s]);
	}
	for (size_t i = 0; i < om->nnames; i++)
		free(om->names[i]);
	free(om->writers);
	free(om->files);
	free(om->names);
	free(om->shard_of);
	hf_out_free(om->out); /* an uncommitted output is removed */
	memset(om, 0, sizeof *om);
}
