/* util.h: helpers the unit tests share: whole tensors from fixture files, random data. */
#ifndef TESTS_UNIT_UTIL_H
#define TESTS_UNIT_UTIL_H

#include <stdint.h>

#include "safetensors.h"

/* Opens a fixture (path relative to the top of the tree); NULL and a test failure when it cannot. */
st_file *util_open(const char *rel);
/* The bytes of tensor `name` of f, malloc'd (NULL and a test failure when absent); *len its size. */
void *util_tensor(st_file *f, const char *name, size_t *len);

/* A deterministic generator (xorshift64*), seeded per test. */
typedef struct util_rng {
	uint64_t s;
} util_rng;
uint64_t util_next(util_rng *r);
/* Normal-ish values (sum of uniforms) scaled by `scale`. */
float util_normal(util_rng *r, float scale);

/* A context with `threads` compute threads on the device named by $LQ_TEST_DEVICE (default "cpu"): with
 * LQ_TEST_DEVICE=cuda the same tests check the GPU backend against the CPU reference. NULL (and a test
 * failure) when that device cannot be used. */
lq_ctx *util_ctx(int threads);

/* The seed of this run's random data: $LQ_TEST_SEED, or fresh from the clock (printed, to reproduce). */
uint64_t util_seed(void);

/* The temporary directory of this run ($TMPDIR or /tmp), created once. */
const char *util_tmpdir(void);

#endif
