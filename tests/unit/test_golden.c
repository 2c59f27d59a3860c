/*
 * test_golden.c: every tensor case that real bitsandbytes 0.50.2 (CUDA, H200) quantized, reproduced byte
 * for byte: the shared reference cases (fixtures/reference, from shared/reference) and the edge cases
 * (fixtures/bnb-edge, from tests/gpu/bnb_edge_cases.py: subnormals, thresholds, absmax whose reciprocal
 * flushes, partial blocks). For each case: packed codes, absmax (float32, or 8-bit with nested_absmax),
 * the offset in the quant_state JSON, the JSON itself, quant_map and nested_quant_map, and dequantization
 * of bitsandbytes' own constants, each through the reference kernels and through the fast ones on several
 * threads.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "bnb.h"
#include "lq_internal.h"
#include "test.h"
#include "util.h"

static bool parse_dtype(const char *torch, lq_dtype *out)
{
	if (strcmp(torch, "torch.bfloat16") == 0)
		*out = LQ_DTYPE_BF16;
	else if (strcmp(torch, "torch.float16") == 0)
		*out = LQ_DTYPE_F16;
	else if (strcmp(torch, "torch.float32") == 0)
		*out = LQ_DTYPE_F32;
	else
		return false;
	return true;
}

static size_t count_diff(const void *a, const void *b, size_t n, size_t elem)
{
	size_t d = 0;
	for (size_t i = 0; i < n; i++)
		d += memcmp((const char *)a + i * elem, (const char *)b + i * elem, elem) != 0;
	return d;
}

/* Checks one case with quantize kernels `fast` (true: the context's; false: the reference). */
static void check_case(lq_ctx *ctx, bool fast, const char *name, const cJSON *c, st_file *in, st_file *refq,
		       st_file *refdeq, int *cases_ok)
{
	lq_dtype dtype = LQ_DTYPE_F32;
	lq_qtype qtype = strcmp(cJSON_GetObjectItem(c, "quant_type")->valuestring, "fp4") == 0 ? LQ_QTYPE_FP4
											    : LQ_QTYPE_NF4;
	int32_t bs = (int32_t)cJSON_GetObjectItem(c, "blocksize")->valuedouble;
	bool dq = cJSON_IsTrue(cJSON_GetObjectItem(c, "double_quant"));
	if (!CHECK(parse_dtype(cJSON_GetObjectItem(c, "dtype")->valuestring, &dtype)))
		return;
	test_context("case %s, %s kernels", name, fast ? lq_ctx_backend_name(ctx) : "reference");
	size_t xlen;
	void *x = util_tensor(in, name, &xlen);
	int64_t n = (int64_t)(xlen / lq_dtype_size(dtype));
	int64_t nb = lq_quant_nblocks(n, bs), nn = lq_quant_nested_blocks(nb);
	uint8_t *packed = malloc((size_t)lq_quant_packed_bytes(n));
	float *absmax = malloc((size_t)nb * 4);
	uint8_t *absq = malloc((size_t)nb);
	float *nested = malloc((size_t)nn * 4 + 4);
	char key[256];
	int failures_before = 0;
	(void)failures_before;
	bool ok = true;
	lq_status st = fast ? lq_quantize_blocks(ctx, x, dtype, n, qtype, bs, packed, absmax, NULL)
			    : lq_quantize_blocks_ref(x, dtype, n, qtype, bs, packed, absmax, NULL);
	ok &= CHECK_INT(st, LQ_OK);

	size_t len;
	snprintf(key, sizeof key, "%s.weight", name);
	uint8_t *want_packed = util_tensor(refq, key, &len);
	if (want_packed && CHECK_INT(len, lq_quant_packed_bytes(n))) {
		size_t d = count_diff(packed, want_packed, len, 1);
		ok &= d == 0 ? true : test_fail(__FILE__, __LINE__, "%zu of %zu packed bytes differ", d, len);
	}
	free(want_packed);

	snprintf(key, sizeof key, "%s.weight.absmax", name);
	void *want_absmax = util_tensor(refq, key, &len);
	float offset = 0;
	if (dq) {
		if (fast)
			st = lq_double_quant(ctx, absmax, nb, absq, nested, &offset);
		else
			lq_double_quant_ref(absmax, nb, absq, nested, &offset);
		ok &= CHECK_INT(st, LQ_OK);
		if (want_absmax && CHECK_INT(len, nb)) {
			size_t d = count_diff(absq, want_absmax, (size_t)nb, 1);
			ok &= d == 0 ? true : test_fail(__FILE__, __LINE__, "%zu of %lld 8-bit absmax codes differ", d, (long long)nb);
		}
		snprintf(key, sizeof key, "%s.weight.nested_absmax", name);
		float *want_nested = util_tensor(refq, key, &len);
		if (want_nested && CHECK_INT(len, nn * 4)) {
			size_t d = count_diff(nested, want_nested, (size_t)nn, 4);
			ok &= d == 0 ? true : test_fail(__FILE__, __LINE__, "%zu of %lld nested_absmax differ", d, (long long)nn);
		}
		free(want_nested);
		snprintf(key, sizeof key, "%s.weight.nested_quant_map", name);
		float *map = util_tensor(refq, key, &len);
		if (map && CHECK_INT(len, 1024))
			ok &= CHECK(memcmp(map, lq_dynamic_map(), 1024) == 0);
		free(map);
	} else if (want_absmax && CHECK_INT(len, nb * 4)) {
		size_t d = count_diff(absmax, want_absmax, (size_t)nb, 4);
		ok &= d == 0 ? true : test_fail(__FILE__, __LINE__, "%zu of %lld absmax differ", d, (long long)nb);
	}

	snprintf(key, sizeof key, "%s.weight.quant_map", name);
	float *qmap = util_tensor(refq, key, &len);
	if (qmap && CHECK_INT(len, 64))
		ok &= CHECK(memcmp(qmap, lq_quant_map(qtype), 64) == 0);
	free(qmap);

	/* quant_state: theirs decodes to the case's parameters and our offset; ours is theirs padded */
	snprintf(key, sizeof key, "%s.weight.quant_state.bitsandbytes__%s", name, lq_qtype_name(qtype));
	char *json = util_tensor(refq, key, &len);
	bnb_state theirs, mine;
	char err[FMT_ERRBUF];
	if (json && CHECK_INT(bnb_state_parse(json, len, &theirs, err), LQ_OK)) {
		ok &= CHECK_INT(theirs.qtype, qtype) && CHECK_INT(theirs.blocksize, bs) && CHECK_INT(theirs.dtype, dtype) &&
		      CHECK_INT(theirs.double_quant, dq);
		if (dq && lq_f32_bits(theirs.nested_offset) != lq_f32_bits(offset))
			ok &= test_fail(__FILE__, __LINE__, "nested_offset %.9g (bits %08x) != bitsandbytes' %.9g (%08x)",
					(double)offset, lq_f32_bits(offset), (double)theirs.nested_offset,
					lq_f32_bits(theirs.nested_offset));
		mine = theirs;
		mine.nested_offset = offset;
		size_t size = bnb_state_json_size(&mine);
		char *text = malloc(size);
		if (CHECK(size >= len) && CHECK(bnb_state_json(&mine, text, size))) {
			ok &= CHECK(memcmp(text, json, len) == 0);
			for (size_t i = len; i < size; i++)
				ok &= text[i] == ' ' ? true : test_fail(__FILE__, __LINE__, "padding byte %zu is not a space", i);
		}
		free(text);
	}
	free(json);

	/* dequantization of bitsandbytes' own constants gives bitsandbytes' dequantized tensor */
	float *deq_absmax = malloc((size_t)nb * 4);
	if (want_absmax && deq_absmax) {
		if (dq) {
			snprintf(key, sizeof key, "%s.weight.nested_absmax", name);
			float *their_nested = util_tensor(refq, key, &len);
			if (their_nested)
				lq_dequantize_absmax(ctx, want_absmax, their_nested, theirs.nested_offset, nb, deq_absmax);
			free(their_nested);
		} else {
			memcpy(deq_absmax, want_absmax, (size_t)nb * 4);
		}
		snprintf(key, sizeof key, "%s.weight", name);
		uint8_t *their_packed = util_tensor(refq, key, &len);
		void *out = malloc(xlen);
		void *want = util_tensor(refdeq, name, &len);
		if (their_packed && out && want && CHECK_INT(len, xlen)) {
			if (fast)
				lq_dequantize_blocks(ctx, their_packed, deq_absmax, n, qtype, bs, dtype, out);
			else
				lq_dequantize_blocks_ref(their_packed, deq_absmax, n, qtype, bs, dtype, out);
			size_t d = count_diff(out, want, (size_t)n, lq_dtype_size(dtype));
			ok &= d == 0 ? true : test_fail(__FILE__, __LINE__, "%zu of %lld dequantized values differ", d, (long long)n);
		}
		free(their_packed);
		free(out);
		free(want);
	}
	free(deq_absmax);
	free(want_absmax);
	free(x);
	free(packed);
	free(absmax);
	free(absq);
	free(nested);
	if (ok)
		(*cases_ok)++;
}

static void run_set(const char *dir, const char *cases_file, const char *inputs, const char *refq_file,
		    const char *refdeq_file, int expect_cases)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, cases_file);
	FILE *fp = fopen(test_path(path), "rb");
	if (!CHECK(fp != NULL))
		return;
	char text[65536];
	size_t len = fread(text, 1, sizeof text - 1, fp);
	fclose(fp);
	text[len] = '\0';
	cJSON *cases = cJSON_Parse(text);
	if (!CHECK(cases != NULL))
		return;
	snprintf(path, sizeof path, "%s/%s", dir, inputs);
	st_file *in = util_open(path);
	snprintf(path, sizeof path, "%s/%s", dir, refq_file);
	st_file *refq = util_open(path);
	snprintf(path, sizeof path, "%s/%s", dir, refdeq_file);
	st_file *refdeq = util_open(path);
	lq_ctx_options o = {.threads = 3};
	lq_ctx *ctx = util_ctx(o.threads);
	int total = 0, ok_ref = 0, ok_fast = 0;
	if (in && refq && refdeq && CHECK(ctx != NULL)) {
		const cJSON *c;
		cJSON_ArrayForEach(c, cases)
		{
			total++;
			check_case(ctx, false, c->string, c, in, refq, refdeq, &ok_ref);
			check_case(ctx, true, c->string, c, in, refq, refdeq, &ok_fast);
		}
	}
	test_context("%s", dir);
	CHECK_INT(total, expect_cases);
	test_note("%s: %d cases; exact with the reference kernels: %d, with %s on %d threads: %d", dir, total, ok_ref,
		  ctx ? lq_ctx_backend_name(ctx) : "?", ctx ? lq_ctx_threads(ctx) : 0, ok_fast);
	lq_ctx_free(ctx);
	st_file_free(in);
	st_file_free(refq);
	st_file_free(refdeq);
	cJSON_Delete(cases);
}

TEST(golden_reference_tensors)
{
	run_set("fixtures/reference", "tensors/cases.json", "tensors/inputs.safetensors", "tensors_ref/ref_q.safetensors",
		"tensors_ref/ref_deq.safetensors", 23);
}

TEST(golden_bnb_edge_cases)
{
	run_set("fixtures/bnb-edge", "edge_cases.json", "edge_inputs.safetensors", "edge_ref_q.safetensors",
		"edge_ref_deq.safetensors", 48);
}
