/* out_model.c: see out_model.h. */
#include "out_model.h"

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
#include "hf_json.h"

bool om_is_stream(const char *output)
{
	return strcmp(output, "-") == 0;
}

bool om_is_bundle(const char *output)
{
	bool compressed;
	return bundle_path_is_bundle(output, &compressed);
}

size_t om_assign_shards(const char *output, uint64_t max_shard_size, const uint64_t *bytes, const size_t *in_shard,
			size_t n, size_t in_shards, size_t *out_shard)
{
	if (fmt_ends_with(output, ".safetensors") || om_is_stream(output)) { /* one file holds everything */
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
	om->is_dir = !fmt_ends_with(output, ".safetensors") && !om->stream;
	om->zstd_level = BUNDLE_DEFAULT_LEVEL;
	om->zstd_threads = 1;
	om->nshards = nshards;
	om->format = &out_writer_safetensors;
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
		om->writers[s] = (out_writer){om->format, om->format->create()};
		om->files[s] = strdup(name);
		om->todo[s] = true;
		if (!om->writers[s].self || !om->files[s])
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	}
	return LQ_OK;
}

void om_set_origin(out_model *om, const char *tool, const char *const *keys, const char *const *values, size_t n)
{
	om->origin = (manifest_origin){.tool = tool, .version = LQ_VERSION_STRING, .keys = keys, .values = values,
				       .noptions = n};
}

const out_writer *om_writer(const out_model *om, size_t shard)
{
	return &om->writers[shard];
}

/* The size shard s's file will have (after om_layout). */
static uint64_t file_size(const out_model *om, size_t s)
{
	return om->writers[s].ops->file_size(om->writers[s].self);
}

lq_status om_set_part(out_model *om, size_t part, size_t nparts, char *err)
{
	if (!om->is_dir || om->bundle)
		return fmt_fail(err, LQ_ERR_ARG, "--shard needs a directory OUTPUT, not '%s'", om->path);
	om->part = part;
	om->nparts = nparts;
	uint64_t total = 0, before = 0;
	for (size_t s = 0; s < om->nshards; s++)
		total += file_size(om, s);
	for (size_t s = 0; s < om->nshards; s++) {
		uint64_t size = file_size(om, s);
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
	const out_writer *w = &om->writers[shard];
	int32_t id = w->ops->declare(w->self, name, dtype, ndim, shape);
	if (id < 0) {
		fmt_fail(err, LQ_ERR_ARG, "%s", w->ops->error(w->self));
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

lq_status om_add_group(out_model *om, size_t shard, const char *weight, const bnb_state *s, int64_t n,
		       const st_tensor *const *as_is, int32_t ids[BNB_NPARTS], char *err)
{
	for (int k = 0; k < BNB_NPARTS; k++)
		ids[k] = -1;
	for (int k = 0; k < BNB_NPARTS; k++) {
		if (!bnb_has_part(s, (bnb_part)k))
			continue;
		char name[BNB_NAME_MAX];
		if (!bnb_part_name(name, sizeof name, weight, (bnb_part)k, s->qtype))
			return fmt_fail(err, LQ_ERR_UNSUPPORTED, "tensor name too long");
		const st_tensor *t = as_is ? as_is[k] : NULL;
		st_dtype dt;
		int ndim;
		int64_t shape[2];
		bnb_part_layout(s, (bnb_part)k, n, &dt, &ndim, shape);
		ids[k] = t ? om_add(om, shard, name, t->dtype, t->ndim, t->shape, err)
			   : om_add(om, shard, name, dt, ndim, shape, err);
		if (ids[k] < 0)
			return LQ_ERR_ARG;
	}
	return LQ_OK;
}

lq_status om_layout(out_model *om, char *err)
{
	om->bytes = 0;
	for (size_t s = 0; s < om->nshards; s++) {
		const out_writer *w = &om->writers[s];
		lq_status st = w->ops->layout(w->self, om->stream);
		if (st != LQ_OK)
			return fmt_fail(err, st, "%s", w->ops->error(w->self));
		om->bytes += w->ops->data_size(w->self);
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

bool om_carries_files(const hf_model *m, const char *output)
{
	return m->is_model_dir && !om_is_stream(output) && !fmt_ends_with(output, ".safetensors");
}

static bool exists(const char *dir, const char *name)
{
	char *p = fmt_join(dir, "/", name);
	struct stat sb;
	bool yes = p && lstat(p, &sb) == 0;
	free(p);
	return yes;
}

/* A part: the output directory (made when missing) takes this part's shards under temporary names. */
static lq_status begin_part(out_model *om, bool force, char *err)
{
	struct stat sb;
	if (mkdir(om->path, 0777) == 0)
		om->made_dir = true;
	else if (errno != EEXIST || stat(om->path, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return fmt_fail(err, LQ_ERR_IO, "cannot make the directory '%s': %s", om->path,
				errno == EEXIST ? "a file of that name exists" : strerror(errno));
	if (exists(om->path, MANIFEST_NAME) || exists(om->path, "config.json"))
		return fmt_fail(err, LQ_ERR_EXISTS, "'%s' holds a finished output, not parts (remove it first)", om->path);
	for (size_t s = 0; s < om->nshards; s++) {
		if (!om->todo[s])
			continue;
		if (!force && exists(om->path, om->files[s]))
			return fmt_fail(err, LQ_ERR_EXISTS, "'%s/%s' exists (use -f to replace it)", om->path, om->files[s]);
		char *final = fmt_join(om->path, "/", om->files[s]);
		om->part_tmp[s] = final ? fmt_temp_path(final, "tmp") : NULL;
		free(final);
		if (!om->part_tmp[s])
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		int fd = mkstemp(om->part_tmp[s]);
		if (fd < 0)
			return fmt_fail(err, LQ_ERR_IO, "cannot create a file in '%s': %s", om->path, strerror(errno));
		close(fd);
		unlink(om->part_tmp[s]); /* the writer creates it exclusively; the name stays ours */
	}
	return LQ_OK;
}

/* What a directory of parts holds: the planned shards (present[s]), and the first entry that is not one
 * of them: a .safetensors file, a shard of another plan (*foreign), or anything else (*stray; hidden
 * entries, such as the temporary file of a part being written, only when `hidden`). Both malloc'd or
 * NULL. false when the directory cannot be read. */
static bool scan_parts(const out_model *om, bool hidden, bool *present, size_t *npresent, char **foreign,
		       char **stray)
{
	*npresent = 0;
	*foreign = *stray = NULL;
	DIR *d = opendir(om->path);
	if (!d)
		return false;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || (!hidden && de->d_name[0] == '.'))
			continue;
		bool ours = false;
		for (size_t s = 0; s < om->nshards && !ours; s++)
			if (strcmp(de->d_name, om->files[s]) == 0) {
				ours = true;
				present[s] = true;
				(*npresent)++;
			}
		if (ours)
			continue;
		char **first = de->d_name[0] != '.' && fmt_ends_with(de->d_name, ".safetensors") ? foreign : stray;
		if (!*first)
			*first = strdup(de->d_name);
	}
	closedir(d);
	return true;
}

/* Whether the directory holds planned shards and nothing else (hidden entries aside). */
static bool holds_parts(const out_model *om, bool *present, size_t *npresent)
{
	char *foreign, *stray;
	bool read = scan_parts(om, false, present, npresent, &foreign, &stray);
	bool only = read && !foreign && !stray && *npresent > 0;
	free(foreign);
	free(stray);
	return only;
}

/* A completed part must be the shard this plan writes: its size, and its header byte for byte (which
 * says every tensor's name, dtype, shape and place, so parts made with other options do not pass). */
static lq_status check_part(const out_model *om, size_t s, const char *path, char *err)
{
	size_t hlen;
	const void *hdr = om->writers[s].ops->header(om->writers[s].self, &hlen);
	struct stat sb;
	int fd;
	lq_status st = fmt_open_input(path, &fd, &sb, err);
	if (st != LQ_OK)
		return st;
	if ((uint64_t)sb.st_size != file_size(om, s)) {
		st = fmt_fail(err, LQ_ERR_CORRUPT, "'%s' is %jd bytes, the plan's shard %" PRIu64 ": not a part of this "
			      "conversion (made from another input, or with other options than this run)", path,
			      (intmax_t)sb.st_size, file_size(om, s));
	} else {
		char *got = malloc(hlen ? hlen : 1);
		if (!got)
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		else if (pread(fd, got, hlen, 0) != (ssize_t)hlen)
			st = fmt_fail(err, LQ_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		else if (memcmp(got, hdr, hlen) != 0)
			st = fmt_fail(err, LQ_ERR_CORRUPT, "'%s': its header is not the plan's: not a part of this conversion "
				      "(made from another input, or with other options than this run)", path);
		free(got);
	}
	close(fd);
	return st;
}

/* Every present shard is the plan's (check_part). */
static lq_status check_parts(const out_model *om, const bool *present, char *err)
{
	lq_status st = LQ_OK;
	for (size_t s = 0; s < om->nshards && st == LQ_OK; s++) {
		if (!present[s])
			continue;
		char *path = fmt_join(om->path, "/", om->files[s]);
		st = path ? check_part(om, s, path, err) : fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		free(path);
	}
	return st;
}

/* The planned shards that are (want) or are not present, every one for a NULL present, as "a, b, c, ..."
 * (at most 8) into buf. */
static void list_shards(const out_model *om, const bool *present, bool want, char *buf, size_t size)
{
	size_t k = 0;
	buf[0] = '\0';
	for (size_t s = 0; s < om->nshards; s++)
		if ((!present || present[s] == want) && k++ < 8)
			snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", k > 1 ? ", " : "", om->files[s]);
	if (k > 8)
		snprintf(buf + strlen(buf), size - strlen(buf), ", ...");
}

/* Finishing a directory of parts: a new output beside it takes the parts by hard links (copies where the
 * file system has none) and replaces it once complete; until then the parts stay as they are. The
 * directory must hold this plan's parts, all of them, and nothing else: the parts are all the finish
 * removes. */
static lq_status begin_finish(out_model *om, char *err)
{
	bool *present = calloc(om->nshards, sizeof *present);
	char *foreign = NULL, *stray = NULL;
	size_t npresent = 0;
	lq_status st = LQ_OK;
	char q[512], names[1024];
	if (!present)
		st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	else if (!scan_parts(om, true, present, &npresent, &foreign, &stray))
		st = fmt_fail(err, LQ_ERR_IO, "cannot read the directory '%s': %s", om->path, strerror(errno));
	if (st == LQ_OK && foreign) {
		/* shard names of another plan: the parts were made with other options (--max-shard-size, ...) */
		list_shards(om, NULL, true, names, sizeof names);
		st = fmt_fail(err, LQ_ERR_CORRUPT, "'%s' holds parts made with other options than this run: '%s' is not one "
			      "of the %zu shards this run plans (%s): give this run the options of the --shard jobs",
			      om->path, fmt_quote(foreign, q, sizeof q), om->nshards, names);
	} else if (st == LQ_OK && stray) {
		st = fmt_fail(err, LQ_ERR_EXISTS, "'%s' holds '%s', which is not a part of this plan%s: the finished "
			      "output replaces the directory of parts, so it may hold nothing else (move it away first)",
			      om->path, fmt_quote(stray, q, sizeof q),
			      stray[0] == '.' && strstr(stray, ".tmp-") ? " (a --shard job still writing?)" : "");
	} else if (st == LQ_OK && npresent < om->nshards) {
		list_shards(om, present, false, names, sizeof names);
		st = fmt_fail(err, LQ_ERR_IO, "'%s' lacks %zu of its %zu parts' shards (%s): run the --shard jobs that make "
			      "them first", om->path, om->nshards - npresent, om->nshards, names);
	}
	if (st == LQ_OK)
		st = check_parts(om, present, err);
	free(present);
	free(foreign);
	free(stray);
	if (st != LQ_OK)
		return st;
	om->out = hf_out_create();
	if (!om->out)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	if ((st = hf_out_replace_only(om->out, om->files, om->nshards)) != LQ_OK ||
	    (st = hf_out_begin(om->out, om->path, true, true)) != LQ_OK)
		return fmt_fail(err, st, "%s", hf_out_error(om->out));
	for (size_t s = 0; s < om->nshards && st == LQ_OK; s++) {
		char *src = fmt_join(om->path, "/", om->files[s]);
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
	om->out = hf_out_create();
	if (!om->out)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	struct stat sb;
	if (om->is_dir && !om->bundle && stat(om->path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		bool *present = calloc(om->nshards, sizeof *present);
		size_t npresent = 0;
		if (!present)
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		bool parts = holds_parts(om, present, &npresent);
		lq_status st = LQ_OK;
		if (om->finish || (parts && !force)) {
			hf_out_free(om->out);
			om->out = NULL;
			st = begin_finish(om, err); /* or says what is missing or wrong */
		} else if (parts && check_parts(om, present, err) == LQ_OK) {
			/* -f over this plan's own parts: they, and nothing else, are replaced */
			char **names = calloc(npresent ? npresent : 1, sizeof *names);
			size_t k = 0;
			for (size_t s = 0; names && s < om->nshards; s++)
				if (present[s])
					names[k++] = om->files[s];
			st = names ? hf_out_replace_only(om->out, names, k) : LQ_ERR_NOMEM;
			if (st != LQ_OK)
				fmt_fail(err, st, "out of memory");
			free(names);
		} else {
			err[0] = '\0'; /* not this plan's parts: hf_out_begin says what may not be replaced */
		}
		free(present);
		if (om->finish || st != LQ_OK)
			return st;
	} else if (om->finish) {
		return fmt_fail(err, LQ_ERR_IO, "--finish: '%s' is not a directory of parts", om->path);
	}
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
		const out_writer *w = &om->writers[s];
		lq_status st;
		if (om->stream) {
			if ((st = w->ops->open_stream(w->self, STDOUT_FILENO, "standard output")) != LQ_OK)
				return fmt_fail(err, st, "%s", w->ops->error(w->self));
			continue;
		}
		/* messages name the file as it will be called, not its temporary name */
		char shown[4096];
		if (om->is_dir)
			snprintf(shown, sizeof shown, "%s/%s", om->path, om->files[s]);
		else
			snprintf(shown, sizeof shown, "%s", om->path);
		const char *path = om->nparts ? om->part_tmp[s] : hf_out_path(om->out, om->files[s]);
		st = path ? w->ops->open(w->self, path, shown) : LQ_ERR_NOMEM;
		if (st != LQ_OK)
			return fmt_fail(err, st, "%s", path ? w->ops->error(w->self) : "out of memory");
	}
	return LQ_OK;
}

/* A signal ends the run between the steps that finish the output (fmt_cancelled, fmt.h). */
static lq_status interrupted(const char *step, char *err)
{
	return fmt_cancelled(step) ? fmt_fail(err, LQ_ERR_CANCELLED, "interrupted") : LQ_OK;
}

/* manifest_read_path, with a look for a signal between its chunks: hashing a large output takes long. */
static lq_status read_for_manifest(void *arg, uint64_t offset, void *dst, size_t len, char *err)
{
	lq_status st = interrupted(NULL, err);
	return st == LQ_OK ? manifest_read_path(arg, offset, dst, len, err) : st;
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
		if (!(paths[i] = fmt_join(hf_out_dir(om->out), "/", names[i])))
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		else if (stat(paths[i], &sb) != 0)
			st = fmt_fail(err, LQ_ERR_IO, "cannot stat '%s': %s", paths[i], strerror(errno));
		else
			files[i] = (manifest_file){.path = names[i], .size = (uint64_t)sb.st_size, .read = read_for_manifest,
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
	for (size_t s = 0; s < om->nshards; s++) {
		if (!om->todo[s])
			continue;
		if ((st = interrupted("shards", err)) != LQ_OK)
			return st;
		const out_writer *w = &om->writers[s];
		if ((st = w->ops->finish(w->self)) != LQ_OK) /* syncs the shard */
			return fmt_fail(err, st, "%s", w->ops->error(w->self));
	}
	if ((st = interrupted("index", err)) != LQ_OK || !om->is_dir || om->nparts)
		return st;
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
		if ((st = interrupted("config", err)) != LQ_OK)
			return st;
		if (config_text && (st = hf_out_write_file(om->out, "config.json", config_text, config_len)) != LQ_OK)
			return fmt_fail(err, st, "%s", hf_out_error(om->out));
		for (size_t i = 0; i < m->ncarry; i++) {
			if ((st = interrupted("carry", err)) != LQ_OK)
				return st;
			if ((st = hf_out_carry(om->out, m, i)) != LQ_OK)
				return fmt_fail(err, st, "%s", hf_out_error(om->out));
		}
	}
	if ((st = interrupted("manifest", err)) != LQ_OK)
		return st;
	return write_manifest(om, err);
}

/* A part's shards take their final names; the directory is synced. */
static lq_status commit_part(out_model *om, char *err)
{
	/* the last moment a signal can end the run: from the first rename on, the shards are in place */
	lq_status st = interrupted("rename", err);
	if (st != LQ_OK)
		return st;
	for (size_t s = 0; s < om->nshards; s++) {
		if (!om->todo[s])
			continue;
		char *final = fmt_join(om->path, "/", om->files[s]);
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
	om->made_dir = false; /* it holds the part */
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
		if (om->writers && om->writers[s].ops)
			om->writers[s].ops->free(om->writers[s].self); /* an unfinished shard file is removed */
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
	if (om->made_dir)
		rmdir(om->path); /* the directory this part made, unless another part has written into it */
	memset(om, 0, sizeof *om);
}
