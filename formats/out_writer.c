/* out_writer.c: see out_writer.h. */
#include "out_writer.h"

/* ------------------------------------------------------------------------------- safetensors */

static void *sw_create(void)
{
	return st_writer_create();
}

static void sw_free(void *self)
{
	st_writer_free(self);
}

static int32_t sw_declare(void *self, const char *name, st_dtype dtype, int ndim, const int64_t *shape)
{
	return st_writer_add(self, name, dtype, ndim, shape);
}

static lq_status sw_layout(void *self, bool in_order)
{
	if (in_order)
		st_writer_keep_order(self);
	return st_writer_layout(self);
}

static lq_status sw_open(void *self, const char *path, const char *shown)
{
	lq_status st = shown ? st_writer_set_display_name(self, shown) : LQ_OK;
	return st == LQ_OK ? st_writer_open(self, path) : st;
}

static lq_status sw_open_stream(void *self, int fd, const char *name)
{
	return st_writer_open_stream(self, fd, name);
}

static lq_status sw_write(void *self, int32_t id, uint64_t offset, const void *buf, size_t len)
{
	return st_writer_write(self, id, offset, buf, len);
}

static size_t sw_element_size(const void *self, int32_t id)
{
	return st_writer_tensor_element_size(self, id);
}

static lq_status sw_finish(void *self)
{
	return st_writer_finish(self);
}

static const void *sw_header(const void *self, size_t *len)
{
	return st_writer_header(self, len);
}

static uint64_t sw_file_size(const void *self)
{
	return st_writer_file_size(self);
}

static uint64_t sw_data_size(const void *self)
{
	return st_writer_data_size(self);
}

static const char *sw_error(const void *self)
{
	return st_writer_error(self);
}

const out_writer_ops out_writer_safetensors = {
	.name = "safetensors",
	.create = sw_create,
	.free = sw_free,
	.declare = sw_declare,
	.layout = sw_layout,
	.open = sw_open,
	.open_stream = sw_open_stream,
	.write = sw_write,
	.element_size = sw_element_size,
	.finish = sw_finish,
	.header = sw_header,
	.file_size = sw_file_size,
	.data_size = sw_data_size,
	.error = sw_error,
};
