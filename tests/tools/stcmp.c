/*
 * stcmp: compares two checkpoints tensor for tensor, for the tests.
 *
 *   stcmp A B
 *
 * A and B are safetensors files, model directories or index files (sharded or not, in any layout). Every
 * tensor name must be in both, with the same dtype, shape and bytes, except the bitsandbytes quant_state
 * JSON, which must decode to the same values (the tools pad it with spaces to a planned length). Prints
 * each difference; exit 0 when equal, 1 when not, 2 on bad input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnb.h"
#include "hf_model.h"

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
	if (argc != 3) {
		fprintf(stderr, "usage: stcmp A B\n");
		return 2;
	}
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
	printf("%zu tensors identical, %zu differ\n", same, differ);
	free(ea);
	free(eb);
	hf_model_free(a);
	hf_model_free(b);
	return differ ? 1 : 0;
}
