/*
 * hf_tensors.c: the logical tensors of a checkpoint (hf_tensors.h). Names are looked up through one
 * sorted index of every tensor of every shard, so a model of thousands of tensors costs n log n.
 */
#include "hf_tensors.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct named {
	const char *name;
	size_t shard;
	hf_ref r;
} named;

static int by_name(const void *a, const void *b)
{
	return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

static const named *lookup(const named *all, size_t n, const char *name)
{
	named key = {.name = name};
	return bsearch(&key, all, n, sizeof *all, by_name);
}


/* The quant_state of weight `name`, NF4's or FP4's, or NULL. */
static const named *state_of(const named *all, size_t n, const char *name)
{
	static const lq_qtype qtypes[] = {LQ_QTYPE_NF4, LQ_QTYPE_FP4};
	for (int q = 0; q < 2; q++) {
		char buf[BNB_NAME_MAX];
		if (!bnb_part_name(buf, sizeof buf, name, BNB_PART_QUANT_STATE, qtypes[q]))
			return NULL;
		const named *s = lookup(all, n, buf);
		if (s)
			return s;
	}
	return NULL;
}

/* Whether tensor `name` is a part of some group other than its codes. */
static bool is_secondary_part(const named *all, size_t n, const char *name)
{
	if (bnb_find_state_suffix(name))
		return true;
	static const char *const suffixes[] = {".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"};
	for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++)
		if (fmt_ends_with(name, suffixes[k])) {
			char weight[4096];
			size_t len = strlen(name) - strlen(suffixes[k]);
			if (len >= sizeof weight)
				return false;
			memcpy(weight, name, len);
			weight[len] = '\0';
			if (state_of(all, n, weight))
				return true;
		}
	return false;
}

lq_status hf_ref_read(const hf_ref *r, void **out, size_t *len, char *err)
{
	size_t n = (size_t)(r->t->end - r->t->begin);
	void *buf = malloc(n ? n : 1);
	if (!buf)
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	lq_status st = st_file_read(r->f, r->t, 0, buf, n);
	if (st != LQ_OK) {
		free(buf);
		return fmt_fail(err, st, "%s", st_file_error(r->f));
	}
	*out = buf;
	*len = n;
	return LQ_OK;
}

/* A stored map must be the one the kernels here decode with, bit for bit: bitsandbytes decodes a group
 * with the maps the checkpoint stores (quant_map for the 4-bit codes, nested_quant_map for the 8-bit
 * absmax), so a group with any other map would not come out as bitsandbytes gives it. */
static lq_status check_map(const hf_tensor *t, bnb_part part, const float *want, size_t n, const char *what,
			   char *err)
{
	void *bytes;
	size_t len;
	lq_status st = hf_ref_read(&t->parts[part], &bytes, &len, err);
	if (st != LQ_OK)
		return st;
	const unsigned char *b = bytes;
	for (size_t i = 0; i < n && st == LQ_OK; i++) {
		uint32_t got = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
			       (uint32_t)b[4 * i + 3] << 24, bits;
		memcpy(&bits, &want[i], 4);
		if (got != bits) {
			float g;
			memcpy(&g, &got, 4);
			char q[256];
			st = fmt_fail(err, LQ_ERR_UNSUPPORTED, "%s: tensor %s is not bitsandbytes' %s: its value %zu is %.9g "
				      "(0x%08" PRIx32 "), the map's %.9g (0x%08" PRIx32 "); bitsandbytes decodes with the map "
				      "stored, these tools only with the standard one", t->parts[part].f->path,
				      fmt_quote(t->parts[part].t->name, q, sizeof q), what, i, (double)g, got, (double)want[i],
				      bits);
		}
	}
	free(bytes);
	return st;
}

/* Parses a group's state and finds and checks its parts. */
static lq_status make_group(hf_tensor *t, const named *all, size_t n, const named *qs, char *err)
{
	char q[256];
	void *json;
	size_t len;
	lq_status st = hf_ref_read(&qs->r, &json, &len, err);
	if (st != LQ_OK)
		return st;
	char perr[FMT_ERRBUF];
	st = bnb_state_parse(json, len, &t->state, perr);
	free(json);
	if (st != LQ_OK)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: tensor %s: %s", qs->r.f->path, fmt_quote(qs->name, q, sizeof q), perr);
	const bnb_state *s = &t->state;
	t->quantized = true;
	t->dtype = s->dtype;
	t->ndim = s->ndim;
	memcpy(t->shape, s->shape, sizeof t->shape);
	uint64_t nelem = 1;
	for (int d = 0; d < s->ndim; d++) {
		if (s->shape[d] < 0 || (s->shape[d] && nelem > UINT64_MAX / 2 / (uint64_t)s->shape[d]))
			return fmt_fail(err, LQ_ERR_CORRUPT, "%s: tensor %s: the quant_state's shape is too large",
					qs->r.f->path, fmt_quote(qs->name, q, sizeof q));
		nelem *= (uint64_t)s->shape[d];
	}
	t->nelem = nelem;
	if (nelem > (uint64_t)INT64_MAX / 4)
		return fmt_fail(err, LQ_ERR_CORRUPT, "%s: tensor %s: the quant_state's shape is too large", qs->r.f->path,
				fmt_quote(qs->name, q, sizeof q));
	t->bytes = 0;
	for (int k = 0; k < BNB_NPARTS; k++) {
		if (!bnb_has_part(s, (bnb_part)k))
			continue;
		char name[BNB_NAME_MAX];
		const named *p = NULL;
		if (bnb_part_name(name, sizeof name, t->name, (bnb_part)k, s->qtype))
			p = k == BNB_PART_QUANT_STATE ? qs : lookup(all, n, name);
		if (!p)
			return fmt_fail(err, LQ_ERR_CORRUPT, "%s: the 4-bit tensor %s has no %s", qs->r.f->path,
					fmt_quote(t->name, q, sizeof q), k == BNB_PART_WEIGHT ? "codes" : name);
		/* the part as the state says it must be (the quant_state's own length is free: writers pad it) */
		st_dtype want_dt;
		int want_ndim;
		int64_t want[2];
		bnb_part_layout(s, (bnb_part)k, (int64_t)nelem, &want_dt, &want_ndim, want);
		const st_tensor *pt = p->r.t;
		uint64_t want_n = (uint64_t)want[0] * (want_ndim == 2 ? (uint64_t)want[1] : 1);
		bool ok = k == BNB_PART_QUANT_STATE ? pt->dtype == ST_U8
						    : pt->dtype == want_dt && pt->nelem == want_n;
		if (!ok)
			return fmt_fail(err, LQ_ERR_CORRUPT, "%s: tensor %s is %s with %" PRIu64 " elements; its quant_state "
					"says %s with %" PRIu64, p->r.f->path, fmt_quote(pt->name, q, sizeof q),
					st_dtype_name(pt->dtype), pt->nelem, st_dtype_name(want_dt), want_n);
		t->parts[k] = p->r;
		t->bytes += pt->end - pt->begin;
	}
	t->data = t->parts[BNB_PART_WEIGHT];
	st = check_map(t, BNB_PART_QUANT_MAP, lq_quant_map(s->qtype), 16,
		       s->qtype == LQ_QTYPE_FP4 ? "FP4 map (quant_map)" : "NF4 map (quant_map)", err);
	if (st == LQ_OK && s->double_quant)
		st = check_map(t, BNB_PART_NESTED_QUANT_MAP, lq_dynamic_map(), 256, "dynamic map (nested_quant_map)", err);
	return st;
}

lq_status hf_tensors_list(const hf_model *m, hf_tensors *ts, char *err)
{
	memset(ts, 0, sizeof *ts);
	size_t total = 0;
	for (size_t s = 0; s < m->nshards; s++)
		total += m->shards[s].st->ntensors;
	named *all = malloc((total ? total : 1) * sizeof *all);
	ts->v = calloc(total ? total : 1, sizeof *ts->v);
	if (!all || !ts->v) {
		free(all);
		hf_tensors_free(ts);
		return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
	}
	size_t n = 0;
	for (size_t s = 0; s < m->nshards; s++)
		for (size_t i = 0; i < m->shards[s].st->ntensors; i++)
			all[n++] = (named){m->shards[s].st->tensors[i].name, s, {m->shards[s].st, &m->shards[s].st->tensors[i]}};
	qsort(all, n, sizeof *all, by_name);
	lq_status st = LQ_OK;
	for (size_t s = 0; s < m->nshards && st == LQ_OK; s++) {
		st_file *f = m->shards[s].st;
		for (size_t i = 0; i < f->ntensors && st == LQ_OK; i++) {
			const st_tensor *t = &f->tensors[i];
			if (is_secondary_part(all, n, t->name)) {
				ts->any_quantized = true;
				continue;
			}
			hf_tensor *h = &ts->v[ts->n++];
			*h = (hf_tensor){.name = t->name, .shard = s, .data = {f, t}, .ndim = t->ndim, .nelem = t->nelem,
					 .bytes = t->end - t->begin};
			memcpy(h->shape, t->shape, sizeof h->shape[0] * (size_t)(t->ndim < BNB_MAX_DIMS ? t->ndim : BNB_MAX_DIMS));
			lq_dtype dt;
			h->dtype = st_dtype_to_lq(t->dtype, &dt) && dt != LQ_DTYPE_U8 ? dt : LQ_DTYPE_U8;
			const named *qs = state_of(all, n, t->name);
			if (qs)
				st = make_group(h, all, n, qs, err);
		}
	}
	/* a part whose group lacks its codes: a quant_state whose weight is not there */
	for (size_t i = 0; i < n && st == LQ_OK; i++) {
		const char *tag = bnb_find_state_suffix(all[i].name);
		if (!tag)
			continue;
		char weight[4096];
		size_t len = (size_t)(tag - all[i].name);
		if (len >= sizeof weight)
			continue;
		memcpy(weight, all[i].name, len);
		weight[len] = '\0';
		if (!lookup(all, n, weight)) {
			char q[256];
			st = fmt_fail(err, LQ_ERR_CORRUPT, "%s: tensor %s has no codes tensor %s", all[i].r.f->path,
				      fmt_quote(all[i].name, q, sizeof q), weight);
		}
	}
	free(all);
	if (st != LQ_OK)
		hf_tensors_free(ts);
	return st;
}

void hf_tensors_free(hf_tensors *ts)
{
	free(ts->v);
	memset(ts, 0, sizeof *ts);
}

const hf_tensor *hf_tensors_find(const hf_tensors *ts, const char *name)
{
	for (size_t i = 0; i < ts->n; i++)
		if (strcmp(ts->v[i].name, name) == 0)
			return &ts->v[i];
	return NULL;
}

int hf_layer_of(const char *name)
{
	static const char *const keys[] = {"layers.", "layer.", "h.", "blocks.", "block."};
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		for (const char *p = strstr(name, keys[k]); p; p = strstr(p + 1, keys[k])) {
			if (p != name && p[-1] != '.')
				continue;
			const char *q = p + strlen(keys[k]);
			if (*q < '0' || *q > '9')
				continue;
			char *end;
			long v = strtol(q, &end, 10);
			if (*end == '.' && v >= 0 && v < 1000000)
				return (int)v;
		}
	}
	return -1;
}
