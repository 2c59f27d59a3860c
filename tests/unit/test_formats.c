/*
 * test_formats.c: the text the formats library writes where Python's exact output is the reference:
 * Python's float repr (fixtures/python/float_repr.txt), model.safetensors.index.json as transformers
 * writes it, config.json edited around quantization_config (against what transformers saved in
 * fixtures/models), and the bitsandbytes quant_state JSON, written and parsed back.
 */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "bnb.h"
#include "bundle.h"
#include "hf_json.h"
#include "hf_model.h"
#include "hf_out.h"
#include "out_model.h"
#include "test.h"
#include "util.h"

static char *read_text(const char *rel, size_t *len)
{
	FILE *fp = fopen(test_path(rel), "rb");
	if (!fp) {
		test_fail(__FILE__, __LINE__, "cannot open %s", rel);
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n + 1 >= cap) {
			cap *= 2;
			char *p = realloc(buf, cap);
			if (!p)
				break;
			buf = p;
		}
		size_t k = fread(buf + n, 1, cap - n - 1, fp);
		if (k == 0)
			break;
		n += k;
	}
	fclose(fp);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static float f32_from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static uint32_t bits_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

/* ------------------------------------------------------------------------------- Python repr */

TEST(formats_py_float_repr_matches_python)
{
	char *text = read_text("fixtures/python/float_repr.txt", NULL);
	if (!text)
		return;
	int lines = 0, bad = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#')
			continue;
		unsigned bits;
		char want[64];
		if (!CHECK(sscanf(line, "%x %63s", &bits, want) == 2))
			continue;
		char got[64];
		size_t n = bnb_py_float_repr((double)f32_from_bits(bits), got, sizeof got);
		lines++;
		if (n != strlen(want) || strcmp(got, want) != 0) {
			if (++bad <= 10)
				test_fail(__FILE__, __LINE__, "float32 %08x: repr \"%s\" (length %zu), Python \"%s\"", bits, got, n,
					  want);
		}
	}
	CHECK_INT(bad, 0);
	CHECK(lines > 2000);
	test_note("%d float32 values, repr as Python writes it", lines);
	free(text);

	/* doubles that are not float32 values, and the non-finite ones as json.dumps writes them */
	static const struct {
		double v;
		const char *want;
	} d[] = {
		{0.1, "0.1"}, {1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {123456789012345678.0, "1.2345678901234568e+17"},
		{1e-4, "0.0001"}, {1e-5, "1e-05"}, {-2.5, "-2.5"}, {5e-324, "5e-324"}, {DBL_MAX, "1.7976931348623157e+308"},
		{NAN, "NaN"}, {INFINITY, "Infinity"}, {-INFINITY, "-Infinity"}, {-0.0, "-0.0"}, {100.0, "100.0"},
	};
	for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
		char got[64];
		test_context("%s", d[i].want);
		CHECK_INT(bnb_py_float_repr(d[i].v, got, sizeof got), strlen(d[i].want));
		CHECK_STR(got, d[i].want);
	}
	/* a short buffer: cut, terminated, the full length returned (snprintf's contract) */
	char small[4];
	test_context("short buffer");
	CHECK_INT(bnb_py_float_repr(0.05457573011517525, small, sizeof small), 19);
	CHECK_STR(small, "0.0");
}

/* ------------------------------------------------------------------------------- index json */

TEST(formats_index_json_equals_transformers)
{
	enum { NSHARDS = 5 };
	char *shard_files[NSHARDS];
	char *names[256];
	size_t shard_of[256], n = 0;
	uint64_t params = 0, size = 0;
	bool ok = true;
	for (size_t s = 0; s < NSHARDS; s++) {
		char file[64], rel[256];
		hf_shard_name(file, sizeof file, s, NSHARDS);
		shard_files[s] = strdup(file);
		snprintf(rel, sizeof rel, "fixtures/models/tiny-llama-sharded/%s", file);
		st_file *f = util_open(rel);
		if (!f) {
			ok = false;
			continue;
		}
		for (size_t i = 0; i < f->ntensors && n < 256; i++) {
			names[n] = strdup(f->tensors[i].name);
			shard_of[n++] = s;
			params += f->tensors[i].nelem;
			size += f->tensors[i].end - f->tensors[i].begin;
		}
		st_file_free(f);
	}
	CHECK_STR(shard_files[0], "model-00001-of-00005.safetensors");
	CHECK_INT(params, 377472);
	CHECK_INT(size, 754944);
	size_t want_len;
	char *want = read_text("fixtures/models/tiny-llama-sharded/model.safetensors.index.json", &want_len);
	char *got = hf_index_json(params, size, names, shard_of, n, shard_files);
	if (ok && want && CHECK(got != NULL)) {
		CHECK_INT(strlen(got), want_len);
		CHECK_STR(got, want);
	}
	free(got);
	free(want);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	for (size_t s = 0; s < NSHARDS; s++)
		free(shard_files[s]);
	test_note("%zu tensors in %d shards", n, NSHARDS);

	/* names that json.dumps escapes (ensure_ascii), sorted by code point; made with Python 3.11:
	 * json.dumps(index, indent=2, sort_keys=True) + "\n" */
	static char f1[] = "model-00001-of-00002.safetensors", f2[] = "model-00002-of-00002.safetensors";
	static char n0[] = "b", n1[] = "a\303\251", n2[] = "\360\237\230\200x", n3[] = "q\"\\/", n4[] = "z\344\270\226",
		    n5[] = "Z";
	char *const files2[2] = {f1, f2};
	char *const names2[] = {n0, n1, n2, n3, n4, n5};
	const size_t of2[] = {1, 0, 0, 1, 0, 1};
	got = hf_index_json(3, 10, names2, of2, 6, files2);
	test_context("escaped names");
	CHECK_STR(got, "{\n  \"metadata\": {\n    \"total_parameters\": 3,\n    \"total_size\": 10\n  },\n  \"weight_map\": {\n"
		       "    \"Z\": \"model-00002-of-00002.safetensors\",\n    \"a\\u00e9\": \"model-00001-of-00002.safetensors\",\n"
		       "    \"b\": \"model-00002-of-00002.safetensors\",\n    \"q\\\"\\\\/\": \"model-00002-of-00002.safetensors\",\n"
		       "    \"z\\u4e16\": \"model-00001-of-00002.safetensors\",\n"
		       "    \"\\ud83d\\ude00x\": \"model-00001-of-00002.safetensors\"\n  }\n}\n");
	free(got);
	got = hf_index_json(0, 0, NULL, NULL, 0, NULL);
	test_context("empty");
	CHECK_STR(got, "{\n  \"metadata\": {\n    \"total_parameters\": 0,\n    \"total_size\": 0\n  },\n  \"weight_map\": {}\n}\n");
	free(got);
	/* large totals are integers, not floats */
	got = hf_index_json(UINT64_MAX, 18000000000000000000ull, NULL, NULL, 0, NULL);
	test_context("large totals");
	CHECK_CONTAINS(got, "\"total_parameters\": 18446744073709551615,\n    \"total_size\": 18000000000000000000\n");
	free(got);

	char *s = hf_py_json_string("\t\"\\\001\177\303\251\360\237\230\200");
	test_context("hf_py_json_string");
	CHECK_STR(s, "\"\\t\\\"\\\\\\u0001\177\\u00e9\\ud83d\\ude00\"");
	free(s);
}

/* ----------------------------------------------------------------------------- config.json edit */

/* tools/nf4quant.c's quantization_config() for the given quant type, double quantization and compute
 * dtype. */
static void qconfig(char *buf, size_t size, const char *qtype, bool dq, const char *compute)
{
	snprintf(buf, size,
		 "\"quantization_config\": {\n"
		 "  \"_load_in_4bit\": true,\n"
		 "  \"_load_in_8bit\": false,\n"
		 "  \"bnb_4bit_compute_dtype\": \"%s\",\n"
		 "  \"bnb_4bit_quant_storage\": \"uint8\",\n"
		 "  \"bnb_4bit_quant_type\": \"%s\",\n"
		 "  \"bnb_4bit_use_double_quant\": %s,\n"
		 "  \"llm_int8_enable_fp32_cpu_offload\": false,\n"
		 "  \"llm_int8_has_fp16_weight\": false,\n"
		 "  \"llm_int8_skip_modules\": null,\n"
		 "  \"llm_int8_threshold\": 6.0,\n"
		 "  \"load_in_4bit\": true,\n"
		 "  \"load_in_8bit\": false,\n"
		 "  \"quant_method\": \"bitsandbytes\"\n"
		 "}",
		 compute, qtype, dq ? "true" : "false");
}

/* hf_config_edit on text; compares with want (NULL: must fail, with a message naming config.json). */
static void check_edit(const char *what, const char *text, size_t len, const char *key, const char *member,
		       const char *want)
{
	size_t want_len = want ? strlen(want) : 0;
	test_context("%s", what);
	char err[FMT_ERRBUF] = "";
	size_t out_len = 0;
	char *got = hf_config_edit(text, len, key, member, &out_len, err);
	if (!want) {
		if (CHECK(got == NULL))
			CHECK_CONTAINS(err, "config.json");
		free(got);
		return;
	}
	if (!CHECK(got != NULL)) {
		test_note("%s: %s", what, err);
		return;
	}
	if (!CHECK_INT(out_len, want_len) || memcmp(got, want, want_len) != 0)
		test_fail(__FILE__, __LINE__, "got:\n%.*s\nwant:\n%.*s", (int)out_len, got, (int)want_len, want);
	/* whatever we write is JSON */
	cJSON *j = cJSON_ParseWithLength(got, out_len);
	CHECK(j != NULL);
	cJSON_Delete(j);
	free(got);
}

TEST(formats_config_edit_equals_transformers)
{
	size_t base_len, nf4_len, fp4_len;
	char *base = read_text("fixtures/models/tiny-llama/config.json", &base_len);
	char *nf4 = read_text("fixtures/models/tiny-llama-nf4/config.json", &nf4_len);
	char *fp4 = read_text("fixtures/models/tiny-llama-fp4/config.json", &fp4_len);
	char m_nf4[1024], m_fp4[1024];
	qconfig(m_nf4, sizeof m_nf4, "nf4", true, "bfloat16");
	qconfig(m_fp4, sizeof m_fp4, "fp4", true, "bfloat16");
	if (base && nf4 && fp4) {
		/* what transformers saved after quantizing tiny-llama */
		check_edit("insert nf4", base, base_len, "quantization_config", m_nf4, nf4);
		check_edit("insert fp4", base, base_len, "quantization_config", m_fp4, fp4);
		/* and back */
		check_edit("remove from nf4", nf4, nf4_len, "quantization_config", NULL, base);
		check_edit("remove absent", base, base_len, "quantization_config", NULL, base);
		/* an existing member is replaced where it is */
		check_edit("replace nf4 by fp4", nf4, nf4_len, "quantization_config", m_fp4, fp4);
		check_edit("replace by itself", nf4, nf4_len, "quantization_config", m_nf4, nf4);
	}
	free(base);
	free(nf4);
	free(fp4);

	/* sorted keys: in order, first and last places included; CRLF-free two-space indent */
	static const char sorted[] = "{\n  \"b\": 1,\n  \"d\": [\n    1\n  ]\n}\n";
	check_edit("sorted, middle", sorted, sizeof sorted - 1, "c", "\"c\": {\n  \"x\": 1\n}",
		   "{\n  \"b\": 1,\n  \"c\": {\n    \"x\": 1\n  },\n  \"d\": [\n    1\n  ]\n}\n");
	check_edit("sorted, first", sorted, sizeof sorted - 1, "a", "\"a\": true",
		   "{\n  \"a\": true,\n  \"b\": 1,\n  \"d\": [\n    1\n  ]\n}\n");
	check_edit("sorted, last", sorted, sizeof sorted - 1, "e", "\"e\": null",
		   "{\n  \"b\": 1,\n  \"d\": [\n    1\n  ],\n  \"e\": null\n}\n");
	/* keys not sorted: at the end */
	static const char unsorted[] = "{\n  \"z\": 1,\n  \"a\": 2\n}\n";
	check_edit("unsorted", unsorted, sizeof unsorted - 1, "m", "\"m\": {\n  \"k\": 0\n}",
		   "{\n  \"z\": 1,\n  \"a\": 2,\n  \"m\": {\n    \"k\": 0\n  }\n}\n");
	check_edit("unsorted, replace", unsorted, sizeof unsorted - 1, "z", "\"z\": [3]", "{\n  \"z\": [3],\n  \"a\": 2\n}\n");
	check_edit("unsorted, remove first", unsorted, sizeof unsorted - 1, "z", NULL, "{\n  \"a\": 2\n}\n");
	check_edit("unsorted, remove last", unsorted, sizeof unsorted - 1, "a", NULL, "{\n  \"z\": 1\n}\n");
	/* four-space indent: continuation lines follow the file's indent */
	static const char four[] = "{\n    \"a\": 1,\n    \"c\": 2\n}";
	check_edit("four spaces", four, sizeof four - 1, "b", "\"b\": {\n  \"x\": 1\n}",
		   "{\n    \"a\": 1,\n    \"b\": {\n      \"x\": 1\n    },\n    \"c\": 2\n}");
	/* compact, one line */
	static const char compact[] = "{\"a\":1,\"z\":{\"q\":[1,2]}}";
	check_edit("compact, middle", compact, sizeof compact - 1, "m", "\"m\": 5", "{\"a\":1,\"m\": 5, \"z\":{\"q\":[1,2]}}");
	check_edit("compact, end", compact, sizeof compact - 1, "zz", "\"zz\": 5", "{\"a\":1,\"z\":{\"q\":[1,2]}, \"zz\": 5}");
	check_edit("compact, replace", compact, sizeof compact - 1, "z", "\"z\": 0", "{\"a\":1,\"z\": 0}");
	check_edit("compact, remove", compact, sizeof compact - 1, "a", NULL, "{\"z\":{\"q\":[1,2]}}");
	/* empty objects */
	check_edit("empty", "{}", 2, "q", "\"q\": 1", "{\n  \"q\": 1\n}");
	check_edit("empty with newline", "{}\n", 3, "q", "\"q\": {\n  \"x\": 1\n}", "{\n  \"q\": {\n    \"x\": 1\n  }\n}\n");
	check_edit("empty, remove", "{}", 2, "q", NULL, "{}");
	/* keys written with escapes are the keys they decode to */
	check_edit("escaped key", "{\"quantization\\u005fconfig\": 1}", 31, "quantization_config", "\"quantization_config\": 2",
		   "{\"quantization_config\": 2}");
	/* malformed */
	static const char *const bad[] = {"", "   ", "[]", "\"x\"", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\" 1}",
					  "{\"a\":1}}", "{a:1}", "{\"a\":01}", "{\"a\":\"\x01\"}", "{\"a\":[1,]}", "{\"a\":tru}"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char what[64];
		snprintf(what, sizeof what, "malformed %zu", i);
		check_edit(what, bad[i], strlen(bad[i]), "q", "\"q\": 1", NULL);
	}
	char *deep = malloc(1000);
	memset(deep, '[', 1000);
	memcpy(deep, "{\"a\":", 5);
	check_edit("nesting", deep, 1000, "q", "\"q\": 1", NULL);
	free(deep);
}

/* ------------------------------------------------------------------------------ quant_state json */

static void check_round_trip(const bnb_state *s, const char *want_json)
{
	size_t size = bnb_state_json_size(s);
	char *buf = malloc(size);
	char err[FMT_ERRBUF] = "";
	if (!CHECK(bnb_state_json(s, buf, size))) {
		free(buf);
		return;
	}
	size_t len = size;
	while (len > 0 && buf[len - 1] == ' ')
		len--;
	CHECK(len > 0 && buf[len - 1] == '}');
	if (want_json && (!CHECK_INT(len, strlen(want_json)) || memcmp(buf, want_json, len) != 0))
		test_fail(__FILE__, __LINE__, "\"%.*s\" != \"%s\"", (int)len, buf, want_json);
	/* one byte short does not fit */
	char *small = malloc(size);
	if (len < size)
		CHECK(bnb_state_json(s, small, len));
	CHECK(!bnb_state_json(s, small, len - 1));
	free(small);
	bnb_state t;
	if (CHECK_INT(bnb_state_parse(buf, size, &t, err), LQ_OK)) {
		CHECK_INT(t.qtype, s->qtype);
		CHECK_INT(t.blocksize, s->blocksize);
		CHECK_INT(t.dtype, s->dtype);
		CHECK_INT(t.double_quant, s->double_quant);
		if (CHECK_INT(t.ndim, s->ndim))
			for (int d = 0; d < s->ndim; d++)
				CHECK_INT(t.shape[d], s->shape[d]);
		if (s->double_quant) {
			CHECK_INT(t.nested_blocksize, 256);
			CHECK_INT(bits_of(t.nested_offset), bits_of(s->nested_offset));
		}
	} else {
		test_note("%s", err);
	}
	/* also without the padding */
	if (CHECK_INT(bnb_state_parse(buf, len, &t, err), LQ_OK))
		CHECK_INT(t.ndim, s->ndim);
	free(buf);
}

TEST(formats_quant_state_round_trip)
{
	/* exact text, as json.dumps writes it (Python 3.11) */
	bnb_state s = {.qtype = LQ_QTYPE_NF4, .blocksize = 64, .dtype = LQ_DTYPE_BF16, .ndim = 2, .shape = {320, 128},
		       .double_quant = true, .nested_blocksize = 256, .nested_offset = f32_from_bits(0x3d5f8acd)};
	test_context("tiny-llama gate_proj");
	check_round_trip(&s, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [320, 128], "
			     "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.05457573011517525}");
	s = (bnb_state){.qtype = LQ_QTYPE_FP4, .blocksize = 4096, .dtype = LQ_DTYPE_F16, .ndim = 4, .shape = {1, 2, 3, 4096}};
	test_context("4-D, no double quantization");
	check_round_trip(&s, "{\"quant_type\": \"fp4\", \"blocksize\": 4096, \"dtype\": \"float16\", \"shape\": [1, 2, 3, 4096]}");
	s = (bnb_state){.qtype = LQ_QTYPE_NF4, .blocksize = 32, .dtype = LQ_DTYPE_F32, .ndim = 1, .shape = {7}};
	test_context("1-D");
	check_round_trip(&s, "{\"quant_type\": \"nf4\", \"blocksize\": 32, \"dtype\": \"float32\", \"shape\": [7]}");
	s = (bnb_state){.qtype = LQ_QTYPE_FP4, .blocksize = 128, .dtype = LQ_DTYPE_F32, .ndim = 3, .shape = {2, 3, 64},
			.double_quant = true, .nested_blocksize = 256, .nested_offset = f32_from_bits(0x807fffff)};
	test_context("3-D, longest offset");
	check_round_trip(&s, "{\"quant_type\": \"fp4\", \"blocksize\": 128, \"dtype\": \"float32\", \"shape\": [2, 3, 64], "
			     "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": -1.1754942106924411e-38}");

	/* offsets of every magnitude (Python's repr of each in the comment) */
	static const uint32_t offsets[] = {
		0x7f7fffff, /* 3.4028234663852886e+38 */
		0xff7fffff, /* -3.4028234663852886e+38 */
		0x00000001, /* 1.401298464324817e-45 */
		0x80000001, /* -1.401298464324817e-45 */
		0x00800000, /* 1.1754943508222875e-38 */
		0x807fffff, /* -1.1754942106924411e-38 */
		0x3727c5ac, /* 9.999999747378752e-06 */
		0x38d1b717, /* 9.999999747378752e-05 */
		0xb901742e, /* -0.00012345678987912834 */
		0x5a0e1bca, /* 1.0000000272564224e+16 */
		0x4ceb79a3, /* 123456792.0 */
		0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3d5f8acd,
	};
	static const lq_dtype dtypes[] = {LQ_DTYPE_F32, LQ_DTYPE_F16, LQ_DTYPE_BF16};
	static const int32_t blocksizes[] = {32, 64, 128, 256, 512, 1024, 2048, 4096};
	static const int64_t shapes[][5] = {
		{1, 1}, {1, 0}, {2, 4096, 11008}, {3, 2, 3, 64}, {4, 1, 2, 3, 4}, {2, 1099511627776, 3}, {1, 9007199254740992},
	};
	int cases = 0;
	for (int q = 0; q < 2; q++)
		for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++)
			for (size_t b = 0; b < sizeof blocksizes / sizeof *blocksizes; b++)
				for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++)
					for (size_t o = 0; o <= sizeof offsets / sizeof *offsets; o++) {
						s = (bnb_state){.qtype = q ? LQ_QTYPE_FP4 : LQ_QTYPE_NF4,
								.blocksize = blocksizes[b], .dtype = dtypes[d],
								.ndim = (int)shapes[sh][0]};
						memcpy(s.shape, shapes[sh] + 1, (size_t)s.ndim * sizeof *s.shape);
						if (o < sizeof offsets / sizeof *offsets) {
							s.double_quant = true;
							s.nested_blocksize = 256;
							s.nested_offset = f32_from_bits(offsets[o]);
						}
						test_context("q %d dtype %zu blocksize %d shape %zu offset %zu", q, d,
							     (int)s.blocksize, sh, o);
						check_round_trip(&s, NULL);
						cases++;
					}
	test_note("%d quant states written and read back", cases);

	/* the reserved size does not depend on the offset's value */
	s = (bnb_state){.qtype = LQ_QTYPE_NF4, .blocksize = 64, .dtype = LQ_DTYPE_BF16, .ndim = 2, .shape = {320, 128},
			.double_quant = true, .nested_blocksize = 256};
	size_t size0 = bnb_state_json_size(&s);
	for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++) {
		s.nested_offset = f32_from_bits(offsets[o]);
		CHECK_INT(bnb_state_json_size(&s), size0);
	}

	/* part names */
	char name[64];
	CHECK(bnb_part_name(name, sizeof name, "w", BNB_PART_QUANT_STATE, LQ_QTYPE_FP4));
	CHECK_STR(name, "w.quant_state.bitsandbytes__fp4");
	CHECK(bnb_part_name(name, sizeof name, "w", BNB_PART_NESTED_ABSMAX, LQ_QTYPE_NF4));
	CHECK_STR(name, "w.nested_absmax");
	CHECK(!bnb_part_name(name, 8, "model.w", BNB_PART_QUANT_MAP, LQ_QTYPE_NF4));
	s.double_quant = false;
	CHECK(!bnb_has_part(&s, BNB_PART_NESTED_QUANT_MAP) && bnb_has_part(&s, BNB_PART_ABSMAX));
	CHECK_STR(bnb_find_state_suffix("a.b.quant_state.bitsandbytes__nf4"), ".quant_state.bitsandbytes__nf4");
	CHECK(bnb_find_state_suffix("a.b.quant_state.bitsandbytes__int8"));
	CHECK(!bnb_find_state_suffix("a.b.quant_state") && !bnb_find_state_suffix("a.absmax"));
}

/* The group's parts, their sizes, and their declaration in an output (om_add_group): what nf4quant and
 * loramerge write. */
TEST(formats_bnb_group_layout)
{
	static const int64_t sizes[] = {1, 63, 64, 65, 4096 * 256 + 1, 28672LL * 8192};
	static const int32_t blocks[] = {32, 64, 4096};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++)
			for (int dq = 0; dq < 2; dq++) {
				int64_t n = sizes[i];
				bnb_state s = {.qtype = LQ_QTYPE_NF4, .blocksize = blocks[b], .dtype = LQ_DTYPE_BF16, .ndim = 1,
					       .shape = {n}, .double_quant = dq, .nested_blocksize = 256};
				test_context("n %" PRId64 ", blocksize %d, dq %d", n, (int)blocks[b], dq);
				/* the formula the tools wrote by hand */
				int64_t nb = lq_quant_nblocks(n, s.blocksize);
				uint64_t want = (uint64_t)lq_quant_packed_bytes(n) + 16 * 4 + bnb_state_json_size(&s) +
						(dq ? (uint64_t)nb + (uint64_t)lq_quant_nested_blocks(nb) * 4 + 256 * 4 : (uint64_t)nb * 4);
				CHECK_INT(bnb_group_bytes(&s, n), want);
			}
	test_context("declaration");
	bnb_state s = {.qtype = LQ_QTYPE_FP4, .blocksize = 64, .dtype = LQ_DTYPE_F16, .ndim = 2, .shape = {8, 16},
		       .double_quant = true, .nested_blocksize = 256};
	out_model om;
	int32_t ids[BNB_NPARTS];
	char err[FMT_ERRBUF];
	if (CHECK_INT(om_init(&om, "g.safetensors", 1, err), LQ_OK) &&
	    CHECK_INT(om_add_group(&om, 0, "w", &s, 128, NULL, ids, err), LQ_OK) && CHECK_INT(om.nnames, BNB_NPARTS)) {
		CHECK_STR(om.names[0], "w");
		CHECK_STR(om.names[BNB_PART_QUANT_STATE], "w.quant_state.bitsandbytes__fp4");
		CHECK_INT(ids[BNB_PART_NESTED_QUANT_MAP], BNB_PART_NESTED_QUANT_MAP);
		CHECK_INT(om_layout(&om, err), LQ_OK);
		CHECK_INT(om.bytes, bnb_group_bytes(&s, 128));
	}
	om_free(&om);
	/* without double quantization: no nested parts, their ids -1 */
	s.double_quant = false;
	if (CHECK_INT(om_init(&om, "g.safetensors", 1, err), LQ_OK) &&
	    CHECK_INT(om_add_group(&om, 0, "w", &s, 128, NULL, ids, err), LQ_OK)) {
		CHECK_INT(om.nnames, 4);
		CHECK_INT(ids[BNB_PART_NESTED_ABSMAX], -1);
		CHECK_INT(ids[BNB_PART_QUANT_STATE], 3);
		CHECK_INT(om_layout(&om, err), LQ_OK);
		CHECK_INT(om.bytes, bnb_group_bytes(&s, 128));
	}
	om_free(&om);
	/* a part copied as it is stored keeps its type and shape (a quant_state of its own length) */
	st_tensor qs = {.dtype = ST_U8, .ndim = 1, .shape = {200}};
	const st_tensor *as_is[BNB_NPARTS] = {[BNB_PART_QUANT_STATE] = &qs};
	if (CHECK_INT(om_init(&om, "g.safetensors", 1, err), LQ_OK) &&
	    CHECK_INT(om_add_group(&om, 0, "w", &s, 128, as_is, ids, err), LQ_OK) && CHECK_INT(om_layout(&om, err), LQ_OK))
		CHECK_INT(om.bytes, bnb_group_bytes(&s, 128) - bnb_state_json_size(&s) + 200);
	om_free(&om);
	/* a name the writer refuses, and a name too long */
	if (CHECK_INT(om_init(&om, "g.safetensors", 1, err), LQ_OK)) {
		CHECK_INT(om_add_group(&om, 0, "w\001", &s, 128, NULL, ids, err), LQ_ERR_ARG);
		CHECK_CONTAINS(err, "contains a control character");
	}
	om_free(&om);
	char *name = malloc(BNB_NAME_MAX);
	if (name && CHECK_INT(om_init(&om, "g.safetensors", 1, err), LQ_OK)) {
		memset(name, 'a', BNB_NAME_MAX - 8);
		name[BNB_NAME_MAX - 8] = '\0';
		CHECK_INT(om_add_group(&om, 0, name, &s, 128, NULL, ids, err), LQ_ERR_UNSUPPORTED);
		CHECK_STR(err, "tensor name too long");
		CHECK_INT(om.nnames, 2); /* the codes' and absmax's names fit, ".quant_map" does not */
		om_free(&om);
	}
	free(name);
}

TEST(formats_quant_state_rejects_malformed)
{
#define QS_HEAD "\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\""
#define QS_DQ ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.5"
	static const struct {
		const char *json;
		const char *phrase;
	} bad[] = {
		{"", "not a JSON object"},
		{"   ", "not a JSON object"},
		{"[]", "not a JSON object"},
		{"null", "not a JSON object"},
		{"{", "not a JSON object"},
		{"{" QS_HEAD ", \"shape\": [1]", "not a JSON object"},
		{"{\"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [1]}", "quant_type"},
		{"{\"quant_type\": \"nf5\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [1]}", "quant_type"},
		{"{\"quant_type\": 4, \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [1]}", "quant_type"},
		{"{\"quant_type\": \"NF4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [1]}", "quant_type"},
		{"{\"quant_type\": \"nf4\", \"dtype\": \"bfloat16\", \"shape\": [1]}", "blocksize"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": 48, \"dtype\": \"bfloat16\", \"shape\": [1]}", "blocksize"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": 16, \"dtype\": \"bfloat16\", \"shape\": [1]}", "blocksize"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": 8192, \"dtype\": \"bfloat16\", \"shape\": [1]}", "blocksize"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": 64.5, \"dtype\": \"bfloat16\", \"shape\": [1]}", "blocksize"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": -64, \"dtype\": \"bfloat16\", \"shape\": [1]}", "blocksize"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": \"64\", \"dtype\": \"bfloat16\", \"shape\": [1]}", "blocksize"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": 1e300, \"dtype\": \"bfloat16\", \"shape\": [1]}", "blocksize"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float64\", \"shape\": [1]}", "dtype"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"uint8\", \"shape\": [1]}", "dtype"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"torch.bfloat16\", \"shape\": [1]}", "dtype"},
		{"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [1]}", "dtype"},
		{"{" QS_HEAD "}", "shape"},
		{"{" QS_HEAD ", \"shape\": 1}", "shape"},
		{"{" QS_HEAD ", \"shape\": [1, -1]}", "shape"},
		{"{" QS_HEAD ", \"shape\": [1.5]}", "shape"},
		{"{" QS_HEAD ", \"shape\": [\"1\"]}", "shape"},
		{"{" QS_HEAD ", \"shape\": [1e300]}", "shape"},
		{"{" QS_HEAD ", \"shape\": [[1]]}", "shape"},
		{"{" QS_HEAD ", \"shape\": [1, 1, 1, 1, 1, 1, 1, 1, 1]}", "shape"},
		{"{" QS_HEAD ", \"shape\": [1], \"nested_offset\": 0.5}", "nested"},
		{"{" QS_HEAD ", \"shape\": [1], \"nested_blocksize\": 128, \"nested_dtype\": \"float32\", \"nested_offset\": 0.5}",
		 "nested"},
		{"{" QS_HEAD ", \"shape\": [1], \"nested_blocksize\": 256, \"nested_dtype\": \"float16\", \"nested_offset\": 0.5}",
		 "nested"},
		{"{" QS_HEAD ", \"shape\": [1], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": \"0.5\"}",
		 "nested"},
		{"{" QS_HEAD ", \"shape\": [1], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": null}",
		 "nested"},
		{"{" QS_HEAD ", \"shape\": [1]" QS_DQ ", \"nested_offset\": NaN}", ""},
		/* beyond float32: torch.tensor() makes it infinite, and every scale with it */
		{"{" QS_HEAD ", \"shape\": [1], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 1e39}",
		 "nested_offset 1e+39 is not a finite float32"},
		{"{" QS_HEAD ", \"shape\": [1], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": "
		 "-3.4028236e38}", "nested_offset -3.4028236e+38 is not a finite float32"},
		/* what json.loads refuses, bitsandbytes cannot load */
		{"{" QS_HEAD ", \"shape\": [1]} x", ""},
		{"{" QS_HEAD ", \"shape\": [1]}}", ""},
		{"{" QS_HEAD ", \"shape\": [1]}\n{}", ""},
		{"{" QS_HEAD ", \"shape\": [01]}", ""},
		{"{" QS_HEAD ", \"shape\": [+1]}", ""},
		{"{" QS_HEAD ", \"shape\": [1.]}", ""},
		{"{" QS_HEAD ", \"shape\": [1],}", ""},
		/* a key twice: json.loads keeps the last, a first-match lookup the first */
		{"{" QS_HEAD ", \"shape\": [1], \"quant_type\": \"fp4\"}", ""},
		{"{" QS_HEAD ", \"shape\": [1], \"shape\": [2]}", ""},
		{"{" QS_HEAD ", \"shape\": [1]" QS_DQ QS_DQ "}", ""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		test_context("%s", bad[i].json);
		bnb_state s;
		char err[FMT_ERRBUF] = "";
		if (CHECK_INT(bnb_state_parse(bad[i].json, strlen(bad[i].json), &s, err), LQ_ERR_CORRUPT)) {
			CHECK_CONTAINS(err, "quant_state");
			CHECK_CONTAINS(err, bad[i].phrase);
		}
	}
	/* accepted: trailing whitespace (our padding), unknown keys (bitsandbytes ignores them), keys in any
	 * order, the nested keys of a state without double quantization absent */
	static const char *const good[] = {
		"{" QS_HEAD ", \"shape\": [1]}   \n\t\r",
		"{" QS_HEAD ", \"shape\": [1], \"extra\": {\"x\": [1, 2]}}",
		"{\"shape\": [], " QS_HEAD QS_DQ "}",
		" {" QS_HEAD ", \"shape\": [0, 9007199254740992]}",
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		test_context("%s", good[i]);
		bnb_state s;
		char err[FMT_ERRBUF] = "";
		if (!CHECK_INT(bnb_state_parse(good[i], strlen(good[i]), &s, err), LQ_OK))
			test_note("%s", err);
	}
	/* the buffer is taken by its length: no terminating NUL needed, nothing read past it */
	static const char padded[] = "{" QS_HEAD ", \"shape\": [3, 4]}    ";
	char *exact = malloc(sizeof padded - 1);
	memcpy(exact, padded, sizeof padded - 1);
	bnb_state s;
	char err[FMT_ERRBUF];
	test_context("unterminated buffer");
	if (CHECK_INT(bnb_state_parse(exact, sizeof padded - 1, &s, err), LQ_OK))
		CHECK(s.ndim == 2 && s.shape[0] == 3 && s.shape[1] == 4 && !s.double_quant);
	CHECK_INT(bnb_state_parse(exact, 20, &s, err), LQ_ERR_CORRUPT);
	free(exact);
#undef QS_HEAD
#undef QS_DQ
}

/* An offset that is not finite is never written: json.dumps would write NaN or Infinity, not JSON. */
TEST(formats_quant_state_refuses_a_nonfinite_offset)
{
	bnb_state s = {.qtype = LQ_QTYPE_NF4, .blocksize = 64, .dtype = LQ_DTYPE_F32, .ndim = 1, .shape = {4096},
		       .double_quant = true, .nested_blocksize = 256};
	const uint32_t bad[] = {0x7f800000, 0xff800000, 0x7fc00000};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		s.nested_offset = f32_from_bits(bad[i]);
		size_t size = bnb_state_json_size(&s);
		char *buf = malloc(size);
		CHECK(!bnb_state_json(&s, buf, size));
		free(buf);
	}
}

/* fmt_fail may take its own buffer as an argument: a message prefixed with where it happened. */
TEST(formats_fail_prefixes_its_own_message)
{
	char err[FMT_ERRBUF];
	fmt_fail(err, LQ_ERR_IO, "cannot read 'x': %s", "Input/output error");
	CHECK_INT(fmt_fail(err, LQ_ERR_CORRUPT, "model.safetensors: %s", err), LQ_ERR_CORRUPT);
	CHECK_STR(err, "model.safetensors: cannot read 'x': Input/output error");
}

/* The string helpers of fmt.h, which formats/ and tools/ share: their edge cases are the ones the copies
 * they replaced had (a name that is its suffix alone, a shape cut short). */
TEST(formats_string_helpers)
{
	CHECK(fmt_ends_with("model.safetensors", ".safetensors"));
	CHECK(fmt_ends_with(".safetensors", ".safetensors"));
	CHECK(fmt_ends_with("x", ""));
	CHECK(!fmt_ends_with("safetensors", ".safetensors"));
	CHECK(!fmt_ends_with("model.safetensors.bak", ".safetensors"));
	CHECK(fmt_starts_with("base_model.model.x", "base_model.model."));
	CHECK(fmt_starts_with("x", ""));
	CHECK(!fmt_starts_with("base", "base_model"));

	char *p = fmt_join("dir", "/", "config.json");
	CHECK_STR(p, "dir/config.json");
	free(p);
	p = fmt_join("", "", "");
	CHECK_STR(p, "");
	free(p);
	p = fmt_dup_n("a\0bc", 3);
	CHECK(p && memcmp(p, "a\0b", 4) == 0);
	free(p);

	char buf[64];
	const int64_t shape[] = {4096, 11008, 0};
	CHECK_STR(fmt_shape(buf, sizeof buf, 2, shape), "[4096, 11008]");
	CHECK_STR(fmt_shape(buf, sizeof buf, 3, shape), "[4096, 11008, 0]");
	CHECK_STR(fmt_shape(buf, sizeof buf, 0, shape), "[]");
	CHECK_STR(fmt_shape(buf, 8, 2, shape), "[4096, ");
	CHECK_STR(fmt_shape(buf, 14, 2, shape), "[4096, 11008]");
	CHECK_STR(fmt_shape(buf, 13, 2, shape), "[4096, 11008");
	CHECK_STR(fmt_shape(buf, 1, 2, shape), "");
	/* the bundle names: ".tar" alone names no bundle (bundle_path_is_bundle) */
	bool c;
	CHECK(!bundle_path_is_bundle(".tar", &c) && !bundle_path_is_bundle(".tar.zst", &c));
}
