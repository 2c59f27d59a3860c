/*
 * out_tree.h: what replacing an output may remove, and removing it without ever following a link.
 *
 * A tool removes only what it made: its own temporary output, and, with -f, an earlier output of these
 * tools exactly as its MANIFEST lists it (or the parts a --finish consumes). Everything here works on
 * directory descriptors opened with O_DIRECTORY | O_NOFOLLOW and on names relative to them (openat,
 * fstatat with AT_SYMLINK_NOFOLLOW, unlinkat): a symbolic link met anywhere is an entry, removed or
 * refused as one, never a way into another directory. Subdirectories are walked to OUT_TREE_MAX_DEPTH.
 *
 * Lists are of paths relative to the directory, "name" or "sub/name", sorted bytewise (out_tree_sort).
 */
#ifndef FORMATS_OUT_TREE_H
#define FORMATS_OUT_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "fmt.h"

#define OUT_TREE_MAX_DEPTH 16

/* Sorts a list for the calls below. */
void out_tree_sort(char **list, size_t n);

/* The paths the MANIFEST of directory dirfd lists (none, *has false, when there is no MANIFEST), sorted,
 * malloc'd (free with out_tree_free_list). LQ_ERR_CORRUPT when the MANIFEST is not one these tools write
 * (a link, not JSON, no "files" list, a path that is absolute, empty, or has "." or ".." components),
 * LQ_ERR_IO when it cannot be read, LQ_ERR_NOMEM; messages name `shown`/MANIFEST. */
lq_status out_tree_manifest(int dirfd, const char *shown, char ***list, size_t *n, bool *has, char *err);
void out_tree_free_list(char **list, size_t n);

/* The first entry of directory dirfd that is neither in `list` (a subdirectory is in it when a listed path
 * lies inside it) nor `also` (a name at the top, may be NULL): *other is its relative path (malloc'd;
 * "sub/" for a directory), NULL when there is none. LQ_ERR_IO when a directory cannot be read, LQ_ERR_NOMEM. */
lq_status out_tree_find_other(int dirfd, char *const *list, size_t n, const char *also, char **other, char *err);

/* Removes from directory dirfd the entries of `list` and `also`, and the subdirectories that leaves
 * empty: nothing else. Best effort: what cannot be removed stays. */
void out_tree_remove_listed(int dirfd, char *const *list, size_t n, const char *also);

/* Removes path and everything under it (a temporary output this run made), never following a link: a
 * link is removed itself. Best effort. */
void out_tree_remove_all(const char *path);

#endif /* FORMATS_OUT_TREE_H */
