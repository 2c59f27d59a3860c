/*
 * stcmp: compares two checkpoints tensor for tensor, for the tests.
 *
 *   stcmp [--subset] [--ulps N [--min-identical PERCENT]] A B
 *
 * A and B are safetensors files, model directories or index files (sharded or not, in any layout). Every
 * tensor name must be in both (with --subset: every tensor of B in A; B is a reference that holds only
 * some tensors), with the same dtype, shape and bytes, except the bitsandbytes quant_state JSON, which
 * must decode to the same values (the tools pad it with spaces to a planned length). With --ulps N, float
 * tensors may differ by up to N units in the last place, and at least PERCENT (default 99.9) of all their
 * elements must be identical: the counts are printed. Exit 0 when equal, 1 when not, 2 on bad input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnb.h"
#include "hf_model.h"

static int max_ulps = -1;         /* --ulps */
static double min_identical = 99.9;
static uint64_t float_elems, float_identical, float_max_ulp;

/* Elements of a float tensor as ordered integers (so that neighbours differ by one). */
static int64_t ordered(const unsigned char *p, st_dtype dt, size_t i)
{
	if (dt == ST_F32) {
		int32_t v;
		memcpy(&v, p + 4 * i, 4);
		return v < 0 ? (int64_t)INT32_MIN - v : v;
	}
	int16_t v;
	memcpy(&v, p + 2 * i, 2);
	return v < 0 ? (int64_t)INT16_MIN - v : v;
}

typedef struct entry {
	const hf_shard *shard;
	const st_tensor *t;
} entry;

static int by_name(const void *a, const void *b)
{
	return strcmp(((const entry *)a)->t->name, ((const entry *)b)->t->name);
}

static entry *list(const hf_model *m, size_t *n)
{
	size_t total = 0;
	for (size_t s = 0; s < m->nshards; s++)
		total += m->shards[s].st->ntensors;
	entry *e = calloc(total ? total : 1, sizeof *e);
	if (!e)
		return NULL;
	*n = 0;
	for (size_t s = 0; s < m->nshards; s++)
		for (size_t i = 0; i < m->shards[s].st->ntensors; i++)
			e[(*n)++] = (entry){&m->shards[s], &m->shards[s].st->tensors[i]};
	qsort(e, *n, sizeof *e, by_name);
	return e;
}

static void *load(const entry *e)
{
	size_t n = (size_t)(e->t->end - e->t->begin);
	void *buf = malloc(n ? n : 1);
	if (buf && st_file_read(e->shard->st, e->t, 0, buf, n) != LQ_OK) {
		free(buf);
		return NULL;
	}
	return buf;
}

static bool same_tensor(const entry *a, const entry *b)
{
	const st_tensor *x = a->t, *y = b->t;
	bool state = strstr(x->name, ".quant_state.bitsandbytes__") != NULL;
	if (!state && (x->dtype != y->dtype || x->ndim != y->ndim || memcmp(x->shape, y->shape, sizeof x->shape[0] * (size_t)x->ndim))) {
		printf("%s: %s %dD vs %s %dD\n", x->name, st_dtype_name(x->dtype), x->ndim, st_dtype_name(y->dtype), y->ndim);
		return false;
	}
	unsigned char *p = load(a), *q = load(b);
	bool same;
	if (!p || !q) {
		printf("%s: cannot read\n", x->name);
		same = false;
	} else if (state) {
		bnb_state s, t;
		char err[FMT_ERRBUF];
		same = bnb_state_parse(p, (size_t)(x->end - x->begin), &s, err) == LQ_OK &&
		       bnb_state_parse(q, (size_t)(y->end - y->begin), &t, err) == LQ_OK && s.qtype == t.qtype &&
		       s.blocksize == t.blocksize && s.dtype == t.dtype && s.ndim == t.ndim &&
		       memcmp(s.shape, t.shape, sizeof s.shape) == 0 && s.double_quant == t.double_quant &&
		       memcmp(&s.nested_offset, &t.nested_offset, sizeof s.nested_offset) == 0;
		if (!same)
			printf("%s: quant_state differs: '%.*s' vs '%.*s'\n", x->name, (int)(x->end - x->begin), p,
			       (int)(y->end - y->begin), q);
	} else if (max_ulps >= 0 && (x->dtype == ST_F32 || x->dtype == ST_BF16 || x->dtype == ST_F16)) {
		size_t n = (size_t)x->nelem, same_n = 0;
		uint64_t worst = 0;
		for (size_t i = 0; i < n; i++) {
			int64_t d = ordered(p, x->dtype, i) - ordered(q, x->dtype, i);
			uint64_t u = (uint64_t)(d < 0 ? -d : d);
			same_n += u == 0;
			worst = u > worst ? u : worst;
		}
		float_elems += n;
		float_identical += same_n;
		float_max_ulp = worst > float_max_ulp ? worst : float_max_ulp;
		same = worst <= (uint64_t)max_ulps;
		printf("%s: %zu of %zu elements identical, at most %llu ulp apart\n", x->name, same_n, n,
		       (unsigned long long)worst);
	} else {
		size_t n = (size_t)(x->end - x->begin), diff = 0, first = 0;
		for (size_t i = 0; i < n; i++)
			if (p[i] != q[i] && diff++ == 0)
				first = i;
		same = diff == 0;
		if (!same)
			printf("%s: %zu of %zu bytes differ, first at byte %zu\n", x->name, diff, n, first);
	}
	free(p);
	free(q);
	return same;
}

int main(int argc, char **argv)
{
	bool subset = false;
	int i0 = 1;
	for (; i0 < argc && argv[i0][0] == '-' && argv[i0][1] == '-'; i0++) {
		if (strcmp(argv[i0], "--subset") == 0)
			subset = true;
		else if (strcmp(argv[i0], "--ulps") == 0 && i0 + 1 < argc)
			max_ulps = atoi(argv[++i0]);
		else if (strcmp(argv[i0], "--min-identical") == 0 && i0 + 1 < argc)
			min_identical = atof(argv[++i0]);
		else
			break;
	}
	if (argc - i0 != 2) {
		fprintf(stderr, "usage: stcmp [--subset] [--ulps N [--min-identical PERCENT]] A B\n");
		return 2;
	}
	argv += i0 - 1;
	hf_model *a = hf_model_create(), *b = hf_model_create();
	if (hf_model_open(a, argv[1]) != LQ_OK || hf_model_open(b, argv[2]) != LQ_OK) {
		fprintf(stderr, "stcmp: %s%s\n", a->err, b->err);
		return 2;
	}
	size_t na, nb;
	entry *ea = list(a, &na), *eb = list(b, &nb);
	size_t i = 0, j = 0, differ = 0, same = 0;
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(ea[i].t->name, eb[j].t->name);
		if (c < 0) {
			if (subset) {
				i++;
				continue;
			}
			printf("%s: only in %s\n", ea[i++].t->name, argv[1]);
			differ++;
		} else if (c > 0) {
			printf("%s: only in %s\n", eb[j++].t->name, argv[2]);
			differ++;
		} else {
			if (same_tensor(&ea[i], &eb[j]))
				same++;
			else
				differ++;
			i++, j++;
		}
	}
	if (max_ulps >= 0 && float_elems) {
		double pct = 100.0 * (double)float_identical / (double)float_elems;
		printf("float elements: %llu of %llu identical (%.4f%%), at most %llu ulp apart\n",
		       (unsigned long long)float_identical, (unsigned long long)float_elems, pct,
		       (unsigned long long)float_max_ulp);
		if (pct < min_identical) {
			printf("fewer than %.3f%% identical\n", min_identical);
			differ++;
		}
	}
	printf("%zu tensors %s, %zu differ\n", same, max_ulps >= 0 ? "within tolerance" : "identical", differ);
	free(ea);
	free(eb);
	hf_model_free(a);
	hf_model_free(b);
	return differ ? 1 : 0;
}
