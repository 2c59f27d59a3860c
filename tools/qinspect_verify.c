/* qinspect_verify.c: see qinspect_verify.h. */
#include "qinspect_verify.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "cli.h"
#include "hf_model.h"
#include "manifest.h"
#include "qinspect_report.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The files of the output, MANIFEST aside, and the manifest's text. */
typedef struct output_files {
	manifest_file *files;
	char **paths;  /* directory: each file's path on disk (NULL for a bundle's), in the order found */
	char **names;  /* each file's name, in the order found */
	size_t n;
	char *manifest;
	size_t manifest_len;
	bundle *b;
	manifest_hash **hashes;  /* bundle: each entry's hashes, made by the scan (NULL for the MANIFEST) */
	size_t nhashes;
	char **extra;  /* what cannot be a file of an output (a subdirectory, a link), as mismatches */
	size_t nextra;
} output_files;

static void output_free(output_files *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->paths[i]);
		free(o->names[i]);
	}
	for (size_t i = 0; i < o->nextra; i++)
		free(o->extra[i]);
	free(o->extra);
	free(o->files);
	free(o->paths);
	free(o->names);
	free(o->manifest);
	for (size_t i = 0; i < o->nhashes; i++)
		manifest_hash_free(o->hashes[i]);
	free(o->hashes);
	bundle_free(o->b);
}

static bool grow(output_files *o, size_t *cap)
{
	if (o->n < *cap)
		return true;
	*cap = *cap ? 2 * *cap : 16;
	manifest_file *f = realloc(o->files, *cap * sizeof *f);
	if (f)
		o->files = f;
	char **p = f ? realloc(o->paths, *cap * sizeof *p) : NULL;
	if (p)
		o->paths = p;
	char **nm = p ? realloc(o->names, *cap * sizeof *nm) : NULL;
	if (nm)
		o->names = nm;
	return nm != NULL;
}

/* Something in the directory that no output holds: a mismatch of its own, with why. */
static void add_extra(output_files *o, const char *name, const char *why)
{
	char **l = realloc(o->extra, (o->nextra + 1) * sizeof *l);
	if (!l)
		return;
	o->extra = l;
	char q[512];
	size_t n = strlen(name) + strlen(why) + 16;
	if ((l[o->nextra] = malloc(n)))
		snprintf(l[o->nextra++], n, "'%s' %s", fmt_quote(name, q, sizeof q), why);
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const manifest_file *)a)->path, ((const manifest_file *)b)->path);
}

/* The files of folder `rel` of output directory `top` ("" the directory itself), by their paths in it
 * ("1_Pooling/config.json"), folders walked down to HF_CARRY_DEPTH (no output goes deeper); the top's
 * MANIFEST read as the manifest. */
static lq_status read_dir(const char *top, const char *rel, int depth, output_files *o, size_t *cap)
{
	char *dir = fmt_join(top, *rel ? "/" : "", rel);
	if (!dir) {
		cli_error("out of memory");
		return LQ_ERR_NOMEM;
	}
	DIR *d = opendir(dir);
	if (!d) {
		cli_error("cannot read '%s': %s", dir, strerror(errno));
		free(dir);
		return LQ_ERR_IO;
	}
	struct dirent *de;
	lq_status st = LQ_OK;
	while ((de = readdir(d)) && st == LQ_OK) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *path = fmt_join(dir, "/", de->d_name), *name = fmt_join(rel, *rel ? "/" : "", de->d_name);
		if (!path || !name || !grow(o, cap)) {
			free(path);
			free(name);
			st = LQ_ERR_NOMEM;
			break;
		}
		struct stat sb;
		bool is = lstat(path, &sb) == 0;
		if (is && S_ISDIR(sb.st_mode) && depth < HF_CARRY_DEPTH) {
			st = read_dir(top, name, depth + 1, o, cap);
			free(path);
			free(name);
			continue;
		}
		if (!is || !S_ISREG(sb.st_mode)) {
			add_extra(o, name, is && S_ISDIR(sb.st_mode) ? "is a folder deeper than " STR(HF_CARRY_DEPTH)
									   " levels: an output holds none"
								     : "is not a regular file: an output holds none");
			free(path);
			free(name);
			continue;
		}
		if (!*rel && strcmp(de->d_name, MANIFEST_NAME) == 0) {
			st = fmt_read_small(path, MANIFEST_MAX_SIZE, &o->manifest, &o->manifest_len, (char[FMT_ERRBUF]){0});
			if (st != LQ_OK)
				cli_error("cannot read '%s': %s", path, st == LQ_ERR_CORRUPT ? "too large for a manifest" : strerror(errno));
			free(path);
			free(name);
			continue;
		}
		o->paths[o->n] = path;
		o->names[o->n] = name;
		o->files[o->n] = (manifest_file){.path = name, .size = (uint64_t)sb.st_size, .read = manifest_read_path,
						 .arg = path};
		o->n++;
	}
	closedir(d);
	free(dir);
	if (st == LQ_ERR_NOMEM)
		cli_error("out of memory");
	return st;
}

/* bundle_open_visit's visitor: every entry but the MANIFEST hashed as the scan decompresses it, so that
 * a compressed bundle is decompressed once, not once to scan and again to hash. */
static lq_status hash_entry(void *arg, size_t entry, const char *name, uint64_t size, uint64_t offset,
			    const void *data, size_t len, char *err)
{
	output_files *o = arg;
	(void)offset; /* in order, from 0: bundle.h */
	if (entry >= o->nhashes) {
		manifest_hash **h = realloc(o->hashes, (entry + 1) * sizeof *h);
		if (!h)
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		o->hashes = h;
		for (; o->nhashes <= entry; o->nhashes++)
			h[o->nhashes] = NULL;
		if (strcmp(name, MANIFEST_NAME) != 0 && !(h[entry] = manifest_hash_begin(name, size)))
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	}
	return o->hashes[entry] ? manifest_hash_put(o->hashes[entry], data, len, err) : LQ_OK;
}

static lq_status read_bundle(const char *path, output_files *o)
{
	o->b = bundle_create();
	if (!o->b) {
		cli_error("out of memory");
		return LQ_ERR_NOMEM;
	}
	lq_status st = bundle_open_visit(o->b, path, hash_entry, o);
	if (st != LQ_OK) {
		cli_error("%s", bundle_error(o->b));
		return st;
	}
	size_t cap = 0;
	for (size_t i = 0; i < bundle_count(o->b); i++) {
		const bundle_entry *e = bundle_entry_at(o->b, i);
		if (strcmp(e->name, MANIFEST_NAME) == 0) {
			if (e->head_len != e->size || e->size > MANIFEST_MAX_SIZE || !(o->manifest = malloc((size_t)e->size + 1))) {
				cli_error("%s: cannot read its MANIFEST", path);
				return LQ_ERR_CORRUPT;
			}
			memcpy(o->manifest, e->head, (size_t)e->size);
			o->manifest[e->size] = '\0';
			o->manifest_len = (size_t)e->size;
			continue;
		}
		if (!grow(o, &cap)) {
			cli_error("out of memory");
			return LQ_ERR_NOMEM;
		}
		/* every entry was hashed by the scan (bundle.h: each is visited, an empty one too) */
		if (i >= o->nhashes || !o->hashes[i]) {
			char q[512];
			cli_error("%s: entry '%s' was not hashed by the scan", path, fmt_quote(e->name, q, sizeof q));
			return LQ_ERR_ARG;
		}
		o->paths[o->n] = NULL;
		o->names[o->n] = strdup(e->name);
		o->files[o->n] = (manifest_file){.path = o->names[o->n], .size = e->size, .hashed = o->hashes[i]};
		if (!o->names[o->n++]) {
			cli_error("out of memory");
			return LQ_ERR_NOMEM;
		}
	}
	return LQ_OK;
}

typedef struct found {
	cJSON *list; /* --json */
	size_t count;
} found;

/* Text from the manifest (names, the tool and version it claims: a bundle's author wrote it) on a
 * terminal: controls, C1 ones too, and bidirectional overrides as '?' (qi_plain_text). */
static void print_plain(const char *s)
{
	char *t = malloc(strlen(s) + 1);
	fputs(t ? qi_plain_text(s, t) : "?", stdout);
	free(t);
}

static void report(void *arg, const char *message)
{
	found *f = arg;
	f->count++;
	if (f->list) {
		cJSON_AddItemToArray(f->list, cJSON_CreateString(message));
		return;
	}
	fputs("MISMATCH ", stdout);
	print_plain(message);
	fputs("\n", stdout);
}

int qi_verify(const char *path, bool json)
{
	output_files o = {0};
	struct stat sb;
	bool compressed;
	lq_status st;
	if (stat(path, &sb) != 0) {
		cli_error("cannot open '%s': %s", path, strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	size_t cap = 0;
	if (S_ISDIR(sb.st_mode))
		st = read_dir(path, "", 0, &o, &cap);
	else if (bundle_path_is_bundle(path, &compressed))
		st = read_bundle(path, &o);
	else {
		cli_error("'%s': --verify takes a model directory or a bundle (.tar.zst, .tar)", path);
		return CLI_EXIT_FAILURE;
	}
	int status = CLI_EXIT_FAILURE;
	if (st != LQ_OK)
		goto done;
	if (!o.manifest) {
		cli_error("'%s' has no MANIFEST to verify against", path);
		goto done;
	}
	qsort(o.files, o.n, sizeof *o.files, by_path); /* for the order of the messages; args travel with them */
	found f = {.list = json ? cJSON_CreateArray() : NULL};
	for (size_t i = 0; i < o.nextra; i++)
		report(&f, o.extra[i]);
	char *tool = NULL, *version = NULL, err[FMT_ERRBUF] = "";
	size_t mismatches = 0;
	st = manifest_verify(o.manifest, o.manifest_len, o.files, o.n, report, &f, &mismatches, &tool, &version, err);
	if (st != LQ_OK) {
		cli_error("%s: %s", path, err);
		cJSON_Delete(f.list);
		goto done;
	}
	bool ok = f.count == 0;
	if (json) {
		cJSON *root = cJSON_CreateObject();
		cJSON_AddBoolToObject(root, "verified", ok);
		cJSON_AddStringToObject(root, "path", path);
		cJSON_AddStringToObject(root, "tool", tool ? tool : "");
		cJSON_AddStringToObject(root, "version", version ? version : "");
		cJSON_AddNumberToObject(root, "files", (double)o.n);
		cJSON_AddItemToObject(root, "mismatches", f.list);
		char *text = cJSON_Print(root);
		if (text)
			printf("%s\n", text);
		free(text);
		cJSON_Delete(root);
	} else if (ok) {
		printf("%s: OK: %zu files match its MANIFEST (made by ", path, o.n);
		print_plain(tool ? tool : "?");
		fputs(" ", stdout);
		print_plain(version ? version : "?");
		fputs(")\n", stdout);
	}
	if (!ok)
		cli_error("%s: %zu mismatch%s with its MANIFEST", path, f.count, f.count == 1 ? "" : "es");
	status = ok ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
	free(tool);
	free(version);
done:
	output_free(&o);
	return status;
}
