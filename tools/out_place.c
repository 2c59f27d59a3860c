/*
 * out_place.c: om_place_ok (model_out.h): whether OUTPUT may be written for the inputs. With -f the place
 * of OUTPUT is replaced, so it must not be an input, lie inside an input directory (a later run would take
 * it for part of the model) or contain an input, neither as named nor through links: a link to "/", a
 * parent of the adapter, the blobs/ of a Hugging Face cache whose snapshot links into it. Every input file
 * and directory is compared by its real path (every link resolved) with OUTPUT's two places: where its
 * name is (its directory resolved, its last component as it is) and where it leads (resolved whole).
 */
#include "model_out.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "cli.h"

/* An input's file or directory, by its real path. */
typedef struct place {
	char *real;
	bool dir;
	bool whole;        /* the input itself, not a file of it */
	const char *input; /* the input it belongs to, as given */
} place;

typedef struct places {
	place *p;
	size_t n, cap;
	bool oom;
} places;

/* Where the name p is: its directory resolved, its last component as it is (a link there not followed;
 * "." and ".." resolved). NULL when its directory cannot be resolved. */
static char *name_place(const char *p)
{
	char real[PATH_MAX];
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
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(p, "/") == 0) {
		out = realpath(p, real) ? strdup(real) : NULL;
	} else if (realpath(dir, real)) {
		size_t n = strlen(real) + strlen(base) + 2;
		out = malloc(n);
		if (out)
			snprintf(out, n, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base);
	}
	free(copy);
	return out;
}

/* Where p leads: resolved whole when it exists, else its name's place. */
static char *lead_place(const char *p)
{
	char real[PATH_MAX];
	return realpath(p, real) ? strdup(real) : name_place(p);
}

/* Whether path a is b or lies inside b. */
static bool within(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (strcmp(b, "/") == 0)
		return a[0] == '/';
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/* Adds path (resolved; skipped when it cannot be) as part of input `input`. */
static void add(places *ps, const char *path, const char *input)
{
	char real[PATH_MAX];
	struct stat sb;
	if (!realpath(path, real) || stat(real, &sb) != 0)
		return;
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? 2 * ps->cap : 32;
		place *p = realloc(ps->p, cap * sizeof *p);
		if (!p) {
			ps->oom = true;
			return;
		}
		ps->p = p;
		ps->cap = cap;
	}
	if (!(ps->p[ps->n].real = strdup(real))) {
		ps->oom = true;
		return;
	}
	ps->p[ps->n].dir = S_ISDIR(sb.st_mode);
	ps->p[ps->n].whole = strcmp(path, input) == 0;
	ps->p[ps->n++].input = input;
}

static void add_joined(places *ps, const char *dir, const char *name, const char *input)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (!p) {
		ps->oom = true;
		return;
	}
	snprintf(p, n, "%s/%s", dir, name);
	add(ps, p, input);
	free(p);
}

/* A directory that makes up an input, and every entry in it (each may be a link elsewhere: the files of a
 * Hugging Face cache snapshot link into its blobs/). */
static void add_dir(places *ps, const char *dir, const char *input)
{
	add(ps, dir, input);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			add_joined(ps, dir, de->d_name, input);
	closedir(d);
}

/* The model: its directory and files, its bundle, or its file. */
static void add_model(places *ps, const hf_model *m)
{
	if (hf_model_is_stream(m))
		return;
	if (m->bundle || !m->dir) {
		add(ps, m->input, m->input);
		return;
	}
	add_dir(ps, m->dir, m->input);
	/* an index may name shards in subdirectories */
	for (size_t s = 0; s < m->nshards; s++)
		add(ps, m->shards[s].path, m->input);
	for (size_t i = 0; i < m->ncarry; i++)
		add_joined(ps, m->dir, m->carry[i], m->input);
	if (!m->is_model_dir || strcmp(m->input, m->dir) != 0)
		add(ps, m->input, m->input); /* an index given by its path */
}

/* An adapter as given: its directory, a file of it (its directory, then), or a bundle. */
static void add_adapter(places *ps, const char *path)
{
	struct stat sb;
	bool compressed;
	if (stat(path, &sb) != 0)
		return;
	if (S_ISDIR(sb.st_mode)) {
		add_dir(ps, path, path);
		return;
	}
	add(ps, path, path);
	if (bundle_path_is_bundle(path, &compressed))
		return;
	char *copy = strdup(path);
	if (!copy) {
		ps->oom = true;
		return;
	}
	char *slash = strrchr(copy, '/');
	if (slash)
		*(slash == copy ? slash + 1 : slash) = '\0';
	add_dir(ps, slash ? copy : ".", path);
	free(copy);
}

/* The first place OUTPUT's place `out` clashes with: is (0), lies inside (1), contains (2), in that order
 * of pass. */
static const place *clash(const places *ps, const char *out, int pass)
{
	for (size_t i = 0; i < ps->n; i++) {
		const place *p = &ps->p[i];
		if (pass == 0 && strcmp(out, p->real) == 0)
			return p;
		if (pass == 1 && p->dir && within(out, p->real) && strcmp(out, p->real) != 0)
			return p;
		if (pass == 2 && within(p->real, out) && strcmp(out, p->real) != 0)
			return p;
	}
	return NULL;
}

bool om_place_ok(const hf_model *m, const char *const *adapters, size_t nadapters, const char *output)
{
	if (om_is_stream(output))
		return true;
	char *out[2] = {name_place(output), lead_place(output)};
	if (!out[0] || !out[1]) {
		cli_error("cannot use output '%s': %s", output, strerror(errno));
		free(out[0]);
		free(out[1]);
		return false;
	}
	places ps = {0};
	add_model(&ps, m);
	for (size_t a = 0; a < nadapters; a++)
		add_adapter(&ps, adapters[a]);
	bool ok = !ps.oom;
	if (!ok)
		cli_error("out of memory");
	int forms = strcmp(out[0], out[1]) == 0 ? 1 : 2;
	for (int pass = 0; pass < 3 && ok; pass++)
		for (int k = 0; k < forms && ok; k++) {
			const place *p = clash(&ps, out[k], pass);
			if (!p)
				continue;
			ok = false;
			if (pass == 0 && p->whole)
				cli_error("output '%s' is the input", output);
			else if (pass == 0)
				cli_error("output '%s' is part of the input '%s'", output, p->input);
			else if (pass == 1)
				cli_error("output '%s' is inside the input directory '%s'", output, p->input);
			else if (p->whole)
				cli_error("output '%s' contains the input '%s'%s%s%s", output, p->input,
					  k ? " (it leads to '" : "", k ? out[k] : "", k ? "')" : "");
			else
				cli_error("output '%s' contains '%s', part of the input '%s'%s%s%s", output, p->real,
					  p->input, k ? " (it leads to '" : "", k ? out[k] : "", k ? "')" : "");
		}
	for (size_t i = 0; i < ps.n; i++)
		free(ps.p[i].real);
	free(ps.p);
	free(out[0]);
	free(out[1]);
	return ok;
}
