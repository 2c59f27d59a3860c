/*
 * device_work.c: the plans of loramerge and qinspect as lq_work (device_work.h).
 */
#include "device_work.h"

static int64_t elements(const int64_t *shape, int ndim)
{
	int64_t n = 1;
	for (int d = 0; d < ndim; d++)
		n *= shape[d];
	return n;
}

lq_work device_work_merge(const merge_plan *p, bool out_synced)
{
	lq_work w = {.bytes_in = p->bytes_in, .out_synced = out_synced};
	for (size_t i = 0; i < p->n; i++) {
		const merge_item *it = &p->items[i];
		const int64_t n = elements(it->shape, it->ndim);
		w.bytes_out += it->bytes_out;
		if (it->quantized_in || it->base_as)
			w.dequantized += n;
		if (it->base_as || it->quantized_out)
			w.quantized += n;
		if (it->act != ACT_MERGE)
			continue;
		w.merged += n;
		for (size_t k = 0; k < it->nloras; k++)
			w.merge_rank_sum += n * it->loras[k].rank;
		if (p->measure)
			w.compared += n;
	}
	return w;
}

lq_work device_work_inspect(const hf_tensors *checkpoint, const hf_tensors *ref)
{
	lq_work w = {0};
	for (size_t i = 0; i < checkpoint->n; i++) {
		const hf_tensor *h = &checkpoint->v[i];
		w.bytes_in += h->bytes;
		if (h->quantized)
			w.dequantized += (int64_t)h->nelem;
		if (ref || h->quantized)
			w.compared += (int64_t)h->nelem;
	}
	for (size_t i = 0; ref && i < ref->n; i++)
		w.bytes_in += ref->v[i].bytes;
	return w;
}
