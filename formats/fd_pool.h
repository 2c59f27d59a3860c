/*
 * fd_pool.h: files opened on demand, so that a model of thousands of shards needs a few file descriptors,
 * not one per shard (a 1,500-shard model under `ulimit -n 1024`). The safetensors reader and writer keep
 * their files here: at most a few dozen of them (fewer under a low RLIMIT_NOFILE) hold a descriptor at a
 * time, process-wide; using one that holds none first closes the least recently used idle one. A file
 * opened again must be the one first opened (same device and inode), else the read or write fails.
 * Thread-safe.
 */
#ifndef FORMATS_FD_POOL_H
#define FORMATS_FD_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fmt.h"

typedef struct pooled_file {
	char *path;        /* NULL: not open */
	int flags;         /* O_RDONLY or O_WRONLY, to open it again */
	int fd;            /* -1 while it holds no descriptor */
	dev_t dev;
	ino_t ino;
	unsigned users;    /* between pooled_acquire and pooled_release: not closed under them */
	uint64_t last_use;
	int close_errno;   /* a written file's descriptor closed by the pool, and the close failed */
} pooled_file;

/* A closed file: {.fd = -1}. */
#define POOLED_FILE_INIT {.fd = -1}

/* Opens an input file (fmt_open_input: a regular file only); *size is its size. LQ_ERR_IO, LQ_ERR_NOMEM. */
lq_status pooled_open_input(pooled_file *f, const char *path, uint64_t *size, char *err);

/* Creates a new file for writing (O_EXCL, mode 0644 less the umask). LQ_ERR_EXISTS when it exists,
 * LQ_ERR_IO, LQ_ERR_NOMEM. Messages name `shown`. */
lq_status pooled_create(pooled_file *f, const char *path, const char *shown, char *err);

/* A descriptor for the file, opened again when the pool had closed it; valid until pooled_release.
 * LQ_ERR_IO (messages name `shown`) when it cannot be opened again or is no longer the same file. */
lq_status pooled_acquire(pooled_file *f, int *fd, const char *shown, char *err);
void pooled_release(pooled_file *f);

/* Closes the file for good: LQ_ERR_IO when a close failed (this one, or one the pool made earlier of a
 * written file), with the message naming `shown`. A file not open is LQ_OK. */
lq_status pooled_close(pooled_file *f, const char *shown, char *err);

/* Whether f is open (holds a path, with or without a descriptor). */
static inline bool pooled_is_open(const pooled_file *f)
{
	return f->path != NULL;
}

/* How many descriptors the pool holds at most (for the tests). */
int pooled_limit(void);

#endif /* FORMATS_FD_POOL_H */
