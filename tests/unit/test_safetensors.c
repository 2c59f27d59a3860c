/*
 * test_safetensors.c: the safetensors reader and writer (formats/safetensors.h) against the official
 * implementation, safetensors 0.8 (shared/specs/safetensors.md):
 * - files its writer made (the fixture models, the reference tensors, fixtures/safetensors/) are written
 *   again by st_writer byte for byte;
 * - every check of its reader, and each one we add, rejects a header built here with the right status and
 *   a message that names the file and the tensor;
 * - headers it accepts read the same here: names, dtypes, shapes, bytes and metadata as it read them
 *   (fixtures/safetensors/make_fixtures.py --accept generated the table);
 * - the writer refuses bad declarations, counts every byte and never leaves a partial file behind;
 * - driven through its out_writer table (out_writer.h), as the output model drives it, it writes the same.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "out_writer.h"
#include "safetensors.h"
#include "test.h"
#include "util.h"

/* ------------------------------------------------------------------------------------- helpers */

static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? 2 * cap : 65536;
			unsigned char *p = realloc(buf, cap);
			if (!p) {
				free(buf);
				fclose(fp);
				return NULL;
			}
			buf = p;
		}
		size_t k = fread(buf + n, 1, cap - n, fp);
		if (k == 0)
			break;
		n += k;
	}
	fclose(fp);
	*len = n;
	return buf;
}

static bool write_all(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return false;
	bool ok = fwrite(data, 1, len, fp) == len;
	return fclose(fp) == 0 && ok;
}

static const char *tmp_path(const char *name)
{
	static char buf[4][4096];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/st-%ld-%s", util_tmpdir(), (long)getpid(), name);
	return buf[k];
}

static bool exists(const char *path)
{
	struct stat sb;
	return lstat(path, &sb) == 0;
}

/* A file image: the 8-byte little-endian length (n, or the header's length when n is -1), the header, the
 * data. malloc'd, *len its size. */
static unsigned char *image(const char *header, size_t hlen, int64_t n, const void *data, size_t dlen, size_t *len)
{
	unsigned char *b = malloc(8 + hlen + dlen + 1);
	uint64_t v = n == -1 ? (uint64_t)hlen : (uint64_t)n;
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	memcpy(b + 8, header, hlen);
	if (dlen)
		memcpy(b + 8 + hlen, data, dlen);
	*len = 8 + hlen + dlen;
	return b;
}

/* --------------------------------------------------------------------------- writer identity */

/* Reads every tensor of a file the official writer made and writes them again: same file, byte for byte.
 * The tensors are declared in reverse data order and written in 7-byte chunks from the last to the first,
 * so neither the writer's order nor its bookkeeping can lean on the caller's. */
static void rewrite_and_compare(const char *rel, int *files, size_t *tensors)
{
	test_context("%s", rel);
	st_file *f = util_open(rel);
	size_t olen = 0;
	unsigned char *orig = read_all(test_path(rel), &olen);
	st_writer *w = st_writer_create();
	int32_t *ids = f ? calloc(f->ntensors + 1, sizeof *ids) : NULL;
	const char *out = tmp_path("rewrite.safetensors");
	unlink(out);
	if (!f || !CHECK(orig != NULL) || !CHECK(w != NULL) || !CHECK(ids != NULL))
		goto done;
	for (size_t i = f->ntensors; i-- > 0;) {
		const st_tensor *t = &f->tensors[i];
		ids[i] = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape);
		if (!CHECK(ids[i] >= 0)) {
			test_note("%s", st_writer_error(w));
			goto done;
		}
		CHECK_INT(st_writer_tensor_bytes(w, ids[i]), t->end - t->begin);
	}
	for (size_t i = 0; i < f->nmeta; i++)
		CHECK_INT(st_writer_set_meta(w, f->meta_keys[i], f->meta_values[i]), LQ_OK);
	CHECK_INT(st_writer_count(w), f->ntensors);
	if (!CHECK_INT(st_writer_layout(w), LQ_OK))
		goto done;
	CHECK_INT(st_writer_file_size(w), olen);
	CHECK_INT(st_writer_data_size(w), f->file_size - f->data_start);
	if (!CHECK_INT(st_writer_open(w, out), LQ_OK)) {
		test_note("%s", st_writer_error(w));
		goto done;
	}
	for (size_t i = f->ntensors; i-- > 0;) {
		const st_tensor *t = &f->tensors[i];
		size_t n;
		unsigned char *data = util_tensor(f, t->name, &n);
		if (!data)
			goto done;
		for (size_t at = (n + 6) / 7 * 7; at > 0;) {
			at -= 7;
			size_t len = n - at < 7 ? n - at : 7;
			if (!CHECK_INT(st_writer_write(w, ids[i], at, data + at, len), LQ_OK)) {
				test_note("%s", st_writer_error(w));
				break;
			}
		}
		free(data);
	}
	if (!CHECK_INT(st_writer_finish(w), LQ_OK))
		test_note("%s", st_writer_error(w));
	size_t rlen = 0;
	unsigned char *again = read_all(out, &rlen);
	if (CHECK(again != NULL) && CHECK_INT(rlen, olen)) {
		size_t first = 0;
		while (first < olen && again[first] == orig[first])
			first++;
		if (first < olen)
			test_fail(__FILE__, __LINE__, "rewritten file differs from byte %zu on (header of %zu bytes): "
				  "\"%.80s\" vs \"%.80s\"", first, (size_t)(8 + f->header_len),
				  (const char *)again + (first > 20 ? first - 20 : 0),
				  (const char *)orig + (first > 20 ? first - 20 : 0));
	}
	free(again);
	(*files)++;
	*tensors += f->ntensors;
done:
	st_writer_free(w);
	unlink(out);
	free(ids);
	free(orig);
	st_file_free(f);
}

TEST(st_writer_reproduces_official_files)
{
	static const char *const files[] = {
		"fixtures/models/tiny-llama/model.safetensors",
		"fixtures/models/tiny-llama-nf4/model.safetensors",
		"fixtures/models/tiny-llama-fp4/model.safetensors",
		"fixtures/models/tiny-llama-sharded/model-00001-of-00005.safetensors",
		"fixtures/models/tiny-llama-sharded/model-00002-of-00005.safetensors",
		"fixtures/models/tiny-llama-sharded/model-00003-of-00005.safetensors",
		"fixtures/models/tiny-llama-sharded/model-00004-of-00005.safetensors",
		"fixtures/models/tiny-llama-sharded/model-00005-of-00005.safetensors",
		"fixtures/models/logits.safetensors",
		"fixtures/reference/tensors_ref/ref_q.safetensors",
		"fixtures/reference/tensors/inputs.safetensors",
		"fixtures/bnb-edge/edge_ref_q.safetensors",
		"fixtures/safetensors/all_dtypes.safetensors",
		"fixtures/safetensors/meta_escapes.safetensors",
	};
	int nfiles = 0;
	size_t ntensors = 0;
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		rewrite_and_compare(files[i], &nfiles, &ntensors);
	test_note("%d files, %zu tensors rewritten byte for byte", nfiles, ntensors);
}

/* all_dtypes.safetensors holds every dtype the official Python API serializes, several tensors each,
 * whose names interleave across dtypes: the order in the file is the official writer's. */
TEST(st_writer_dtype_groups_match_official_order)
{
	st_file *f = util_open("fixtures/safetensors/all_dtypes.safetensors");
	if (!f)
		return;
	bool seen[ST_DTYPE_COUNT] = {false};
	int groups = 0;
	for (size_t i = 0; i < f->ntensors; i++) {
		const st_tensor *t = &f->tensors[i];
		seen[t->dtype] = true;
		if (i == 0)
			continue;
		const st_tensor *p = &f->tensors[i - 1];
		test_context("'%s' after '%s'", t->name, p->name);
		/* descending Dtype, then bytewise name */
		CHECK(p->dtype > t->dtype || (p->dtype == t->dtype && strcmp(p->name, t->name) < 0));
		groups += p->dtype != t->dtype;
	}
	test_context("dtypes present");
	for (int d = 0; d < ST_DTYPE_COUNT; d++)
		CHECK(seen[d] == (d != ST_F6_E2M3 && d != ST_F6_E3M2));
	CHECK_INT(groups + 1, 20);
	st_file_free(f);

	/* F6 cannot be written through the official Python API: check the whole order on our own output,
	 * against the list of the spec ("U64 I64 F64 C64, F32 U32 I32, BF16 F16 U16 I16, the F8 types, I8 U8,
	 * F6 F4 BOOL") */
	static const char *const want[] = {"U64", "I64", "F64", "C64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16",
					   "F8_E5M2FNUZ", "F8_E4M3FNUZ", "F8_E8M0", "F8_E4M3", "F8_E5M2", "I8", "U8",
					   "F6_E3M2", "F6_E2M3", "F4", "BOOL"};
	st_writer *w = st_writer_create();
	for (int d = 0; d < ST_DTYPE_COUNT; d++) {
		char name[32];
		snprintf(name, sizeof name, "%c.%s", 'a' + d, st_dtype_name((st_dtype)d)); /* names ascend with d */
		int64_t shape[1] = {4};
		CHECK(st_writer_add(w, name, (st_dtype)d, 1, shape) == d);
	}
	const char *out = tmp_path("order.safetensors");
	unlink(out);
	test_context("our order");
	if (CHECK_INT(st_writer_open(w, out), LQ_OK)) {
		unsigned char zeros[32] = {0};
		for (int d = 0; d < ST_DTYPE_COUNT; d++)
			CHECK_INT(st_writer_write(w, d, 0, zeros, st_writer_tensor_bytes(w, d)), LQ_OK);
		CHECK_INT(st_writer_finish(w), LQ_OK);
		st_file *g = st_file_create();
		if (CHECK_INT(st_file_open(g, out), LQ_OK) && CHECK_INT(g->ntensors, ST_DTYPE_COUNT))
			for (int i = 0; i < ST_DTYPE_COUNT; i++)
				CHECK_STR(st_dtype_name(g->tensors[i].dtype), want[i]);
		CHECK_STR(st_file_meta(g, "format"), "pt");
		CHECK_INT(g->data_start % 8, 0);
		st_file_free(g);
	}
	st_writer_free(w);
	unlink(out);
}

/* ------------------------------------------------------------------------------ reader rejections */

/* A tensor entry of 4 bytes (F32 [1] at [0, 4)), and a header holding only it. */
#define E4 "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"
#define T4 "\"t\":" E4
#define H4 "{" T4 "}"
/* Tensor t with its fields replaced. */
#define TT(dtype, shape, offsets) "{\"t\":{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offsets "}}"

typedef struct reject_case {
	const char *id;     /* the file is named "<id>.safetensors" in messages */
	const char *header;
	const char *data;   /* "" for none */
	lq_status status;
	const char *tensor; /* the tensor the message must name ('t', quoted as in the message) or NULL */
	const char *phrase; /* a piece of the message */
} reject_case;

static const reject_case rejects[] = {
	/* not JSON, or not an object (InvalidHeaderDeserialization) */
	{"empty_header", "", "", LQ_ERR_CORRUPT, NULL, "expected '{', found end of input"},
	{"array", "[]", "", LQ_ERR_CORRUPT, NULL, "expected '{'"},
	{"string", "\"x\"", "", LQ_ERR_CORRUPT, NULL, "expected '{'"},
	{"null", "null", "", LQ_ERR_CORRUPT, NULL, "expected '{'"},
	{"number", "1", "", LQ_ERR_CORRUPT, NULL, "expected '{'"},
	{"bom", "\xef\xbb\xbf{}", "", LQ_ERR_CORRUPT, NULL, "expected '{'"},
	{"unterminated_object", "{" T4, "abcd", LQ_ERR_CORRUPT, NULL, "expected '}'"},
	{"unterminated_string", "{\"t", "", LQ_ERR_CORRUPT, NULL, "unterminated string"},
	{"missing_colon", "{\"t\" " E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "expected ':'"},
	{"trailing_comma", "{" T4 ",}", "abcd", LQ_ERR_CORRUPT, NULL, "expected '\"'"},
	{"single_quotes", "{'t':" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "expected '\"'"},
	{"bad_literal", "{\"__metadata__\":nul}", "", LQ_ERR_CORRUPT, NULL, "unexpected 'n'"},
	{"raw_tab_in_name", "{\"a\tb\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "control character 0x09 in a string"},
	{"bad_escape", "{\"a\\xb\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "bad escape"},
	{"short_u_escape", "{\"a\\u12\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "bad \\u escape"},
	{"bad_u_escape", "{\"a\\uZZZZ\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "bad \\u escape"},
	/* unknown dtype */
	{"unknown_dtype", TT("\"F31\"", "[1]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "unknown dtype 'F31'"},
	{"lowercase_dtype", TT("\"f32\"", "[1]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "unknown dtype 'f32'"},
	{"empty_dtype", TT("\"\"", "[1]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "unknown dtype ''"},
	{"nul_in_dtype", TT("\"F32\\u0000\"", "[1]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "unknown dtype 'F32?'"},
	/* missing field */
	{"missing_offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", "abcd", LQ_ERR_CORRUPT, "'t'",
	 "missing field 'data_offsets'"},
	{"missing_dtype", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd", LQ_ERR_CORRUPT, "'t'",
	 "missing field 'dtype'"},
	{"missing_shape", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "abcd", LQ_ERR_CORRUPT, "'t'",
	 "missing field 'shape'"},
	{"empty_entry", "{\"t\":{}}", "", LQ_ERR_CORRUPT, "'t'", "missing field 'dtype'"},
	/* a field name with \u0000 is another field (serde_json: missing field `dtype`) */
	{"nul_in_field_name", "{\"t\":{\"dtype\\u0000\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd",
	 LQ_ERR_CORRUPT, "'t'", "missing field 'dtype'"},
	/* wrongly typed field */
	{"dtype_number", TT("5", "[1]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "dtype is not a string"},
	{"dtype_array", TT("[\"F32\"]", "[1]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "dtype is not a string"},
	/* serde_json reads {"F32": null} as the variant F32; we take only the string */
	{"dtype_object", TT("{\"F32\":null}", "[1]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "dtype is not a string"},
	{"shape_string", TT("\"F32\"", "\"1\"", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "expected '['"},
	{"shape_null", TT("\"F32\"", "null", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "expected '['"},
	{"shape_object", TT("\"F32\"", "{\"0\":1}", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "expected '['"},
	{"shape_bool", TT("\"F32\"", "[true]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "expected a number"},
	{"shape_string_dim", TT("\"F32\"", "[\"1\"]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "expected a number"},
	{"shape_nested", TT("\"F32\"", "[[1]]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "expected a number"},
	{"offsets_null", TT("\"F32\"", "[1]", "null"), "abcd", LQ_ERR_CORRUPT, "'t'", "expected '['"},
	{"offsets_object", TT("\"F32\"", "[1]", "{\"0\":0,\"1\":4}"), "abcd", LQ_ERR_CORRUPT, "'t'", "expected '['"},
	{"entry_null", "{\"t\":null}", "", LQ_ERR_CORRUPT, "'t'", "expected '{'"},
	{"entry_array", "{\"t\":[]}", "", LQ_ERR_CORRUPT, "'t'", "expected '{'"},
	/* numbers that are not non-negative integers without fraction or exponent */
	{"negative_dim", TT("\"F32\"", "[-1]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "negative number"},
	{"negative_zero", TT("\"F32\"", "[1]", "[-0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "negative number"},
	{"plus_sign", TT("\"F32\"", "[+1]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "expected a number"},
	{"fractional_dim", TT("\"F32\"", "[1.0]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "where an integer is expected"},
	{"fractional_offset", TT("\"F32\"", "[1]", "[0,4.5]"), "abcd", LQ_ERR_CORRUPT, "'t'",
	 "where an integer is expected"},
	{"exponent", TT("\"F32\"", "[1e0]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "where an integer is expected"},
	{"exponent_upper", TT("\"F32\"", "[1]", "[0,4E0]"), "abcd", LQ_ERR_CORRUPT, "'t'", "where an integer is expected"},
	{"leading_zero", TT("\"F32\"", "[01]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "leading zero"},
	{"double_zero", TT("\"F32\"", "[1]", "[00,4]"), "abcd", LQ_ERR_CORRUPT, "'t'", "leading zero"},
	{"u64_overflow", TT("\"U8\"", "[18446744073709551616]", "[0,0]"), "", LQ_ERR_CORRUPT, "'t'",
	 "does not fit in 64 bits"},
	/* data_offsets with other than two numbers */
	{"offsets_one", TT("\"F32\"", "[1]", "[0]"), "abcd", LQ_ERR_CORRUPT, "'t'", "data_offsets must hold two numbers"},
	{"offsets_three", TT("\"F32\"", "[1]", "[0,4,4]"), "abcd", LQ_ERR_CORRUPT, "'t'",
	 "data_offsets has more than 2 entries"},
	{"offsets_none", TT("\"F32\"", "[1]", "[]"), "abcd", LQ_ERR_CORRUPT, "'t'", "data_offsets must hold two numbers"},
	/* __metadata__ that is not a map of strings */
	{"metadata_number_value", "{\"__metadata__\":{\"a\":1}," T4 "}", "abcd", LQ_ERR_CORRUPT, NULL,
	 "__metadata__ value of 'a' is not a string"},
	{"metadata_null_value", "{\"__metadata__\":{\"a\":null}}", "", LQ_ERR_CORRUPT, NULL, "is not a string"},
	{"metadata_object_value", "{\"__metadata__\":{\"a\":{}}}", "", LQ_ERR_CORRUPT, NULL, "is not a string"},
	{"metadata_array_value", "{\"__metadata__\":{\"a\":[\"x\"]}}", "", LQ_ERR_CORRUPT, NULL, "is not a string"},
	{"metadata_array", "{\"__metadata__\":[]}", "", LQ_ERR_CORRUPT, NULL, "expected '{'"},
	{"metadata_string", "{\"__metadata__\":\"x\"}", "", LQ_ERR_CORRUPT, NULL, "expected '{'"},
	/* a tensor named __metadata__ is read as metadata, whose values must be strings */
	{"tensor_named_metadata", "{\"__metadata__\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "is not a string"},
	{"tensor_named_metadata_escaped", "{\"__metad\\u0061ta__\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL,
	 "is not a string"},
	/* \u0000 in metadata would be cut short by every C caller */
	{"metadata_nul_value", "{\"__metadata__\":{\"a\":\"x\\u0000y\"}}", "", LQ_ERR_CORRUPT, NULL,
	 "__metadata__ entry 'a' contains a NUL character"},
	{"metadata_nul_key", "{\"__metadata__\":{\"a\\u0000\":\"1\",\"a\":\"2\"}}", "", LQ_ERR_CORRUPT, NULL,
	 "__metadata__ entry 'a?' contains a NUL character"},
	/* (nesting: below, built at run time) */
	/* offsets (InvalidOffset) */
	{"gap", "{\"a\":" E4 ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", "abcdefghijkl",
	 LQ_ERR_CORRUPT, "'b'", "data begins at offset 8 but the previous tensor ends at 4 (a gap)"},
	{"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "abcdefgh",
	 LQ_ERR_CORRUPT, "'b'", "(overlapping data)"},
	{"not_at_zero", TT("\"F32\"", "[1]", "[4,8]"), "abcdefgh", LQ_ERR_CORRUPT, "'t'",
	 "data begins at offset 4 but the previous tensor ends at 0"},
	{"zero_size_past_end", "{\"a\":" E4 ",\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", "abcd",
	 LQ_ERR_CORRUPT, "'z'", "a gap"},
	{"zero_size_inside", "{\"a\":" E4 ",\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[2,2]}}", "abcd",
	 LQ_ERR_CORRUPT, "'z'", "overlapping data"},
	{"end_before_begin", TT("\"F32\"", "[0]", "[4,0]"), "abcd", LQ_ERR_CORRUPT, "'t'",
	 "data_offsets [4, 0] end before they begin"},
	{"huge_offsets", TT("\"U8\"", "[0]", "[18446744073709551615,18446744073709551615]"), "", LQ_ERR_CORRUPT, "'t'",
	 "data begins at offset 18446744073709551615"},
	/* sizes (ValidationOverflow, MisalignedSlice, TensorInvalidInfo) */
	{"shape_overflow", TT("\"F32\"", "[4294967296,4294967296]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'",
	 "shape overflows"},
	{"bits_overflow", TT("\"F64\"", "[4611686018427387904]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'",
	 "size overflows"},
	/* a dimension above INT64_MAX: the official reader takes [2^64-1, 0] (0 elements); we keep shapes
	 * in int64_t */
	{"dim_above_int64", TT("\"U8\"", "[18446744073709551615,0]", "[0,0]"), "", LQ_ERR_CORRUPT, "'t'",
	 "dimension 0 is too large"},
	{"f4_odd", TT("\"F4\"", "[3]", "[0,2]"), "ab", LQ_ERR_CORRUPT, "'t'",
	 "3 elements of F4 are not a whole number of bytes"},
	{"f6_two", TT("\"F6_E2M3\"", "[2]", "[0,2]"), "ab", LQ_ERR_CORRUPT, "'t'", "not a whole number of bytes"},
	{"size_mismatch", TT("\"F32\"", "[2]", "[0,4]"), "abcd", LQ_ERR_CORRUPT, "'t'",
	 "data_offsets [0, 4] hold 4 bytes but F32 of 2 elements needs 8"},
	{"size_mismatch_big", TT("\"F32\"", "[1]", "[0,8]"), "abcdefgh", LQ_ERR_CORRUPT, "'t'", "needs 4"},
	/* the data buffer (MetadataIncompleteBuffer) */
	{"trailing_bytes", H4, "abcde", LQ_ERR_CORRUPT, NULL, "the tensors end at byte 4 of the data but the file "
	 "holds 5 data bytes (trailing bytes)"},
	{"truncated_data", H4, "abc", LQ_ERR_CORRUPT, NULL, "holds 3 data bytes (truncated file)"},
	{"data_without_tensors", "{}", "x", LQ_ERR_CORRUPT, NULL, "trailing bytes"},
	/* what the official reader lets through */
	{"duplicate_name", "{\"a\":" E4 ",\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "abcdefgh",
	 LQ_ERR_CORRUPT, "'a'", "tensor 'a' appears twice in the header"},
	/* same offsets: the official reader keeps one and reads a valid file */
	{"duplicate_entry", "{\"a\":" E4 ",\"a\":" E4 "}", "abcd", LQ_ERR_CORRUPT, "'a'", "overlapping data"},
	{"nul_in_name", "{\"a\\u0000b\":" E4 "}", "abcd", LQ_ERR_CORRUPT, "'a?b'",
	 "tensor name 'a?b' contains a control character"},
	{"newline_in_name", "{\"a\\nb\":" E4 "}", "abcd", LQ_ERR_CORRUPT, "'a?b'", "contains a control character"},
	{"escape_in_name", "{\"\\u001b[2J\":" E4 "}", "abcd", LQ_ERR_CORRUPT, "'?[2J'", "contains a control character"},
	{"del_in_name", "{\"a\x7f\":" E4 "}", "abcd", LQ_ERR_CORRUPT, "'a?'", "contains a control character"},
	{"del_escaped_in_name", "{\"a\\u007f\":" E4 "}", "abcd", LQ_ERR_CORRUPT, "'a?'", "contains a control character"},
	{"metadata_twice", "{\"__metadata__\":{},\"__metadata__\":{}," T4 "}", "abcd", LQ_ERR_CORRUPT, NULL,
	 "__metadata__ appears twice"},
	{"metadata_null_twice", "{\"__metadata__\":null,\"__metadata__\":null}", "", LQ_ERR_CORRUPT, NULL,
	 "__metadata__ appears twice"},
	{"metadata_duplicate_key", "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}," T4 "}", "abcd", LQ_ERR_CORRUPT, NULL,
	 "__metadata__ key 'a' appears twice"},
	{"duplicate_dtype", "{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd",
	 LQ_ERR_CORRUPT, "'t'", "field 'dtype' appears twice"},
	{"duplicate_shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd",
	 LQ_ERR_CORRUPT, "'t'", "field 'shape' appears twice"},
	{"duplicate_offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"data_offsets\":[0,4]}}",
	 "abcd", LQ_ERR_CORRUPT, "'t'", "field 'data_offsets' appears twice"},
	{"garbage_after_json", H4 "x", "abcd", LQ_ERR_CORRUPT, NULL, "unexpected 'x' after the end of the JSON value"},
	{"second_object", H4 "{}", "abcd", LQ_ERR_CORRUPT, NULL, "after the end of the JSON value"},
	{"closing_brace", H4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "after the end of the JSON value"},
	{"lone_high_surrogate", "{\"\\ud800\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "unpaired surrogate"},
	{"high_then_letter", "{\"\\ud800\\u0041\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "unpaired surrogate"},
	{"two_high", "{\"\\ud800\\ud800\\udc00\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "unpaired surrogate"},
	{"lone_low_surrogate", "{\"\\udc00\":" E4 "}", "abcd", LQ_ERR_CORRUPT, NULL, "unpaired surrogate"},
	{"surrogate_in_metadata", "{\"__metadata__\":{\"a\":\"\\udfff\"}}", "", LQ_ERR_CORRUPT, NULL, "unpaired surrogate"},
	/* rank above ST_MAX_DIMS: unsupported, not corrupt (the official reader takes it) */
	{"rank17", TT("\"U8\"", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "[0,1]"), "z", LQ_ERR_UNSUPPORTED, "'t'",
	 "more than 16 dimensions"},
};

/* Parses a header (n == -1: its own length) and data from memory; checks the status and the message. */
static void check_reject(const char *id, const char *header, size_t hlen, int64_t n, const char *data, size_t dlen,
			 lq_status status, const char *tensor, const char *phrase)
{
	char name[128];
	snprintf(name, sizeof name, "%s.safetensors", id);
	test_context("%s", id);
	size_t len;
	unsigned char *b = image(header, hlen, n, data, dlen, &len);
	st_file *f = st_file_create();
	lq_status st = st_file_parse(f, b, len, len, name);
	if (CHECK_INT(st, status)) {
		CHECK_CONTAINS(st_file_error(f), name);
		if (tensor)
			CHECK_CONTAINS(st_file_error(f), tensor);
		if (phrase)
			CHECK_CONTAINS(st_file_error(f), phrase);
	} else if (st != LQ_OK) {
		test_note("%s: %s", id, st_file_error(f));
	}
	/* nothing is kept from a header that failed */
	CHECK_INT(f->ntensors, 0);
	CHECK_INT(f->nmeta, 0);
	CHECK(st_file_find(f, "t") == NULL);
	st_file_free(f);
	free(b);
}

TEST(st_reader_rejects_hostile_headers)
{
	size_t n = sizeof rejects / sizeof *rejects;
	for (size_t i = 0; i < n; i++) {
		const reject_case *c = &rejects[i];
		check_reject(c->id, c->header, strlen(c->header), -1, c->data, strlen(c->data), c->status, c->tensor,
			     c->phrase);
	}
	test_note("%zu hostile headers rejected", n);
}

/* The prefix: shorter than 8 bytes (HeaderTooSmall), N above the limit (HeaderTooLarge), 8 + N past the
 * end (InvalidHeaderLength); and a header that is not UTF-8 (InvalidHeader). */
TEST(st_reader_rejects_bad_prefixes)
{
	static const unsigned char seven[7] = {2, 0, 0, 0, 0, 0, 0};
	for (size_t k = 0; k <= 7; k++) {
		st_file *f = st_file_create();
		test_context("file of %zu bytes", k);
		if (CHECK_INT(st_file_parse(f, seven, k, k, "short.safetensors"), LQ_ERR_CORRUPT)) {
			CHECK_CONTAINS(st_file_error(f), "short.safetensors");
			CHECK_CONTAINS(st_file_error(f), "too short for a safetensors header");
		}
		st_file_free(f);
	}
	/* above the limit, whatever the file's size; exactly at the limit is a length past the end */
	check_reject("limit_plus_one", "{}", 2, 100000001, "", 0, LQ_ERR_CORRUPT, NULL,
		     "header length 100000001 exceeds the limit of 100000000 bytes");
	check_reject("huge_length", "{}", 2, INT64_MAX, "", 0, LQ_ERR_CORRUPT, NULL, "exceeds the limit");
	check_reject("at_limit", "{}", 2, 100000000, "", 0, LQ_ERR_CORRUPT, NULL,
		     "header length 100000000 runs past the end of the file (10 bytes)");
	check_reject("past_end", "{}", 2, 10, "", 0, LQ_ERR_CORRUPT, NULL, "runs past the end of the file");
	check_reject("past_end_by_one", "{}  ", 4, 5, "", 0, LQ_ERR_CORRUPT, NULL, "runs past the end");
	/* the header as given is shorter than 8 + N although the file is long enough */
	{
		size_t len;
		unsigned char *b = image(H4, strlen(H4), -1, "abcd", 4, &len);
		st_file *f = st_file_create();
		test_context("header cut short in memory");
		if (CHECK_INT(st_file_parse(f, b, 20, len, "cut.safetensors"), LQ_ERR_CORRUPT))
			CHECK_CONTAINS(st_file_error(f), "cut.safetensors: header truncated");
		st_file_free(f);
		free(b);
	}
	/* not UTF-8: a stray byte, a stray continuation, an overlong form, an encoded surrogate, a code point
	 * above U+10FFFF, a sequence cut by the end of the header; the message gives the byte (8 + position) */
	static const struct {
		const char *id, *header, *at;
	} utf8[] = {
		{"utf8_ff", "{\"\xff\":" E4 "}", "header byte 10: not valid UTF-8"},
		{"utf8_continuation", "{\"\x80\":" E4 "}", "header byte 10"},
		{"utf8_overlong", "{\"\xc0\xaf\":" E4 "}", "header byte 10"},
		{"utf8_overlong3", "{\"\xe0\x80\xaf\":" E4 "}", "header byte 10"},
		{"utf8_surrogate", "{\"\xed\xa0\x80\":" E4 "}", "header byte 10"},
		{"utf8_above_max", "{\"\xf4\x90\x80\x80\":" E4 "}", "header byte 10"},
		{"utf8_f8", "{\"\xf8\x88\x80\x80\x80\":" E4 "}", "header byte 10"},
		{"utf8_missing_continuation", "{\"\xe4\xb8x\":" E4 "}", "header byte 10"},
		{"utf8_cut_at_end", H4 "\xe4\xb8", "header byte 62"},
		{"utf8_in_metadata", "{\"__metadata__\":{\"a\":\"\xc3\"}}", "header byte 30"},
	};
	for (size_t i = 0; i < sizeof utf8 / sizeof *utf8; i++)
		check_reject(utf8[i].id, utf8[i].header, strlen(utf8[i].header), -1, "abcd",
			     strstr(utf8[i].header, "__metadata__") ? 0 : 4, LQ_ERR_CORRUPT, NULL, utf8[i].at);
}

/* Nesting: the official reader fails when a value opens its 128th level (header object and tensor
 * object included): 125 levels in an unknown field pass (st_reader_accepts_what_official_accepts), 126
 * fail, and so do many more. */
TEST(st_reader_rejects_deep_nesting)
{
	static const int depths[] = {126, 127, 128, 129, 100000};
	for (size_t i = 0; i < sizeof depths / sizeof *depths; i++) {
		int k = depths[i];
		for (int obj = 0; obj < 2; obj++) {
			size_t cap = (size_t)k * 10 + 128, n = 0;
			char *h = malloc(cap);
			n += (size_t)snprintf(h + n, cap - n, "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":");
			for (int d = 0; d < k; d++)
				n += (size_t)snprintf(h + n, cap - n, "%s", obj ? "{\"a\":" : "[");
			h[n++] = '1';
			for (int d = 0; d < k; d++)
				h[n++] = obj ? '}' : ']';
			n += (size_t)snprintf(h + n, cap - n, "}}");
			char id[64];
			snprintf(id, sizeof id, "nesting_%d_%s", k, obj ? "objects" : "arrays");
			check_reject(id, h, n, -1, "abcd", 4, LQ_ERR_CORRUPT, "'t'", "nesting deeper than 128");
			free(h);
		}
	}
	/* an unclosed deep nest fails at the limit, not at the end */
	size_t n = 100000;
	char *h = malloc(n + 64);
	int k = snprintf(h, 64, "{\"t\":{\"x\":");
	memset(h + k, '[', n - (size_t)k);
	check_reject("nesting_unclosed", h, n, -1, "", 0, LQ_ERR_CORRUPT, "'t'", "nesting deeper than 128");
	free(h);
}

/* The same checks through st_file_open, and what only a file can get wrong. */
TEST(st_reader_rejects_files)
{
	static const struct {
		const char *id;
		const char *header;
		int64_t n;
		const char *data;
		lq_status status;
		const char *phrase;
	} files[] = {
		{"empty", "", 0, NULL, LQ_ERR_CORRUPT, "file of 0 bytes is too short"},
		{"seven_bytes", "", 0, "1234567", LQ_ERR_CORRUPT, "file of 7 bytes is too short"},
		{"too_large", "{}", 200000000, "", LQ_ERR_CORRUPT, "exceeds the limit"},
		{"past_end", "{}", 3, "", LQ_ERR_CORRUPT, "runs past the end of the file (10 bytes)"},
		{"truncated", H4, -1, "ab", LQ_ERR_CORRUPT, "truncated file"},
		{"trailing", H4, -1, "abcdef", LQ_ERR_CORRUPT, "trailing bytes"},
		{"unknown_dtype", TT("\"Q4\"", "[1]", "[0,4]"), -1, "abcd", LQ_ERR_CORRUPT, "tensor 't': unknown dtype 'Q4'"},
		{"rank17", TT("\"U8\"", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "[0,1]"), -1, "z", LQ_ERR_UNSUPPORTED,
		 "tensor 't': more than 16 dimensions"},
	};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		test_context("%s", files[i].id);
		char name[64];
		snprintf(name, sizeof name, "reject-%s.safetensors", files[i].id);
		const char *path = tmp_path(name);
		size_t len;
		unsigned char *b;
		if (files[i].data && strcmp(files[i].id, "seven_bytes") == 0) {
			b = malloc(7);
			memcpy(b, files[i].data, 7);
			len = 7;
		} else {
			b = image(files[i].header, strlen(files[i].header), files[i].n, files[i].data ? files[i].data : "",
				  files[i].data ? strlen(files[i].data) : 0, &len);
			if (!files[i].data)
				len = 0;
		}
		if (!CHECK(write_all(path, b, len))) {
			free(b);
			continue;
		}
		st_file *f = st_file_create();
		if (CHECK_INT(st_file_open(f, path), files[i].status)) {
			CHECK_CONTAINS(st_file_error(f), path);
			CHECK_CONTAINS(st_file_error(f), files[i].phrase);
		} else {
			test_note("%s", st_file_error(f));
		}
		CHECK_INT(f->ntensors, 0);
		st_file_free(f);
		unlink(path);
		free(b);
	}
	/* what cannot be opened or read is an I/O error */
	st_file *f = st_file_create();
	const char *missing = tmp_path("does-not-exist.safetensors");
	test_context("missing file");
	if (CHECK_INT(st_file_open(f, missing), LQ_ERR_IO)) {
		CHECK_CONTAINS(st_file_error(f), missing);
		CHECK_CONTAINS(st_file_error(f), strerror(ENOENT));
	}
	test_context("a directory");
	if (CHECK_INT(st_file_open(f, util_tmpdir()), LQ_ERR_IO))
		CHECK_CONTAINS(st_file_error(f), "not a regular file");
	/* the same handle then opens a good file */
	test_context("reuse after failures");
	CHECK_INT(st_file_open(f, test_path("fixtures/safetensors/meta_escapes.safetensors")), LQ_OK);
	CHECK_INT(f->ntensors, 2);
	st_file_free(f);
}

/* ------------------------------------------------------------------------------ reader acceptances */

typedef struct accept_tensor {
	const char *name;
	const char *dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	size_t size;
	const char *bytes;
} accept_tensor;

typedef struct accept_case {
	const char *id;
	const char *header;
	size_t header_len;
	const char *data;
	size_t data_len;
	bool has_meta; /* the official reader's metadata() is not None */
	int nmeta;
	const char *meta[4][2];
	int ntensors;
	accept_tensor t[24];
} accept_case;

static const accept_case accepts[] = {
/* generated by fixtures/safetensors/make_fixtures.py --accept: what safetensors 0.8 reads */
	{"zero_size",
	 "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"b\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[0,0]},\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"d\":{\"dtype\":\"BF16\",\"shape\":[0,5],\"data_offsets\":[1,1]},\"e\":{\"dtype\":\"F4\",\"shape\":[0],\"data_offsets\":[1,1]}}", 269,
	 "x", 1,
	 false, 0, {
		{NULL, NULL},
	 }, 5, {
		{"a", "F32", 1, {0}, 0, ""},
		{"b", "F32", 2, {2, 0}, 0, ""},
		{"c", "U8", 1, {1}, 1, "x"},
		{"d", "BF16", 2, {0, 5}, 0, ""},
		{"e", "F4", 1, {0}, 0, ""},
	 }},
	{"rank0",
	 "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},\"u\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[8,9]}}", 104,
	 "01234567u", 9,
	 false, 0, {
		{NULL, NULL},
	 }, 2, {
		{"s", "F64", 0, {0}, 8, "01234567"},
		{"u", "U8", 0, {0}, 1, "u"},
	 }},
	{"empty",
	 "{}", 2,
	 "", 0,
	 false, 0, {
		{NULL, NULL},
	 }, 0, {
		{NULL, NULL, 0, {0}, 0, NULL},
	 }},
	{"empty_metadata",
	 "{\"__metadata__\":{}}", 19,
	 "", 0,
	 true, 0, {
		{NULL, NULL},
	 }, 0, {
		{NULL, NULL, 0, {0}, 0, NULL},
	 }},
	{"only_metadata",
	 "{\"__metadata__\":{\"format\":\"pt\"}}", 32,
	 "", 0,
	 true, 1, {
		{"format", "pt"},
	 }, 0, {
		{NULL, NULL, 0, {0}, 0, NULL},
	 }},
	{"whitespace",
	 " \012\011\015{ \"t\" : { \"dtype\" : \"F32\" , \"shape\" : [ 1 ] , \"data_offsets\" : [ 0 , 4 ] } } \015\012\011 ", 85,
	 "abcd", 4,
	 false, 0, {
		{NULL, NULL},
	 }, 1, {
		{"t", "F32", 1, {1}, 4, "abcd"},
	 }},
	{"unaligned",
	 "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 54,
	 "abcd", 4,
	 false, 0, {
		{NULL, NULL},
	 }, 1, {
		{"t", "F32", 1, {1}, 4, "abcd"},
	 }},
	{"metadata_null",
	 "{\"__metadata__\":null,\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 74,
	 "abcd", 4,
	 false, 0, {
		{NULL, NULL},
	 }, 1, {
		{"t", "F32", 1, {1}, 4, "abcd"},
	 }},
	{"metadata_last",
	 "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"__metadata__\":{\"a\":\"b\",\"format\":\"pt\"}}", 93,
	 "abcd", 4,
	 true, 2, {
		{"a", "b"},
		{"format", "pt"},
	 }, 1, {
		{"t", "F32", 1, {1}, 4, "abcd"},
	 }},
	{"unknown_fields",
	 "{\"t\":{\"x\":[1,{\"y\":null},\"s\",-1.5e3,true,false],\"dtype\":\"F32\",\"shape\":[1],\"x\":{},\"data_offsets\":[0,4],\"\":0}}", 107,
	 "abcd", 4,
	 false, 0, {
		{NULL, NULL},
	 }, 1, {
		{"t", "F32", 1, {1}, 4, "abcd"},
	 }},
	{"unknown_deep",
	 "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", 309,
	 "abcd", 4,
	 false, 0, {
		{NULL, NULL},
	 }, 1, {
		{"t", "F32", 1, {1}, 4, "abcd"},
	 }},
	{"escaped_names",
	 "{\"esc\\\"\\\\\\/\\u0041\\u00e9\\u4e16\\ud83d\\ude00\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"\\u005f_metadata__x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 160,
	 "12", 2,
	 false, 0, {
		{NULL, NULL},
	 }, 2, {
		{"__metadata__x", "U8", 1, {1}, 1, "2"},
		{"esc\"\\/A\303\251\344\270\226\360\237\230\200", "U8", 1, {1}, 1, "1"},
	 }},
	{"utf8_names",
	 "{\"h\303\251llo.\344\270\226\347\225\214.\360\237\230\200\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"\302\240\302\205x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}", 126,
	 "abc", 3,
	 false, 0, {
		{NULL, NULL},
	 }, 2, {
		{"h\303\251llo.\344\270\226\347\225\214.\360\237\230\200", "U8", 1, {2}, 2, "ab"},
		{"\302\240\302\205x", "U8", 1, {1}, 1, "c"},
	 }},
	{"escaped_fields",
	 "{\"t\":{\"dt\\u0079pe\":\"F\\u00332\",\"\\u0073hape\":[1],\"data_offsets\":[0,4]}}", 69,
	 "abcd", 4,
	 false, 0, {
		{NULL, NULL},
	 }, 1, {
		{"t", "F32", 1, {1}, 4, "abcd"},
	 }},
	{"escaped_metadata",
	 "{\"__m\\u0065tadata__\":{\"k\\n\\\"\":\"v\\t\\u00e9\\ud83d\\ude00\",\"\":\"\"}}", 61,
	 "", 0,
	 true, 2, {
		{"", ""},
		{"k\012\"", "v\011\303\251\360\237\230\200"},
	 }, 0, {
		{NULL, NULL, 0, {0}, 0, NULL},
	 }},
	{"subbyte",
	 "{\"f4\":{\"dtype\":\"F4\",\"shape\":[2,2],\"data_offsets\":[0,2]},\"f6\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[2,5]},\"f6b\":{\"dtype\":\"F6_E3M2\",\"shape\":[1,8],\"data_offsets\":[5,11]},\"b\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[11,13]}}", 232,
	 "0123456789abc", 13,
	 false, 0, {
		{NULL, NULL},
	 }, 4, {
		{"b", "BOOL", 1, {2}, 2, "bc"},
		{"f4", "F4", 2, {2, 2}, 2, "01"},
		{"f6", "F6_E2M3", 1, {4}, 3, "234"},
		{"f6b", "F6_E3M2", 2, {1, 8}, 6, "56789a"},
	 }},
	{"all_dtype_names",
	 "{\"bool\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4]},\"f4\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[4,6]},\"f6_e2m3\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[6,9]},\"f6_e3m2\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[9,12]},\"u8\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[12,16]},\"i8\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[16,20]},\"f8_e5m2\":{\"dtype\":\"F8_E5M2\",\"shape\":[4],\"data_offsets\":[20,24]},\"f8_e4m3\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[24,28]},\"f8_e8m0\":{\"dtype\":\"F8_E8M0\",\"shape\":[4],\"data_offsets\":[28,32]},\"f8_e4m3fnuz\":{\"dtype\":\"F8_E4M3FNUZ\",\"shape\":[4],\"data_offsets\":[32,36]},\"f8_e5m2fnuz\":{\"dtype\":\"F8_E5M2FNUZ\",\"shape\":[4],\"data_offsets\":[36,40]},\"i16\":{\"dtype\":\"I16\",\"shape\":[4],\"data_offsets\":[40,48]},\"u16\":{\"dtype\":\"U16\",\"shape\":[4],\"data_offsets\":[48,56]},\"f16\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[56,64]},\"bf16\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[64,72]},\"i32\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[72,88]},\"u32\":{\"dtype\":\"U32\",\"shape\":[4],\"data_offsets\":[88,104]},\"f32\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[104,120]},\"c64\":{\"dtype\":\"C64\",\"shape\":[4],\"data_offsets\":[120,152]},\"f64\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[152,184]},\"i64\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[184,216]},\"u64\":{\"dtype\":\"U64\",\"shape\":[4],\"data_offsets\":[216,248]}}", 1329,
	 "\000\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037 !\"#$%&'()*+,-./0123456789:;<=>\077@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\177\200\201\202\203\204\205\206\207\210\211\212\213\214\215\216\217\220\221\222\223\224\225\226\227\230\231\232\233\234\235\236\237\240\241\242\243\244\245\246\247\250\251\252\253\254\255\256\257\260\261\262\263\264\265\266\267\270\271\272\273\274\275\276\277\300\301\302\303\304\305\306\307\310\311\312\313\314\315\316\317\320\321\322\323\324\325\326\327\330\331\332\333\334\335\336\337\340\341\342\343\344\345\346\347\350\351\352\353\354\355\356\357\360\361\362\363\364\365\366\367", 248,
	 false, 0, {
		{NULL, NULL},
	 }, 22, {
		{"bf16", "BF16", 1, {4}, 8, "@ABCDEFG"},
		{"bool", "BOOL", 1, {4}, 4, "\000\001\002\003"},
		{"c64", "C64", 1, {4}, 32, "xyz{|}~\177\200\201\202\203\204\205\206\207\210\211\212\213\214\215\216\217\220\221\222\223\224\225\226\227"},
		{"f16", "F16", 1, {4}, 8, "89:;<=>\077"},
		{"f32", "F32", 1, {4}, 16, "hijklmnopqrstuvw"},
		{"f4", "F4", 1, {4}, 2, "\004\005"},
		{"f64", "F64", 1, {4}, 32, "\230\231\232\233\234\235\236\237\240\241\242\243\244\245\246\247\250\251\252\253\254\255\256\257\260\261\262\263\264\265\266\267"},
		{"f6_e2m3", "F6_E2M3", 1, {4}, 3, "\006\007\010"},
		{"f6_e3m2", "F6_E3M2", 1, {4}, 3, "\011\012\013"},
		{"f8_e4m3", "F8_E4M3", 1, {4}, 4, "\030\031\032\033"},
		{"f8_e4m3fnuz", "F8_E4M3FNUZ", 1, {4}, 4, " !\"#"},
		{"f8_e5m2", "F8_E5M2", 1, {4}, 4, "\024\025\026\027"},
		{"f8_e5m2fnuz", "F8_E5M2FNUZ", 1, {4}, 4, "$%&'"},
		{"f8_e8m0", "F8_E8M0", 1, {4}, 4, "\034\035\036\037"},
		{"i16", "I16", 1, {4}, 8, "()*+,-./"},
		{"i32", "I32", 1, {4}, 16, "HIJKLMNOPQRSTUVW"},
		{"i64", "I64", 1, {4}, 32, "\270\271\272\273\274\275\276\277\300\301\302\303\304\305\306\307\310\311\312\313\314\315\316\317\320\321\322\323\324\325\326\327"},
		{"i8", "I8", 1, {4}, 4, "\020\021\022\023"},
		{"u16", "U16", 1, {4}, 8, "01234567"},
		{"u32", "U32", 1, {4}, 16, "XYZ[\\]^_`abcdefg"},
		{"u64", "U64", 1, {4}, 32, "\330\331\332\333\334\335\336\337\340\341\342\343\344\345\346\347\350\351\352\353\354\355\356\357\360\361\362\363\364\365\366\367"},
		{"u8", "U8", 1, {4}, 4, "\014\015\016\017"},
	 }},
	{"rank16",
	 "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 83,
	 "z", 1,
	 false, 0, {
		{NULL, NULL},
	 }, 1, {
		{"t", "U8", 16, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 1, "z"},
	 }},
	{"huge_zero_dim",
	 "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},\"b\":{\"dtype\":\"U8\",\"shape\":[3,0,9223372036854775807],\"data_offsets\":[0,0]},\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 179,
	 "hi", 2,
	 false, 0, {
		{NULL, NULL},
	 }, 3, {
		{"a", "U8", 1, {0}, 0, ""},
		{"b", "U8", 3, {3, 0, 9223372036854775807}, 0, ""},
		{"c", "U8", 1, {2}, 2, "hi"},
	 }},
};

static void check_accept(const accept_case *c, st_file *f, const unsigned char *data)
{
	CHECK_INT(f->ntensors, c->ntensors);
	CHECK_INT(f->nmeta, c->nmeta);
	for (int i = 0; i < c->nmeta; i++)
		CHECK_STR(st_file_meta(f, c->meta[i][0]), c->meta[i][1]);
	for (int i = 0; i < c->ntensors; i++) {
		const accept_tensor *e = &c->t[i];
		const st_tensor *t = st_file_find(f, e->name);
		if (!CHECK(t != NULL)) {
			test_note("%s: no tensor '%s'", c->id, e->name);
			continue;
		}
		CHECK_STR(st_dtype_name(t->dtype), e->dtype);
		if (CHECK_INT(t->ndim, e->ndim))
			for (int d = 0; d < e->ndim; d++)
				CHECK_INT(t->shape[d], e->shape[d]);
		uint64_t nelem = 1;
		for (int d = 0; d < e->ndim; d++)
			nelem *= (uint64_t)e->shape[d];
		CHECK_INT(t->nelem, nelem);
		if (CHECK_INT(t->end - t->begin, e->size) && data)
			CHECK(memcmp(data + t->begin, e->bytes, e->size) == 0);
	}
}

/* Headers the official reader accepts: ours reads the same names, dtypes, shapes, bytes and metadata, from
 * memory and from a file. */
TEST(st_reader_accepts_what_official_accepts)
{
	size_t n = sizeof accepts / sizeof *accepts;
	for (size_t i = 0; i < n; i++) {
		const accept_case *c = &accepts[i];
		test_context("%s", c->id);
		size_t len;
		unsigned char *b = image(c->header, c->header_len, -1, c->data, c->data_len, &len);
		st_file *f = st_file_create();
		if (CHECK_INT(st_file_parse(f, b, len, len, c->id), LQ_OK)) {
			CHECK_INT(f->header_len, c->header_len);
			CHECK_INT(f->data_start, 8 + c->header_len);
			check_accept(c, f, b + 8 + c->header_len);
			/* the data order: contiguous from 0 */
			uint64_t at = 0;
			for (size_t k = 0; k < f->ntensors; k++) {
				CHECK_INT(f->tensors[k].begin, at);
				at = f->tensors[k].end;
			}
			CHECK_INT(at, c->data_len);
		} else {
			test_note("%s", st_file_error(f));
		}
		st_file_free(f);

		/* the same through a file, with st_file_read */
		const char *path = tmp_path("accept.safetensors");
		unlink(path);
		f = st_file_create();
		if (CHECK(write_all(path, b, len)) && CHECK_INT(st_file_open(f, path), LQ_OK)) {
			check_accept(c, f, NULL);
			for (int k = 0; k < c->ntensors; k++) {
				size_t tl = 0;
				unsigned char *got = util_tensor(f, c->t[k].name, &tl);
				if (got && CHECK_INT(tl, c->t[k].size))
					CHECK(memcmp(got, c->t[k].bytes, tl) == 0);
				free(got);
			}
		}
		st_file_free(f);
		unlink(path);
		free(b);
	}
	test_note("%zu headers read as the official reader reads them", n);
}

/* A handle is reused: a failed parse leaves nothing behind, a good one after it is complete. */
TEST(st_reader_reuses_handles)
{
	st_file *f = st_file_create();
	size_t len;
	unsigned char *good = image(accepts[0].header, accepts[0].header_len, -1, accepts[0].data, accepts[0].data_len, &len);
	CHECK_INT(st_file_parse(f, good, len, len, "good"), LQ_OK);
	CHECK_INT(f->ntensors, accepts[0].ntensors);
	CHECK_INT(st_file_parse(f, good, len, len + 1, "good+1"), LQ_ERR_CORRUPT);
	CHECK_INT(f->ntensors, 0);
	CHECK(st_file_find(f, "a") == NULL);
	CHECK_INT(st_file_parse(f, good, len, len, "good"), LQ_OK);
	CHECK(st_file_find(f, "a") != NULL);
	/* parsed from memory: there is no file to read from */
	const st_tensor *t = st_file_find(f, "c");
	unsigned char byte;
	if (CHECK(t != NULL))
		CHECK_INT(st_file_read(f, t, 0, &byte, 1), LQ_ERR_ARG);
	st_file_free(f);
	free(good);
	st_file_free(NULL);

	/* reads stay inside their tensor */
	f = util_open("fixtures/safetensors/meta_escapes.safetensors");
	if (!f)
		return;
	t = st_file_find(f, "b");
	unsigned char buf[8];
	if (CHECK(t != NULL)) {
		CHECK_INT(st_file_read(f, t, 0, buf, 3), LQ_OK);
		CHECK_INT(st_file_read(f, t, 3, buf, 0), LQ_OK);
		CHECK_INT(st_file_read(f, t, 1, buf, 3), LQ_ERR_ARG);
		CHECK_CONTAINS(st_file_error(f), "read past the end of tensor 'b'");
		CHECK_INT(st_file_read(f, t, 4, buf, 0), LQ_ERR_ARG);
		CHECK_INT(st_file_read(f, t, UINT64_MAX, buf, 2), LQ_ERR_ARG);
	}
	CHECK(st_file_find(f, "w") != NULL);
	CHECK(st_file_find(f, "") == NULL);
	CHECK(st_file_find(f, "ww") == NULL);
	CHECK(st_file_meta(f, "missing") == NULL);
	CHECK_STR(st_file_meta(f, "format"), "pt");
	CHECK_STR(st_file_meta(f, "note \"\\\001\037\177"), "tab\there\nnew\rcr\bbs\fff \"q\" \\ / \033 \303\251\344\270\226\360\237\230\200");
	st_file_free(f);
}

TEST(st_dtype_table)
{
	static const struct {
		const char *name;
		unsigned bits;
	} want[ST_DTYPE_COUNT] = {
		{"BOOL", 8}, {"F4", 4}, {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8}, {"I8", 8}, {"F8_E5M2", 8},
		{"F8_E4M3", 8}, {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16}, {"U16", 16},
		{"F16", 16}, {"BF16", 16}, {"I32", 32}, {"U32", 32}, {"F32", 32}, {"C64", 64}, {"F64", 64},
		{"I64", 64}, {"U64", 64},
	};
	for (int d = 0; d < ST_DTYPE_COUNT; d++) {
		test_context("%s", want[d].name);
		CHECK_STR(st_dtype_name((st_dtype)d), want[d].name);
		CHECK_INT(st_dtype_bits((st_dtype)d), want[d].bits);
		st_dtype p = ST_DTYPE_COUNT;
		CHECK(st_dtype_parse(want[d].name, &p) && p == (st_dtype)d);
	}
	test_context("others");
	st_dtype p;
	CHECK(!st_dtype_parse("f32", &p) && !st_dtype_parse("", &p) && !st_dtype_parse("F32 ", &p) &&
	      !st_dtype_parse("F6", &p) && !st_dtype_parse("float32", &p));
	CHECK_STR(st_dtype_name(ST_DTYPE_COUNT), "?");
	CHECK_INT(st_dtype_bits(ST_DTYPE_COUNT), 0);
	uint64_t bytes = 0;
	CHECK(st_tensor_bytes(ST_F4, 4, &bytes) && bytes == 2);
	CHECK(!st_tensor_bytes(ST_F4, 3, &bytes));
	CHECK(st_tensor_bytes(ST_F6_E3M2, 4, &bytes) && bytes == 3);
	CHECK(!st_tensor_bytes(ST_F6_E2M3, 2, &bytes));
	CHECK(st_tensor_bytes(ST_C64, 3, &bytes) && bytes == 24);
	CHECK(!st_tensor_bytes(ST_U64, UINT64_MAX / 8, &bytes));
	CHECK(!st_tensor_bytes(ST_U8, UINT64_MAX, &bytes));
	CHECK(st_tensor_bytes(ST_U8, UINT64_MAX / 8, &bytes) && bytes == UINT64_MAX / 8);
	lq_dtype l;
	CHECK(st_dtype_to_lq(ST_BF16, &l) && l == LQ_DTYPE_BF16 && st_dtype_from_lq(l) == ST_BF16);
	CHECK(st_dtype_to_lq(ST_F16, &l) && l == LQ_DTYPE_F16 && st_dtype_from_lq(l) == ST_F16);
	CHECK(st_dtype_to_lq(ST_F32, &l) && l == LQ_DTYPE_F32 && st_dtype_from_lq(l) == ST_F32);
	CHECK(st_dtype_to_lq(ST_U8, &l) && l == LQ_DTYPE_U8 && st_dtype_from_lq(l) == ST_U8);
	CHECK(!st_dtype_to_lq(ST_F64, &l) && !st_dtype_to_lq(ST_I8, &l) && !st_dtype_to_lq(ST_F4, &l));
}

/* ------------------------------------------------------------------------------------- writer */

TEST(st_writer_rejects_bad_declarations)
{
	st_writer *w = st_writer_create();
	int64_t shape[ST_MAX_DIMS + 1] = {2, 3};
	static const char *const bad_names[] = {"a\nb", "\001", "tab\there", "del\177", "\033[2J", "__metadata__"};
	for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
		test_context("name %zu", i);
		CHECK_INT(st_writer_add(w, bad_names[i], ST_F32, 2, shape), -1);
		CHECK(st_writer_error(w)[0] != '\0');
		/* the message shows control characters as '?' */
		for (const char *c = st_writer_error(w); *c; c++)
			CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
	}
	test_context("other declarations");
	CHECK_CONTAINS(st_writer_error(w), "invalid name");
	CHECK_INT(st_writer_add(w, "x", ST_F32, -1, shape), -1);
	CHECK_INT(st_writer_add(w, "x", ST_F32, ST_MAX_DIMS + 1, shape), -1);
	CHECK_INT(st_writer_add(w, "x", ST_DTYPE_COUNT, 2, shape), -1);
	int64_t neg[2] = {2, -1}, big[2] = {INT64_MAX, INT64_MAX}, odd[1] = {3};
	CHECK_INT(st_writer_add(w, "x", ST_F32, 2, neg), -1);
	CHECK_CONTAINS(st_writer_error(w), "invalid shape");
	CHECK_INT(st_writer_add(w, "x", ST_F32, 2, big), -1);
	CHECK_INT(st_writer_add(w, "x", ST_U64, 1, (int64_t[]){INT64_MAX}), -1);
	CHECK_INT(st_writer_add(w, "x", ST_F4, 1, odd), -1);
	CHECK_CONTAINS(st_writer_error(w), "not a whole number of bytes");
	CHECK_INT(st_writer_count(w), 0);
	/* the good ones get ids in declaration order; rank 0 and rank 16 are fine */
	CHECK_INT(st_writer_add(w, "x", ST_F32, 2, shape), 0);
	CHECK_INT(st_writer_add(w, "scalar", ST_F64, 0, shape), 1);
	int64_t ones[ST_MAX_DIMS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	CHECK_INT(st_writer_add(w, "rank16", ST_U8, ST_MAX_DIMS, ones), 2);
	CHECK_INT(st_writer_add(w, "h\303\251llo \"q\" \\", ST_U8, 1, odd), 3);
	CHECK_INT(st_writer_tensor_bytes(w, 0), 24);
	CHECK_INT(st_writer_tensor_bytes(w, 1), 8);
	CHECK_INT(st_writer_tensor_bytes(w, 99), 0);
	CHECK_INT(st_writer_tensor_bytes(w, -1), 0);
	/* a duplicate name is refused before anything is written (at st_writer_add or, at the latest, at
	 * st_writer_layout), and the message names it */
	test_context("duplicate");
	int32_t dup = st_writer_add(w, "x", ST_U8, 1, odd);
	if (dup >= 0) {
		CHECK_INT(st_writer_layout(w), LQ_ERR_ARG);
		const char *out = tmp_path("dup.safetensors");
		unlink(out);
		CHECK(st_writer_open(w, out) != LQ_OK);
		CHECK(!exists(out));
	}
	CHECK_CONTAINS(st_writer_error(w), "'x'");
	CHECK_CONTAINS(st_writer_error(w), "twice");
	st_writer_free(w);

	/* after the layout, nothing more can be declared */
	w = st_writer_create();
	CHECK_INT(st_writer_add(w, "a", ST_U8, 1, odd), 0);
	CHECK_INT(st_writer_layout(w), LQ_OK);
	CHECK_INT(st_writer_layout(w), LQ_OK);
	CHECK_INT(st_writer_add(w, "b", ST_U8, 1, odd), -1);
	CHECK_CONTAINS(st_writer_error(w), "after the layout");
	CHECK_INT(st_writer_file_size(w), 8 + 88 + 3); /* 84 bytes of JSON, padded to 88 */
	CHECK_INT(st_writer_data_size(w), 3);
	/* not open: nothing to write to or finish */
	CHECK_INT(st_writer_write(w, 0, 0, "abc", 3), LQ_ERR_ARG);
	CHECK_INT(st_writer_finish(w), LQ_ERR_ARG);
	st_writer_free(w);
	st_writer_free(NULL);
}

/* A writer with tensors "a" (U8 [8]) and "b" (F32 [2]), open at path. */
static st_writer *open_two(const char *path)
{
	st_writer *w = st_writer_create();
	int64_t eight[1] = {8}, two[1] = {2};
	CHECK_INT(st_writer_add(w, "a", ST_U8, 1, eight), 0);
	CHECK_INT(st_writer_add(w, "b", ST_F32, 1, two), 1);
	unlink(path);
	CHECK_INT(st_writer_open(w, path), LQ_OK);
	return w;
}

TEST(st_writer_finish_requires_every_byte)
{
	const char *path = tmp_path("finish.safetensors");
	static const unsigned char bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};

	test_context("tensor b never written");
	st_writer *w = open_two(path);
	CHECK_INT(st_writer_write(w, 0, 0, bytes, 8), LQ_OK);
	if (CHECK_INT(st_writer_finish(w), LQ_ERR_ARG)) {
		CHECK_CONTAINS(st_writer_error(w), "tensor 'b': 0 of 8 bytes written");
		CHECK_CONTAINS(st_writer_error(w), path);
	}
	st_writer_free(w);
	CHECK(!exists(path));

	test_context("tensor a written in part");
	w = open_two(path);
	CHECK_INT(st_writer_write(w, 0, 0, bytes, 3), LQ_OK);
	CHECK_INT(st_writer_write(w, 0, 5, bytes, 3), LQ_OK);
	CHECK_INT(st_writer_write(w, 1, 0, bytes, 8), LQ_OK);
	if (CHECK_INT(st_writer_finish(w), LQ_ERR_ARG))
		CHECK_CONTAINS(st_writer_error(w), "tensor 'a': 6 of 8 bytes written");
	st_writer_free(w);
	CHECK(!exists(path));

	/* half written twice adds up to the size, but half was never written: refused at once */
	test_context("bytes written twice");
	w = open_two(path);
	CHECK_INT(st_writer_write(w, 1, 0, bytes, 8), LQ_OK);
	CHECK_INT(st_writer_write(w, 0, 0, bytes, 4), LQ_OK);
	CHECK(st_writer_write(w, 0, 0, bytes, 4) != LQ_OK);
	CHECK(st_writer_write(w, 0, 2, bytes, 4) != LQ_OK);
	CHECK(st_writer_write(w, 0, 3, bytes, 1) != LQ_OK);
	CHECK_CONTAINS(st_writer_error(w), "'a'");
	CHECK(st_writer_finish(w) != LQ_OK);
	st_writer_free(w);
	CHECK(!exists(path));

	/* writes outside the tensor or to no tensor */
	test_context("bad writes");
	w = open_two(path);
	CHECK_INT(st_writer_write(w, 0, 7, bytes, 2), LQ_ERR_ARG);
	CHECK_CONTAINS(st_writer_error(w), "write past the end of tensor 'a'");
	CHECK_INT(st_writer_write(w, 0, 9, bytes, 0), LQ_ERR_ARG);
	CHECK_INT(st_writer_write(w, 0, UINT64_MAX, bytes, 1), LQ_ERR_ARG);
	CHECK_INT(st_writer_write(w, 2, 0, bytes, 1), LQ_ERR_ARG);
	CHECK_INT(st_writer_write(w, -1, 0, bytes, 1), LQ_ERR_ARG);

	/* then every byte once, in pieces out of order (zero-length writes are allowed): finishes, and
	 * the file reads back */
	test_context("pieces out of order");
	static const struct {
		int32_t id;
		uint64_t at;
		size_t len;
	} pieces[] = {{0, 6, 2}, {1, 4, 4}, {0, 2, 1}, {0, 0, 0}, {0, 8, 0}, {0, 0, 2}, {0, 4, 2}, {1, 0, 4}, {0, 3, 1}};
	for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++)
		CHECK_INT(st_writer_write(w, pieces[i].id, pieces[i].at, bytes + pieces[i].at, pieces[i].len), LQ_OK);
	CHECK(st_writer_write(w, 0, 3, bytes, 1) != LQ_OK);
	if (CHECK_INT(st_writer_finish(w), LQ_OK)) {
		st_file *f = st_file_create();
		if (CHECK_INT(st_file_open(f, path), LQ_OK)) {
			size_t n;
			unsigned char *a = util_tensor(f, "a", &n), *b = util_tensor(f, "b", NULL);
			CHECK(a && n == 8 && memcmp(a, bytes, 8) == 0);
			CHECK(b && memcmp(b, bytes, 8) == 0);
			free(a);
			free(b);
			CHECK_STR(f->tensors[0].name, "b"); /* F32 before U8 */
		}
		st_file_free(f);
	}
	st_writer_free(w);
	CHECK(exists(path)); /* finished: the file stays */
	unlink(path);
}

TEST(st_writer_free_removes_unfinished_file)
{
	const char *path = tmp_path("unfinished.safetensors");
	st_writer *w = open_two(path);
	CHECK(exists(path));
	CHECK_INT(st_writer_write(w, 0, 0, "abcdefgh", 8), LQ_OK);
	st_writer_free(w);
	CHECK(!exists(path));
	/* opened, nothing written */
	w = open_two(path);
	CHECK(exists(path));
	st_writer_free(w);
	CHECK(!exists(path));
}

TEST(st_writer_open_refuses_existing_path)
{
	const char *path = tmp_path("existing.safetensors");
	CHECK(write_all(path, "keep me", 7));
	st_writer *w = st_writer_create();
	int64_t one[1] = {1};
	CHECK_INT(st_writer_add(w, "a", ST_U8, 1, one), 0);
	if (CHECK_INT(st_writer_open(w, path), LQ_ERR_EXISTS))
		CHECK_CONTAINS(st_writer_error(w), path);
	st_writer_free(w);
	/* the existing file is untouched, and not removed by st_writer_free */
	size_t n = 0;
	unsigned char *b = read_all(path, &n);
	CHECK(b && n == 7 && memcmp(b, "keep me", 7) == 0);
	free(b);
	unlink(path);
	/* a directory that does not exist: an I/O error */
	w = st_writer_create();
	CHECK_INT(st_writer_add(w, "a", ST_U8, 1, one), 0);
	const char *nodir = tmp_path("no-such-dir/x.safetensors");
	CHECK_INT(st_writer_open(w, nodir), LQ_ERR_IO);
	CHECK_CONTAINS(st_writer_error(w), nodir);
	st_writer_free(w);
}

/* Metadata: always {"format": "pt"}, keys sorted, values escaped as serde_json escapes them; what we
 * write, we read back the same. */
TEST(st_writer_metadata_round_trip)
{
	const char *path = tmp_path("meta.safetensors");
	unlink(path);
	st_writer *w = st_writer_create();
	CHECK_INT(st_writer_set_meta(w, "z", "last"), LQ_OK);
	CHECK_INT(st_writer_set_meta(w, "ctl", "\001\b\t\n\v\f\r\037\177\"\\/"), LQ_OK);
	CHECK_INT(st_writer_set_meta(w, "k\303\251", "v"), LQ_OK);
	CHECK_INT(st_writer_set_meta(w, "z", "replaced"), LQ_OK);
	CHECK_INT(st_writer_open(w, path), LQ_OK);
	CHECK_INT(st_writer_finish(w), LQ_OK);
	st_writer_free(w);
	size_t n = 0;
	unsigned char *b = read_all(path, &n);
	static const char want[] = "{\"__metadata__\":{\"ctl\":\"\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\177\\\"\\\\/\","
				   "\"format\":\"pt\",\"k\303\251\":\"v\",\"z\":\"replaced\"}}";
	if (CHECK(b != NULL) && CHECK(n >= 8 + sizeof want - 1)) {
		CHECK(memcmp(b + 8, want, sizeof want - 1) == 0);
		CHECK_INT((n - 8) % 8, 0);
		for (size_t i = 8 + sizeof want - 1; i < n; i++)
			CHECK_INT(b[i], ' ');
	}
	free(b);
	st_file *f = st_file_create();
	if (CHECK_INT(st_file_open(f, path), LQ_OK)) {
		CHECK_INT(f->ntensors, 0);
		CHECK_INT(f->nmeta, 4);
		CHECK_STR(st_file_meta(f, "ctl"), "\001\b\t\n\v\f\r\037\177\"\\/");
		CHECK_STR(st_file_meta(f, "z"), "replaced");
		CHECK_STR(st_file_meta(f, "k\303\251"), "v");
	}
	st_file_free(f);
	unlink(path);
}

/* The output model's view of the writer: the same file through the table, the sizes and header it checks
 * a finished part against, the name the messages give. */
TEST(out_writer_safetensors_writes_what_st_writer_writes)
{
	const char *rel = "fixtures/models/tiny-llama-sharded/model-00002-of-00005.safetensors";
	const out_writer_ops *ops = &out_writer_safetensors;
	st_file *f = util_open(rel);
	size_t olen = 0;
	unsigned char *orig = read_all(test_path(rel), &olen);
	void *w = ops->create();
	const char *out = tmp_path("ops.safetensors");
	unlink(out);
	if (!f || !CHECK(orig != NULL) || !CHECK(w != NULL))
		goto done;
	CHECK_STR(ops->name, "safetensors");
	for (size_t i = 0; i < f->ntensors; i++) {
		const st_tensor *t = &f->tensors[i];
		CHECK_INT(ops->declare(w, t->name, t->dtype, t->ndim, t->shape), (int32_t)i);
	}
	if (!CHECK_INT(ops->layout(w, false), LQ_OK))
		goto done;
	size_t hlen;
	const unsigned char *hdr = ops->header(w, &hlen);
	CHECK_INT(hlen, 8 + f->header_len);
	CHECK(hdr && olen >= hlen && memcmp(hdr, orig, hlen) == 0);
	CHECK_INT(ops->file_size(w), olen);
	CHECK_INT(ops->data_size(w), f->file_size - f->data_start);
	for (size_t i = 0; i < f->ntensors; i++)
		CHECK_INT(ops->element_size(w, (int32_t)i), st_dtype_bits(f->tensors[i].dtype) / 8);
	CHECK_INT(ops->element_size(w, (int32_t)f->ntensors), 0);
	if (!CHECK_INT(ops->open(w, out, "shown.safetensors"), LQ_OK))
		goto done;
	for (size_t i = 0; i < f->ntensors; i++) {
		size_t n;
		unsigned char *data = util_tensor(f, f->tensors[i].name, &n);
		if (data)
			CHECK_INT(ops->write(w, (int32_t)i, 0, data, n), LQ_OK);
		free(data);
	}
	if (!CHECK_INT(ops->finish(w), LQ_OK))
		test_note("%s", ops->error(w));
	size_t rlen = 0;
	unsigned char *again = read_all(out, &rlen);
	CHECK(again && rlen == olen && memcmp(again, orig, olen) == 0);
	free(again);
	/* messages name the file as it will be called; free removes an unfinished one */
	ops->free(w);
	unlink(out);
	int64_t two[1] = {2};
	w = ops->create();
	if (!CHECK(w) || !CHECK_INT(ops->declare(w, "t", ST_U8, 1, two), 0) || !CHECK_INT(ops->layout(w, true), LQ_OK) ||
	    !CHECK_INT(ops->open(w, out, "shown.safetensors"), LQ_OK))
		goto done;
	CHECK_INT(ops->finish(w), LQ_ERR_ARG);
	CHECK_CONTAINS(ops->error(w), "shown.safetensors: tensor 't': 0 of 2 bytes written");
	ops->free(w);
	w = NULL;
	CHECK(!exists(out));
done:
	ops->free(w);
	ops->free(NULL);
	unlink(out);
	free(orig);
	st_file_free(f);
}
