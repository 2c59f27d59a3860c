/* model_out.c: see model_out.h. */
#include "model_out.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
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

bool om_is_stream(const char *output)
{
	return strcmp(output, "-") == 0;
}

bool om_is_bundle(const char *output)
{
	bool compressed;
	return bundle_path_is_bundle(output, &compressed);
}

bool om_place_ok(const hf_model *m, const char *output)
{
	if (om_is_stream(output) || hf_model_is_stream(m))
		return true;
	char *out = resolve_path(output);
	if (!out) {
		cli_error("cannot use output '%s': %s", output, strerror(errno));
		return false;
	}
	char in[PATH_MAX];
	bool ok = true;
	const char *in_path = m->is_model_dir && m->dir ? m->dir : m->input;
	if (realpath(in_path, in)) {
		size_t n = strlen(in);
		if (strcmp(out, in) == 0) {
			cli_error("output '%s' is the input", output);
			ok = false;
		} else if (m->is_model_dir && m->dir && strncmp(out, in, n) == 0 && out[n] == '/') {
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
	if (ends_with(output, ".safetensors") || om_is_stream(output)) { /* one file holds everything */
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
	om->stream = om_is_stream(output);
	om->bundle = om_is_bundle(output);
	om->is_dir = !ends_with(output, ".safetensors") && !om->stream;
	om->zstd_level = BUNDLE_DEFAULT_LEVEL;
	om->zstd_threads = 1;
	om->nshards = nshards;
	om->writers = calloc(nshards, sizeof *om->writers);
	om->files = calloc(nshards, sizeof *om->files);
	om->todo = calloc(nshards, sizeof *om->todo);
	om->linked = calloc(nshards, sizeof *om->linked);
	om->part_tmp = calloc(nshards, sizeof *om->part_tmp);
	if (!om->writers || !om->files || !om->todo || !om->linked || !om->part_tmp)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	for (size_t s = 0; s < nshards; s++) {
		char name[64];
		hf_shard_name(name, sizeof name, s, nshards);
		om->writers[s] = st_writer_create();
		om->files[s] = strdup(name);
		om->todo[s] = true;
		if (!om->writers[s] || !om->files[s])
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	}
	return LQ_OK;
}

void om_set_origin(out_model *om, const char *tool, const char *const *keys, const char *const *values, size_t n)
{
	om->origin = (manifest_origin){.tool = tool, .version = LQ_VERSION_STRING, .keys = keys, .values = values,
				       .noptions = n};
}

lq_status om_set_part(out_model *om, size_t part, size_t nparts, char *err)
{
	if (!om->is_dir || om->bundle)
		return fmt_fail(err, LQ_ERR_ARG, "--shard needs a directory OUTPUT, not '%s'", om->path);
	om->part = part;
	om->nparts = nparts;
	uint64_t total = 0, before = 0;
	for (size_t s = 0; s < om->nshards; s++)
		total += st_writer_file_size(om->writers[s]);
	for (size_t s = 0; s < om->nshards; s++) {
		uint64_t size = st_writer_file_size(om->writers[s]);
		/* the part of the shard's middle byte: in 128-bit arithmetic, as total * nparts may not fit */
		unsigned __int128 mid = (unsigned __int128)(2 * before + size) * nparts;
		size_t of = total ? (size_t)(mid / ((unsigned __int128)2 * total)) : s * nparts / om->nshards;
		om->todo[s] = (of < nparts ? of : nparts - 1) == part;
		before += size;
	}
	return LQ_OK;
}

void om_set_finish(out_model *om)
{
	om->finish = true;
}

bool om_shard_todo(const out_model *om, size_t s)
{
	return om->todo[s];
}

bool om_has_work(const out_model *om)
{
	for (size_t s = 0; s < om->nshards; s++)
		if (om->todo[s])
			return true;
	return false;
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
		if (om->stream)
			st_writer_keep_order(om->writers[s]);
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
	for (size_t i = 0; i < m->ncarry; i++)
		bytes += hf_model_carried_size(m, i);
	return bytes;
}

void om_say_not_carried(const hf_model *m, const char *output)
{
	if (!m->is_model_dir || om_is_stream(output) || ends_with(output, ".safetensors"))
		return;
	for (size_t i = 0; i < m->nskipped; i++)
		cli_info(0, "not carried: %s", m->skipped[i]);
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static bool exists(const char *dir, const char *name)
{
	char *p = join(dir, name);
	struct stat sb;
	bool yes = p && lstat(p, &sb) == 0;
	free(p);
	return yes;
}

/* A part: the output directory (made when missing) takes this part's shards under temporary names. */
static lq_status begin_part(out_model *om, bool force, char *err)
{
	struct stat sb;
	if (mkdir(om->path, 0777) != 0 && (errno != EEXIST || stat(om->path, &sb) != 0 || !S_ISDIR(sb.st_mode)))
		return fmt_fail(err, LQ_ERR_IO, "cannot make the directory '%s': %s", om->path,
				errno == EEXIST ? "a file of that name exists" : strerror(errno));
	if (exists(om->path, MANIFEST_NAME) || exists(om->path, "config.json"))
		return fmt_fail(err, LQ_ERR_EXISTS, "'%s' holds a finished output, not parts (remove it first)", om->path);
	for (size_t s = 0; s < om->nshards; s++) {
		if (!om->todo[s])
			continue;
		if (!force && exists(om->path, om->files[s]))
			return fmt_fail(err, LQ_ERR_EXISTS, "'%s/%s' exists (use -f to replace it)", om->path, om->files[s]);
		size_t n = strlen(om->path) + strlen(om->files[s]) + 16;
		if (!(om->part_tmp[s] = malloc(n)))
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		snprintf(om->part_tmp[s], n, "%s/.%s.tmp-XXXXXX", om->path, om->files[s]);
		int fd = mkstemp(om->part_tmp[s]);
		if (fd < 0)
			return fmt_fail(err, LQ_ERR_IO, "cannot create a file in '%s': %s", om->path, strerror(errno));
		close(fd);
		unlink(om->part_tmp[s]); /* the writer creates it exclusively; the name stays ours */
	}
	return LQ_OK;
}

/* Which planned shards the directory holds; false when it holds anything else (then it is no directory of
 * parts). Temporary files of parts under way (hidden) do not count. */
static bool holds_parts(const out_model *om, bool *present, size_t *npresent)
{
	*npresent = 0;
	DIR *d = opendir(om->path);
	if (!d)
		return false;
	bool only_parts = true;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		bool ours = false;
		for (size_t s = 0; s < om->nshards && !ours; s++)
			if (strcmp(de->d_name, om->files[s]) == 0) {
				ours = true;
				present[s] = true;
				(*npresent)++;
			}
		only_parts &= ours;
	}
	closedir(d);
	return only_parts && *npresent > 0;
}

/* A completed part must be the shard this plan writes: its size, and its header byte for byte (which
 * says every tensor's name, dtype, shape and place, so parts made with other options do not pass). */
static lq_status check_part(const out_model *om, size_t s, const char *path, char *err)
{
	size_t hlen;
	const void *hdr = st_writer_header(om->writers[s], &hlen);
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		if (fd >= 0)
			close(fd);
		return fmt_fail(err, LQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
	}
	lq_status st = LQ_OK;
	if ((uint64_t)sb.st_size != st_writer_file_size(om->writers[s])) {
		st = fmt_fail(err, LQ_ERR_CORRUPT, "'%s' is %jd bytes, the plan's shard %" PRIu64 ": not a part of this "
			      "conversion (other input or options?)", path, (intmax_t)sb.st_size,
			      st_writer_file_size(om->writers[s]));
	} else {
		char *got = malloc(hlen ? hlen : 1);
		if (!got)
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		else if (pread(fd, got, hlen, 0) != (ssize_t)hlen)
			st = fmt_fail(err, LQ_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		else if (memcmp(got, hdr, hlen) != 0)
			st = fmt_fail(err, LQ_ERR_CORRUPT, "'%s': its header is not the plan's: not a part of this conversion "
				      "(other input or options?)", path);
		free(got);
	}
	close(fd);
	return st;
}

/* Finishing a directory of parts: a new output beside it takes the parts by hard links (copies where the
 * file system has none) and replaces it once complete; until then the parts stay as they are. */
static lq_status begin_finish(out_model *om, const bool *present, char *err)
{
	char missing[1024] = "";
	size_t nmissing = 0;
	for (size_t s = 0; s < om->nshards; s++)
		if (!present[s] && nmissing++ < 8)
			snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s", nmissing > 1 ? ", " : "",
				 om->files[s]);
	if (nmissing)
		return fmt_fail(err, LQ_ERR_IO, "'%s' lacks %zu of its %zu parts' shards (%s%s): run the --shard jobs "
				"that make them first", om->path, nmissing, om->nshards, missing, nmissing > 8 ? ", ..." : "");
	lq_status st = LQ_OK;
	for (size_t s = 0; s < om->nshards && st == LQ_OK; s++) {
		char *path = join(om->path, om->files[s]);
		st = path ? check_part(om, s, path, err) : fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		free(path);
	}
	if (st != LQ_OK)
		return st;
	om->out = hf_out_create();
	if (!om->out)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	if ((st = hf_out_begin(om->out, om->path, true, true)) != LQ_OK)
		return fmt_fail(err, st, "%s", hf_out_error(om->out));
	for (size_t s = 0; s < om->nshards && st == LQ_OK; s++) {
		char *src = join(om->path, om->files[s]);
		const char *dst = src ? hf_out_path(om->out, om->files[s]) : NULL;
		if (!dst)
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		else if (link(src, dst) != 0 && (st = hf_out_copy_file(om->out, src, om->files[s])) != LQ_OK)
			fmt_fail(err, st, "%s", hf_out_error(om->out));
		free(src);
		om->todo[s] = false;
		om->linked[s] = true;
	}
	om->finish = true;
	return st;
}

lq_status om_begin(out_model *om, bool force, uint64_t extra_bytes, char *err)
{
	if (om->stream)
		return LQ_OK;
	if (om->nparts)
		return begin_part(om, force, err);
	struct stat sb;
	if (om->is_dir && !om->bundle && stat(om->path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		bool *present = calloc(om->nshards, sizeof *present);
		size_t npresent = 0;
		if (!present)
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		bool parts = holds_parts(om, present, &npresent);
		lq_status st = LQ_OK;
		if (om->finish || (parts && npresent == om->nshards && !force))
			st = begin_finish(om, present, err);
		else if (parts && !force)
			st = begin_finish(om, present, err); /* says which parts are missing */
		free(present);
		if (om->finish || st != LQ_OK)
			return st;
	} else if (om->finish) {
		return fmt_fail(err, LQ_ERR_IO, "--finish: '%s' is not a directory of parts", om->path);
	}
	om->out = hf_out_create();
	if (!om->out)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	if (om->bundle)
		hf_out_set_bundle(om->out, om->zstd_level, om->zstd_threads);
	lq_status st = hf_out_begin(om->out, om->path, om->is_dir, force);
	/* a bundle needs room for the directory and the archive until the directory is removed */
	if (st == LQ_OK)
		st = hf_out_check_space(om->out, (om->bytes + extra_bytes) * (om->bundle ? 2 : 1));
	return st == LQ_OK ? LQ_OK : fmt_fail(err, st, "%s", hf_out_error(om->out));
}

lq_status om_open(out_model *om, char *err)
{
	for (size_t s = 0; s < om->nshards; s++) {
		if (!om->todo[s])
			continue;
		lq_status st;
		if (om->stream) {
			if ((st = st_writer_open_stream(om->writers[s], STDOUT_FILENO, "standard output")) != LQ_OK)
				return fmt_fail(err, st, "%s", st_writer_error(om->writers[s]));
			continue;
		}
		/* messages name the file as it will be called, not its temporary name */
		char shown[4096];
		if (om->is_dir)
			snprintf(shown, sizeof shown, "%s/%s", om->path, om->files[s]);
		else
			snprintf(shown, sizeof shown, "%s", om->path);
		const char *path = om->nparts ? om->part_tmp[s] : hf_out_path(om->out, om->files[s]);
		st = path ? st_writer_set_display_name(om->writers[s], shown) : LQ_ERR_NOMEM;
		if (st == LQ_OK)
			st = st_writer_open(om->writers[s], path);
		if (st != LQ_OK)
			return fmt_fail(err, st, "%s", path ? st_writer_error(om->writers[s]) : "out of memory");
	}
	return LQ_OK;
}

/* The MANIFEST of the files written so far. */
static lq_status write_manifest(out_model *om, char *err)
{
	char **names;
	size_t n;
	lq_status st = hf_out_list(om->out, &names, &n);
	if (st != LQ_OK)
		return fmt_fail(err, st, "%s", hf_out_error(om->out));
	manifest_file *files = calloc(n ? n : 1, sizeof *files);
	char **paths = calloc(n ? n : 1, sizeof *paths);
	if (!files || !paths)
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n && st == LQ_OK; i++) {
		struct stat sb;
		if (!(paths[i] = join(hf_out_dir(om->out), names[i])))
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		else if (stat(paths[i], &sb) != 0)
			st = fmt_fail(err, LQ_ERR_IO, "cannot stat '%s': %s", paths[i], strerror(errno));
		else
			files[i] = (manifest_file){.path = names[i], .size = (uint64_t)sb.st_size, .read = manifest_read_path,
						   .arg = paths[i]};
	}
	char *text = NULL;
	size_t len = 0;
	if (st == LQ_OK)
		st = manifest_build(&om->origin, files, n, &text, &len, err);
	if (st == LQ_OK && (st = hf_out_write_file(om->out, MANIFEST_NAME, text, len)) != LQ_OK)
		fmt_fail(err, st, "%s", hf_out_error(om->out));
	free(text);
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
		if (paths)
			free(paths[i]);
	}
	free(names);
	free(paths);
	free(files);
	return st;
}

lq_status om_finish(out_model *om, const hf_model *m, uint64_t total_parameters, const char *config_text,
		    size_t config_len, char *err)
{
	lq_status st;
	for (size_t s = 0; s < om->nshards; s++)
		if (om->todo[s] && (st = st_writer_finish(om->writers[s])) != LQ_OK)
			return fmt_fail(err, st, "%s", st_writer_error(om->writers[s]));
	if (!om->is_dir || om->nparts)
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
	if (m->is_model_dir) {
		if (config_text && (st = hf_out_write_file(om->out, "config.json", config_text, config_len)) != LQ_OK)
			return fmt_fail(err, st, "%s", hf_out_error(om->out));
		for (size_t i = 0; i < m->ncarry; i++)
			if ((st = hf_out_carry(om->out, m, i)) != LQ_OK)
				return fmt_fail(err, st, "%s", hf_out_error(om->out));
	}
	return write_manifest(om, err);
}

/* A part's shards take their final names; the directory is synced. */
static lq_status commit_part(out_model *om, char *err)
{
	for (size_t s = 0; s < om->nshards; s++) {
		if (!om->todo[s])
			continue;
		char *final = join(om->path, om->files[s]);
		if (!final)
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		int r = rename(om->part_tmp[s], final);
		free(final);
		if (r != 0)
			return fmt_fail(err, LQ_ERR_IO, "cannot rename into '%s/%s': %s", om->path, om->files[s], strerror(errno));
		free(om->part_tmp[s]);
		om->part_tmp[s] = NULL;
	}
	int fd = open(om->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return LQ_OK;
}

lq_status om_commit(out_model *om, char *err)
{
	if (om->stream)
		return LQ_OK;
	if (om->nparts)
		return commit_part(om, err);
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
		if (om->part_tmp && om->part_tmp[s]) {
			unlink(om->part_tmp[s]); /* a part not committed */
			free(om->part_tmp[s]);
		}
	}
	free(om->todo);
	free(om->linked);
	free(om->part_tmp);
	for (size_t i = 0; i < om->nnames; i++)
		free(om->names[i]);
	free(om->writers);
	free(om->files);
	free(om->names);
	free(om->shard_of);
	hf_out_free(om->out); /* an uncommitted output is removed */
	memset(om, 0, sizeof *om);
}
