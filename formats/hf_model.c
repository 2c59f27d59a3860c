/* hf_model.c: reading a Hugging Face model directory (hf_model.h). */
#include "hf_model.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"

hf_model *hf_model_create(void)
{
	return calloc(1, sizeof(hf_model));
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void hf_model_free(hf_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nshards; i++) {
		free(m->shards[i].name);
		free(m->shards[i].path);
		st_file_free(m->shards[i].st);
		free(m->shards[i].ref);
	}
	free(m->shards);
	free(m->input);
	free(m->dir);
	bundle_free(m->bundle);
	free(m->config_text);
	cJSON_Delete(m->config);
	free_list(m->carry, m->ncarry);
	free_list(m->skipped, m->nskipped);
	free(m);
}

/* "ARCHIVE:NAME", how messages name a bundle's entry. */
static char *entry_display(const hf_model *m, const char *name)
{
	size_t n = strlen(m->input) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s:%s", m->input, name);
	return p;
}

static lq_status add_bundle_shard(hf_model *m, hf_shard *sh)
{
	int64_t e = bundle_find(m->bundle, sh->name);
	if (e < 0)
		return fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: shard '%s'%s is not in the archive", m->input, sh->name,
				m->sharded ? " named by the index" : "");
	sh->ref = malloc(sizeof *sh->ref);
	if (!sh->ref)
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	*sh->ref = (bundle_entry_ref){m->bundle, (size_t)e};
	lq_status st = st_file_open_reader(sh->st, sh->path, bundle_entry_at(m->bundle, (size_t)e)->size,
					   bundle_entry_read, sh->ref);
	return st == LQ_OK ? LQ_OK : fmt_fail(m->err, st, "%s", st_file_error(sh->st));
}

static lq_status add_shard(hf_model *m, const char *name)
{
	hf_shard *s = realloc(m->shards, (m->nshards + 1) * sizeof *s);
	if (!s)
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	m->shards = s;
	hf_shard *sh = &m->shards[m->nshards];
	memset(sh, 0, sizeof *sh);
	sh->name = strdup(name);
	sh->path = m->bundle ? entry_display(m, name) : m->dir ? fmt_join(m->dir, "/", name) : strdup(name);
	sh->st = st_file_create();
	m->nshards++;
	if (!sh->name || !sh->path || !sh->st)
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	if (m->bundle)
		return add_bundle_shard(m, sh);
	lq_status st = st_file_open(sh->st, sh->path);
	if (st != LQ_OK) {
		if (st == LQ_ERR_IO && m->sharded && access(sh->path, F_OK) != 0)
			return fmt_fail(m->err, LQ_ERR_IO, "shard '%s' named by the index is missing: %s", sh->path,
					strerror(errno));
		return fmt_fail(m->err, st, "%s", st_file_error(sh->st));
	}
	return LQ_OK;
}

/* The loader's rules for a shard name: relative, inside the directory, a .safetensors file. */
static bool shard_name_ok(const char *name)
{
	if (!*name || name[0] == '/' || name[0] == '\\' || strchr(name, '\\') || (name[1] == ':'))
		return false;
	if (!fmt_ends_with(name, ".safetensors"))
		return false;
	const char *p = name;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if ((len == 2 && p[0] == '.' && p[1] == '.') || len == 0)
			return false;
		p += len + (slash ? 1 : 0);
	}
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c < 0x20)
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The index's text, from the directory or the bundle (a malloc'd copy either way). */
static lq_status read_model_file(hf_model *m, const char *path, const char *name, size_t limit, char **text,
				 size_t *len)
{
	if (!m->bundle)
		return fmt_read_small(path, limit, text, len, m->err);
	int64_t e = bundle_find(m->bundle, name);
	const bundle_entry *be = e >= 0 ? bundle_entry_at(m->bundle, (size_t)e) : NULL;
	if (!be)
		return fmt_fail(m->err, LQ_ERR_IO, "%s: no %s in the archive", m->input, name);
	if (be->size > limit || be->head_len != be->size)
		return fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: larger than %zu bytes", path, limit);
	*text = malloc((size_t)be->size + 1);
	if (!*text)
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	memcpy(*text, be->head, (size_t)be->size);
	(*text)[be->size] = '\0';
	*len = (size_t)be->size;
	return LQ_OK;
}

static lq_status open_index(hf_model *m, const char *index_path)
{
	char *text;
	size_t len;
	lq_status st = read_model_file(m, index_path, HF_INDEX_NAME, 256u << 20, &text, &len);
	if (st != LQ_OK)
		return st;
	cJSON *root = cJSON_ParseWithLength(text, len);
	free(text);
	if (!root)
		return fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: not valid JSON", index_path);
	const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	if (!cJSON_IsObject(map)) {
		cJSON_Delete(root);
		return fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: no \"weight_map\" object", index_path);
	}
	/* the distinct shard names, sorted */
	size_t n = (size_t)cJSON_GetArraySize(map), nnames = 0;
	if (n == 0) {
		/* transformers writes no index for a model without tensors: an empty map is a broken index, and
		 * would give an empty model */
		cJSON_Delete(root);
		return fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: \"weight_map\" names no tensor", index_path);
	}
	char **names = calloc(n ? n : 1, sizeof *names);
	if (!names) {
		cJSON_Delete(root);
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	}
	const cJSON *e;
	st = LQ_OK;
	cJSON_ArrayForEach(e, map)
	{
		char q[160], q2[160];
		if (!cJSON_IsString(e)) {
			st = fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: tensor '%s' maps to something other than a file name",
				      index_path, fmt_quote(e->string, q, sizeof q));
			break;
		}
		if (!shard_name_ok(e->valuestring)) {
			st = fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: tensor '%s': shard name '%s' is not a .safetensors file "
				      "inside the model directory", index_path, fmt_quote(e->string, q, sizeof q),
				      fmt_quote(e->valuestring, q2, sizeof q2));
			break;
		}
		names[nnames++] = e->valuestring;
	}
	if (st == LQ_OK) {
		qsort(names, nnames, sizeof *names, cmp_str);
		for (size_t i = 0; i < nnames && st == LQ_OK; i++)
			if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
				st = add_shard(m, names[i]);
	}
	free(names);
	if (st != LQ_OK) {
		cJSON_Delete(root);
		return st;
	}
	/* every indexed tensor in its shard */
	cJSON_ArrayForEach(e, map)
	{
		hf_shard *sh = NULL;
		for (size_t i = 0; i < m->nshards && !sh; i++)
			if (strcmp(m->shards[i].name, e->valuestring) == 0)
				sh = &m->shards[i];
		if (!st_file_find(sh->st, e->string)) {
			char q[160];
			st = fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: tensor '%s' is listed in shard '%s' but that shard does "
				      "not hold it", index_path, fmt_quote(e->string, q, sizeof q), sh->name);
			break;
		}
	}
	/* no tensor in two shards; count those the index leaves out */
	for (size_t i = 0; i < m->nshards && st == LQ_OK; i++)
		for (size_t k = 0; k < m->shards[i].st->ntensors && st == LQ_OK; k++) {
			const char *name = m->shards[i].st->tensors[k].name;
			for (size_t j = i + 1; j < m->nshards; j++)
				if (st_file_find(m->shards[j].st, name)) {
					char q[160];
					st = fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: tensor '%s' appears in shard '%s' and in "
						      "shard '%s'", index_path, fmt_quote(name, q, sizeof q),
						      m->shards[i].name, m->shards[j].name);
					break;
				}
			if (st == LQ_OK && !cJSON_GetObjectItemCaseSensitive(map, name))
				m->unindexed++;
		}
	cJSON_Delete(root);
	return st;
}

static bool is_weight_file(const char *name)
{
	static const char *const ext[] = {".safetensors", ".index.json", ".bin", ".pt", ".pth", ".ckpt",
					  ".h5", ".msgpack", ".gguf", ".onnx", ".ot", ".tflite"};
	for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
		if (fmt_ends_with(name, ext[i]))
			return true;
	return false;
}

static lq_status push(char ***list, size_t *n, const char *s)
{
	char **l = realloc(*list, (*n + 1) * sizeof *l);
	if (!l)
		return LQ_ERR_NOMEM;
	*list = l;
	if (!(l[*n] = strdup(s)))
		return LQ_ERR_NOMEM;
	(*n)++;
	return LQ_OK;
}

/* ------------------------------------------------------------------------------ carried files */

/* What decides, for a file of the model directory, whether it is carried: the sentence-transformers
 * module folders (their weights are the modules' own, loaded by sentence-transformers with torch, and
 * carried as they are), the shards of the model (rewritten, never carried). */
typedef struct carry_rules {
	char **modules; /* the folders modules.json names ("1_Pooling", "2_Dense"), sorted */
	size_t nmodules;
} carry_rules;

static void rules_free(carry_rules *r)
{
	free_list(r->modules, r->nmodules);
}

/* A folder name as modules.json gives it ("./2_Dense/" or "2_Dense"), cleaned, or NULL when it names no
 * folder inside the model directory (empty: the root module, or absolute, or with a ".." component). */
static char *module_folder(const char *path)
{
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	size_t len = strlen(path);
	while (len > 0 && path[len - 1] == '/')
		len--;
	if (len == 0 || len > 4096 || path[0] == '/')
		return NULL;
	char *f = strndup(path, len);
	for (char *p = f; f && *p;) {
		size_t k = strcspn(p, "/");
		if (k == 0 || (k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.') || strchr(p, '\\')) {
			free(f);
			return NULL;
		}
		p += k + (p[k] ? 1 : 0);
	}
	return f;
}

/* modules.json (sentence-transformers): a list of {"path": "1_Pooling", ...}. Anything else, or none,
 * names no module: its folders' weights are then left out like any other copy of weights, and said so. */
static lq_status read_modules(hf_model *m, carry_rules *r)
{
	char *text = NULL;
	size_t len = 0;
	char err[FMT_ERRBUF];
	if (m->bundle) {
		int64_t e = bundle_find(m->bundle, HF_MODULES_NAME);
		const bundle_entry *be = e >= 0 ? bundle_entry_at(m->bundle, (size_t)e) : NULL;
		if (!be || be->head_len != be->size || be->size > HF_MODULES_LIMIT)
			return LQ_OK;
		text = strndup(be->head, (size_t)be->size);
		len = (size_t)be->size;
		if (!text)
			return LQ_ERR_NOMEM;
	} else {
		char *path = fmt_join(m->dir, "/", HF_MODULES_NAME);
		if (!path)
			return LQ_ERR_NOMEM;
		struct stat sb;
		lq_status st = stat(path, &sb) == 0 && S_ISREG(sb.st_mode)
				       ? fmt_read_small(path, HF_MODULES_LIMIT, &text, &len, err)
				       : LQ_ERR_IO;
		free(path);
		if (st == LQ_ERR_NOMEM)
			return st;
		if (st != LQ_OK)
			return LQ_OK;
	}
	cJSON *root = cJSON_ParseWithLength(text, len);
	free(text);
	const cJSON *mod, *list = cJSON_IsArray(root) ? root : NULL;
	lq_status st = LQ_OK;
	cJSON_ArrayForEach(mod, list)
	{
		const cJSON *path = cJSON_GetObjectItemCaseSensitive(mod, "path");
		char *f = cJSON_IsString(path) ? module_folder(path->valuestring) : NULL;
		if (f && r->nmodules < 1024 && (st = push(&r->modules, &r->nmodules, f)) != LQ_OK) {
			free(f);
			break;
		}
		free(f);
	}
	cJSON_Delete(root);
	if (st == LQ_OK && r->nmodules > 1)
		qsort(r->modules, r->nmodules, sizeof *r->modules, cmp_str);
	return st;
}

/* Whether relative path `name` lies in a module folder. */
static bool in_module(const carry_rules *r, const char *name)
{
	for (size_t i = 0; i < r->nmodules; i++) {
		size_t k = strlen(r->modules[i]);
		if (strncmp(name, r->modules[i], k) == 0 && name[k] == '/')
			return true;
	}
	return false;
}

/* "model-00003-of-00005.safetensors" taken apart: the text before "-00003", and 5. */
static bool shard_series(const char *name, size_t *prefix, unsigned long *total)
{
	size_t n = strlen(name), k = strlen(".safetensors");
	if (!fmt_ends_with(name, ".safetensors"))
		return false;
	const char *of = NULL;
	for (const char *p = name; (p = strstr(p, "-of-")) != NULL; p++)
		of = p;
	if (!of || of + 4 >= name + n - k)
		return false;
	const char *d = of;
	while (d > name && d[-1] >= '0' && d[-1] <= '9')
		d--;
	if (d == of || d == name || d[-1] != '-')
		return false;
	char *end;
	*total = strtoul(of + 4, &end, 10);
	if (end != name + n - k)
		return false;
	*prefix = (size_t)(d - 1 - name);
	return true;
}

/* Whether `name`, a .safetensors file the index does not name, belongs to the series of shards it does
 * name ("model-00003-of-00003.safetensors" beside an index of model-00001-of-00003 and model-00002-of-00003):
 * then the index is incomplete. */
static bool left_out_shard(const hf_model *m, const char *name)
{
	size_t prefix, sp;
	unsigned long total, stotal;
	if (!m->sharded || !shard_series(name, &prefix, &total))
		return false;
	for (size_t s = 0; s < m->nshards; s++)
		if (shard_series(m->shards[s].name, &sp, &stotal) && sp == prefix && stotal == total &&
		    strncmp(m->shards[s].name, name, prefix) == 0)
			return true;
	return false;
}

/* A module's .safetensors weights are carried as they are, but the output's MANIFEST lists their
 * tensors: a header that does not parse is refused now, not after the conversion. */
static lq_status check_carried_weights(hf_model *m, const char *name)
{
	st_file *f = st_file_create();
	if (!f)
		return LQ_ERR_NOMEM;
	lq_status st;
	char *path = m->bundle ? entry_display(m, name) : fmt_join(m->dir, "/", name);
	if (!path) {
		st = LQ_ERR_NOMEM;
	} else if (m->bundle) {
		const bundle_entry *be = bundle_entry_at(m->bundle, (size_t)bundle_find(m->bundle, name));
		st = st_file_parse(f, be->head, (size_t)be->head_len, be->size, path);
	} else {
		st = st_file_open(f, path);
	}
	if (st != LQ_OK && st != LQ_ERR_NOMEM)
		st = fmt_fail(m->err, st == LQ_ERR_IO ? LQ_ERR_IO : LQ_ERR_CORRUPT, "%s", st_file_error(f));
	free(path);
	st_file_free(f);
	return st;
}

/* The rule for a regular file at relative path `name`: carried (pushed to m->carry), or left out with
 * the reason in note, or neither (config.json, the model's own shards and index: rewritten). LQ_ERR_CORRUPT
 * for a shard the index leaves out. */
static lq_status carry_or_note(hf_model *m, const carry_rules *r, const char *name, char *note, size_t size)
{
	char q[256];
	note[0] = '\0';
	bool top = !strchr(name, '/');
	if (top && strcmp(name, "config.json") == 0)
		return LQ_OK; /* rewritten */
	if (top && strcmp(name, "MANIFEST") == 0) {
		snprintf(note, size, "MANIFEST: the input's manifest (the output gets its own)");
		return LQ_OK;
	}
	fmt_quote(name, q, sizeof q);
	bool ours = top && strcmp(name, HF_INDEX_NAME) == 0;
	for (size_t s = 0; s < m->nshards && !ours; s++)
		ours = strcmp(m->shards[s].name, name) == 0;
	if (ours)
		return LQ_OK;
	if (is_weight_file(name) && !in_module(r, name)) {
		if (left_out_shard(m, name))
			return fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: '%s' is a shard of the model that the index does not "
					"name: the index is incomplete, and its tensors would be left out", m->input, q);
		snprintf(note, size, "%s: weights in another file%s", q,
			 fmt_ends_with(name, ".safetensors") && m->sharded ? " (the index does not name it; not read)" : "");
		return LQ_OK;
	}
	lq_status st = fmt_ends_with(name, ".safetensors") ? check_carried_weights(m, name) : LQ_OK;
	return st == LQ_OK ? push(&m->carry, &m->ncarry, name) : st;
}

/* How many folders the name lies in, and the length of its part up to its first hidden component
 * (".git", ".cache"; 0 when none is). */
static size_t hidden_prefix(const char *name, size_t *depth)
{
	size_t hidden = 0;
	*depth = 0;
	for (const char *p = name;; p++) {
		size_t k = strcspn(p, "/");
		if (!hidden && *p == '.')
			hidden = (size_t)(p - name) + k;
		p += k;
		if (!*p)
			return hidden;
		(*depth)++;
	}
}

/* A bundle's other entries, by the rules of a directory's (the bundle holds regular files only). */
static lq_status list_carried_bundle(hf_model *m)
{
	carry_rules r = {0};
	lq_status st = read_modules(m, &r);
	char said[512] = ""; /* the hidden folder last said, once for all its files */
	for (size_t i = 0; i < bundle_count(m->bundle) && st == LQ_OK; i++) {
		const char *name = bundle_entry_at(m->bundle, i)->name;
		char note[HF_NOTE_MAX], q[256];
		size_t depth, hidden = hidden_prefix(name, &depth);
		note[0] = '\0';
		if (hidden && name[hidden] == '/') {
			fmt_quote_n(name, hidden, q, sizeof q);
			if (strcmp(q, said) != 0)
				snprintf(note, sizeof note, "%s/: hidden", q);
			snprintf(said, sizeof said, "%s", q);
		} else if (hidden) {
			snprintf(note, sizeof note, "%s: hidden", fmt_quote(name, q, sizeof q));
		} else if (depth > HF_CARRY_DEPTH) {
			snprintf(note, sizeof note, "%s: deeper than %d folders", fmt_quote(name, q, sizeof q), HF_CARRY_DEPTH);
		} else {
			st = carry_or_note(m, &r, name, note, sizeof note);
		}
		if (st == LQ_OK && note[0])
			st = push(&m->skipped, &m->nskipped, note);
	}
	rules_free(&r);
	return st != LQ_ERR_NOMEM ? st : fmt_fail(m->err, st, "out of memory");
}

/* A bundle: the model directory's files are its entries. */
static lq_status open_bundle(hf_model *m)
{
	m->bundle = bundle_create();
	if (!m->bundle)
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	lq_status st = bundle_open(m->bundle, m->input);
	if (st != LQ_OK)
		return fmt_fail(m->err, st, "%s", bundle_error(m->bundle));
	m->is_model_dir = true;
	if (bundle_find(m->bundle, HF_INDEX_NAME) >= 0) {
		m->sharded = true;
		char *shown = entry_display(m, HF_INDEX_NAME);
		st = shown ? open_index(m, shown) : fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
		free(shown);
	} else if (bundle_find(m->bundle, HF_SINGLE_NAME) >= 0) {
		st = add_shard(m, HF_SINGLE_NAME);
	} else {
		st = fmt_fail(m->err, LQ_ERR_IO, "%s: the archive holds no %s or %s", m->input, HF_SINGLE_NAME,
			      HF_INDEX_NAME);
	}
	if (st != LQ_OK)
		return st;
	if (bundle_find(m->bundle, "config.json") >= 0) {
		char *shown = entry_display(m, "config.json");
		if (!shown)
			return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
		st = read_model_file(m, shown, "config.json", 64u << 20, &m->config_text, &m->config_len);
		if (st == LQ_OK) {
			m->config = cJSON_ParseWithLength(m->config_text, m->config_len);
			if (!m->config || !cJSON_IsObject(m->config))
				st = fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: not a JSON object", shown);
		}
		free(shown);
		if (st != LQ_OK)
			return st;
	}
	return list_carried_bundle(m);
}

/* "-": one safetensors file on standard input. */
static lq_status open_stream(hf_model *m)
{
	m->sharded = false;
	m->shards = calloc(1, sizeof *m->shards);
	if (!m->shards)
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	m->nshards = 1;
	m->shards[0].name = strdup("-");
	m->shards[0].path = strdup("standard input");
	m->shards[0].st = st_file_create();
	if (!m->shards[0].name || !m->shards[0].path || !m->shards[0].st)
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	lq_status st = st_file_open_stream(m->shards[0].st, STDIN_FILENO, m->shards[0].path);
	return st == LQ_OK ? LQ_OK : fmt_fail(m->err, st, "%s", st_file_error(m->shards[0].st));
}

bool hf_model_is_stream(const hf_model *m)
{
	return m->input && strcmp(m->input, "-") == 0 && !m->dir;
}

uint64_t hf_model_carried_size(const hf_model *m, size_t i)
{
	if (m->bundle) {
		int64_t e = bundle_find(m->bundle, m->carry[i]);
		return e >= 0 ? bundle_entry_at(m->bundle, (size_t)e)->size : 0;
	}
	struct stat sb;
	char *path = fmt_join(m->dir, "/", m->carry[i]);
	uint64_t size = path && stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	free(path);
	return size;
}

/* What a directory walk needs: where the model directory really is, and, when it is a snapshot of the
 * Hugging Face cache (".../models--org--name/snapshots/REV", whose files are symbolic links to
 * "../../blobs/HASH"), the real path of that blobs directory. */
typedef struct walk {
	hf_model *m;
	carry_rules rules;
	char *real;  /* realpath of the model directory */
	char *blobs; /* realpath of the cache's blobs directory, or NULL */
} walk;

static lq_status notef(hf_model *m, const char *fmt, ...) FMT_PRINTF(2, 3);

/* One entry left out, with why. */
static lq_status notef(hf_model *m, const char *fmt, ...)
{
	char buf[HF_NOTE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return push(&m->skipped, &m->nskipped, buf);
}

/* Whether real path `p` lies inside directory `dir` (a real path too). */
static bool under(const char *p, const char *dir)
{
	size_t k = dir ? strlen(dir) : 0;
	return dir && strncmp(p, dir, k) == 0 && (p[k] == '/' || (k == 1 && dir[0] == '/'));
}

static void find_blobs(walk *w)
{
	char *copy = strdup(w->real);
	if (!copy)
		return;
	char *slash = strrchr(copy, '/');
	if (slash && slash != copy) {
		*slash = '\0'; /* .../snapshots */
		char *s2 = strrchr(copy, '/');
		if (s2 && strcmp(s2 + 1, "snapshots") == 0) {
			strcpy(s2 + 1, "blobs");
			w->blobs = realpath(copy, NULL);
		}
	}
	free(copy);
}

static lq_status walk_dir(walk *w, const char *rel, int depth);

/* One entry of a folder being walked (rel: its path in the model directory, depth: the folders it lies
 * in). */
static lq_status walk_entry(walk *w, const char *rel, int depth)
{
	hf_model *m = w->m;
	const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	char *path = fmt_join(m->dir, "/", rel), *target = NULL;
	if (!path)
		return LQ_ERR_NOMEM;
	char q[256], q2[256];
	fmt_quote(rel, q, sizeof q);
	lq_status st;
	struct stat sb, tb;
	bool exists = lstat(path, &sb) == 0, link = exists && S_ISLNK(sb.st_mode);
	if (base[0] == '.') {
		st = notef(m, "%s%s: hidden", q, exists && S_ISDIR(sb.st_mode) ? "/" : "");
	} else if (!exists) {
		st = notef(m, "%s: %s", q, strerror(errno));
	} else if (S_ISDIR(sb.st_mode)) {
		size_t before = m->ncarry + m->nskipped;
		if (depth >= HF_CARRY_DEPTH)
			st = notef(m, "%s/: deeper than %d folders", q, HF_CARRY_DEPTH);
		else if ((st = walk_dir(w, rel, depth + 1)) == LQ_OK && m->ncarry + m->nskipped == before)
			st = notef(m, "%s/: an empty folder", q);
	} else if (link && !(target = realpath(path, NULL))) {
		st = notef(m, "%s: a symbolic link that leads nowhere (%s)", q, strerror(errno));
	} else if (link && !under(target, w->real) && !under(target, w->blobs)) {
		/* followed only where it stays in the model directory, or leads from a cache snapshot to its blob:
		 * a link anywhere else could copy a file from outside the model (a key, /etc/...) into the output */
		st = notef(m, "%s: a symbolic link that leads outside the model directory (to '%s')", q,
			   fmt_quote(target, q2, sizeof q2));
	} else if (link && stat(target, &tb) != 0) {
		st = notef(m, "%s: %s", q, strerror(errno));
	} else if (link && S_ISDIR(tb.st_mode)) {
		st = notef(m, "%s: a symbolic link to a folder (not followed)", q);
	} else if (!S_ISREG(link ? tb.st_mode : sb.st_mode)) {
		st = notef(m, "%s: not a regular file", q);
	} else {
		char buf[HF_NOTE_MAX];
		st = carry_or_note(m, &w->rules, rel, buf, sizeof buf);
		if (st == LQ_OK && buf[0])
			st = push(&m->skipped, &m->nskipped, buf);
	}
	free(target);
	free(path);
	return st;
}

/* The entries of folder `rel` ("" the model directory itself), in name order. */
static lq_status walk_dir(walk *w, const char *rel, int depth)
{
	hf_model *m = w->m;
	char *path = *rel ? fmt_join(m->dir, "/", rel) : strdup(m->dir);
	DIR *d = path ? opendir(path) : NULL;
	if (!d) {
		char q[256];
		lq_status st = !path ? LQ_ERR_NOMEM
			       : *rel ? notef(m, "%s/: cannot be read (%s)", fmt_quote(rel, q, sizeof q), strerror(errno))
				      : fmt_fail(m->err, LQ_ERR_IO, "cannot read directory '%s': %s", m->dir, strerror(errno));
		free(path);
		return st;
	}
	free(path);
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	lq_status st = LQ_OK;
	while ((de = readdir(d)) && st == LQ_OK)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			st = push(&names, &n, de->d_name);
	closedir(d);
	if (st == LQ_OK && n > 1)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n && st == LQ_OK; i++) {
		char *sub = *rel ? fmt_join(rel, "/", names[i]) : strdup(names[i]);
		st = sub ? walk_entry(w, sub, depth) : LQ_ERR_NOMEM;
		free(sub);
	}
	free_list(names, n);
	return st;
}

/* The directory's other files, its folders' included (sentence-transformers keeps modules in
 * 1_Pooling/, 2_Dense/): carried over unless they are weights (stale copies in another form, or shards
 * the index leaves out; a module folder's own weights are carried), hidden (.git, .cache of
 * huggingface_hub), not regular files, links that lead out of the model directory, or deeper than
 * HF_CARRY_DEPTH folders. Each entry left out gets a note. */
static lq_status list_carried(hf_model *m)
{
	walk w = {.m = m};
	if (!(w.real = realpath(m->dir, NULL)))
		return fmt_fail(m->err, LQ_ERR_IO, "cannot read directory '%s': %s", m->dir, strerror(errno));
	find_blobs(&w);
	lq_status st = read_modules(m, &w.rules);
	if (st == LQ_OK)
		st = walk_dir(&w, "", 0);
	rules_free(&w.rules);
	free(w.real);
	free(w.blobs);
	return st != LQ_ERR_NOMEM ? st : fmt_fail(m->err, st, "out of memory");
}

lq_status hf_model_open(hf_model *m, const char *input)
{
	m->err[0] = '\0';
	m->input = strdup(input);
	if (!m->input)
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	if (strcmp(input, "-") == 0)
		return open_stream(m);
	struct stat sb;
	bool compressed;
	if (stat(input, &sb) == 0 && S_ISREG(sb.st_mode) && bundle_path_is_bundle(input, &compressed))
		return open_bundle(m);
	if (stat(input, &sb) != 0)
		return fmt_fail(m->err, LQ_ERR_IO, "cannot open '%s': %s", input, strerror(errno));
	char *index = NULL;
	lq_status st;
	if (S_ISDIR(sb.st_mode)) {
		m->dir = strdup(input);
		m->is_model_dir = true;
		char *ip = fmt_join(input, "/", HF_INDEX_NAME), *sp = fmt_join(input, "/", HF_SINGLE_NAME);
		if (!m->dir || !ip || !sp) {
			free(ip);
			free(sp);
			return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
		}
		if (access(ip, F_OK) == 0) {
			index = ip;
			free(sp);
		} else if (access(sp, F_OK) == 0) {
			free(ip);
			free(sp);
			m->sharded = false;
			st = add_shard(m, HF_SINGLE_NAME);
			if (st != LQ_OK)
				return st;
		} else {
			free(ip);
			free(sp);
			char *bin = fmt_join(input, "/", "pytorch_model.bin");
			bool pickled = bin && access(bin, F_OK) == 0;
			free(bin);
			return fmt_fail(m->err, LQ_ERR_IO, "'%s' holds no %s or %s%s", input, HF_SINGLE_NAME, HF_INDEX_NAME,
					pickled ? " (only pickled pytorch_model.bin, which is never unpickled here: convert "
						  "it to safetensors first)" : "");
		}
	} else if (fmt_ends_with(input, ".index.json")) {
		char *copy = strdup(input);
		if (!copy)
			return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
		m->dir = strdup(dirname(copy));
		free(copy);
		m->is_model_dir = true;
		index = strdup(input);
		if (!m->dir || !index) {
			free(index);
			return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
		}
	} else {
		/* a bare tensor file: no config, nothing to carry */
		m->sharded = false;
		m->shards = calloc(1, sizeof *m->shards);
		if (!m->shards)
			return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
		m->nshards = 1;
		m->shards[0].name = strdup(input);
		m->shards[0].path = strdup(input);
		m->shards[0].st = st_file_create();
		if (!m->shards[0].name || !m->shards[0].path || !m->shards[0].st)
			return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
		st = st_file_open(m->shards[0].st, input);
		return st == LQ_OK ? LQ_OK : fmt_fail(m->err, st, "%s", st_file_error(m->shards[0].st));
	}
	if (index) {
		m->sharded = true;
		st = open_index(m, index);
		free(index);
		if (st != LQ_OK)
			return st;
	}
	char *cfg = fmt_join(m->dir, "/", "config.json");
	if (!cfg)
		return fmt_fail(m->err, LQ_ERR_NOMEM, "out of memory");
	if (access(cfg, F_OK) == 0) {
		st = fmt_read_small(cfg, 64u << 20, &m->config_text, &m->config_len, m->err);
		if (st == LQ_OK) {
			m->config = cJSON_ParseWithLength(m->config_text, m->config_len);
			if (!m->config || !cJSON_IsObject(m->config))
				st = fmt_fail(m->err, LQ_ERR_CORRUPT, "%s: not a JSON object", cfg);
		}
		if (st != LQ_OK) {
			free(cfg);
			return st;
		}
	}
	free(cfg);
	return list_carried(m);
}

uint64_t hf_model_parameters(const hf_model *m)
{
	uint64_t n = 0;
	for (size_t s = 0; s < m->nshards; s++)
		for (size_t i = 0; i < m->shards[s].st->ntensors; i++)
			n += m->shards[s].st->tensors[i].nelem;
	return n;
}
