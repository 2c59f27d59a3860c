/* util.c: see util.h. */
#include "util.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

st_file *util_open(const char *rel)
{
	st_file *f = st_file_create();
	if (!f || st_file_open(f, test_path(rel)) != LQ_OK) {
		test_fail(__FILE__, __LINE__, "cannot open fixture %s: %s", rel, f ? st_file_error(f) : "out of memory");
		st_file_free(f);
		return NULL;
	}
	return f;
}

void *util_tensor(st_file *f, const char *name, size_t *len)
{
	const st_tensor *t = st_file_find(f, name);
	if (!t) {
		test_fail(__FILE__, __LINE__, "fixture has no tensor '%s'", name);
		return NULL;
	}
	size_t n = (size_t)(t->end - t->begin);
	void *buf = malloc(n ? n : 1);
	if (!buf || st_file_read(f, t, 0, buf, n) != LQ_OK) {
		test_fail(__FILE__, __LINE__, "cannot read tensor '%s'", name);
		free(buf);
		return NULL;
	}
	if (len)
		*len = n;
	return buf;
}

uint64_t util_next(util_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1DULL;
}

float util_normal(util_rng *r, float scale)
{
	float s = 0;
	for (int i = 0; i < 4; i++)
		s += (float)(util_next(r) >> 40) / (float)(1 << 24);
	return (s - 2.0f) * 1.7320508f * scale;
}

const char *util_tmpdir(void)
{
	static char dir[4096];
	if (!dir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/lq-unit-XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(dir))
			snprintf(dir, sizeof dir, "/tmp");
	}
	return dir;
}

lq_ctx *util_ctx(int threads)
{
	const char *cpu = getenv("LQ_CPU"); /* as the tools read it */
	lq_ctx_options o = {.threads = threads, .cpu = LQ_CPU_BEST};
	if (cpu && *cpu && (lq_cpu_path_from_name(cpu, &o.cpu) != LQ_OK || !lq_cpu_path_supported(o.cpu))) {
		test_fail(__FILE__, __LINE__, "LQ_CPU=%s: unknown, or kernels this CPU does not run", cpu);
		return NULL;
	}
	lq_ctx *ctx = lq_ctx_create(&o);
	const char *device = getenv("LQ_TEST_DEVICE");
	if (!ctx) {
		test_fail(__FILE__, __LINE__, "cannot create a context");
		return NULL;
	}
	if (device && lq_ctx_use_device(ctx, device) != LQ_OK) {
		test_fail(__FILE__, __LINE__, "LQ_TEST_DEVICE=%s: %s", device, lq_ctx_error_string(ctx));
		lq_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

uint64_t util_seed(void)
{
	static uint64_t seed;
	if (!seed) {
		const char *env = getenv("LQ_TEST_SEED");
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = env ? strtoull(env, NULL, 0) : ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec;
		if (!seed)
			seed = 1;
		printf("    random data: LQ_TEST_SEED=%llu\n", (unsigned long long)seed);
	}
	return seed;
}
