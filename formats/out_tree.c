/* out_tree.c: see out_tree.h. */
#include "out_tree.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void out_tree_sort(char **list, size_t n)
{
	if (n > 1)
		qsort(list, n, sizeof *list, cmp_str);
}

void out_tree_free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* The first index whose path is not below key (bytewise). */
static size_t lower_bound(char *const *list, size_t n, const char *key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(list[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool listed(char *const *list, size_t n, const char *path)
{
	size_t i = lower_bound(list, n, path);
	return i < n && strcmp(list[i], path) == 0;
}

/* Whether a listed path lies inside directory `dir`: the paths that begin with "dir/" sort together. */
static bool lists_inside(char *const *list, size_t n, const char *dir)
{
	size_t len = strlen(dir);
	char *prefix = malloc(len + 2);
	if (!prefix)
		return false;
	memcpy(prefix, dir, len);
	memcpy(prefix + len, "/", 2);
	size_t i = lower_bound(list, n, prefix);
	bool yes = i < n && strncmp(list[i], prefix, len + 1) == 0;
	free(prefix);
	return yes;
}

/* A manifest's path is one these tools write: relative, no empty, "." or ".." component. */
static bool path_ok(const char *p)
{
	if (!*p || *p == '/')
		return false;
	for (const char *c = p; *c;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += len + (slash ? 1 : 0);
		if (slash && !*c)
			return false;
	}
	return true;
}

lq_status out_tree_manifest(int dirfd, const char *shown, char ***list, size_t *n, bool *has, char *err)
{
	*list = NULL;
	*n = 0;
	*has = false;
	struct stat sb;
	if (fstatat(dirfd, MANIFEST_NAME, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return LQ_OK;
		return fmt_fail(err, LQ_ERR_IO, "cannot read '%s/%s': %s", shown, MANIFEST_NAME, strerror(errno));
	}
	*has = true;
	if (!S_ISREG(sb.st_mode))
		return fmt_fail(err, LQ_ERR_CORRUPT, "'%s/%s' is not a file", shown, MANIFEST_NAME);
	char *text;
	size_t len;
	char why[FMT_ERRBUF];
	lq_status st = fmt_read_small_at(dirfd, MANIFEST_NAME, O_NOFOLLOW, MANIFEST_MAX_SIZE, &text, &len, why);
	if (st != LQ_OK)
		return fmt_fail(err, st == LQ_ERR_NOMEM ? st : LQ_ERR_IO, "cannot read '%s/%s': %s", shown, MANIFEST_NAME,
				why);
	cJSON *root = cJSON_ParseWithLength(text, len);
	free(text);
	const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "manifest");
	const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
	st = cJSON_IsNumber(version) && version->valuedouble == 1 && cJSON_IsArray(files) ? LQ_OK : LQ_ERR_CORRUPT;
	size_t count = st == LQ_OK ? (size_t)cJSON_GetArraySize(files) : 0;
	char **l = calloc(count ? count : 1, sizeof *l);
	if (!l)
		st = LQ_ERR_NOMEM;
	const cJSON *f;
	size_t k = 0;
	if (st == LQ_OK)
		cJSON_ArrayForEach(f, files) {
			const cJSON *path = cJSON_GetObjectItemCaseSensitive(f, "path");
			if (!cJSON_IsString(path) || !path_ok(path->valuestring)) {
				st = LQ_ERR_CORRUPT;
				break;
			}
			if (!(l[k] = strdup(path->valuestring))) {
				st = LQ_ERR_NOMEM;
				break;
			}
			k++;
		}
	cJSON_Delete(root);
	if (st != LQ_OK) {
		out_tree_free_list(l, k);
		return st == LQ_ERR_NOMEM ? fmt_fail(err, st, "out of memory")
					  : fmt_fail(err, st, "'%s/%s' is not a MANIFEST of these tools", shown, MANIFEST_NAME);
	}
	out_tree_sort(l, k);
	*list = l;
	*n = k;
	return LQ_OK;
}

/* The names in directory fd (not "." or ".."), malloc'd; NULL with errno set when it cannot be read. */
static char **read_names(int fd, size_t *n)
{
	*n = 0;
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return NULL;
	}
	rewinddir(d);
	char **names = malloc(sizeof *names);
	size_t cap = 1;
	struct dirent *de;
	errno = 0;
	while (names && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (*n == cap) {
			char **l = realloc(names, 2 * cap * sizeof *l);
			if (!l)
				break;
			names = l;
			cap *= 2;
		}
		if (!(names[*n] = strdup(de->d_name)))
			break;
		(*n)++;
	}
	int e = errno;
	closedir(d);
	if (!names || e) {
		out_tree_free_list(names, *n);
		*n = 0;
		errno = e ? e : ENOMEM;
		return NULL;
	}
	out_tree_sort(names, *n);
	return names;
}

static char *join_rel(const char *prefix, const char *name)
{
	return prefix ? fmt_join(prefix, "/", name) : strdup(name);
}

/* A subdirectory, never through a link. */
static int open_subdir(int fd, const char *name)
{
	return openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static lq_status find_other(int fd, const char *prefix, int depth, char *const *list, size_t n, const char *also,
			    char **other, char *err)
{
	size_t count;
	char **names = read_names(fd, &count);
	if (!names)
		return fmt_fail(err, errno == ENOMEM ? LQ_ERR_NOMEM : LQ_ERR_IO, "cannot read the directory '%s': %s",
				prefix ? prefix : ".", strerror(errno));
	lq_status st = LQ_OK;
	for (size_t i = 0; i < count && st == LQ_OK && !*other; i++) {
		if (!prefix && also && strcmp(names[i], also) == 0)
			continue;
		char *rel = join_rel(prefix, names[i]);
		struct stat sb;
		if (!rel) {
			st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
			break;
		}
		bool dir = fstatat(fd, names[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode);
		if (dir && depth < OUT_TREE_MAX_DEPTH && lists_inside(list, n, rel)) {
			int sub = open_subdir(fd, names[i]);
			if (sub < 0) {
				st = fmt_fail(err, LQ_ERR_IO, "cannot read the directory '%s': %s", rel, strerror(errno));
			} else {
				st = find_other(sub, rel, depth + 1, list, n, also, other, err);
				close(sub);
			}
			free(rel);
		} else if (dir || !listed(list, n, rel)) {
			char *shown = dir ? join_rel(rel, "") : NULL; /* "sub/" for a directory */
			*other = shown ? shown : rel;
			if (shown)
				free(rel);
		} else {
			free(rel);
		}
	}
	out_tree_free_list(names, count);
	return st;
}

lq_status out_tree_find_other(int dirfd, char *const *list, size_t n, const char *also, char **other, char *err)
{
	*other = NULL;
	lq_status st = find_other(dirfd, NULL, 0, list, n, also, other, err);
	if (st != LQ_OK) {
		free(*other);
		*other = NULL;
	}
	return st;
}

/* list NULL: everything. */
static void remove_at(int fd, const char *prefix, int depth, char *const *list, size_t n, const char *also)
{
	size_t count;
	char **names = read_names(fd, &count);
	if (!names)
		return;
	for (size_t i = 0; i < count; i++) {
		char *rel = join_rel(prefix, names[i]);
		struct stat sb;
		if (!rel)
			continue;
		bool dir = fstatat(fd, names[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode);
		if (dir && depth < OUT_TREE_MAX_DEPTH && (!list || lists_inside(list, n, rel))) {
			int sub = open_subdir(fd, names[i]);
			if (sub >= 0) {
				remove_at(sub, rel, depth + 1, list, n, also);
				close(sub);
				unlinkat(fd, names[i], AT_REMOVEDIR); /* fails when something else is left in it */
			}
		} else if (!dir && (!list || listed(list, n, rel) || (!prefix && also && strcmp(names[i], also) == 0))) {
			unlinkat(fd, names[i], 0);
		}
		free(rel);
	}
	out_tree_free_list(names, count);
}

void out_tree_remove_listed(int dirfd, char *const *list, size_t n, const char *also)
{
	static char *const none[1];
	remove_at(dirfd, NULL, 0, list ? list : none, list ? n : 0, also);
}

void out_tree_remove_all(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) != 0)
		return;
	if (!S_ISDIR(sb.st_mode)) {
		unlink(path);
		return;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	remove_at(fd, NULL, 0, NULL, 0, NULL);
	close(fd);
	rmdir(path);
}
