/*
 * pool.c: a fixed pool of worker threads that run the items of one job at a time. The caller works too,
 * so a pool of one thread is just a loop. Items are handed out by an atomic counter: which thread runs
 * which item varies, which is why the work functions never depend on it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "lq_internal.h"

struct lq_pool {
	int threads;
	pthread_t *workers;
	pthread_mutex_t lock;
	pthread_cond_t wake;     /* a new job, or shutdown */
	pthread_cond_t finished; /* the last worker left the job */
	/* the current job, guarded by lock except the counters */
	void (*fn)(void *arg, int64_t i);
	void *arg;
	int64_t nitems;
	atomic_int_fast64_t next;
	uint64_t generation;
	int busy; /* workers still inside the current job */
	bool shutdown;
};

static void run_items(lq_pool *pool, void (*fn)(void *, int64_t), void *arg, int64_t nitems)
{
	for (;;) {
		int64_t i = atomic_fetch_add(&pool->next, 1);
		if (i >= nitems)
			break;
		fn(arg, i);
	}
}

static void *worker_main(void *p)
{
	lq_pool *pool = p;
	uint64_t seen = 0;
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->shutdown && pool->generation == seen)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (pool->shutdown)
			break;
		seen = pool->generation;
		void (*fn)(void *, int64_t) = pool->fn;
		void *arg = pool->arg;
		int64_t nitems = pool->nitems;
		pthread_mutex_unlock(&pool->lock);
		run_items(pool, fn, arg, nitems);
		pthread_mutex_lock(&pool->lock);
		if (--pool->busy == 0)
			pthread_cond_signal(&pool->finished);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

lq_pool *lq_pool_create(int threads)
{
	lq_pool *pool = calloc(1, sizeof *pool);
	if (!pool)
		return NULL;
	pool->threads = threads < 1 ? 1 : threads;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pthread_cond_init(&pool->finished, NULL);
	atomic_init(&pool->next, 0);
	pool->workers = calloc((size_t)pool->threads, sizeof *pool->workers);
	if (!pool->workers) {
		lq_pool_free(pool);
		return NULL;
	}
	for (int i = 0; i < pool->threads - 1; i++) {
		if (pthread_create(&pool->workers[i], NULL, worker_main, pool) != 0) {
			pool->threads = i + 1; /* run with the workers that did start */
			break;
		}
	}
	return pool;
}

void lq_pool_free(lq_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->shutdown = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	if (pool->workers)
		for (int i = 0; i < pool->threads - 1; i++)
			pthread_join(pool->workers[i], NULL);
	pthread_cond_destroy(&pool->finished);
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->lock);
	free(pool->workers);
	free(pool);
}

int lq_pool_threads(const lq_pool *pool)
{
	return pool->threads;
}

void lq_pool_run(lq_pool *pool, int64_t nitems, void (*fn)(void *arg, int64_t i), void *arg)
{
	if (nitems <= 0)
		return;
	if (pool->threads == 1 || nitems == 1) {
		for (int64_t i = 0; i < nitems; i++)
			fn(arg, i);
		return;
	}
	pthread_mutex_lock(&pool->lock);
	pool->fn = fn;
	pool->arg = arg;
	pool->nitems = nitems;
	atomic_store(&pool->next, 0);
	pool->busy = pool->threads - 1;
	pool->generation++;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);

	run_items(pool, fn, arg, nitems);

	pthread_mutex_lock(&pool->lock);
	while (pool->busy > 0)
		pthread_cond_wait(&pool->finished, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}
