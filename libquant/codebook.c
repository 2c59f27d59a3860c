/*
 * codebook.c: the code tables and decision thresholds of bitsandbytes' 4-bit and 8-bit quantization
 * (doc/specs/nf4-bnb.md), and the 8-bit code search.
 *
 * Every constant is a C99 hexadecimal float literal: exact, so no decimal rounding can creep in. They
 * were generated from the float32 bit patterns in the spec.
 */
#include "lq_internal.h"

static const float nf4_values[16] = {
	-0x1p+0f, -0x1.647362p-1f, -0x1.0cd66p-1f, -0x1.94654p-2f,
	-0x1.23449ap-2f, -0x1.7a6a7ep-3f, -0x1.74f0e2p-4f, 0.0f,
	0x1.45f5fep-4f, 0x1.4995c6p-3f, 0x1.f809bap-3f, 0x1.5a0674p-2f,
	0x1.c3497p-2f, 0x1.200f56p-1f, 0x1.722766p-1f, 0x1p+0f,
};

/* FP4 in bit-pattern order (bit 3 = sign); the values are the E2M1 numbers divided by 12. */
static const float fp4_values[16] = {
	0.0f, 0x1.555556p-8f, 0x1.555556p-1f, 0x1p+0f,
	0x1.555556p-2f, 0x1p-1f, 0x1.555556p-3f, 0x1p-2f,
	-0.0f, -0x1.555556p-8f, -0x1.555556p-1f, -0x1p+0f,
	-0x1.555556p-2f, -0x1p-1f, -0x1.555556p-3f, -0x1p-2f,
};

/* What bitsandbytes saves as quant_map for FP4: its table lists 0 twice, so index 8 is +0.0. */
static const float fp4_stored[16] = {
	0.0f, 0x1.555556p-8f, 0x1.555556p-1f, 0x1p+0f,
	0x1.555556p-2f, 0x1p-1f, 0x1.555556p-3f, 0x1p-2f,
	0.0f, -0x1.555556p-8f, -0x1.555556p-1f, -0x1p+0f,
	-0x1.555556p-2f, -0x1p-1f, -0x1.555556p-3f, -0x1p-2f,
};

/* dQuantizeNF4's decision-tree literals as a C compiler rounds them, ascending. Four are not the float
 * midpoints of their neighbouring codes: computing them would send ties the wrong way. */
const float lq_nf4_thresholds[15] = {
	-0x1.b239b2p-1f, -0x1.38a4ep-1f, -0x1.d709p-2f, -0x1.5bd4ecp-2f,
	-0x1.e079d8p-3f, -0x1.1a7178p-3f, -0x1.74f0e2p-5f, 0x1.45f5fep-5f,
	0x1.ec90c6p-4f, 0x1.a0cfcp-3f, 0x1.2b05a8p-2f, 0x1.8ea7f2p-2f,
	0x1.00da06p-1f, 0x1.491b5ep-1f, 0x1.b913b2p-1f,
};

/* dQuantizeFP4's thresholds T6 < T4 < T5 < T0 < T3 < T1 < T2, ascending. Its decision tree is consistent
 * (each subtree's thresholds lie on its side of the parent's), so the magnitude code is a function of how
 * many thresholds lie strictly below |y|: lq_fp4_code_by_rank. */
const float lq_fp4_thresholds_sorted[7] = {
	0x1.555572p-9f, 0x1.6p-4f, 0x1.aaaaaap-3f, 0x1.2aaaaap-2f,
	0x1.aaaaacp-2f, 0x1.2aaaap-1f, 0x1.aaaaaap-1f,
};

const uint8_t lq_fp4_code_by_rank[8] = {0, 1, 6, 7, 4, 5, 2, 3};

/* bitsandbytes' create_dynamic_map(signed=True), doc/specs/dynamic_map_256.txt. */
static const float dynamic_map[256] = {
	-0x1.fc6666p-1f, -0x1.f53334p-1f, -0x1.eep-1f, -0x1.e6ccccp-1f,
	-0x1.df999ap-1f, -0x1.d86666p-1f, -0x1.d13334p-1f, -0x1.cap-1f,
	-0x1.c2ccccp-1f, -0x1.bb999ap-1f, -0x1.b46666p-1f, -0x1.ad3334p-1f,
	-0x1.a6p-1f, -0x1.9eccccp-1f, -0x1.97999ap-1f, -0x1.906666p-1f,
	-0x1.893334p-1f, -0x1.82p-1f, -0x1.7accccp-1f, -0x1.73999ap-1f,
	-0x1.6c6668p-1f, -0x1.653334p-1f, -0x1.5ep-1f, -0x1.56ccccp-1f,
	-0x1.4f999ap-1f, -0x1.486668p-1f, -0x1.413334p-1f, -0x1.3ap-1f,
	-0x1.32ccccp-1f, -0x1.2b999ap-1f, -0x1.246668p-1f, -0x1.1d3334p-1f,
	-0x1.16p-1f, -0x1.0eccccp-1f, -0x1.079998p-1f, -0x1.006666p-1f,
	-0x1.f26664p-2f, -0x1.e4p-2f, -0x1.d59998p-2f, -0x1.c73334p-2f,
	-0x1.b8ccccp-2f, -0x1.aa6666p-2f, -0x1.9cp-2f, -0x1.8d9998p-2f,
	-0x1.7f3334p-2f, -0x1.70ccccp-2f, -0x1.626666p-2f, -0x1.54p-2f,
	-0x1.459998p-2f, -0x1.373334p-2f, -0x1.28ccccp-2f, -0x1.1a6668p-2f,
	-0x1.0cp-2f, -0x1.fb3332p-3f, -0x1.de6666p-3f, -0x1.c1999ap-3f,
	-0x1.a4ccccp-3f, -0x1.88p-3f, -0x1.6b3334p-3f, -0x1.4e6666p-3f,
	-0x1.31999ap-3f, -0x1.14ccccp-3f, -0x1.fp-4f, -0x1.b66668p-4f,
	-0x1.93d70ap-4f, -0x1.8851eep-4f, -0x1.7ccccep-4f, -0x1.7147aep-4f,
	-0x1.65c29p-4f, -0x1.5a3d7p-4f, -0x1.4eb854p-4f, -0x1.433334p-4f,
	-0x1.37ae14p-4f, -0x1.2c28f6p-4f, -0x1.20a3d6p-4f, -0x1.151ebap-4f,
	-0x1.09999ap-4f, -0x1.fc28f6p-5f, -0x1.e51ebap-5f, -0x1.ce147ap-5f,
	-0x1.b70a3ep-5f, -0x1.ap-5f, -0x1.88f5c2p-5f, -0x1.71eb86p-5f,
	-0x1.5ae146p-5f, -0x1.43d70ap-5f, -0x1.2ccccep-5f, -0x1.15c29p-5f,
	-0x1.fd70a4p-6f, -0x1.cf5c2ap-6f, -0x1.a147aep-6f, -0x1.733334p-6f,
	-0x1.451ebap-6f, -0x1.170a3ep-6f, -0x1.d1eb86p-7f, -0x1.75c29p-7f,
	-0x1.3e76c8p-7f, -0x1.2c083p-7f, -0x1.19999ap-7f, -0x1.072b02p-7f,
	-0x1.e978d4p-8f, -0x1.c49ba6p-8f, -0x1.9fbe76p-8f, -0x1.7ae148p-8f,
	-0x1.56041ap-8f, -0x1.3126e8p-8f, -0x1.0c49bap-8f, -0x1.ced914p-9f,
	-0x1.851eb8p-9f, -0x1.3b645ap-9f, -0x1.e353f8p-10f, -0x1.4fdf3ap-10f,
	-0x1.eecbfep-11f, -0x1.b3d07cp-11f, -0x1.78d5p-11f, -0x1.3dd982p-11f,
	-0x1.02de02p-11f, -0x1.8fc506p-12f, -0x1.19ce0ap-12f, -0x1.47ae16p-13f,
	-0x1.743e96p-14f, -0x1.15df66p-14f, -0x1.6f0068p-15f, -0x1.64840cp-16f,
	-0x1.040bfep-17f, -0x1.b43528p-19f, -0x1.27476ep-21f, 0.0f,
	0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f,
	0x1.6f0068p-15f, 0x1.15df66p-14f, 0x1.743e96p-14f, 0x1.47ae16p-13f,
	0x1.19ce0ap-12f, 0x1.8fc506p-12f, 0x1.02de02p-11f, 0x1.3dd982p-11f,
	0x1.78d5p-11f, 0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f,
	0x1.e353f8p-10f, 0x1.3b645ap-9f, 0x1.851eb8p-9f, 0x1.ced914p-9f,
	0x1.0c49bap-8f, 0x1.3126e8p-8f, 0x1.56041ap-8f, 0x1.7ae148p-8f,
	0x1.9fbe76p-8f, 0x1.c49ba6p-8f, 0x1.e978d4p-8f, 0x1.072b02p-7f,
	0x1.19999ap-7f, 0x1.2c083p-7f, 0x1.3e76c8p-7f, 0x1.75c29p-7f,
	0x1.d1eb86p-7f, 0x1.170a3ep-6f, 0x1.451ebap-6f, 0x1.733334p-6f,
	0x1.a147aep-6f, 0x1.cf5c2ap-6f, 0x1.fd70a4p-6f, 0x1.15c29p-5f,
	0x1.2ccccep-5f, 0x1.43d70ap-5f, 0x1.5ae146p-5f, 0x1.71eb86p-5f,
	0x1.88f5c2p-5f, 0x1.ap-5f, 0x1.b70a3ep-5f, 0x1.ce147ap-5f,
	0x1.e51ebap-5f, 0x1.fc28f6p-5f, 0x1.09999ap-4f, 0x1.151ebap-4f,
	0x1.20a3d6p-4f, 0x1.2c28f6p-4f, 0x1.37ae14p-4f, 0x1.433334p-4f,
	0x1.4eb854p-4f, 0x1.5a3d7p-4f, 0x1.65c29p-4f, 0x1.7147aep-4f,
	0x1.7ccccep-4f, 0x1.8851eep-4f, 0x1.93d70ap-4f, 0x1.b66668p-4f,
	0x1.fp-4f, 0x1.14ccccp-3f, 0x1.31999ap-3f, 0x1.4e6666p-3f,
	0x1.6b3334p-3f, 0x1.88p-3f, 0x1.a4ccccp-3f, 0x1.c1999ap-3f,
	0x1.de6666p-3f, 0x1.fb3332p-3f, 0x1.0cp-2f, 0x1.1a6668p-2f,
	0x1.28ccccp-2f, 0x1.373334p-2f, 0x1.459998p-2f, 0x1.54p-2f,
	0x1.626666p-2f, 0x1.70ccccp-2f, 0x1.7f3334p-2f, 0x1.8d9998p-2f,
	0x1.9cp-2f, 0x1.aa6666p-2f, 0x1.b8ccccp-2f, 0x1.c73334p-2f,
	0x1.d59998p-2f, 0x1.e4p-2f, 0x1.f26664p-2f, 0x1.006666p-1f,
	0x1.079998p-1f, 0x1.0eccccp-1f, 0x1.16p-1f, 0x1.1d3334p-1f,
	0x1.246668p-1f, 0x1.2b999ap-1f, 0x1.32ccccp-1f, 0x1.3ap-1f,
	0x1.413334p-1f, 0x1.486668p-1f, 0x1.4f999ap-1f, 0x1.56ccccp-1f,
	0x1.5ep-1f, 0x1.653334p-1f, 0x1.6c6668p-1f, 0x1.73999ap-1f,
	0x1.7accccp-1f, 0x1.82p-1f, 0x1.893334p-1f, 0x1.906666p-1f,
	0x1.97999ap-1f, 0x1.9eccccp-1f, 0x1.a6p-1f, 0x1.ad3334p-1f,
	0x1.b46666p-1f, 0x1.bb999ap-1f, 0x1.c2ccccp-1f, 0x1.cap-1f,
	0x1.d13334p-1f, 0x1.d86666p-1f, 0x1.df999ap-1f, 0x1.e6ccccp-1f,
	0x1.eep-1f, 0x1.f53334p-1f, 0x1.fc6666p-1f, 0x1p+0f,
};

static uint8_t nf4_code_of(float y)
{
	return lq_nf4_code(y);
}

static uint8_t fp4_code_of(float y)
{
	return lq_fp4_code(y);
}

/* The 4-bit types, by lq_qtype: what every other file asks of a type. */
static const lq_qtype_traits qtypes[] = {
	[LQ_QTYPE_NF4] = {"nf4", nf4_values, nf4_values, lq_nf4_thresholds, 15, nf4_code_of},
	[LQ_QTYPE_FP4] = {"fp4", fp4_values, fp4_stored, lq_fp4_thresholds_sorted, 7, fp4_code_of},
};

const lq_qtype_traits *lq_qtype_info(lq_qtype qtype)
{
	return (unsigned)qtype < sizeof qtypes / sizeof qtypes[0] && qtypes[qtype].name ? &qtypes[qtype] : NULL;
}

const float *lq_code_table(lq_qtype qtype)
{
	const lq_qtype_traits *q = lq_qtype_info(qtype);
	return q ? q->code : NULL;
}

const float *lq_quant_map(lq_qtype qtype)
{
	const lq_qtype_traits *q = lq_qtype_info(qtype);
	return q ? q->stored_map : NULL;
}

const char *lq_qtype_name(lq_qtype qtype)
{
	const lq_qtype_traits *q = lq_qtype_info(qtype);
	return q ? q->name : "?";
}

bool lq_qtype_parse(const char *name, lq_qtype *qtype)
{
	for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++)
		if (qtypes[i].name && strcmp(name, qtypes[i].name) == 0) {
			*qtype = (lq_qtype)i;
			return true;
		}
	return false;
}

const float *lq_dynamic_map(void)
{
	return dynamic_map;
}

uint8_t lq_dynamic_code(float v)
{
	int pivot = 127;
	for (int step = 64; step > 0; step >>= 1)
		pivot += v > dynamic_map[pivot] ? step : -step;
	/* The last step was 1, so the neighbour on v's side is adjacent: the pivot the search last left in
	 * that direction (the ends, 0 and 255, are their own bounds). NaN compares false everywhere and
	 * lands on code 0. */
	if (v > dynamic_map[pivot]) {
		float mid = (dynamic_map[pivot + 1] + dynamic_map[pivot]) * 0.5f;
		return (uint8_t)(v > mid ? pivot + 1 : pivot);
	}
	int lower = pivot > 0 ? pivot - 1 : 0;
	float mid = (dynamic_map[lower] + dynamic_map[pivot]) * 0.5f;
	return (uint8_t)(v < mid ? lower : pivot);
}
