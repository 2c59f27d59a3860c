/*
 * fuzz_tensors.c: the logical tensor view (formats/hf_tensors.c) under libFuzzer (`make fuzz
 * FUZZ_TARGET=tensors`) and under tests/fuzz/replay.c in `make check`. The input is a whole safetensors
 * file, written to a scratch file and opened as a checkpoint, as qinspect and loramerge open theirs. A
 * listing that is accepted must keep every promise of hf_tensors.h: each 4-bit group has exactly the parts
 * its state calls for, with the types and sizes the state says, its maps the standard ones bit for bit
 * (little-endian, as the host stores floats here), so that dequantizing it reads nothing
 * beyond its tensors (done here, for groups of up to a million elements); a rejected one leaves a message
 * that prints safely. A broken promise aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hf_tensors.h"
#include "libquant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)            \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static char path[256];
static lq_ctx *ctx;

static bool printable(const char *s)
{
	size_t n = strnlen(s, FMT_ERRBUF);
	if (n == 0 || n == FMT_ERRBUF)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void check_group(const hf_tensor *t)
{
	const bnb_state *s = &t->state;
	REQUIRE(lq_blocksize_valid(s->blocksize));
	for (int k = 0; k < BNB_NPARTS; k++) {
		REQUIRE((t->parts[k].t != NULL) == bnb_has_part(s, (bnb_part)k));
		if (!t->parts[k].t || k == BNB_PART_QUANT_STATE)
			continue;
		st_dtype dt;
		int ndim;
		int64_t shape[2];
		bnb_part_layout(s, (bnb_part)k, (int64_t)t->nelem, &dt, &ndim, shape);
		REQUIRE(t->parts[k].t->dtype == dt);
		REQUIRE(t->parts[k].t->nelem == (uint64_t)shape[0] * (ndim == 2 ? (uint64_t)shape[1] : 1));
	}
	REQUIRE(t->data.t == t->parts[BNB_PART_WEIGHT].t);
	/* the maps stored are the standard ones, bit for bit: what the kernels decode with */
	const float *std[2] = {lq_quant_map(s->qtype), lq_dynamic_map()};
	const bnb_part map_part[2] = {BNB_PART_QUANT_MAP, BNB_PART_NESTED_QUANT_MAP};
	for (int k = 0; k < (s->double_quant ? 2 : 1); k++) {
		void *map;
		size_t mlen;
		char merr[FMT_ERRBUF];
		if (hf_ref_read(&t->parts[map_part[k]], &map, &mlen, merr) == LQ_OK) {
			REQUIRE(mlen == (k ? 256u : 16u) * 4 && memcmp(map, std[k], mlen) == 0);
			free(map);
		}
	}
	if (t->nelem == 0 || t->nelem > (1u << 20))
		return;
	/* dequantize it: every read stays inside the parts (ASan says otherwise) */
	void *codes, *absmax_raw, *nested = NULL;
	size_t len, alen, nlen;
	char err[FMT_ERRBUF];
	if (hf_ref_read(&t->parts[BNB_PART_WEIGHT], &codes, &len, err) != LQ_OK)
		return;
	REQUIRE(len == (t->nelem + 1) / 2);
	if (hf_ref_read(&t->parts[BNB_PART_ABSMAX], &absmax_raw, &alen, err) != LQ_OK) {
		free(codes);
		return;
	}
	const int64_t nb = lq_quant_nblocks((int64_t)t->nelem, s->blocksize);
	float *absmax = malloc((size_t)nb * 4 + 4);
	void *out = malloc((size_t)t->nelem * 4 + 4);
	REQUIRE(absmax && out);
	if (s->double_quant) {
		if (hf_ref_read(&t->parts[BNB_PART_NESTED_ABSMAX], &nested, &nlen, err) == LQ_OK) {
			REQUIRE(nlen == (size_t)lq_quant_nested_blocks(nb) * 4);
			float *nf = malloc(nlen + 4);
			REQUIRE(nf);
			lq_to_f32(nested, LQ_DTYPE_F32, (int64_t)(nlen / 4), nf);
			lq_dequantize_absmax(ctx, absmax_raw, nf, s->nested_offset, nb, absmax);
			free(nf);
		} else {
			memset(absmax, 0, (size_t)nb * 4);
		}
	} else {
		REQUIRE(alen == (size_t)nb * 4);
		lq_to_f32(absmax_raw, LQ_DTYPE_F32, nb, absmax);
	}
	lq_dequantize_blocks(ctx, codes, absmax, (int64_t)t->nelem, s->qtype, s->blocksize, s->dtype, out);
	free(codes);
	free(absmax_raw);
	free(nested);
	free(absmax);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(path, sizeof path, "%s/fuzz_tensors-%d.safetensors", tmp ? tmp : "/tmp", (int)getpid());
		lq_ctx_options o = {.threads = 1};
		ctx = lq_ctx_create(&o);
		REQUIRE(ctx);
	}
	FILE *f = fopen(path, "wb");
	REQUIRE(f);
	REQUIRE(fwrite(data, 1, size, f) == size);
	REQUIRE(fclose(f) == 0);
	hf_model *m = hf_model_create();
	REQUIRE(m);
	if (hf_model_open(m, path) == LQ_OK) {
		hf_tensors ts;
		char err[FMT_ERRBUF] = "";
		if (hf_tensors_list(m, &ts, err) == LQ_OK) {
			for (size_t i = 0; i < ts.n; i++) {
				const hf_tensor *t = &ts.v[i];
				REQUIRE(t->name && t->data.f && t->data.t);
				if (t->quantized)
					check_group(t);
				else
					REQUIRE(t->nelem == t->data.t->nelem && t->bytes == t->data.t->end - t->data.t->begin);
			}
			hf_tensors_free(&ts);
		} else {
			REQUIRE(printable(err));
		}
	} else {
		REQUIRE(printable(m->err));
	}
	hf_model_free(m);
	unlink(path);
	return 0;
}
