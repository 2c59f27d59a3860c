/*
 * reuse.c: large buffers kept from one task for the next (lq_internal.h, lq_reuse). A merge whose fidelity
 * is measured after its last chunk keeps every result of its weight (op_merge.c): taken fresh from the
 * kernel for each weight, those pages are faulted in and zeroed again each time, which cost more than the
 * measurement itself. Kept here instead, a few at a time, the largest, so that what is held stays within
 * the bound of the largest tensor.
 */
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"

static void *fresh(size_t bytes)
{
	/* plain pages: asked for huge pages (MADV_HUGEPAGE), the kernel compacts memory to find them as they
	 * are first touched, which cost a measured merge more than the fewer faults saved */
	return malloc(bytes ? bytes : 1);
}

void *lq_reuse_take(lq_reuse *r, size_t bytes, size_t *capacity)
{
	pthread_mutex_lock(&r->lock);
	int best = -1;
	for (int i = 0; i < LQ_REUSE_SLOTS; i++)
		if (r->buf[i] && r->size[i] >= bytes && (best < 0 || r->size[i] < r->size[best]))
			best = i;
	void *p = NULL;
	*capacity = bytes;
	if (best >= 0) {
		p = r->buf[best];
		*capacity = r->size[best];
		r->buf[best] = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	return p ? p : fresh(bytes);
}

void lq_reuse_give(lq_reuse *r, void *p, size_t bytes)
{
	if (!p)
		return;
	pthread_mutex_lock(&r->lock);
	/* an empty slot, else the smallest buffer kept, unless this one is smaller still (then it goes) */
	int slot = -1;
	for (int i = 0; i < LQ_REUSE_SLOTS && slot < 0; i++)
		if (!r->buf[i])
			slot = i;
	if (slot < 0) {
		slot = 0;
		for (int i = 1; i < LQ_REUSE_SLOTS; i++)
			if (r->size[i] < r->size[slot])
				slot = i;
		if (r->size[slot] >= bytes)
			slot = -1;
	}
	void *out = p;
	if (slot >= 0) {
		out = r->buf[slot];
		r->buf[slot] = p;
		r->size[slot] = bytes;
	}
	pthread_mutex_unlock(&r->lock);
	free(out);
}

void lq_reuse_init(lq_reuse *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
}

void lq_reuse_free(lq_reuse *r)
{
	for (int i = 0; i < LQ_REUSE_SLOTS; i++)
		free(r->buf[i]);
	pthread_mutex_destroy(&r->lock);
}
