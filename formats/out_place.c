/*
 * out_place.c: out_place.h, and om_place_check (out_model.h): whether OUTPUT may be written for the inputs.
 * With -f the place of OUTPUT is replaced, so it must not be an input, lie inside an input directory or
 * contain an input, neither as named nor through links. Every input file and directory is compared by its
 * real path with OUTPUT's two places: where its name is (its directory resolved, its last component as it
 * is) and where it leads (resolved whole).
 */
#include "out_place.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "out_model.h"

/* An input's file or directory, by its real path. */
typedef struct place {
	char *real;
	char *input; /* the input it belongs to, as given */
	bool dir;
	bool whole;  /* the input itself, not a file of it */
	dev_t dev;
	ino_t ino;
} place;

struct out_inputs {
	place *p;
	size_t n, cap;
	bool oom;
};

out_inputs *out_inputs_create(void)
{
	return calloc(1, sizeof(out_inputs));
}

void out_inputs_free(out_inputs *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n; i++) {
		free(in->p[i].real);
		free(in->p[i].input);
	}
	free(in->p);
	free(in);
}

bool out_inputs_oom(const out_inputs *in)
{
	return in->oom;
}

static bool oom(out_inputs *in)
{
	in->oom = true;
	return false;
}

bool out_inputs_add(out_inputs *in, const char *path, const char *input)
{
	char real[PATH_MAX];
	struct stat sb;
	if (!realpath(path, real) || stat(real, &sb) != 0)
		return true;
	if (in->n == in->cap) {
		size_t cap = in->cap ? 2 * in->cap : 32;
		place *p = realloc(in->p, cap * sizeof *p);
		if (!p)
			return oom(in);
		in->p = p;
		in->cap = cap;
	}
	place *e = &in->p[in->n];
	*e = (place){.real = strdup(real), .input = strdup(input), .dir = S_ISDIR(sb.st_mode),
		     .whole = strcmp(path, input) == 0, .dev = sb.st_dev, .ino = sb.st_ino};
	if (!e->real || !e->input) {
		free(e->real);
		free(e->input);
		return oom(in);
	}
	in->n++;
	return true;
}

static bool add_joined(out_inputs *in, const char *dir, const char *name, const char *input)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (!p)
		return oom(in);
	snprintf(p, n, "%s/%s", dir, name);
	bool ok = out_inputs_add(in, p, input);
	free(p);
	return ok;
}

bool out_inputs_add_dir(out_inputs *in, const char *dir, const char *input)
{
	out_inputs_add(in, dir, input);
	DIR *d = opendir(dir);
	if (!d)
		return !in->oom;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			add_joined(in, dir, de->d_name, input);
	closedir(d);
	return !in->oom;
}

bool out_inputs_add_model(out_inputs *in, const hf_model *m)
{
	if (hf_model_is_stream(m))
		return true;
	if (m->bundle || !m->dir)
		return out_inputs_add(in, m->input, m->input);
	out_inputs_add_dir(in, m->dir, m->input);
	/* an index may name shards in subdirectories */
	for (size_t s = 0; s < m->nshards; s++)
		out_inputs_add(in, m->shards[s].path, m->input);
	for (size_t i = 0; i < m->ncarry; i++)
		add_joined(in, m->dir, m->carry[i], m->input);
	if (!m->is_model_dir || strcmp(m->input, m->dir) != 0)
		out_inputs_add(in, m->input, m->input); /* an index given by its path */
	return !in->oom;
}

bool out_inputs_add_adapter(out_inputs *in, const char *path)
{
	struct stat sb;
	bool compressed;
	if (stat(path, &sb) != 0)
		return true;
	if (S_ISDIR(sb.st_mode))
		return out_inputs_add_dir(in, path, path);
	out_inputs_add(in, path, path);
	if (bundle_path_is_bundle(path, &compressed))
		return !in->oom;
	char *copy = strdup(path);
	if (!copy)
		return oom(in);
	char *slash = strrchr(copy, '/');
	if (slash)
		*(slash == copy ? slash + 1 : slash) = '\0';
	out_inputs_add_dir(in, slash ? copy : ".", path);
	free(copy);
	return !in->oom;
}

/* Whether path a lies below b (both real paths; not when they are equal). */
static bool below(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (strcmp(b, "/") == 0)
		return a[0] == '/' && a[1] != '\0';
	return strncmp(a, b, n) == 0 && a[n] == '/';
}

bool out_inputs_find(const out_inputs *in, const char *out, const struct stat *id, unsigned clashes, out_hit *hit)
{
	for (size_t i = 0; i < in->n; i++) {
		const place *p = &in->p[i];
		out_clash c = OUT_CLASH_NONE;
		if ((clashes & OUT_CLASH_IS) && ((out && strcmp(out, p->real) == 0) ||
						 (id && id->st_dev == p->dev && id->st_ino == p->ino)))
			c = OUT_CLASH_IS;
		else if (out && (clashes & OUT_CLASH_INSIDE) && p->dir && below(out, p->real))
			c = OUT_CLASH_INSIDE;
		else if (out && (clashes & OUT_CLASH_CONTAINS) && below(p->real, out))
			c = OUT_CLASH_CONTAINS;
		else
			continue;
		*hit = (out_hit){.clash = c, .real = p->real, .input = p->input, .whole = p->whole};
		return true;
	}
	return false;
}

char *out_place_of_name(const char *p)
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

char *out_place_of_target(const char *p)
{
	char real[PATH_MAX];
	return realpath(p, real) ? strdup(real) : out_place_of_name(p);
}

/* nf4quant's and loramerge's OUTPUT: its two places, each tried for what it is, then what it lies inside,
 * then what it contains. */
/* "-": standard output, when it is a file (`nf4quant x.safetensors -o - >> x.safetensors`), must not be an
 * input's file, nor lie inside an input directory. */
static lq_status stdout_check(const out_inputs *in, char *err)
{
	struct stat sb;
	if (fstat(STDOUT_FILENO, &sb) != 0 || !S_ISREG(sb.st_mode))
		return LQ_OK;
	char real[PATH_MAX]; /* its path, where the system tells it (Linux); its identity always */
	const bool named = realpath("/proc/self/fd/1", real) && real[0] == '/';
	out_hit h;
	if (out_inputs_find(in, named ? real : NULL, &sb, OUT_CLASH_IS, &h))
		return fmt_fail(err, LQ_ERR_ARG, "standard output is %s '%s'", h.whole ? "the input" : "part of the input",
				h.input);
	if (named && out_inputs_find(in, real, NULL, OUT_CLASH_INSIDE, &h))
		return fmt_fail(err, LQ_ERR_ARG, "standard output ('%s') is inside the input directory '%s'", real, h.input);
	return LQ_OK;
}

lq_status om_place_check(const hf_model *m, const char *const *adapters, size_t nadapters, const char *output,
			 char *err)
{
	if (om_is_stream(output)) {
		out_inputs *in = out_inputs_create();
		lq_status st = in && (!m || out_inputs_add_model(in, m)) ? LQ_OK : fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		for (size_t a = 0; a < nadapters && st == LQ_OK; a++)
			if (!out_inputs_add_adapter(in, adapters[a]))
				st = fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		if (st == LQ_OK)
			st = stdout_check(in, err);
		out_inputs_free(in);
		return st;
	}
	char *out[2] = {out_place_of_name(output), out_place_of_target(output)};
	if (!out[0] || !out[1]) {
		lq_status st = fmt_fail(err, LQ_ERR_IO, "cannot use output '%s': %s", output, strerror(errno));
		free(out[0]);
		free(out[1]);
		return st;
	}
	out_inputs *in = out_inputs_create();
	lq_status st = in ? LQ_OK : LQ_ERR_NOMEM;
	if (in) {
		if (m)
			out_inputs_add_model(in, m);
		for (size_t a = 0; a < nadapters; a++)
			out_inputs_add_adapter(in, adapters[a]);
		if (out_inputs_oom(in))
			st = LQ_ERR_NOMEM;
	}
	if (st != LQ_OK)
		fmt_fail(err, st, "out of memory");
	static const out_clash order[3] = {OUT_CLASH_IS, OUT_CLASH_INSIDE, OUT_CLASH_CONTAINS};
	int forms = strcmp(out[0], out[1]) == 0 ? 1 : 2;
	for (int c = 0; c < 3 && st == LQ_OK; c++)
		for (int k = 0; k < forms && st == LQ_OK; k++) {
			out_hit h;
			if (!out_inputs_find(in, out[k], NULL, order[c], &h))
				continue;
			const char *lead = k ? " (it leads to '" : "", *to = k ? out[k] : "", *end = k ? "')" : "";
			if (h.clash == OUT_CLASH_IS && h.whole)
				st = fmt_fail(err, LQ_ERR_ARG, "output '%s' is the input", output);
			else if (h.clash == OUT_CLASH_IS)
				st = fmt_fail(err, LQ_ERR_ARG, "output '%s' is part of the input '%s'", output, h.input);
			else if (h.clash == OUT_CLASH_INSIDE)
				st = fmt_fail(err, LQ_ERR_ARG, "output '%s' is inside the input directory '%s'", output, h.input);
			else if (h.whole)
				st = fmt_fail(err, LQ_ERR_ARG, "output '%s' contains the input '%s'%s%s%s", output, h.input, lead,
					      to, end);
			else
				st = fmt_fail(err, LQ_ERR_ARG, "output '%s' contains '%s', part of the input '%s'%s%s%s", output,
					      h.real, h.input, lead, to, end);
		}
	out_inputs_free(in);
	free(out[0]);
	free(out[1]);
	return st;
}
