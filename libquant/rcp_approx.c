/*
 * rcp_approx.c: the GPU's approximate reciprocal, rcp.approx.ftz.f32, on the CPU.
 *
 * bitsandbytes computes 1.0f/absmax with that instruction (it is built with fast math), and the
 * one-unit difference from the correctly rounded reciprocal decides the code of elements that sit on a
 * threshold. Its result depends only on the mantissa (kernels/rcp_approx_gen.cu checked this for every
 * positive float), so a table of the differences over the 2^23 mantissas, generated once on an H200,
 * reproduces it exactly. The table ships compressed inside the library (rcp_approx_table.S).
 */
#include <pthread.h>
#include <zstd.h>

#include "lq_internal.h"

#define MANTISSAS (1u << 23)

extern const unsigned char lq_rcp_delta_zst[];
extern const unsigned long long lq_rcp_delta_zst_size;

/* 2 bits per mantissa: difference + 1 (0, 1 or 2), four per byte, low bits first. */
static uint8_t delta_table[MANTISSAS / 4];
static pthread_once_t delta_once = PTHREAD_ONCE_INIT;
static lq_status delta_status = LQ_ERR_CORRUPT;

static void delta_load(void)
{
	size_t got = ZSTD_decompress(delta_table, sizeof delta_table, lq_rcp_delta_zst,
				     (size_t)lq_rcp_delta_zst_size);
	delta_status = (!ZSTD_isError(got) && got == sizeof delta_table) ? LQ_OK : LQ_ERR_CORRUPT;
}

lq_status lq_rcp_approx_init(void)
{
	pthread_once(&delta_once, delta_load);
	return delta_status;
}

const uint8_t *lq_rcp_approx_deltas(void)
{
	return lq_rcp_approx_init() == LQ_OK ? delta_table : NULL;
}

float lq_rcp_approx(float x)
{
	uint32_t b = lq_f32_bits(x);
	if (b < 0x00800000u)
		return lq_f32_from_bits(0x7f800000u); /* zero or subnormal: flushed, 1/0 = +inf */
	if (b >= 0x7f800000u)
		return b == 0x7f800000u ? 0.0f : x;
	uint32_t m = b & 0x7fffffu;
	int e = (int)(b >> 23) - 127;
	uint32_t ieee = lq_f32_bits(1.0f / lq_f32_from_bits(0x3f800000u | m));
	int delta = (int)((delta_table[m >> 2] >> ((m & 3) * 2)) & 3u) - 1;
	uint32_t r1 = (uint32_t)((int32_t)ieee + delta);
	int re = (int)(r1 >> 23) - e;
	if (re <= 0)
		return 0.0f; /* subnormal result: flushed */
	return lq_f32_from_bits(((uint32_t)re << 23) | (r1 & 0x7fffffu));
}
