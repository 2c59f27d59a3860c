/* bnb.c: see bnb.h. */
#include "bnb.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"

/* The longest repr of a float32 widened to double: sign, 17 digits, point and a 4-character exponent
 * ("-1.1754943508222875e-38"), or "0.000" and 17 digits in fixed notation: 23; one spare. */
#define OFFSET_WIDTH 24

static const char *const part_suffix[BNB_NPARTS] = {
	[BNB_PART_WEIGHT] = "",
	[BNB_PART_ABSMAX] = ".absmax",
	[BNB_PART_QUANT_MAP] = ".quant_map",
	[BNB_PART_NESTED_ABSMAX] = ".nested_absmax",
	[BNB_PART_NESTED_QUANT_MAP] = ".nested_quant_map",
	[BNB_PART_QUANT_STATE] = ".quant_state.bitsandbytes__",
};

bool bnb_part_name(char *buf, size_t size, const char *weight, bnb_part part, lq_qtype qtype)
{
	int n = snprintf(buf, size, "%s%s%s", weight, part_suffix[part],
			 part == BNB_PART_QUANT_STATE ? lq_qtype_name(qtype) : "");
	return n >= 0 && (size_t)n < size;
}

const char *bnb_find_state_suffix(const char *name)
{
	return strstr(name, part_suffix[BNB_PART_QUANT_STATE]);
}

bool bnb_has_part(const bnb_state *s, bnb_part part)
{
	if (part == BNB_PART_NESTED_ABSMAX || part == BNB_PART_NESTED_QUANT_MAP)
		return s->double_quant;
	return part < BNB_NPARTS;
}

size_t bnb_py_float_repr(double v, char *buf, size_t size)
{
	char tmp[48];
	if (isnan(v))
		return (size_t)snprintf(buf, size, "NaN");
	if (isinf(v))
		return (size_t)snprintf(buf, size, v < 0 ? "-Infinity" : "Infinity");
	if (v == 0)
		return (size_t)snprintf(buf, size, signbit(v) ? "-0.0" : "0.0");
	/* The shortest digit string that reads back as v: printf rounds correctly, so the first precision
	 * that round-trips gives the nearest shortest string, which is what Python's repr chooses. */
	int prec;
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	const char *p = tmp;
	bool neg = *p == '-';
	if (neg)
		p++;
	char digits[24];
	int nd = 0;
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	int exp10 = atoi(p + 1);
	char out[64];
	size_t n = 0;
	if (neg)
		out[n++] = '-';
	if (exp10 < -4 || exp10 >= 16) {
		out[n++] = digits[0];
		if (nd > 1) {
			out[n++] = '.';
			memcpy(out + n, digits + 1, (size_t)nd - 1);
			n += (size_t)nd - 1;
		}
		n += (size_t)snprintf(out + n, sizeof out - n, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
	} else if (exp10 < 0) {
		memcpy(out + n, "0.", 2);
		n += 2;
		for (int i = 0; i < -exp10 - 1; i++)
			out[n++] = '0';
		memcpy(out + n, digits, (size_t)nd);
		n += (size_t)nd;
	} else {
		int intdigits = exp10 + 1;
		for (int i = 0; i < intdigits; i++)
			out[n++] = i < nd ? digits[i] : '0';
		out[n++] = '.';
		if (nd > intdigits) {
			memcpy(out + n, digits + intdigits, (size_t)(nd - intdigits));
			n += (size_t)(nd - intdigits);
		} else {
			out[n++] = '0';
		}
	}
	out[n] = '\0';
	return (size_t)snprintf(buf, size, "%s", out);
}

/* The JSON without the offset's digits; *offset_at gets where they go (or the length when none). */
static int json_prefix(const bnb_state *s, char *buf, size_t size)
{
	int n = snprintf(buf, size, "{\"quant_type\": \"%s\", \"blocksize\": %d, \"dtype\": \"%s\", \"shape\": [",
			 lq_qtype_name(s->qtype), (int)s->blocksize, lq_dtype_torch_name(s->dtype));
	for (int d = 0; d < s->ndim && n >= 0 && (size_t)n < size; d++)
		n += snprintf(buf + n, size - (size_t)n, d ? ", %" PRId64 : "%" PRId64, s->shape[d]);
	if (n >= 0 && (size_t)n < size)
		n += snprintf(buf + n, size - (size_t)n, "]");
	if (s->double_quant && n >= 0 && (size_t)n < size)
		n += snprintf(buf + n, size - (size_t)n,
			      ", \"nested_blocksize\": %d, \"nested_dtype\": \"float32\", \"nested_offset\": ",
			      (int)s->nested_blocksize);
	return n;
}

size_t bnb_state_json_size(const bnb_state *s)
{
	char buf[512];
	int n = json_prefix(s, buf, sizeof buf);
	return (size_t)n + (s->double_quant ? OFFSET_WIDTH : 0) + 1;
}

bool bnb_state_json(const bnb_state *s, char *buf, size_t size)
{
	char tmp[512];
	int n = json_prefix(s, tmp, sizeof tmp);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return false;
	size_t len = (size_t)n;
	if (s->double_quant) {
		/* json.dumps would write NaN or Infinity, which is not JSON: bitsandbytes' own loader and
		 * every strict parser refuse it (the last line of defence: the executor refuses first) */
		if (!isfinite(s->nested_offset))
			return false;
		char num[64];
		size_t k = bnb_py_float_repr((double)s->nested_offset, num, sizeof num);
		if (k > OFFSET_WIDTH)
			return false;
		memcpy(tmp + len, num, k);
		len += k;
	}
	tmp[len++] = '}';
	if (len > size)
		return false;
	memcpy(buf, tmp, len);
	memset(buf + len, ' ', size - len);
	return true;
}

static bool parse_dtype(const char *name, lq_dtype *out)
{
	static const lq_dtype all[] = {LQ_DTYPE_F32, LQ_DTYPE_F16, LQ_DTYPE_BF16};
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		if (strcmp(name, lq_dtype_torch_name(all[i])) == 0) {
			*out = all[i];
			return true;
		}
	return false;
}

lq_status bnb_state_parse(const void *json, size_t len, bnb_state *s, char *err)
{
	memset(s, 0, sizeof *s);
	/* Strict JSON first, as json.loads takes it: cJSON alone accepts trailing garbage and numbers such
	 * as 01 or 1., which bitsandbytes cannot load. */
	json_scan js;
	json_scan_init(&js, json, len);
	if (json_peek(&js) != '{')
		return fmt_fail(err, LQ_ERR_CORRUPT, "quant_state is not a JSON object");
	if (!json_skip_value(&js) || !json_end(&js))
		return fmt_fail(err, LQ_ERR_CORRUPT, "quant_state is not a JSON object: byte %zu: %s", js.err_pos, js.err);
	cJSON *root = cJSON_ParseWithLength(json, len);
	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return fmt_fail(err, LQ_ERR_CORRUPT, "quant_state is not a JSON object");
	}
	lq_status st = LQ_ERR_CORRUPT;
	/* A key twice: json.loads keeps the last value, the lookups below would take the first. */
	static const char *const keys[] = {"quant_type", "blocksize", "dtype", "shape", "nested_blocksize",
					   "nested_dtype", "nested_offset"};
	int seen[sizeof keys / sizeof *keys] = {0};
	for (const cJSON *c = root->child; c; c = c->next)
		for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
			if (c->string && strcmp(c->string, keys[k]) == 0 && ++seen[k] > 1) {
				fmt_fail(err, st, "quant_state: key \"%s\" appears twice", keys[k]);
				goto out;
			}
	const cJSON *qt = cJSON_GetObjectItemCaseSensitive(root, "quant_type");
	const cJSON *bs = cJSON_GetObjectItemCaseSensitive(root, "blocksize");
	const cJSON *dt = cJSON_GetObjectItemCaseSensitive(root, "dtype");
	const cJSON *shape = cJSON_GetObjectItemCaseSensitive(root, "shape");
	const cJSON *nbs = cJSON_GetObjectItemCaseSensitive(root, "nested_blocksize");
	const cJSON *ndt = cJSON_GetObjectItemCaseSensitive(root, "nested_dtype");
	const cJSON *noff = cJSON_GetObjectItemCaseSensitive(root, "nested_offset");
	if (!cJSON_IsString(qt) || (strcmp(qt->valuestring, "nf4") != 0 && strcmp(qt->valuestring, "fp4") != 0)) {
		fmt_fail(err, st, "quant_state: quant_type is not \"nf4\" or \"fp4\"");
		goto out;
	}
	s->qtype = strcmp(qt->valuestring, "fp4") == 0 ? LQ_QTYPE_FP4 : LQ_QTYPE_NF4;
	/* the range first: converting a number beyond int64_t (3e40) is undefined */
	if (!cJSON_IsNumber(bs) || !(bs->valuedouble >= LQ_BLOCKSIZE_MIN && bs->valuedouble <= LQ_BLOCKSIZE_MAX) ||
	    bs->valuedouble != (double)(int64_t)bs->valuedouble || !lq_blocksize_valid((int64_t)bs->valuedouble)) {
		fmt_fail(err, st, "quant_state: blocksize is not a power of two from 32 to 4096");
		goto out;
	}
	s->blocksize = (int32_t)bs->valuedouble;
	if (!cJSON_IsString(dt) || !parse_dtype(dt->valuestring, &s->dtype)) {
		fmt_fail(err, st, "quant_state: dtype is not float32, float16 or bfloat16");
		goto out;
	}
	if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > BNB_MAX_DIMS) {
		fmt_fail(err, st, "quant_state: shape is not a list of at most %d sizes", BNB_MAX_DIMS);
		goto out;
	}
	const cJSON *d;
	cJSON_ArrayForEach(d, shape)
	{
		if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 9007199254740992.0 ||
		    d->valuedouble != (double)(int64_t)d->valuedouble) {
			fmt_fail(err, st, "quant_state: shape holds something other than sizes");
			goto out;
		}
		s->shape[s->ndim++] = (int64_t)d->valuedouble;
	}
	s->double_quant = noff != NULL;
	if (s->double_quant) {
		if (!cJSON_IsNumber(nbs) || nbs->valuedouble != LQ_NESTED_BLOCKSIZE || !cJSON_IsString(ndt) ||
		    strcmp(ndt->valuestring, "float32") != 0 || !cJSON_IsNumber(noff)) {
			fmt_fail(err, st, "quant_state: nested_blocksize 256, nested_dtype \"float32\" and a numeric "
				 "nested_offset expected");
			goto out;
		}
		s->nested_blocksize = LQ_NESTED_BLOCKSIZE;
		s->nested_offset = (float)noff->valuedouble;
		/* a number beyond float32 (1e39) is what torch.tensor() makes infinite: every scale would be */
		if (!isfinite(s->nested_offset)) {
			char num[64];
			bnb_py_float_repr(noff->valuedouble, num, sizeof num);
			fmt_fail(err, st, "quant_state: nested_offset %s is not a finite float32", num);
			goto out;
		}
	}
	st = LQ_OK;
out:
	cJSON_Delete(root);
	return st;
}

void bnb_part_layout(const bnb_state *s, bnb_part part, int64_t n, st_dtype *dtype, int *ndim, int64_t shape[2])
{
	const int64_t nb = lq_quant_nblocks(n, s->blocksize);
	*dtype = ST_F32;
	*ndim = 1;
	shape[1] = 1;
	switch (part) {
	case BNB_PART_WEIGHT:
		*dtype = ST_U8;
		*ndim = 2;
		shape[0] = lq_quant_packed_bytes(n);
		break;
	case BNB_PART_ABSMAX:
		*dtype = s->double_quant ? ST_U8 : ST_F32;
		shape[0] = nb;
		break;
	case BNB_PART_QUANT_MAP:
		shape[0] = 16;
		break;
	case BNB_PART_NESTED_ABSMAX:
		shape[0] = lq_quant_nested_blocks(nb);
		break;
	case BNB_PART_NESTED_QUANT_MAP:
		shape[0] = 256;
		break;
	default:
		*dtype = ST_U8;
		shape[0] = (int64_t)bnb_state_json_size(s);
		break;
	}
}

uint64_t bnb_group_bytes(const bnb_state *s, int64_t n)
{
	uint64_t bytes = 0;
	for (int k = 0; k < BNB_NPARTS; k++) {
		if (!bnb_has_part(s, (bnb_part)k))
			continue;
		st_dtype dt;
		int ndim;
		int64_t shape[2];
		bnb_part_layout(s, (bnb_part)k, n, &dt, &ndim, shape);
		bytes += (uint64_t)shape[0] * (ndim == 2 ? (uint64_t)shape[1] : 1) * (st_dtype_bits(dt) / 8);
	}
	return bytes;
}
