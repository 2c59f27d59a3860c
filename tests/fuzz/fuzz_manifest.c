/*
 * fuzz_manifest.c: manifest_verify under libFuzzer (`make fuzz FUZZ_TARGET=manifest`), and under
 * tests/fuzz/replay.c in `make check`. The input is a MANIFEST's text, checked against a fixed output held
 * in memory: a config.json, an empty file and a small safetensors file (tensors of data, a scalar and one
 * of no bytes). Whatever the bytes, manifest_verify must keep the promises of manifest.h: a text it
 * refuses is LQ_ERR_CORRUPT with a message that prints safely and begins "MANIFEST: ", nothing reported,
 * nothing read, nothing returned; a text it takes gives a count equal to the reports, each a printable
 * line naming a file, tool and version returned, and every file read once, in order, from byte 0 (or not
 * at all). The manifest that manifest_build writes for these files verifies with no mismatch. A broken
 * promise aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)            \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

/* A file held in memory whose reader enforces the order of reads. */
typedef struct mem_file {
	const unsigned char *data;
	size_t len;
	uint64_t next;
} mem_file;

static lq_status mem_read(void *arg, uint64_t offset, void *dst, size_t len, char *err)
{
	mem_file *m = arg;
	REQUIRE(offset == m->next);              /* consecutive, from 0 */
	REQUIRE(len > 0 && offset <= m->len && len <= m->len - offset); /* inside the size given */
	m->next = offset + len;
	memcpy(dst, m->data + offset, len);
	(void)err;
	return LQ_OK;
}

/* model.safetensors: w U8 [2, 2], s BF16 [], e F32 [0, 3], padded as the official writer pads */
static const char header[] = "{\"w\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[0,4]},"
			     "\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[4,6]},"
			     "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[6,6]}}";
static unsigned char model[8 + sizeof header + 8 + 6];
static size_t model_len;
static const char config[] = "{\"model_type\": \"llama\"}\n";

#define NFILES 3
static const char *const paths[NFILES] = {"config.json", "empty.bin", "model.safetensors"};
static mem_file mem[NFILES];
static manifest_file files[NFILES];

static void reset(void)
{
	for (int i = 0; i < NFILES; i++) {
		mem[i].next = 0;
		files[i] = (manifest_file){.path = paths[i], .size = mem[i].len, .read = mem_read, .arg = &mem[i]};
	}
}

static bool printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	if (n == 0 || n == max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

typedef struct seen {
	size_t count;
} seen;

static void report(void *arg, const char *message)
{
	seen *s = arg;
	s->count++;
	REQUIRE(printable(message, 4096) && json_utf8_valid(message, strlen(message), NULL));
	/* every message begins with the name of a file (shown safely), then ": " */
	REQUIRE(strstr(message, ": ") != NULL);
}

static void setup(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	size_t n = strlen(header), padded = (n + 7) / 8 * 8;
	for (int i = 0; i < 8; i++)
		model[i] = (unsigned char)(padded >> (8 * i));
	memcpy(model + 8, header, n);
	memset(model + 8 + n, ' ', padded - n);
	memcpy(model + 8 + padded, "\x01\x02\x03\x04\x80\x3f", 6);
	model_len = 8 + padded + 6;
	mem[0] = (mem_file){.data = (const unsigned char *)config, .len = strlen(config)};
	mem[1] = (mem_file){.data = (const unsigned char *)"", .len = 0};
	mem[2] = (mem_file){.data = model, .len = model_len};

	/* the manifest of these files verifies clean */
	static const char *const keys[] = {"quant_type"}, *const values[] = {"nf4"};
	manifest_origin o = {.tool = "nf4quant", .version = "0.5.0", .keys = keys, .values = values, .noptions = 1};
	char *text = NULL, err[FMT_ERRBUF];
	size_t len = 0, mismatches = 1;
	reset();
	REQUIRE(manifest_build(&o, files, NFILES, &text, &len, err) == LQ_OK);
	for (int i = 0; i < NFILES; i++)
		REQUIRE(mem[i].next == mem[i].len);
	reset();
	seen s = {0};
	REQUIRE(manifest_verify(text, len, files, NFILES, report, &s, &mismatches, NULL, NULL, err) == LQ_OK);
	REQUIRE(mismatches == 0 && s.count == 0);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	reset();
	char err[FMT_ERRBUF];
	memset(err, 0, sizeof err);
	char *tool = (char *)&tool, *version = (char *)&version; /* must be overwritten */
	size_t mismatches = 12345;
	seen s = {0};
	lq_status st = manifest_verify((const char *)data, size, files, NFILES, report, &s, &mismatches, &tool, &version,
				       err);
	if (st == LQ_OK) {
		REQUIRE(mismatches == s.count);
		REQUIRE(tool != NULL && version != NULL);
		REQUIRE(json_utf8_valid(tool, strlen(tool), NULL) && json_utf8_valid(version, strlen(version), NULL));
		/* a file is read whole or not at all */
		for (int i = 0; i < NFILES; i++)
			REQUIRE(mem[i].next == 0 || mem[i].next == mem[i].len);
		/* with a report callback or without, the same count */
		size_t again = 0;
		reset();
		REQUIRE(manifest_verify((const char *)data, size, files, NFILES, NULL, NULL, &again, NULL, NULL, err) ==
			LQ_OK);
		REQUIRE(again == mismatches);
		free(tool);
		free(version);
	} else {
		REQUIRE(st == LQ_ERR_CORRUPT || st == LQ_ERR_NOMEM);
		REQUIRE(tool == NULL && version == NULL);
		REQUIRE(mismatches == 0 && s.count == 0);
		REQUIRE(printable(err, FMT_ERRBUF) && json_utf8_valid(err, strlen(err), NULL));
		if (st == LQ_ERR_CORRUPT)
			REQUIRE(strncmp(err, "MANIFEST: ", 10) == 0);
		for (int i = 0; i < NFILES; i++)
			REQUIRE(mem[i].next == 0);
	}
	return 0;
}
