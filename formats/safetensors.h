/*
 * safetensors.h: the safetensors format (shared/specs/safetensors.md): a validating reader and a writer
 * that emits what the official writer emits.
 *
 * Reader: st_file_open() reads and checks the whole header (every check of the official reader, plus
 * duplicate names, control characters in names, and a `__metadata__` that is not a map of strings)
 * before anything else is trusted; tensor data is then read with st_file_read(). All sizes are 64-bit and
 * overflow-checked; the header is little-endian whatever the host.
 *
 * Writer: the tensors are declared first (name, dtype, shape), st_writer_layout() fixes the order (dtype
 * group, then name), the offsets and the header, so the file's size and every tensor's place are known
 * before any data is written; data is then written at offsets in any order, and st_writer_finish()
 * checks that every byte was written exactly as planned, then syncs.
 */
#ifndef FORMATS_SAFETENSORS_H
#define FORMATS_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fd_pool.h"
#include "fmt.h"

/* The official Dtype enum, in its order: the writer sorts by it (descending). */
typedef enum st_dtype {
	ST_BOOL,
	ST_F4,
	ST_F6_E2M3,
	ST_F6_E3M2,
	ST_U8,
	ST_I8,
	ST_F8_E5M2,
	ST_F8_E4M3,
	ST_F8_E8M0,
	ST_F8_E4M3FNUZ,
	ST_F8_E5M2FNUZ,
	ST_I16,
	ST_U16,
	ST_F16,
	ST_BF16,
	ST_I32,
	ST_U32,
	ST_F32,
	ST_C64,
	ST_F64,
	ST_I64,
	ST_U64,
	ST_DTYPE_COUNT
} st_dtype;

const char *st_dtype_name(st_dtype dtype);
unsigned st_dtype_bits(st_dtype dtype);
/* Parses an official dtype name; false for anything else. */
bool st_dtype_parse(const char *name, st_dtype *out);
/* The libquant element type of F32/F16/BF16/U8; false for the others. */
bool st_dtype_to_lq(st_dtype dtype, lq_dtype *out);
st_dtype st_dtype_from_lq(lq_dtype dtype);

/* Header limit of the official reader. */
#define ST_MAX_HEADER 100000000ull
/* st_file_parse's file_size for a stream, whose size is the one its header declares. */
#define ST_SIZE_FROM_HEADER UINT64_MAX
/* Ranks above this are refused (as unsupported, not corrupt): no checkpoint has them. */
#define ST_MAX_DIMS 16

/* N, the header's length: the file's first 8 bytes, little-endian. */
static inline uint64_t st_header_length(const void *first8)
{
	const unsigned char *b = first8;
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | b[i];
	return n;
}

typedef struct st_tensor {
	char *name;
	st_dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	uint64_t nelem;
	uint64_t begin, end; /* data_offsets, from the start of the data buffer */
} st_tensor;

/* ----------------------------------------------------------------------------------- reader */

/* Where an st_file's bytes come from when it is not a file on disk (an archive entry, a pipe): reads len
 * bytes at byte pos of the file into dst, or sets a message in err (FMT_ERRBUF bytes) and fails. */
typedef lq_status (*st_read_fn)(void *arg, uint64_t pos, void *dst, size_t len, char *err);

typedef struct st_file {
	char *path;           /* as given, for messages */
	pooled_file file;     /* st_file_open: the file, opened on demand (fd_pool.h) */
	int fd;               /* st_file_open_stream: the stream's descriptor; else -1 */
	st_read_fn reader;    /* set by st_file_open_reader / st_file_open_stream */
	void *reader_arg;
	uint64_t stream_pos;  /* st_file_open_stream: bytes of the stream consumed */
	uint64_t file_size;
	uint64_t header_len;  /* N */
	uint64_t data_start;  /* 8 + N */
	size_t ntensors;
	st_tensor *tensors;   /* in data order */
	size_t nmeta;
	char **meta_keys, **meta_values;
	st_tensor **by_name;  /* the tensors sorted by name, for st_file_find */
	char err[FMT_ERRBUF];
} st_file;

st_file *st_file_create(void);
void st_file_free(st_file *f); /* NULL is a no-op */

/* Opens path and validates its header against the file's size. LQ_ERR_IO when it cannot be opened or
 * read or is not a regular file (fmt_open_input), LQ_ERR_CORRUPT for a header that breaks a rule,
 * LQ_ERR_UNSUPPORTED for a rank above ST_MAX_DIMS. The message names the file, the tensor and the offset.
 * The file holds a descriptor only while it is read (fd_pool.h), so any number of them can be open. */
lq_status st_file_open(st_file *f, const char *path);

/* Opens a file of file_size bytes whose bytes come from `reader` (an archive entry): the same checks as
 * st_file_open; `name` is used in messages. */
lq_status st_file_open_reader(st_file *f, const char *name, uint64_t file_size, st_read_fn reader, void *arg);

/* Opens a safetensors stream on fd (standard input) that is read once, in order: the header now, then
 * tensor data only forward (st_file_read of a tensor before the stream's position fails; one after it
 * reads and drops what lies between). The file's size is taken from the header, and st_file_stream_end
 * checks that nothing follows the last tensor. */
lq_status st_file_open_stream(st_file *f, int fd, const char *name);

/* Reads the data of a stream opened by st_file_open_stream (nothing read past its header yet) into an
 * unlinked temporary file in tmpdir (NULL or "": /tmp), checks that nothing follows it (st_file_stream_end),
 * and from then on serves st_file_read from that copy, in any order, as a file on disk: for a tool that
 * must read a tensor's data before it can plan (a 4-bit group's shape is in its quant_state, which comes
 * after its codes). The copy goes with the descriptor: st_file_free, or the process's end. LQ_ERR_IO (the
 * stream ends early, the copy cannot be written: the message names tmpdir), LQ_ERR_CORRUPT (bytes follow
 * the data), LQ_ERR_CANCELLED (fmt_cancelled), LQ_ERR_NOMEM. */
lq_status st_file_stream_spool(st_file *f, const char *tmpdir);

/* Reads the rest of a stream opened by st_file_open_stream: LQ_ERR_CORRUPT when bytes follow the data,
 * LQ_ERR_IO when it ends early. */
lq_status st_file_stream_end(st_file *f);

/* Validates a header held in memory: `prefix_and_header` is the file's first 8 + N bytes (or fewer, for a
 * short file), file_size the size of the whole file. `name` is used in messages. Same statuses. */
lq_status st_file_parse(st_file *f, const void *prefix_and_header, size_t len, uint64_t file_size,
			const char *name);

/* Reads len bytes of tensor t from byte `offset` of its data into dst. LQ_ERR_IO on a failed or short
 * read (the file changed under us). */
lq_status st_file_read(st_file *f, const st_tensor *t, uint64_t offset, void *dst, size_t len);

/* The tensor of that name, or NULL. */
const st_tensor *st_file_find(const st_file *f, const char *name);

/* A metadata value, or NULL. */
const char *st_file_meta(const st_file *f, const char *key);

const char *st_file_error(const st_file *f);

/* Bytes of a tensor of nelem elements of dtype: false when not a whole number of bytes or on overflow. */
bool st_tensor_bytes(st_dtype dtype, uint64_t nelem, uint64_t *bytes);

/* ----------------------------------------------------------------------------------- writer */

typedef struct st_writer st_writer;

st_writer *st_writer_create(void);
void st_writer_free(st_writer *w); /* also removes an unfinished file; NULL is a no-op */

/* Declares a tensor; returns its id (0, 1, ... in declaration order) or -1 (message in the writer) for a
 * name with control characters or not valid UTF-8, or a size that overflows. A duplicate name is refused
 * by st_writer_layout. */
int32_t st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape);

/* Adds a __metadata__ entry; {"format": "pt"} is always written. */
lq_status st_writer_set_meta(st_writer *w, const char *key, const char *value);

/* Keeps the tensors in the order they were declared instead of the official writer's (call before the
 * layout): for a stream, whose bytes go out in the order they are made. */
void st_writer_keep_order(st_writer *w);

/* Fixes order, offsets and header. After this no tensor can be added. */
lq_status st_writer_layout(st_writer *w);

/* The header's bytes (8-byte length and JSON) as they will be written (after layout). */
const void *st_writer_header(const st_writer *w, size_t *len);
/* The size of the file that will be written (after layout). */
uint64_t st_writer_file_size(const st_writer *w);
/* The total bytes of tensor data (after layout). */
uint64_t st_writer_data_size(const st_writer *w);
size_t st_writer_count(const st_writer *w);
uint64_t st_writer_tensor_bytes(const st_writer *w, int32_t id);
/* Bytes per element of tensor id (0 for an unknown id, or a type of fewer than 8 bits). */
size_t st_writer_tensor_element_size(const st_writer *w, int32_t id);

/* Creates path (which must not exist), writes the header. LQ_ERR_EXISTS when it exists, LQ_ERR_IO else. */
lq_status st_writer_open(st_writer *w, const char *path);

/* Writes to fd (standard output) in one pass, in file order: the header now; bytes written ahead of
 * the stream's position are held in memory until the bytes before them come. fd is not closed. */
lq_status st_writer_open_stream(st_writer *w, int fd, const char *name);

/* The file's name in messages when it is written under a temporary path (default: the path). */
lq_status st_writer_set_display_name(st_writer *w, const char *name);

/* Writes len bytes of tensor `id` at byte `offset` of its data. */
lq_status st_writer_write(st_writer *w, int32_t id, uint64_t offset, const void *buf, size_t len);

/* Checks every byte was written, syncs and closes. The file stays; the caller renames it into place. */
lq_status st_writer_finish(st_writer *w);

const char *st_writer_error(const st_writer *w);

#endif /* FORMATS_SAFETENSORS_H */
