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

/* The temporary directory of this run ($TMPDIR or /tmp), created once. */
const char *util_tmpdir(void);

#endif
