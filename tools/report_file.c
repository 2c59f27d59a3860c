/* report_file.c: see report_file.h. */
#include "report_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

report_inputs *report_inputs_create(void)
{
	return out_inputs_create();
}

void report_inputs_free(report_inputs *in)
{
	out_inputs_free(in);
}

/* The directory part of path ("." when none), malloc'd. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* Each input as the messages name it: by the path it was added by. */
bool report_inputs_add_path(report_inputs *in, const char *path)
{
	if (!out_inputs_add(in, path, path))
		return false;
	size_t n = strlen(path), k = strlen(".index.json");
	if (n < k || strcmp(path + n - k, ".index.json") != 0)
		return true;
	char *dir = dir_of(path); /* an index's model directory: its shards and config.json */
	bool ok = dir && out_inputs_add(in, dir, dir);
	free(dir);
	return ok;
}

bool report_inputs_add_model(report_inputs *in, const hf_model *m)
{
	if (m->bundle) /* its entries are inside its file, added as given */
		return true;
	for (size_t i = 0; i < m->nshards; i++)
		if (m->shards[i].path && !out_inputs_add(in, m->shards[i].path, m->shards[i].path))
			return false;
	if (!m->is_model_dir || !m->dir)
		return true;
	char *cfg = fmt_join(m->dir, "/", "config.json");
	bool ok = cfg && out_inputs_add(in, m->dir, m->dir) && out_inputs_add(in, cfg, cfg);
	free(cfg);
	return ok;
}

/* Whether an output at the real path `real` (id: its identity when it exists, NULL otherwise) stays
 * clear of every input, each tried in turn for being it, lying inside it and holding it; `what` names
 * the output in the message. */
static bool clear_of_inputs(const report_inputs *in, const char *what, const char *real, const struct stat *id)
{
	out_hit h;
	if (!out_inputs_find(in, real, id, OUT_CLASH_ANY, &h))
		return true;
	if (h.clash == OUT_CLASH_IS)
		cli_error("%s is the input '%s'", what, h.input);
	else if (h.clash == OUT_CLASH_INSIDE)
		cli_error("%s is inside the input directory '%s'", what, h.input);
	else
		cli_error("%s contains the input '%s'", what, h.input);
	return false;
}

bool report_file_ok(const report_inputs *in, const char *what_file, const char *path, bool force)
{
	struct stat lsb;
	bool exists = lstat(path, &lsb) == 0;
	if (exists && S_ISDIR(lsb.st_mode)) {
		cli_error("%s '%s' is a directory", what_file, path);
		return false;
	}
	if (exists && !force) {
		cli_error("'%s' exists (use -f to replace it)", path);
		return false;
	}
	/* `--html r.html > r.html`: the report would replace the file the table went to */
	struct stat so, sb;
	if (exists && fstat(STDOUT_FILENO, &so) == 0 && S_ISREG(so.st_mode) && stat(path, &sb) == 0 &&
	    so.st_dev == sb.st_dev && so.st_ino == sb.st_ino) {
		cli_error("%s '%s' is standard output", what_file, path);
		return false;
	}
	char what[PATH_MAX + 64];
	char *loc = out_place_of_name(path);
	if (!loc) {
		cli_error("cannot write '%s': %s", path, strerror(errno));
		return false;
	}
	snprintf(what, sizeof what, "%s '%s'", what_file, path);
	bool ok = clear_of_inputs(in, what, loc, exists ? &lsb : NULL);
	free(loc);
	/* a link is replaced, not followed; where it leads must still not be what it would stand for */
	char real[PATH_MAX];
	if (ok && exists && S_ISLNK(lsb.st_mode) && realpath(path, real)) {
		snprintf(what, sizeof what, "%s '%s' (a link to '%s')", what_file, path, real);
		ok = clear_of_inputs(in, what, real, stat(real, &sb) == 0 ? &sb : NULL);
	}
	return ok;
}

bool report_stdout_ok(const report_inputs *in)
{
	struct stat sb;
	if (fstat(STDOUT_FILENO, &sb) != 0 || !S_ISREG(sb.st_mode))
		return true;
	/* the file's path, where the system tells it (Linux); its identity always */
	char real[PATH_MAX];
	bool named = realpath("/proc/self/fd/1", real) && real[0] == '/';
	out_hit h;
	if (out_inputs_find(in, NULL, &sb, OUT_CLASH_IS, &h)) {
		cli_error("standard output is the input '%s'", h.input);
		return false;
	}
	char what[PATH_MAX + 64];
	snprintf(what, sizeof what, "standard output ('%s')", named ? real : "?");
	return !named || clear_of_inputs(in, what, real, &sb);
}

bool report_file_write(const char *path, const char *what, bool force, const report_inputs *in,
		       bool (*write)(const void *arg, FILE *f), const void *arg)
{
	if (!report_file_ok(in, what, path, force))
		return false;
	/* a short name of ours beside it: any legal name can be written, and nothing else is touched */
	char *dir = dir_of(path), *tmp = dir ? fmt_join(dir, "/", ".report-XXXXXX") : NULL;
	free(dir);
	if (!tmp) {
		cli_error("out of memory");
		return false;
	}
	int fd = mkstemp(tmp);
	if (fd < 0) {
		cli_error("cannot create a file beside '%s': %s", path, strerror(errno));
		free(tmp);
		return false;
	}
	/* mkstemp makes it private; the report is an ordinary file, as the other outputs are */
	mode_t mask = umask(0);
	umask(mask);
	int e = 0;
	if (fchmod(fd, 0666 & ~mask) != 0)
		e = errno;
	FILE *f = e ? NULL : fdopen(fd, "w");
	if (!e && !f)
		e = errno;
	if (!e && !write(arg, f))
		e = errno ? errno : EIO;
	if (!e && (fflush(f) != 0 || fsync(fileno(f)) != 0))
		e = errno;
	if ((f ? fclose(f) : close(fd)) != 0 && !e)
		e = errno;
	if (!e) {
#ifdef RENAME_NOREPLACE
		/* without -f nothing that appeared meanwhile is replaced either */
		int rc = force ? rename(tmp, path) : renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE);
		if (rc != 0 && !force && (errno == EINVAL || errno == ENOSYS)) /* a file system without it */
			rc = rename(tmp, path);
#else
		int rc = rename(tmp, path);
#endif
		if (rc != 0)
			e = errno;
	}
	if (e) {
		cli_error("cannot write '%s': %s", path, strerror(e));
		unlink(tmp);
	}
	free(tmp);
	return e == 0;
}
