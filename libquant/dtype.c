/* dtype.c: element sizes, names, and the half-precision conversions. */
#include "lq_internal.h"

size_t lq_dtype_size(lq_dtype dtype)
{
	switch (dtype) {
	case LQ_DTYPE_F32:
		return 4;
	case LQ_DTYPE_F16:
	case LQ_DTYPE_BF16:
		return 2;
	case LQ_DTYPE_U8:
		return 1;
	}
	return 0;
}

const char *lq_dtype_torch_name(lq_dtype dtype)
{
	switch (dtype) {
	case LQ_DTYPE_F32:
		return "float32";
	case LQ_DTYPE_F16:
		return "float16";
	case LQ_DTYPE_BF16:
		return "bfloat16";
	case LQ_DTYPE_U8:
		return "uint8";
	}
	return "unknown";
}

float lq_bf16_to_f32(uint16_t b)
{
	return lq_bf16_decode(b);
}

uint16_t lq_f32_to_bf16(float f)
{
	return lq_bf16_encode(f);
}

float lq_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;
	if (exp == 0x1f)
		return lq_f32_from_bits(sign | 0x7f800000u | (man << 13));
	if (exp == 0) {
		/* zero or subnormal: man * 2^-24, exact in float32 */
		float v = (float)man * 0x1p-24f;
		return sign ? -v : v;
	}
	return lq_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t lq_f32_to_f16(float f)
{
	uint32_t u = lq_f32_bits(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
	uint32_t abs = u & 0x7fffffffu;
	if (abs > 0x7f800000u)
		return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
	if (abs >= 0x477ff000u) /* rounds to 65520 or more: infinity */
		return (uint16_t)(sign | 0x7c00u);
	if (abs < 0x38800000u) {
		/* below the smallest normal half (2^-14): a subnormal half, man = round(|f| * 2^24) to even.
		 * |f| * 2^24 < 2^10 is exact in float32 and the conversion to an integer rounds half to even
		 * when done by hand as below. */
		float scaled = lq_f32_from_bits(abs) * 0x1p24f;
		uint32_t whole = (uint32_t)scaled;
		float frac = scaled - (float)whole;
		if (frac > 0.5f || (frac == 0.5f && (whole & 1u)))
			whole++;
		return (uint16_t)(sign | whole);
	}
	/* normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even */
	uint32_t r = abs - 0x38000000u;
	r += 0xfffu + ((r >> 13) & 1u);
	return (uint16_t)(sign | (r >> 13));
}

LQ_CLONES void lq_load_f32_n(const void *src, lq_dtype dtype, int64_t i0, int64_t n, float *dst)
{
	if (dtype == LQ_DTYPE_BF16) {
		const uint16_t *p = (const uint16_t *)src + i0;
		for (int64_t i = 0; i < n; i++)
			dst[i] = lq_bf16_decode(p[i]);
	} else if (dtype == LQ_DTYPE_F32) {
		memcpy(dst, (const float *)src + i0, (size_t)n * 4);
	} else {
		for (int64_t i = 0; i < n; i++)
			dst[i] = lq_load_f32(src, dtype, i0 + i);
	}
}

LQ_CLONES void lq_store_f32_n(void *dst, lq_dtype dtype, int64_t i0, int64_t n, const float *src)
{
	if (dtype == LQ_DTYPE_BF16) {
		uint16_t *p = (uint16_t *)dst + i0;
		for (int64_t i = 0; i < n; i++)
			p[i] = lq_bf16_encode(src[i]);
	} else if (dtype == LQ_DTYPE_F32) {
		memcpy((float *)dst + i0, src, (size_t)n * 4);
	} else {
		for (int64_t i = 0; i < n; i++)
			lq_store_f32(dst, dtype, i0 + i, src[i]);
	}
}

LQ_CLONES void lq_round_to_n(lq_dtype dtype, const float *src, int64_t n, float *dst)
{
	if (dtype == LQ_DTYPE_BF16) {
		for (int64_t i = 0; i < n; i++)
			dst[i] = lq_bf16_decode(lq_bf16_encode(src[i]));
	} else if (dtype == LQ_DTYPE_F16) {
		for (int64_t i = 0; i < n; i++)
			dst[i] = lq_round_to(dtype, src[i]);
	} else if (dst != src) {
		memcpy(dst, src, (size_t)n * 4);
	}
}

void lq_to_f32(const void *src, lq_dtype dtype, int64_t n, float *dst)
{
	lq_load_f32_n(src, dtype, 0, n, dst);
}

LQ_CLONES int64_t lq_first_nonfinite(const void *src, lq_dtype dtype, int64_t i0, int64_t n)
{
	/* whole stretches tested without a branch per element first (they vectorize), then the first one */
	const int64_t step = 1024;
	for (int64_t a = 0; a < n; a += step) {
		const int64_t b = a + step < n ? a + step : n;
		unsigned any = 0;
		if (dtype == LQ_DTYPE_F32) {
			const uint32_t *p = (const uint32_t *)src + i0;
			for (int64_t i = a; i < b; i++)
				any |= (p[i] & 0x7f800000u) == 0x7f800000u;
		} else {
			const uint16_t *p = (const uint16_t *)src + i0;
			const uint16_t e = dtype == LQ_DTYPE_BF16 ? 0x7f80u : 0x7c00u;
			for (int64_t i = a; i < b; i++)
				any |= (p[i] & e) == e;
		}
		if (!any)
			continue;
		for (int64_t i = a; i < b; i++) {
			float v = lq_load_f32(src, dtype, i0 + i);
			if (v != v || v - v != 0.0f)
				return i;
		}
	}
	return -1;
}
