/* qinspect_output.c: see qinspect_output.h. */
#include "qinspect_output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

typedef struct input {
	char *real;    /* the real path: links resolved */
	char *given;   /* as the messages name it */
	bool dir;
	dev_t dev;
	ino_t ino;
} input;

struct qi_inputs {
	input *v;
	size_t n, cap;
};

qi_inputs *qi_inputs_create(void)
{
	return calloc(1, sizeof(qi_inputs));
}

void qi_inputs_free(qi_inputs *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n; i++) {
		free(in->v[i].real);
		free(in->v[i].given);
	}
	free(in->v);
	free(in);
}

static bool add(qi_inputs *in, const char *path)
{
	char real[PATH_MAX];
	struct stat sb;
	if (!realpath(path, real) || stat(real, &sb) != 0)
		return true;
	for (size_t i = 0; i < in->n; i++)
		if (strcmp(in->v[i].real, real) == 0)
			return true;
	if (in->n == in->cap) {
		size_t cap = in->cap ? 2 * in->cap : 8;
		input *v = realloc(in->v, cap * sizeof *v);
		if (!v)
			return false;
		in->v = v;
		in->cap = cap;
	}
	input *e = &in->v[in->n];
	*e = (input){.real = strdup(real), .given = strdup(path), .dir = S_ISDIR(sb.st_mode), .dev = sb.st_dev,
		     .ino = sb.st_ino};
	if (!e->real || !e->given) {
		free(e->real);
		free(e->given);
		return false;
	}
	in->n++;
	return true;
}

/* dir/name, malloc'd. */
static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
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

bool qi_inputs_add_path(qi_inputs *in, const char *path)
{
	if (!add(in, path))
		return false;
	size_t n = strlen(path), k = strlen(".index.json");
	if (n < k || strcmp(path + n - k, ".index.json") != 0)
		return true;
	char *dir = dir_of(path); /* an index's model directory: its shards and config.json */
	bool ok = dir && add(in, dir);
	free(dir);
	return ok;
}

bool qi_inputs_add_model(qi_inputs *in, const hf_model *m)
{
	if (m->bundle) /* its entries are inside its file, added as given */
		return true;
	for (size_t i = 0; i < m->nshards; i++)
		if (m->shards[i].path && !add(in, m->shards[i].path))
			return false;
	if (!m->is_model_dir || !m->dir)
		return true;
	char *cfg = join(m->dir, "config.json");
	bool ok = cfg && add(in, m->dir) && add(in, cfg);
	free(cfg);
	return ok;
}

/* Whether path lies below the directory dir (both real paths). */
static bool below(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (strcmp(dir, "/") == 0)
		return path[0] == '/' && path[1] != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* Whether an output at the real path `real` (id: its identity when it exists, NULL otherwise) stays
 * clear of every input; `what` names it in the message. */
static bool clear_of_inputs(const qi_inputs *in, const char *what, const char *real, const struct stat *id)
{
	for (size_t i = 0; i < in->n; i++) {
		const input *e = &in->v[i];
		if (strcmp(real, e->real) == 0 || (id && id->st_dev == e->dev && id->st_ino == e->ino))
			cli_error("%s is the input '%s'", what, e->given);
		else if (e->dir && below(real, e->real))
			cli_error("%s is inside the input directory '%s'", what, e->given);
		else if (below(e->real, real))
			cli_error("%s contains the input '%s'", what, e->given);
		else
			continue;
		return false;
	}
	return true;
}

/* The real path of the entry `path` names: its directory resolved, its last component as it is (a link
 * there is not followed: it is what a rename replaces). NULL (errno set) when the directory does not
 * resolve. */
static char *entry_location(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return NULL;
	size_t len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	char *dir = dir_of(copy), real[PATH_MAX], *out = NULL;
	const char *slash = strrchr(copy, '/'), *base = slash ? slash + 1 : copy;
	if (dir && realpath(dir, real)) {
		if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0)
			out = strdup(real); /* names a directory itself */
		else
			out = join(strcmp(real, "/") == 0 ? "" : real, base);
	}
	free(dir);
	free(copy);
	return out;
}

bool qi_output_ok(const qi_inputs *in, const char *path, bool force)
{
	struct stat lsb;
	bool exists = lstat(path, &lsb) == 0;
	if (exists && S_ISDIR(lsb.st_mode)) {
		cli_error("--html file '%s' is a directory", path);
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
		cli_error("--html file '%s' is standard output", path);
		return false;
	}
	char what[PATH_MAX + 64];
	char *loc = entry_location(path);
	if (!loc) {
		cli_error("cannot write '%s': %s", path, strerror(errno));
		return false;
	}
	snprintf(what, sizeof what, "--html file '%s'", path);
	bool ok = clear_of_inputs(in, what, loc, exists ? &lsb : NULL);
	free(loc);
	/* a link is replaced, not followed; where it leads must still not be what it would stand for */
	char real[PATH_MAX];
	if (ok && exists && S_ISLNK(lsb.st_mode) && realpath(path, real)) {
		snprintf(what, sizeof what, "--html file '%s' (a link to '%s')", path, real);
		ok = clear_of_inputs(in, what, real, stat(real, &sb) == 0 ? &sb : NULL);
	}
	return ok;
}

bool qi_stdout_ok(const qi_inputs *in)
{
	struct stat sb;
	if (fstat(STDOUT_FILENO, &sb) != 0 || !S_ISREG(sb.st_mode))
		return true;
	/* the file's path, where the system tells it (Linux); its identity always */
	char real[PATH_MAX];
	bool named = realpath("/proc/self/fd/1", real) && real[0] == '/';
	for (size_t i = 0; i < in->n; i++)
		if (sb.st_dev == in->v[i].dev && sb.st_ino == in->v[i].ino) {
			cli_error("standard output is the input '%s'", in->v[i].given);
			return false;
		}
	char what[PATH_MAX + 64];
	snprintf(what, sizeof what, "standard output ('%s')", named ? real : "?");
	return !named || clear_of_inputs(in, what, real, &sb);
}

bool qi_write_output(const char *path, bool force, const qi_inputs *in, bool (*write)(const qi_report *, FILE *),
		     const qi_report *r)
{
	if (!qi_output_ok(in, path, force))
		return false;
	/* a short name of ours beside it: any legal name can be written, and nothing else is touched */
	char *dir = dir_of(path), *tmp = dir ? join(dir, ".qinspect-XXXXXX") : NULL;
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
	if (!e && !write(r, f))
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
