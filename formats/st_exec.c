/* st_exec.c: see st_exec.h. */
#include "st_exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Tensors are little-endian in their files, and the executor works in the host's order (libquant.h): on a
 * big-endian host the source swaps each element's bytes as it reads, and the sink as it writes. */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
static void swap_elements(void *p, size_t len, size_t esize)
{
	unsigned char *b = p;
	for (size_t i = 0; esize > 1 && i + esize <= len; i += esize)
		for (size_t k = 0; k < esize / 2; k++) {
			unsigned char t = b[i + k];
			b[i + k] = b[i + esize - 1 - k];
			b[i + esize - 1 - k] = t;
		}
}
#endif

/* ------------------------------------------------------------------------------------- source */

typedef struct src_entry {
	st_file *f;
	const st_tensor *t;
	bool transpose;
} src_entry;

struct st_source {
	src_entry *e;
	size_t n;
	/* the tensor being served transposed, whole */
	int32_t held;
	unsigned char *buf;
	uint64_t served;
	char err[FMT_ERRBUF];
};

st_source *st_source_create(void)
{
	st_source *s = calloc(1, sizeof *s);
	if (s)
		s->held = -1;
	return s;
}

void st_source_free(st_source *s)
{
	if (!s)
		return;
	free(s->e);
	free(s->buf);
	free(s);
}

int32_t st_source_add(st_source *s, st_file *f, const st_tensor *t, bool transpose)
{
	if (transpose && t->ndim != 2)
		return -1;
	src_entry *e = realloc(s->e, (s->n + 1) * sizeof *e);
	if (!e)
		return -1;
	s->e = e;
	s->e[s->n] = (src_entry){f, t, transpose};
	return (int32_t)s->n++;
}

uint64_t st_source_memory(const st_source *s)
{
	uint64_t largest = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].transpose && s->e[i].t->end - s->e[i].t->begin > largest)
			largest = s->e[i].t->end - s->e[i].t->begin;
	return 2 * largest; /* the tensor as read and transposed */
}

/* Loads tensor `id` whole and transposes it into s->buf. */
static lq_status hold_transposed(st_source *s, int32_t id)
{
	const src_entry *e = &s->e[id];
	uint64_t bytes = e->t->end - e->t->begin;
	size_t esize = st_dtype_bits(e->t->dtype) / 8;
	free(s->buf);
	s->buf = NULL;
	s->held = -1;
	unsigned char *raw = malloc(bytes ? bytes : 1), *out = malloc(bytes ? bytes : 1);
	if (!raw || !out) {
		free(raw);
		free(out);
		return fmt_fail(s->err, LQ_ERR_NOMEM, "out of memory transposing '%s'", e->t->name);
	}
	lq_status st = st_file_read(e->f, e->t, 0, raw, bytes);
	if (st != LQ_OK) {
		free(raw);
		free(out);
		return fmt_fail(s->err, st, "%s", st_file_error(e->f));
	}
	uint64_t rows = (uint64_t)e->t->shape[0], cols = (uint64_t)e->t->shape[1];
	/* out[c][r] = in[r][c], in tiles so that both sides stay in cache */
	const uint64_t tile = 64;
	for (uint64_t r0 = 0; r0 < rows; r0 += tile)
		for (uint64_t c0 = 0; c0 < cols; c0 += tile)
			for (uint64_t r = r0; r < r0 + tile && r < rows; r++)
				for (uint64_t c = c0; c < c0 + tile && c < cols; c++)
					memcpy(out + (c * rows + r) * esize, raw + (r * cols + c) * esize, esize);
	free(raw);
	s->buf = out;
	s->held = id;
	s->served = 0;
	return LQ_OK;
}

static lq_status source_read(void *self, int32_t input, uint64_t offset, void *dst, size_t len)
{
	st_source *s = self;
	if (input < 0 || (size_t)input >= s->n)
		return fmt_fail(s->err, LQ_ERR_ARG, "unknown input tensor");
	const src_entry *e = &s->e[input];
	if (!e->transpose) {
		lq_status st = st_file_read(e->f, e->t, offset, dst, len);
		if (st != LQ_OK)
			return fmt_fail(s->err, st, "%s", st_file_error(e->f));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		swap_elements(dst, len, st_dtype_bits(e->t->dtype) / 8);
#endif
		return LQ_OK;
	}
	if (s->held != input) {
		lq_status st = hold_transposed(s, input);
		if (st != LQ_OK)
			return st;
	}
	uint64_t bytes = e->t->end - e->t->begin;
	if (offset > bytes || len > bytes - offset)
		return fmt_fail(s->err, LQ_ERR_ARG, "read past the end of '%s'", e->t->name);
	memcpy(dst, s->buf + offset, len);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	swap_elements(dst, len, st_dtype_bits(e->t->dtype) / 8);
#endif
	s->served += len;
	if (s->served == bytes) { /* reads are consecutive: the last one frees the copy */
		free(s->buf);
		s->buf = NULL;
		s->held = -1;
	}
	return LQ_OK;
}

static const char *source_error(void *self)
{
	return ((st_source *)self)->err;
}

/* Inputs of one file that is read forward (an archive entry, a stream: st_file.reader) in the order of their
 * bytes; a file on disk is read anywhere at the same cost. */
static int source_order(void *self, int32_t a, int32_t b)
{
	const st_source *s = self;
	if (a < 0 || b < 0 || (size_t)a >= s->n || (size_t)b >= s->n || s->e[a].f != s->e[b].f || !s->e[a].f->reader)
		return 0;
	return s->e[a].t->begin < s->e[b].t->begin ? -1 : s->e[a].t->begin > s->e[b].t->begin;
}

lq_source st_source_iface(st_source *s)
{
	return (lq_source){.self = s, .read = source_read, .error_string = source_error, .order = source_order};
}

/* --------------------------------------------------------------------------------------- sink */

typedef struct sink_entry {
	out_writer w;
	int32_t wid;
	int32_t group; /* index into groups when this is a group's data tensor, else -1 */
} sink_entry;

typedef struct group {
	bnb_state state;
	int32_t quant_map, nested_map, state_id;
} group;

struct st_sink {
	sink_entry *e;
	size_t n;
	group *g;
	size_t ng;
	char err[FMT_ERRBUF];
};

st_sink *st_sink_create(void)
{
	return calloc(1, sizeof(st_sink));
}

void st_sink_free(st_sink *k)
{
	if (!k)
		return;
	free(k->e);
	free(k->g);
	free(k);
}

int32_t st_sink_add(st_sink *k, const out_writer *w, int32_t writer_id)
{
	sink_entry *e = realloc(k->e, (k->n + 1) * sizeof *e);
	if (!e)
		return -1;
	k->e = e;
	k->e[k->n] = (sink_entry){*w, writer_id, -1};
	return (int32_t)k->n++;
}

lq_status st_sink_add_group(st_sink *k, int32_t data_id, const bnb_state *state, int32_t quant_map_id,
			    int32_t nested_map_id, int32_t state_id)
{
	if (data_id < 0 || (size_t)data_id >= k->n)
		return fmt_fail(k->err, LQ_ERR_ARG, "unknown output tensor");
	group *g = realloc(k->g, (k->ng + 1) * sizeof *g);
	if (!g)
		return fmt_fail(k->err, LQ_ERR_NOMEM, "out of memory");
	k->g = g;
	k->g[k->ng] = (group){*state, quant_map_id, nested_map_id, state_id};
	k->e[data_id].group = (int32_t)k->ng++;
	return LQ_OK;
}

static lq_status sink_write(void *self, int32_t output, uint64_t offset, const void *src, size_t len)
{
	st_sink *k = self;
	if (output < 0 || (size_t)output >= k->n)
		return fmt_fail(k->err, LQ_ERR_ARG, "unknown output tensor");
	const sink_entry *e = &k->e[output];
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	const size_t esize = e->w.ops->element_size(e->w.self, e->wid);
	unsigned char *swapped = NULL;
	if (esize > 1) {
		if (!(swapped = malloc(len ? len : 1)))
			return fmt_fail(k->err, LQ_ERR_NOMEM, "out of memory");
		memcpy(swapped, src, len);
		swap_elements(swapped, len, esize);
		src = swapped;
	}
	lq_status st = e->w.ops->write(e->w.self, e->wid, offset, src, len);
	free(swapped);
#else
	lq_status st = e->w.ops->write(e->w.self, e->wid, offset, src, len);
#endif
	return st == LQ_OK ? LQ_OK : fmt_fail(k->err, st, "%s", e->w.ops->error(e->w.self));
}

/* Float32 values as little-endian bytes. */
static void put_f32_le(unsigned char *dst, const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		for (int b = 0; b < 4; b++)
			dst[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
	}
}

static lq_status sink_task_done(void *self, const lq_task *task, const lq_task_result *result)
{
	st_sink *k = self;
	if (task->out_data < 0 || (size_t)task->out_data >= k->n || k->e[task->out_data].group < 0)
		return LQ_OK;
	group *g = &k->g[k->e[task->out_data].group];
	unsigned char buf[256 * 4];
	put_f32_le(buf, lq_quant_map(g->state.qtype), 16);
	lq_status st = sink_write(k, g->quant_map, 0, buf, 16 * 4);
	if (st == LQ_OK && g->state.double_quant) {
		put_f32_le(buf, lq_dynamic_map(), 256);
		st = sink_write(k, g->nested_map, 0, buf, 256 * 4);
	}
	if (st != LQ_OK)
		return st;
	g->state.nested_offset = result->nested_offset;
	size_t size = bnb_state_json_size(&g->state);
	char *json = malloc(size);
	if (!json)
		return fmt_fail(k->err, LQ_ERR_NOMEM, "out of memory");
	if (!bnb_state_json(&g->state, json, size)) {
		free(json);
		if (g->state.double_quant && !isfinite(g->state.nested_offset))
			return fmt_fail(k->err, LQ_ERR_NONFINITE, "tensor '%s': the double-quantization offset is not finite; "
					"refusing to write it", task->name);
		return fmt_fail(k->err, LQ_ERR_ARG, "tensor '%s': quant_state does not fit its planned size", task->name);
	}
	st = sink_write(k, g->state_id, 0, json, size);
	free(json);
	return st;
}

static const char *sink_error(void *self)
{
	return ((st_sink *)self)->err;
}

lq_sink st_sink_iface(st_sink *k)
{
	return (lq_sink){.self = k, .write = sink_write, .task_done = sink_task_done, .error_string = sink_error};
}
