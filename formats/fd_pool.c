/* fd_pool.c: see fd_pool.h. */
#include "fd_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define POOL_MAX 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pooled_file **held; /* the files that hold a descriptor */
static size_t nheld, cap_held;
static uint64_t use_clock;
static int limit;          /* 0 until first needed */

/* A quarter of the descriptors the process may have, at most POOL_MAX, at least 4: the rest is for the
 * tools' other files, the GPU driver's, and valgrind's when the tests run under it. Under the lock. */
static size_t pool_limit_locked(void)
{
	if (!limit) {
		struct rlimit rl;
		limit = POOL_MAX;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < POOL_MAX)
			limit = (int)(rl.rlim_cur / 4);
		if (limit < 4)
			limit = 4;
	}
	return (size_t)limit;
}

int pooled_limit(void)
{
	pthread_mutex_lock(&lock);
	int n = (int)pool_limit_locked();
	pthread_mutex_unlock(&lock);
	return n;
}

static void unregister(const pooled_file *f)
{
	for (size_t i = 0; i < nheld; i++)
		if (held[i] == f) {
			held[i] = held[--nheld];
			return;
		}
}

/* Closes the descriptor of the least recently used idle file; false when every one is in use. */
static bool evict_one(void)
{
	pooled_file *v = NULL;
	for (size_t i = 0; i < nheld; i++)
		if (held[i]->users == 0 && (!v || held[i]->last_use < v->last_use))
			v = held[i];
	if (!v)
		return false;
	unregister(v);
	/* a written file's close can report a failed write-back (NFS): kept for pooled_close */
	if (close(v->fd) != 0 && v->flags != O_RDONLY && !v->close_errno)
		v->close_errno = errno;
	v->fd = -1;
	return true;
}

/* Room for one more descriptor, and a place for f among the held. */
static lq_status make_room(char *err)
{
	while (nheld >= pool_limit_locked() && evict_one())
		;
	if (nheld == cap_held) {
		size_t cap = cap_held ? 2 * cap_held : POOL_MAX;
		pooled_file **h = realloc(held, cap * sizeof *h);
		if (!h)
			return fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		held = h;
		cap_held = cap;
	}
	return LQ_OK;
}

/* open(2) under the lock; when the process is out of descriptors, idle files give theirs back first. */
static int open_retry(const char *path, int flags, mode_t mode)
{
	for (;;) {
		int fd = open(path, flags, mode);
		if (fd >= 0 || (errno != EMFILE && errno != ENFILE) || !evict_one())
			return fd;
	}
}

static void take(pooled_file *f, int fd)
{
	f->fd = fd;
	f->last_use = ++use_clock;
	held[nheld++] = f;
}

static lq_status set_path(pooled_file *f, const char *path, int flags, char *err)
{
	*f = (pooled_file)POOLED_FILE_INIT;
	f->flags = flags;
	f->path = strdup(path);
	return f->path ? LQ_OK : fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
}

lq_status pooled_open_input(pooled_file *f, const char *path, uint64_t *size, char *err)
{
	lq_status st = set_path(f, path, O_RDONLY, err);
	if (st != LQ_OK)
		return st;
	pthread_mutex_lock(&lock);
	struct stat sb;
	int fd = -1;
	st = make_room(err);
	if (st == LQ_OK) {
		/* when the process is out of descriptors, idle files give theirs back first */
		while ((st = fmt_open_input(path, &fd, &sb, err)) == LQ_ERR_IO && fd < 0 &&
		       (errno == EMFILE || errno == ENFILE) && evict_one())
			;
	}
	if (st == LQ_OK) {
		f->dev = sb.st_dev;
		f->ino = sb.st_ino;
		*size = (uint64_t)sb.st_size;
		take(f, fd);
	}
	pthread_mutex_unlock(&lock);
	if (st != LQ_OK) {
		free(f->path);
		f->path = NULL;
	}
	return st;
}

lq_status pooled_create(pooled_file *f, const char *path, const char *shown, char *err)
{
	lq_status st = set_path(f, path, O_WRONLY, err);
	if (st != LQ_OK)
		return st;
	pthread_mutex_lock(&lock);
	struct stat sb;
	st = make_room(err);
	if (st == LQ_OK) {
		int fd = open_retry(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			st = fmt_fail(err, errno == EEXIST ? LQ_ERR_EXISTS : LQ_ERR_IO, "cannot create '%s': %s", shown,
				      strerror(errno));
		} else if (fstat(fd, &sb) != 0) {
			st = fmt_fail(err, LQ_ERR_IO, "cannot create '%s': %s", shown, strerror(errno));
			close(fd);
			unlink(path);
		} else {
			f->dev = sb.st_dev;
			f->ino = sb.st_ino;
			take(f, fd);
		}
	}
	pthread_mutex_unlock(&lock);
	if (st != LQ_OK) {
		free(f->path);
		f->path = NULL;
	}
	return st;
}

/* Opens f again, the same file it was. Under the lock. */
static lq_status reopen(pooled_file *f, const char *shown, char *err)
{
	lq_status st = make_room(err);
	if (st != LQ_OK)
		return st;
	struct stat sb;
	int fd = open_retry(f->path, f->flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0);
	if (fd < 0)
		return fmt_fail(err, LQ_ERR_IO, "cannot open '%s' again: %s", shown, strerror(errno));
	int fl = fcntl(fd, F_GETFL);
	if (fstat(fd, &sb) != 0 || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		int e = errno;
		close(fd);
		return fmt_fail(err, LQ_ERR_IO, "cannot open '%s' again: %s", shown, strerror(e));
	}
	if (!S_ISREG(sb.st_mode) || sb.st_dev != f->dev || sb.st_ino != f->ino) {
		close(fd);
		return fmt_fail(err, LQ_ERR_IO, "'%s' was replaced while it was in use (another file is there now)",
				shown);
	}
	take(f, fd);
	return LQ_OK;
}

lq_status pooled_acquire(pooled_file *f, int *fd, const char *shown, char *err)
{
	if (!f->path)
		return fmt_fail(err, LQ_ERR_ARG, "%s: not open", shown);
	pthread_mutex_lock(&lock);
	lq_status st = f->fd >= 0 ? LQ_OK : reopen(f, shown, err);
	if (st == LQ_OK) {
		f->users++;
		f->last_use = ++use_clock;
		*fd = f->fd;
	}
	pthread_mutex_unlock(&lock);
	return st;
}

void pooled_release(pooled_file *f)
{
	pthread_mutex_lock(&lock);
	if (f->users)
		f->users--;
	pthread_mutex_unlock(&lock);
}

lq_status pooled_close(pooled_file *f, const char *shown, char *err)
{
	if (!f->path)
		return LQ_OK;
	pthread_mutex_lock(&lock);
	int e = f->close_errno;
	if (f->fd >= 0) {
		unregister(f);
		if (close(f->fd) != 0 && !e)
			e = errno;
		f->fd = -1;
	}
	pthread_mutex_unlock(&lock);
	bool written = f->flags != O_RDONLY;
	free(f->path);
	*f = (pooled_file)POOLED_FILE_INIT;
	if (e && written)
		return fmt_fail(err, LQ_ERR_IO, "cannot write '%s': %s", shown, strerror(e));
	return LQ_OK;
}
