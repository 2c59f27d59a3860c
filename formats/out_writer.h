/*
 * out_writer.h: a writer of one output file, as the output model (out_model.h) and the executor's sink
 * (st_exec.h) drive it: tensors declared first, the layout fixed (so that every size and offset is known
 * before any data moves), the file opened, tensor bytes written at offsets within their tensor in any
 * order, and the file finished. A writer of another container is one more table of these operations;
 * safetensors' (safetensors.h st_writer) is the one there is.
 *
 * Every operation but create, free and error takes the writer create made; a failed one leaves its
 * message for error. Ids are the writer's: 0, 1, ... in declaration order.
 */
#ifndef FORMATS_OUT_WRITER_H
#define FORMATS_OUT_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

typedef struct out_writer_ops {
	const char *name; /* the container, for messages: "safetensors" */
	void *(*create)(void); /* NULL when out of memory */
	void (*free)(void *self); /* also removes an unfinished file; NULL is a no-op */
	/* Declares a tensor; its id, or -1 for one the container cannot hold (a bad name, a size that
	 * overflows). */
	int32_t (*declare)(void *self, const char *name, st_dtype dtype, int ndim, const int64_t *shape);
	/* Fixes order, offsets and header; in_order keeps the tensors in the order declared (a stream,
	 * whose bytes go out as they are made). Nothing can be declared after. */
	lq_status (*layout)(void *self, bool in_order);
	/* Creates path, which must not exist (LQ_ERR_EXISTS), and writes the header; messages name `shown`
	 * (NULL: path), the name the file will have once renamed into place. */
	lq_status (*open)(void *self, const char *path, const char *shown);
	/* Writes in one pass to fd (not closed), named `name` in messages. */
	lq_status (*open_stream)(void *self, int fd, const char *name);
	/* len bytes of tensor id at byte offset of its data, in the file's byte order (little-endian). */
	lq_status (*write)(void *self, int32_t id, uint64_t offset, const void *buf, size_t len);
	/* Bytes per element of tensor id (0 for an unknown id, or a type of fewer than 8 bits): what a
	 * big-endian host swaps before writing. */
	size_t (*element_size)(const void *self, int32_t id);
	/* Checks every byte was written, syncs and closes. */
	lq_status (*finish)(void *self);
	/* After the layout: the header's bytes as the file will begin, the file's size, the tensor data's
	 * size (what a finish checks a completed part against, and the space the output needs). */
	const void *(*header)(const void *self, size_t *len);
	uint64_t (*file_size)(const void *self);
	uint64_t (*data_size)(const void *self);
	const char *(*error)(const void *self);
} out_writer_ops;

/* A writer and its operations. */
typedef struct out_writer {
	const out_writer_ops *ops;
	void *self;
} out_writer;

/* Safetensors files (st_writer). */
extern const out_writer_ops out_writer_safetensors;

#endif /* FORMATS_OUT_WRITER_H */
