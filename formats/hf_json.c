/* hf_json.c: see hf_json.h. */
#include "hf_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"

/* ----------------------------------------------------------------------------- Python-style JSON */

/* json.dumps of a str with ensure_ascii=True: non-ASCII as \uXXXX (UTF-16 surrogates above U+FFFF). */
static void put_py_string(fmt_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[16];
	fmt_buf_puts(b, "\"");
	while (*p) {
		unsigned c = *p;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			fmt_buf_put(b, esc, 2);
			p++;
		} else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
			fmt_buf_put(b, esc, 2);
			p++;
		} else if (c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			fmt_buf_puts(b, esc);
			p++;
		} else if (c < 0x80) {
			fmt_buf_put(b, (const char *)p, 1);
			p++;
		} else {
			/* decode one UTF-8 sequence (the input was validated where it came from a file) */
			unsigned cp;
			int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
			cp = c & (0x3f >> extra);
			p++;
			for (int k = 0; k < extra && (*p & 0xc0) == 0x80; k++, p++)
				cp = cp << 6 | (*p & 0x3f);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
			} else {
				snprintf(esc, sizeof esc, "\\u%04x", cp);
			}
			fmt_buf_puts(b, esc);
		}
	}
	fmt_buf_puts(b, "\"");
}

char *hf_py_json_string(const char *s)
{
	fmt_buf b = {0};
	put_py_string(&b, s);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

char *hf_quantization_config(lq_qtype qtype, bool double_quant, lq_dtype compute, char *const *skip, size_t nskip)
{
	fmt_buf b = {0};
	fmt_buf_printf(&b,
		       "\"quantization_config\": {\n"
		       "  \"_load_in_4bit\": true,\n"
		       "  \"_load_in_8bit\": false,\n"
		       "  \"bnb_4bit_compute_dtype\": \"%s\",\n"
		       "  \"bnb_4bit_quant_storage\": \"uint8\",\n"
		       "  \"bnb_4bit_quant_type\": \"%s\",\n"
		       "  \"bnb_4bit_use_double_quant\": %s,\n"
		       "  \"llm_int8_enable_fp32_cpu_offload\": false,\n"
		       "  \"llm_int8_has_fp16_weight\": false,\n"
		       "  \"llm_int8_skip_modules\": ",
		       lq_dtype_torch_name(compute), lq_qtype_name(qtype), double_quant ? "true" : "false");
	/* null, or the list one string per line as json.dumps(indent=2) puts it */
	if (!skip) {
		fmt_buf_puts(&b, "null");
	} else if (nskip == 0) {
		fmt_buf_puts(&b, "[]");
	} else {
		fmt_buf_puts(&b, "[");
		for (size_t i = 0; i < nskip; i++) {
			fmt_buf_puts(&b, i ? ",\n    " : "\n    ");
			put_py_string(&b, skip[i]);
		}
		fmt_buf_puts(&b, "\n  ]");
	}
	fmt_buf_puts(&b, ",\n"
			 "  \"llm_int8_threshold\": 6.0,\n"
			 "  \"load_in_4bit\": true,\n"
			 "  \"load_in_8bit\": false,\n"
			 "  \"quant_method\": \"bitsandbytes\"\n"
			 "}");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

typedef struct entry {
	const char *name;
	const char *file;
} entry;

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

char *hf_index_json(uint64_t total_parameters, uint64_t total_size, char *const *names, const size_t *shard_of,
		    size_t n, char *const *shard_files)
{
	entry *e = malloc((n ? n : 1) * sizeof *e);
	if (!e)
		return NULL;
	for (size_t i = 0; i < n; i++)
		e[i] = (entry){names[i], shard_files[shard_of[i]]};
	/* sort_keys=True sorts by code point; for UTF-8 that is the byte order strcmp gives */
	qsort(e, n, sizeof *e, entry_cmp);
	fmt_buf b = {0};
	char num[256];
	snprintf(num, sizeof num, "{\n  \"metadata\": {\n    \"total_parameters\": %" PRIu64 ",\n    \"total_size\": %" PRIu64
		 "\n  },\n  \"weight_map\": {", total_parameters, total_size);
	fmt_buf_puts(&b, num);
	for (size_t i = 0; i < n; i++) {
		fmt_buf_puts(&b, i ? ",\n    " : "\n    ");
		put_py_string(&b, e[i].name);
		fmt_buf_puts(&b, ": ");
		put_py_string(&b, e[i].file);
	}
	fmt_buf_puts(&b, n ? "\n  }\n}\n" : "}\n}\n");
	free(e);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ------------------------------------------------------------------------------ config.json edit */

typedef struct member {
	size_t start, end; /* from the key's opening quote to the end of the value */
	char *key;
} member;

char *hf_config_edit(const char *text, size_t len, const char *key, const char *new_member, size_t *out_len,
		     char *err)
{
	json_scan js;
	json_scan_init(&js, text, len);
	member *mem = NULL;
	size_t n = 0;
	char *result = NULL;
	size_t open_at;
	if (json_peek(&js) != '{') {
		fmt_fail(err, LQ_ERR_CORRUPT, "config.json: not a JSON object");
		return NULL;
	}
	open_at = json_pos(&js);
	js.p++;
	bool ok = true;
	if (!json_accept(&js, '}')) {
		do {
			member *m = realloc(mem, (n + 1) * sizeof *m);
			if (!m) {
				ok = false;
				break;
			}
			mem = m;
			json_peek(&js);
			mem[n].start = json_pos(&js);
			mem[n].key = NULL;
			if (!json_string(&js, &mem[n].key, NULL) || !json_expect(&js, ':') || !json_skip_value(&js)) {
				free(mem[n].key);
				ok = false;
				break;
			}
			mem[n].end = json_pos(&js);
			n++;
		} while (json_accept(&js, ','));
		ok = ok && json_expect(&js, '}');
	}
	size_t close_at = json_pos(&js) - 1;
	if (!ok || !json_end(&js)) {
		fmt_fail(err, LQ_ERR_CORRUPT, "config.json: byte %zu: %s", js.err_pos, js.err[0] ? js.err : "bad JSON");
		goto out;
	}
	/* the indent of the members, from the first one (transformers: two spaces) */
	char indent[64] = "  ";
	bool multiline = false;
	if (n > 0) {
		size_t s = mem[0].start, k = s;
		while (k > open_at + 1 && (text[k - 1] == ' ' || text[k - 1] == '\t'))
			k--;
		multiline = text[k - 1] == '\n';
		if (multiline && s - k < sizeof indent) {
			memcpy(indent, text + k, s - k);
			indent[s - k] = '\0';
		}
	} else {
		multiline = true;
	}
	bool sorted = true;
	for (size_t i = 1; i < n; i++)
		sorted &= strcmp(mem[i - 1].key, mem[i].key) < 0;

	fmt_buf b = {0};
	/* re-indent the new member's continuation lines to the file's indent */
	fmt_buf nm = {0};
	if (new_member) {
		for (const char *p = new_member; *p; p++) {
			fmt_buf_put(&nm, p, 1);
			if (*p == '\n')
				fmt_buf_puts(&nm, indent);
		}
	}
	size_t existing = n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(mem[i].key, key) == 0)
			existing = i;
	if (existing < n) {
		/* replace (or remove) in place */
		size_t s = mem[existing].start, e = mem[existing].end;
		if (!new_member) {
			/* remove the member and one separator next to it */
			if (existing + 1 < n)
				e = mem[existing + 1].start;
			else if (existing > 0)
				s = mem[existing - 1].end;
		}
		fmt_buf_put(&b, text, s);
		if (new_member)
			fmt_buf_put(&b, nm.p, nm.len);
		fmt_buf_put(&b, text + e, len - e);
	} else if (!new_member) {
		fmt_buf_put(&b, text, len);
	} else {
		size_t before = n; /* insert before member `before` (n: at the end) */
		if (sorted)
			for (size_t i = 0; i < n && before == n; i++)
				if (strcmp(key, mem[i].key) < 0)
					before = i;
		const char *sep = multiline ? ",\n" : ", ";
		if (before < n) {
			fmt_buf_put(&b, text, mem[before].start);
			fmt_buf_put(&b, nm.p, nm.len);
			fmt_buf_puts(&b, sep);
			if (multiline)
				fmt_buf_puts(&b, indent);
			fmt_buf_put(&b, text + mem[before].start, len - mem[before].start);
		} else if (n > 0) {
			fmt_buf_put(&b, text, mem[n - 1].end);
			fmt_buf_puts(&b, sep);
			if (multiline)
				fmt_buf_puts(&b, indent);
			fmt_buf_put(&b, nm.p, nm.len);
			fmt_buf_put(&b, text + mem[n - 1].end, len - mem[n - 1].end);
		} else {
			fmt_buf_put(&b, text, close_at);
			fmt_buf_puts(&b, "\n");
			fmt_buf_puts(&b, indent);
			fmt_buf_put(&b, nm.p, nm.len);
			fmt_buf_puts(&b, "\n");
			fmt_buf_put(&b, text + close_at, len - close_at);
		}
	}
	free(nm.p);
	if (b.oom) {
		free(b.p);
		fmt_fail(err, LQ_ERR_NOMEM, "out of memory");
		goto out;
	}
	result = b.p;
	*out_len = b.len;
out:
	for (size_t i = 0; i < n; i++)
		free(mem[i].key);
	free(mem);
	return result;
}
