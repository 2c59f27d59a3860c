/*
 * hf_out.c: writing a model directory (hf_out.h): a temporary directory (or file) beside the target,
 * renamed into place once everything is written and synced, removed on any failure.
 */
#include "hf_out.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bundle.h"
#include "manifest.h"
#include "out_tree.h"

static int entry_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What is at the final path (check_old). */
typedef enum old_kind { OLD_NONE, OLD_FILE, OLD_DIR } old_kind;

struct hf_out {
	char *final;   /* the target path */
	char *parent;  /* its directory */
	char *tmp;     /* the temporary directory or file */
	bool is_dir, force, committed;
	bool bundle;   /* final is an archive of the temporary directory (hf_out_set_bundle) */
	int level, threads;
	char *scratch; /* hf_out_path's result */
	char **only;   /* hf_out_replace_only: what a directory at final may hold instead of an earlier output */
	size_t nonly;
	bool only_set;
	old_kind old;  /* what -f replaces: a file or a link (itself), or a directory of old_list entries */
	char **old_list;
	size_t nold;
	bool old_manifest; /* the directory's MANIFEST goes with them */
	char err[FMT_ERRBUF];
};

hf_out *hf_out_create(void)
{
	return calloc(1, sizeof(hf_out));
}

const char *hf_out_error(const hf_out *o)
{
	return o->err;
}

void hf_out_free(hf_out *o)
{
	if (!o)
		return;
	if (o->tmp && !o->committed)
		out_tree_remove_all(o->tmp);
	out_tree_free_list(o->only, o->nonly);
	out_tree_free_list(o->old_list, o->nold);
	free(o->final);
	free(o->parent);
	free(o->tmp);
	free(o->scratch);
	free(o);
}

void hf_out_set_bundle(hf_out *o, int zstd_level, int threads)
{
	o->bundle = true;
	o->level = zstd_level;
	o->threads = threads;
}

const char *hf_out_dir(const hf_out *o)
{
	return o->tmp;
}

/* The files under folder `rel` of the output ("" its top), appended to the list. */
static lq_status list_files(hf_out *o, const char *rel, char ***names, size_t *n, size_t *cap)
{
	size_t len = strlen(o->tmp) + strlen(rel) + 2;
	char *dir = malloc(len);
	if (!dir)
		return LQ_ERR_NOMEM;
	snprintf(dir, len, "%s%s%s", o->tmp, *rel ? "/" : "", rel);
	DIR *d = opendir(dir);
	if (!d) {
		lq_status st = fmt_fail(o->err, LQ_ERR_IO, "cannot read '%s': %s", dir, strerror(errno));
		free(dir);
		return st;
	}
	struct dirent *de;
	lq_status st = LQ_OK;
	while ((de = readdir(d)) && st == LQ_OK) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		size_t k = strlen(rel) + strlen(de->d_name) + 2;
		char *name = malloc(k), *path = malloc(strlen(dir) + k);
		struct stat sb;
		if (!name || !path) {
			st = LQ_ERR_NOMEM;
		} else {
			snprintf(name, k, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
			snprintf(path, strlen(dir) + k, "%s/%s", dir, de->d_name);
			bool folder = lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
			if (folder) {
				st = list_files(o, name, names, n, cap);
			} else if (*n == *cap) {
				*cap = *cap ? 2 * *cap : 16;
				char **l = realloc(*names, *cap * sizeof *l);
				if (l)
					*names = l;
				st = l ? LQ_OK : LQ_ERR_NOMEM;
			}
			if (st == LQ_OK && !folder) {
				(*names)[(*n)++] = name;
				name = NULL;
			}
		}
		free(name);
		free(path);
	}
	closedir(d);
	free(dir);
	return st;
}

lq_status hf_out_list(hf_out *o, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	size_t cap = 0;
	lq_status st = list_files(o, "", names, n, &cap);
	if (st != LQ_OK) {
		for (size_t i = 0; i < *n; i++)
			free((*names)[i]);
		free(*names);
		*names = NULL;
		*n = 0;
		return st == LQ_ERR_NOMEM ? fmt_fail(o->err, st, "out of memory") : st;
	}
	qsort(*names, *n, sizeof **names, entry_name_cmp);
	return LQ_OK;
}

/* The directory written becomes the archive at the final path: archived beside it, then renamed. */
static lq_status archive_tmp_dir(hf_out *o)
{
	char **names;
	size_t n;
	lq_status st = hf_out_list(o, &names, &n);
	if (st != LQ_OK)
		return st;
	char *archive = fmt_temp_path(o->final, "archive");
	int fd = archive ? mkstemp(archive) : -1;
	if (!archive) {
		st = fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	} else if (fd < 0) {
		st = fmt_fail(o->err, LQ_ERR_IO, "cannot create a file in '%s': %s", o->parent, strerror(errno));
	} else {
		close(fd);
		unlink(archive); /* bundle_write creates it exclusively; the name stays ours */
		st = bundle_write(archive, o->final, o->tmp, names, n, o->level, o->threads, o->err);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (st != LQ_OK) {
		free(archive);
		return st;
	}
	out_tree_remove_all(o->tmp);
	free(o->tmp);
	o->tmp = archive;
	o->is_dir = false;
	return LQ_OK;
}

lq_status hf_out_replace_only(hf_out *o, char *const *names, size_t n)
{
	out_tree_free_list(o->only, o->nonly);
	o->nonly = 0;
	o->only_set = true;
	o->only = calloc(n ? n : 1, sizeof *o->only);
	if (!o->only)
		return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	for (; o->nonly < n; o->nonly++)
		if (!(o->only[o->nonly] = strdup(names[o->nonly])))
			return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	out_tree_sort(o->only, o->nonly);
	return LQ_OK;
}

static const char *kind_of(mode_t mode)
{
	return S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) ? "a character device" : S_ISBLK(mode) ? "a block device" :
	       S_ISSOCK(mode) ? "a socket" : "not a file";
}

/* A directory at the final path: what -f may remove from it, an earlier output's files as its MANIFEST
 * lists them (or hf_out_replace_only's names), and nothing else there. */
static lq_status check_old_dir(hf_out *o, int fd)
{
	char **list = NULL;
	size_t n = 0;
	bool has = false;
	lq_status st = LQ_OK;
	if (o->only_set) {
		list = o->only;
		n = o->nonly;
	} else if ((st = out_tree_manifest(fd, o->final, &list, &n, &has, o->err)) != LQ_OK) {
		if (st == LQ_ERR_CORRUPT)
			fmt_fail(o->err, LQ_ERR_EXISTS, "cannot replace '%s': its MANIFEST is not one these tools write, so it "
				 "is no earlier output of theirs (remove it yourself, or choose another output)", o->final);
		return st == LQ_ERR_CORRUPT ? LQ_ERR_EXISTS : st;
	}
	char *other = NULL;
	st = out_tree_find_other(fd, list, n, has ? MANIFEST_NAME : NULL, &other, o->err);
	if (st == LQ_OK && other) {
		char q[512];
		fmt_quote(other, q, sizeof q);
		if (o->only_set)
			fmt_fail(o->err, LQ_ERR_EXISTS, "cannot replace '%s': it holds '%s', which this run did not make",
				 o->final, q);
		else if (has)
			fmt_fail(o->err, LQ_ERR_EXISTS, "cannot replace '%s': it holds '%s', which its MANIFEST does not list "
				 "(-f replaces only what an earlier output of these tools wrote: remove it yourself, or "
				 "choose another output)", o->final, q);
		else
			fmt_fail(o->err, LQ_ERR_EXISTS, "cannot replace '%s': it is a directory that holds '%s' and no MANIFEST, "
				 "not an earlier output of these tools (-f replaces only those and empty directories: "
				 "remove it yourself, or choose another output)", o->final, q);
		st = LQ_ERR_EXISTS;
	}
	free(other);
	if (st != LQ_OK) {
		if (!o->only_set)
			out_tree_free_list(list, n);
		return st;
	}
	out_tree_free_list(o->old_list, o->nold);
	o->old_list = NULL;
	o->nold = 0;
	o->old_manifest = has;
	if (!o->only_set) {
		o->old_list = list;
		o->nold = n;
		return LQ_OK;
	}
	if (!(o->old_list = calloc(n ? n : 1, sizeof *o->old_list)))
		return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	for (; o->nold < n; o->nold++)
		if (!(o->old_list[o->nold] = strdup(list[o->nold])))
			return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	return LQ_OK;
}

/* What is at the final path, and whether it may be replaced: nothing; with force, a file or a symbolic
 * link (replaced itself, never what it points to), or a directory check_old_dir accepts; anything else is
 * refused, saying what it is. *dirfd (may be NULL): that directory, opened without following a link, for
 * removing its entries; -1 for anything else. */
static lq_status check_old(hf_out *o, int *dirfd)
{
	if (dirfd)
		*dirfd = -1;
	o->old = OLD_NONE;
	struct stat sb;
	if (lstat(o->final, &sb) != 0) {
		if (errno == ENOENT)
			return LQ_OK;
		return fmt_fail(o->err, LQ_ERR_IO, "cannot use output '%s': %s", o->final, strerror(errno));
	}
	if (!o->force)
		return fmt_fail(o->err, LQ_ERR_EXISTS, "'%s' exists (use -f to replace it)", o->final);
	if (S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode)) {
		o->old = OLD_FILE;
		return LQ_OK;
	}
	if (!S_ISDIR(sb.st_mode))
		return fmt_fail(o->err, LQ_ERR_EXISTS, "cannot replace '%s': it is %s (-f replaces a file, a symbolic link, "
				"an empty directory or an earlier output of these tools, nothing else)", o->final,
				kind_of(sb.st_mode));
	int fd = open(o->final, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fmt_fail(o->err, LQ_ERR_IO, "cannot read the directory '%s': %s", o->final, strerror(errno));
	lq_status st = check_old_dir(o, fd);
	if (st == LQ_OK)
		o->old = OLD_DIR;
	if (st == LQ_OK && dirfd)
		*dirfd = fd;
	else
		close(fd);
	return st;
}

lq_status hf_out_begin(hf_out *o, const char *final_path, bool is_dir, bool force)
{
	o->is_dir = is_dir;
	o->force = force;
	o->final = strdup(final_path);
	char *copy = strdup(final_path);
	if (!o->final || !copy) {
		free(copy);
		return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	}
	o->parent = strdup(dirname(copy));
	free(copy);
	if (!o->parent)
		return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	lq_status st = check_old(o, NULL);
	if (st != LQ_OK)
		return st;
	/* a name that fits whatever the length of the output's own */
	if (!(o->tmp = fmt_temp_path(final_path, "tmp")))
		return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	if (is_dir) {
		if (!mkdtemp(o->tmp)) {
			int e = errno;
			free(o->tmp);
			o->tmp = NULL;
			return fmt_fail(o->err, LQ_ERR_IO, "cannot create a directory in '%s': %s", o->parent, strerror(e));
		}
		/* mkdtemp makes it private; the result is an ordinary directory, as mkdir would make it */
		mode_t mask = umask(0);
		umask(mask);
		chmod(o->tmp, 0777 & ~mask);
	} else {
		int fd = mkstemp(o->tmp);
		if (fd < 0) {
			int e = errno;
			free(o->tmp);
			o->tmp = NULL;
			return fmt_fail(o->err, LQ_ERR_IO, "cannot create a file in '%s': %s", o->parent, strerror(e));
		}
		close(fd);
		unlink(o->tmp); /* the writer creates it exclusively; the name stays ours */
	}
	return LQ_OK;
}

const char *hf_out_path(hf_out *o, const char *name)
{
	if (!o->is_dir)
		return o->tmp;
	free(o->scratch);
	size_t n = strlen(o->tmp) + strlen(name) + 2;
	o->scratch = malloc(n);
	if (o->scratch)
		snprintf(o->scratch, n, "%s/%s", o->tmp, name);
	return o->scratch;
}

static lq_status write_all(hf_out *o, int fd, const char *path, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t k = write(fd, p, len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return fmt_fail(o->err, LQ_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
		}
		p += k;
		len -= (size_t)k;
	}
	return LQ_OK;
}

lq_status hf_out_write_file(hf_out *o, const char *name, const void *data, size_t len)
{
	const char *path = hf_out_path(o, name);
	if (!path)
		return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return fmt_fail(o->err, LQ_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
	lq_status st = write_all(o, fd, path, data, len);
	if (st == LQ_OK && fsync(fd) != 0)
		st = fmt_fail(o->err, LQ_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
	if (close(fd) != 0 && st == LQ_OK)
		st = fmt_fail(o->err, LQ_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
	return st;
}

lq_status hf_out_copy_file(hf_out *o, const char *src, const char *name)
{
	int in;
	lq_status st = fmt_open_input(src, &in, NULL, o->err);
	if (st != LQ_OK)
		return st;
	const char *path = hf_out_path(o, name);
	int out = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
	if (out < 0) {
		close(in);
		return fmt_fail(o->err, LQ_ERR_IO, "cannot create '%s': %s", path ? path : name, strerror(errno));
	}
	char buf[1 << 16];
	for (;;) {
		ssize_t k = read(in, buf, sizeof buf);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			st = fmt_fail(o->err, LQ_ERR_IO, "cannot read '%s': %s", src, strerror(errno));
			break;
		}
		if (k == 0)
			break;
		st = write_all(o, out, path, buf, (size_t)k);
		if (st != LQ_OK)
			break;
	}
	if (st == LQ_OK && fsync(out) != 0)
		st = fmt_fail(o->err, LQ_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
	if (close(out) != 0 && st == LQ_OK)
		st = fmt_fail(o->err, LQ_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
	close(in);
	return st;
}

/* The folders of relative name `name` ("a/b/c.json": a, then a/b) in the output directory, made where
 * missing. The name comes from a directory listing or a bundle's checked entry; still, nothing but a plain
 * relative path is taken. */
static lq_status make_folders(hf_out *o, const char *name)
{
	char *p = strdup(name);
	if (!p)
		return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	lq_status st = LQ_OK;
	for (char *c = p; st == LQ_OK;) {
		size_t k = strcspn(c, "/");
		if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
			st = fmt_fail(o->err, LQ_ERR_ARG, "cannot carry '%s': not a relative file name", name);
		if (st != LQ_OK || !c[k])
			break;
		c[k] = '\0';
		const char *dir = hf_out_path(o, p);
		struct stat sb;
		if (!dir)
			st = fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
		else if (mkdir(dir, 0777) != 0 && (errno != EEXIST || lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
			st = fmt_fail(o->err, LQ_ERR_IO, "cannot create the folder '%s': %s", dir, strerror(errno));
		c[k] = '/';
		c += k + 1;
	}
	free(p);
	return st;
}

/* A bundle's entry that is not held in memory (a module's weights, 2_Dense/model.safetensors), read
 * through the bundle in pieces. */
static lq_status carry_entry(hf_out *o, const hf_model *m, size_t e, const char *name)
{
	const bundle_entry *be = bundle_entry_at(m->bundle, e);
	const char *path = hf_out_path(o, name);
	if (!path)
		return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	char *shown = strdup(path);
	void *buf = malloc(1 << 20);
	int fd = shown && buf ? open(shown, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
	lq_status st = LQ_OK;
	if (!shown || !buf)
		st = fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
	else if (fd < 0)
		st = fmt_fail(o->err, LQ_ERR_IO, "cannot create '%s': %s", shown, strerror(errno));
	for (uint64_t at = 0; st == LQ_OK && at < be->size;) {
		size_t k = be->size - at < (1u << 20) ? (size_t)(be->size - at) : (size_t)1 << 20;
		if (bundle_read(m->bundle, e, at, buf, k) != LQ_OK)
			st = fmt_fail(o->err, LQ_ERR_CORRUPT, "%s", bundle_error(m->bundle));
		else
			st = write_all(o, fd, shown, buf, k);
		at += k;
	}
	if (st == LQ_OK && fsync(fd) != 0)
		st = fmt_fail(o->err, LQ_ERR_IO, "cannot write '%s': %s", shown, strerror(errno));
	if (fd >= 0 && close(fd) != 0 && st == LQ_OK)
		st = fmt_fail(o->err, LQ_ERR_IO, "cannot write '%s': %s", shown, strerror(errno));
	free(buf);
	free(shown);
	return st;
}

lq_status hf_out_carry(hf_out *o, const hf_model *m, size_t i)
{
	const char *name = m->carry[i];
	lq_status st = strchr(name, '/') ? make_folders(o, name) : LQ_OK;
	if (st != LQ_OK)
		return st;
	if (!m->bundle) {
		size_t n = strlen(m->dir) + strlen(name) + 2;
		char *src = malloc(n);
		if (!src)
			return fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
		snprintf(src, n, "%s/%s", m->dir, name);
		st = hf_out_copy_file(o, src, name);
		free(src);
		return st;
	}
	/* a bundle holds the files that are not weights in memory from its scan (bundle.h); a module's
	 * weights are read through it */
	int64_t e = bundle_find(m->bundle, name);
	const bundle_entry *be = e >= 0 ? bundle_entry_at(m->bundle, (size_t)e) : NULL;
	if (!be)
		return fmt_fail(o->err, LQ_ERR_IO, "%s: cannot read '%s' from the archive", m->input, name);
	if (be->head_len != be->size)
		return carry_entry(o, m, (size_t)e, name);
	return hf_out_write_file(o, name, be->head, (size_t)be->size);
}

lq_status hf_out_check_space(hf_out *o, uint64_t bytes)
{
	struct statvfs sv;
	if (statvfs(o->parent, &sv) != 0)
		return LQ_OK; /* cannot tell: the writes will */
	uint64_t avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	if (avail < bytes)
		return fmt_fail(o->err, LQ_ERR_IO, "cannot write '%s': %" PRIu64 " bytes needed, %" PRIu64
				" free on its file system", o->final, bytes, avail);
	return LQ_OK;
}

static void sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Moves the old output at the final path aside, under a name reserved beside it; NULL on failure. */
static char *move_aside(hf_out *o)
{
	char *old = fmt_temp_path(o->final, "old");
	if (!old) {
		fmt_fail(o->err, LQ_ERR_NOMEM, "out of memory");
		return NULL;
	}
	/* reserved as what the old one is: rename(2) replaces an empty directory by a directory, a file by
	 * a file or a link */
	int fd = -1;
	bool reserved = o->old == OLD_DIR ? mkdtemp(old) != NULL : (fd = mkstemp(old)) >= 0;
	if (fd >= 0)
		close(fd);
	if (!reserved || rename(o->final, old) != 0) {
		int e = errno;
		if (reserved && o->old == OLD_DIR)
			rmdir(old);
		else if (reserved)
			unlink(old);
		fmt_fail(o->err, LQ_ERR_IO, "cannot replace '%s': %s", o->final, strerror(e));
		free(old);
		return NULL;
	}
	return old;
}

lq_status hf_out_commit(hf_out *o)
{
	if (o->bundle && o->is_dir) {
		lq_status st = archive_tmp_dir(o);
		if (st != LQ_OK)
			return st;
	}
	if (fmt_cancelled("sync"))
		return fmt_fail(o->err, LQ_ERR_CANCELLED, "interrupted");
	if (o->is_dir)
		sync_dir(o->tmp);
	/* the place again: it may have changed while the output was made */
	int old_fd;
	lq_status st = check_old(o, &old_fd);
	if (st != LQ_OK)
		return st;
	/* the last moment a signal can end the run: from the rename on, the output is in place */
	if (fmt_cancelled("rename")) {
		if (old_fd >= 0)
			close(old_fd);
		return fmt_fail(o->err, LQ_ERR_CANCELLED, "interrupted");
	}
	/* a directory cannot be renamed over a non-empty one, nor over a file, nor a file over a directory:
	 * the old output goes aside first, and is removed once the new one is in place */
	char *old = NULL;
	if (o->old == OLD_DIR || (o->old == OLD_FILE && o->is_dir)) {
		if (!(old = move_aside(o))) {
			if (old_fd >= 0)
				close(old_fd);
			return LQ_ERR_IO;
		}
	}
	if (rename(o->tmp, o->final) != 0) {
		int e = errno;
		if (old)
			rename(old, o->final); /* put the old one back */
		free(old);
		if (old_fd >= 0)
			close(old_fd);
		return fmt_fail(o->err, LQ_ERR_IO, "cannot rename into '%s': %s", o->final, strerror(e));
	}
	o->committed = true;
	if (old && old_fd >= 0) {
		/* exactly what was checked, never through a link; the directory goes when that empties it */
		out_tree_remove_listed(old_fd, o->old_list, o->nold, o->old_manifest ? MANIFEST_NAME : NULL);
		rmdir(old);
	} else if (old) {
		unlink(old); /* a file, or a link itself */
	}
	if (old_fd >= 0)
		close(old_fd);
	free(old);
	sync_dir(o->parent);
	return LQ_OK;
}

void hf_shard_name(char *buf, size_t size, size_t i, size_t n)
{
	if (n == 1)
		snprintf(buf, size, "%s", HF_SINGLE_NAME);
	else
		snprintf(buf, size, "model-%05zu-of-%05zu.safetensors", i + 1, n);
}
