/*
 * fuzz_safetensors.c: the safetensors header parser under libFuzzer (`make fuzz`), and under
 * tests/fuzz/replay.c in `make check`. The input is a whole file: st_file_parse() gets every byte, with
 * file_size = size. Whatever the bytes, a header it accepts must keep every promise of safetensors.h
 * (offsets inside the file, contiguous, sizes that match the shapes, names unique and free of control
 * characters, the lookups find what is there) and must be writable again by st_writer with the same
 * data size; a rejected one leaves nothing behind and a message that prints safely. A broken promise
 * aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)            \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static bool printable_message(const char *err)
{
	size_t n = strnlen(err, FMT_ERRBUF);
	if (n == 0 || n == FMT_ERRBUF)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f)
			return false;
	return json_utf8_valid(err, n, NULL);
}

static void check_accepted(const st_file *f, const uint8_t *data, size_t size)
{
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | data[i];
	REQUIRE(f->header_len == n && n <= ST_MAX_HEADER);
	REQUIRE(f->data_start == 8 + n && f->data_start <= size && f->file_size == size);
	REQUIRE(f->err[0] == '\0');
	REQUIRE(json_utf8_valid(data + 8, (size_t)n, NULL));

	/* the tensors, in data order: contiguous from 0 to the end of the file */
	uint64_t at = 0;
	for (size_t i = 0; i < f->ntensors; i++) {
		const st_tensor *t = &f->tensors[i];
		REQUIRE(t->name != NULL);
		for (const char *c = t->name; *c; c++)
			REQUIRE((unsigned char)*c >= 0x20 && *c != 0x7f);
		REQUIRE(strcmp(t->name, "__metadata__") != 0);
		REQUIRE((unsigned)t->dtype < ST_DTYPE_COUNT);
		REQUIRE(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS);
		REQUIRE(t->begin == at && t->end >= t->begin);
		uint64_t nelem = 1, bytes = 0;
		for (int d = 0; d < t->ndim; d++) {
			REQUIRE(t->shape[d] >= 0);
			REQUIRE(fmt_mul_u64(nelem, (uint64_t)t->shape[d], &nelem));
		}
		REQUIRE(t->nelem == nelem);
		REQUIRE(st_tensor_bytes(t->dtype, nelem, &bytes) && bytes == t->end - t->begin);
		at = t->end;
	}
	REQUIRE(at == size - f->data_start);

	/* names: unique, sorted for lookup, and each found */
	for (size_t i = 0; i < f->ntensors; i++) {
		REQUIRE(f->by_name[i] >= f->tensors && f->by_name[i] < f->tensors + f->ntensors);
		if (i > 0)
			REQUIRE(strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) < 0);
		REQUIRE(st_file_find(f, f->tensors[i].name) == &f->tensors[i]);
	}
	/* metadata: unique keys, each found */
	for (size_t i = 0; i < f->nmeta; i++) {
		REQUIRE(f->meta_keys[i] != NULL && f->meta_values[i] != NULL);
		for (size_t k = 0; k < i; k++)
			REQUIRE(strcmp(f->meta_keys[k], f->meta_keys[i]) != 0);
		REQUIRE(st_file_meta(f, f->meta_keys[i]) == f->meta_values[i]);
	}
	REQUIRE(st_file_find(f, "__metadata__") == NULL);

	/* what we read, our writer takes back, with the same amount of data */
	st_writer *w = st_writer_create();
	REQUIRE(w != NULL);
	for (size_t i = 0; i < f->ntensors; i++) {
		const st_tensor *t = &f->tensors[i];
		REQUIRE(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape) == (int32_t)i);
		REQUIRE(st_writer_tensor_bytes(w, (int32_t)i) == t->end - t->begin);
	}
	for (size_t i = 0; i < f->nmeta; i++)
		REQUIRE(st_writer_set_meta(w, f->meta_keys[i], f->meta_values[i]) == LQ_OK);
	REQUIRE(st_writer_layout(w) == LQ_OK);
	REQUIRE(st_writer_data_size(w) == at);
	REQUIRE(st_writer_file_size(w) % 8 == at % 8);
	st_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	st_file *f = st_file_create();
	if (!f)
		return 0;
	lq_status st = st_file_parse(f, data, size, size, "fuzz.safetensors");
	if (st == LQ_OK) {
		check_accepted(f, data, size);
		/* the same header against a file one byte longer: trailing bytes */
		st_file *g = st_file_create();
		REQUIRE(g != NULL);
		REQUIRE(st_file_parse(g, data, size, (uint64_t)size + 1, "fuzz.safetensors") == LQ_ERR_CORRUPT);
		REQUIRE(g->ntensors == 0 && g->nmeta == 0);
		/* and given only its first 8 + N bytes, as st_file_open does: the same result */
		REQUIRE(st_file_parse(g, data, (size_t)f->data_start, size, "fuzz.safetensors") == LQ_OK);
		REQUIRE(g->ntensors == f->ntensors && g->nmeta == f->nmeta);
		st_file_free(g);
	} else {
		REQUIRE(st == LQ_ERR_CORRUPT || st == LQ_ERR_UNSUPPORTED || st == LQ_ERR_NOMEM);
		REQUIRE(f->ntensors == 0 && f->nmeta == 0 && f->tensors == NULL && f->by_name == NULL);
		REQUIRE(printable_message(st_file_error(f)));
		REQUIRE(strncmp(st_file_error(f), "fuzz.safetensors: ", 18) == 0);
	}
	st_file_free(f);
	return 0;
}
