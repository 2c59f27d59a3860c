/*
 * skiplist.c: llm_int8_skip_modules entries as each transformers version matches them, and the list a
 * checkpoint carries (skiplist.h).
 */
#include "skiplist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"

/* ---------------------------------------------------------------------------------- entries */

static bool is_meta(char c)
{
	return c != '\0' && strchr("\\^$*+?{}[]()|.", c) != NULL;
}

static bool is_printable(unsigned char c)
{
	return c >= 0x20 && c < 0x7f;
}

static bool is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The literal form of e->text (skiplist.h), when it has one. False only when memory runs out. */
static bool literal_form(hf_skip_entry *e)
{
	char *u = malloc(e->len + 1);
	if (!u)
		return false;
	size_t k = 0;
	bool anchored = false;
	for (size_t i = 0; i < e->len; i++) {
		const unsigned char c = (unsigned char)e->text[i];
		const unsigned char next = (unsigned char)e->text[i + 1];
		if (c == '.') {
			u[k++] = HF_SKIP_ANY;
		} else if (c == '\\' && is_printable(next) && !is_alnum(next) && next != '_') {
			u[k++] = (char)next; /* Python reads an escaped punctuation character as itself */
			i++;
		} else if (c == '$' && i + 1 == e->len) {
			anchored = true;
		} else if (is_printable(c) && !is_meta((char)c)) {
			u[k++] = (char)c;
		} else {
			free(u);
			return true; /* a regex */
		}
	}
	e->units = u;
	e->nunits = k;
	e->anchored = anchored;
	return true;
}

pyre_status hf_skip_entry_init(hf_skip_entry *e, const char *text, uint64_t *size)
{
	memset(e, 0, sizeof *e);
	if (size)
		*size = 0;
	e->len = strlen(text);
	if (!(e->text = malloc(e->len + 1)))
		return PYRE_NOMEM;
	memcpy(e->text, text, e->len + 1);
	if (!literal_form(e))
		return PYRE_NOMEM;
	if (e->units)
		return PYRE_OK;
	pyre_status st = pyre_compile(&e->re, "^(", text, ")$", 0, size);
	e->compiled = st == PYRE_OK;
	if (st == PYRE_OK && (strchr(text, '$') || strstr(text, "\\Z"))) {
		st = pyre_compile(&e->re_prefix, "^(", text, ")$", PYRE_NO_END, NULL);
		e->compiled_prefix = st == PYRE_OK;
	}
	return st;
}

void hf_skip_entry_free(hf_skip_entry *e)
{
	if (e->compiled)
		regfree(&e->re);
	if (e->compiled_prefix)
		regfree(&e->re_prefix);
	free(e->text);
	free(e->units);
	memset(e, 0, sizeof *e);
}

/* S2: plain strings. */
static bool v4_matches(const char *text, size_t tlen, const char *path)
{
	if (strcmp(text, path) == 0)
		return true;
	const char *dot = strrchr(path, '.');
	if (dot && strcmp(text, dot + 1) == 0)
		return true;
	if (tlen == 0)
		return dot != NULL; /* "" + "." is in every dotted path */
	for (const char *p = path; (p = strstr(p, text)) != NULL; p++)
		if (p[tlen] == '.')
			return true;
	return false;
}

/* Whether the literal form matches path[0, nunits), as re.match would (an anchored one: all of path). */
static bool units_match(const hf_skip_entry *e, const char *path, size_t plen)
{
	if (e->nunits > plen || (e->anchored && e->nunits != plen))
		return false;
	for (size_t i = 0; i < e->nunits; i++)
		if (e->units[i] == HF_SKIP_ANY ? path[i] == '\n' : e->units[i] != path[i])
			return false;
	return true;
}

/* Whether path[0, n), of a path plen long, matches e's regex as a whole (a `$` of the entry only at plen). */
static bool regex_whole(const hf_skip_entry *e, const char *path, size_t n, size_t plen)
{
	char small[512];
	char *buf = n < sizeof small ? small : malloc(n + 1);
	if (!buf)
		return false;
	memcpy(buf, path, n);
	buf[n] = '\0';
	const bool m = regexec(n < plen && e->compiled_prefix ? &e->re_prefix : &e->re, buf, 0, NULL, 0) == 0;
	if (buf != small)
		free(buf);
	return m;
}

bool hf_skip_entry_matches(const hf_skip_entry *e, const char *path, hf_skip_rule rule)
{
	if (rule == HF_SKIP_V4)
		return v4_matches(e->text, e->len, path);
	const size_t plen = strlen(path);
	if (plen >= e->len && memcmp(path + plen - e->len, e->text, e->len) == 0)
		return true; /* path.endswith(e): the text itself, not the regex */
	if (e->units) {
		const size_t n = e->nunits;
		return units_match(e, path, plen) &&
		       (rule == HF_SKIP_V5_PREFIX || n == plen || path[n] == '.' || (n > 0 && path[n - 1] == '.'));
	}
	if (!e->compiled)
		return false;
	if (rule == HF_SKIP_V5_PREFIX) {
		for (size_t n = 0; n <= plen; n++)
			if (regex_whole(e, path, n, plen))
				return true;
		return false;
	}
	/* the match ends at the end, before a '.' or just after one */
	if (regex_whole(e, path, plen, plen))
		return true;
	for (size_t i = 0; i < plen; i++)
		if (path[i] == '.' && (regex_whole(e, path, i, plen) || regex_whole(e, path, i + 1, plen)))
			return true;
	return false;
}

/* --------------------------------------------------------------------------- the list to write */

/* What one candidate entry does for the module being placed: the bits of hf_skip_rule it catches the
 * module under, and those under which it catches a quantized module. */
typedef struct cand {
	char *text;
	hf_skip_entry e;
	unsigned catches, unsafe;
} cand;

#define BIT(r) (1u << (r))
#define ALL_RULES (BIT(HF_SKIP_V4) | BIT(HF_SKIP_V5_PREFIX) | BIT(HF_SKIP_V5))

typedef struct maker {
	const hf_skip_module *mods;
	size_t n;
	hf_skip_list *l;
	hf_skip_entry *chosen; /* l->entries, compiled */
	size_t cap;
} maker;

/* The rules under which module f needs an entry: those whose version would convert it. */
static unsigned needs(const hf_skip_module *f)
{
	return (f->linear4 ? BIT(HF_SKIP_V4) : 0) | (f->linear5 ? BIT(HF_SKIP_V5_PREFIX) | BIT(HF_SKIP_V5) : 0);
}

static unsigned catches(const hf_skip_entry *e, const char *path, unsigned rules)
{
	unsigned got = 0;
	for (int r = HF_SKIP_V4; r <= HF_SKIP_V5; r++)
		if ((rules & BIT(r)) && hf_skip_entry_matches(e, path, (hf_skip_rule)r))
			got |= BIT(r);
	return got;
}

/* The rules under which e catches some quantized module. (A 5.25 match is a 5.17 match too.) */
static unsigned unsafe_rules(const maker *mk, const hf_skip_entry *e)
{
	unsigned bad = 0;
	for (size_t i = 0; i < mk->n && bad != ALL_RULES; i++)
		if (mk->mods[i].quantized)
			bad |= catches(e, mk->mods[i].path, ALL_RULES & ~bad);
	return bad;
}

/* How bad a choice is: the rules under which the module stays uncaught or a quantized module is caught,
 * weighted so that 5.25 counts most, then 4.x, then the older 5.x. 0 is right everywhere. */
static unsigned badness(unsigned need, unsigned caught, unsigned unsafe)
{
	const unsigned broken = (need & ~caught) | unsafe;
	return (broken & BIT(HF_SKIP_V5) ? 4u : 0) + (broken & BIT(HF_SKIP_V4) ? 2u : 0) +
	       (broken & BIT(HF_SKIP_V5_PREFIX) ? 1u : 0);
}

static bool plain(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_printable((unsigned char)s[i]) || (is_meta(s[i]) && s[i] != '.'))
			return false;
	return n > 0;
}

/* path escaped and anchored: exactly that path under S3, nothing under S2. NULL when path is not
 * printable ASCII, or out of memory. */
static char *exact_spelling(const char *path)
{
	fmt_buf b = {0};
	for (const char *c = path; *c; c++) {
		if (!is_printable((unsigned char)*c)) {
			free(b.p);
			return NULL;
		}
		if (is_meta(*c))
			fmt_buf_put(&b, "\\", 1);
		fmt_buf_put(&b, c, 1);
	}
	fmt_buf_puts(&b, "$");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* Adds candidate text (malloc'd, taken) to c unless it is there or c is full. False when memory runs out. */
static bool add_cand(cand *c, size_t *nc, size_t max, char *text)
{
	if (!text)
		return false;
	for (size_t i = 0; i < *nc; i++)
		if (strcmp(c[i].text, text) == 0) {
			free(text);
			return true;
		}
	if (*nc == max || !plain(text, strlen(text))) {
		free(text);
		return true;
	}
	cand *k = &c[*nc];
	memset(k, 0, sizeof *k);
	k->text = text;
	if (hf_skip_entry_init(&k->e, text, NULL) != PYRE_OK) {
		hf_skip_entry_free(&k->e);
		free(text);
		return false; /* a plain text has a literal form: only memory can fail */
	}
	(*nc)++;
	return true;
}

/* Appends text to the list (once). */
static bool choose(maker *mk, const char *text)
{
	for (size_t i = 0; i < mk->l->n; i++)
		if (strcmp(mk->l->entries[i], text) == 0)
			return true;
	if (mk->l->n == mk->cap) {
		const size_t cap = mk->cap ? 2 * mk->cap : 16;
		char **en = realloc(mk->l->entries, cap * sizeof *en);
		if (en)
			mk->l->entries = en;
		hf_skip_entry *ch = realloc(mk->chosen, cap * sizeof *ch);
		if (ch)
			mk->chosen = ch;
		if (!en || !ch)
			return false;
		mk->cap = cap;
	}
	char *t = fmt_dup_n(text, strlen(text));
	if (!t)
		return false;
	if (hf_skip_entry_init(&mk->chosen[mk->l->n], t, NULL) != PYRE_OK) {
		hf_skip_entry_free(&mk->chosen[mk->l->n]);
		free(t);
		return false;
	}
	mk->l->entries[mk->l->n++] = t;
	return true;
}

static bool warn(maker *mk, const char *path, unsigned broken)
{
	char versions[96] = "";
	if (broken & BIT(HF_SKIP_V4))
		strcat(versions, "4.x");
	if (broken & BIT(HF_SKIP_V5_PREFIX))
		strcat(versions, versions[0] ? ", 5.0 to 5.17" : "5.0 to 5.17");
	if (broken & BIT(HF_SKIP_V5))
		strcat(versions, versions[0] ? ", 5.25" : "5.25");
	fmt_buf b = {0};
	fmt_buf_printf(&b, "'%s': no llm_int8_skip_modules entry keeps this module in float under the rules of "
		       "transformers %s without catching a quantized module: %s will not load the output as it is",
		       path, versions, strchr(versions, ',') ? "those versions" : "that version");
	char **w = b.oom ? NULL : realloc(mk->l->warnings, (mk->l->nwarnings + 1) * sizeof *w);
	if (!w) {
		free(b.p);
		return false;
	}
	mk->l->warnings = w;
	w[mk->l->nwarnings++] = b.p;
	return true;
}

#define MAX_CANDS 96
#define MAX_SEGS 64

/* Candidates made of whole segments of p: segments j .. j+k-1 of the parent path, k = 1, 2, ... and
 * right to left, except those ending with a number (one layer, one expert: a group names them all);
 * from_start: ancestors (j = 0) too. */
static bool add_infixes(cand *c, size_t *nc, const char *p, const size_t *seg, size_t nseg, bool from_start)
{
	for (size_t k = 1; k < nseg; k++)
		for (size_t j = nseg - k; j-- > (from_start ? 0 : 1);) {
			const size_t from = seg[j], to = seg[j + k] - 1;
			bool digits = true;
			for (size_t i = seg[j + k - 1]; i < to && digits; i++)
				digits = p[i] >= '0' && p[i] <= '9';
			if (!digits && !add_cand(c, nc, MAX_CANDS, fmt_dup_n(p + from, to - from)))
				return false;
		}
	return true;
}

static void evaluate(const maker *mk, cand *k, const char *path, unsigned need)
{
	k->catches = catches(&k->e, path, need);
	k->unsafe = unsafe_rules(mk, &k->e);
}

/* The entries for module f: the best of the candidates, alone or paired with the exact spelling. */
static bool place(maker *mk, const hf_skip_module *f)
{
	unsigned need = needs(f), caught = 0;
	for (size_t i = 0; i < mk->l->n && (need & ~caught); i++)
		caught |= catches(&mk->chosen[i], f->path, need & ~caught);
	need &= ~caught;
	if (!need)
		return true;

	const char *p = f->path;
	const size_t plen = strlen(p);
	size_t seg[MAX_SEGS + 1], nseg = 0; /* where each segment starts; seg[nseg] = plen + 1 */
	seg[nseg++] = 0;
	for (size_t i = 0; i < plen && nseg < MAX_SEGS; i++)
		if (p[i] == '.')
			seg[nseg++] = i + 1;
	seg[nseg] = plen + 1;
	cand c[MAX_CANDS], exact = {0};
	size_t nc = 0;
	/* Modules only 4.x converts come in crowds (every expert of every MoE layer): an ancestor's name
	 * with its neighbours, shortest first, keeps them all out at once under S2. Otherwise the module's
	 * own path, its name, its ancestors; then the infixes, which catch it under S2 only (to pair with
	 * the exact spelling, which catches it under S3 only). */
	bool ok = (need & BIT(HF_SKIP_V5)) || add_infixes(c, &nc, p, seg, nseg, true);
	ok = ok && add_cand(c, &nc, MAX_CANDS, fmt_dup_n(p, plen));
	ok = ok && (nseg == 1 || add_cand(c, &nc, MAX_CANDS, fmt_dup_n(p + seg[nseg - 1], plen - seg[nseg - 1])));
	for (size_t j = nseg - 1; j > 0 && ok; j--)
		ok = add_cand(c, &nc, MAX_CANDS, fmt_dup_n(p, seg[j] - 1));
	ok = ok && add_infixes(c, &nc, p, seg, nseg, false);
	char *x = ok ? exact_spelling(p) : NULL;
	if (x) {
		exact.text = x;
		ok = hf_skip_entry_init(&exact.e, x, NULL) == PYRE_OK;
	}

	/* the best choice: a single candidate, one with the exact spelling, or nothing */
	unsigned best = badness(need, 0, 0);
	const cand *best_a = NULL, *best_b = NULL;
	if (ok && x) {
		evaluate(mk, &exact, p, need);
		const unsigned b = badness(need, exact.catches, exact.unsafe);
		if (b < best) {
			best = b;
			best_a = &exact;
		}
	}
	for (size_t i = 0; ok && i < nc && best; i++) {
		evaluate(mk, &c[i], p, need);
		unsigned b = badness(need, c[i].catches, c[i].unsafe);
		if (b < best || (b == best && best_a == &exact && !best_b)) {
			best = b;
			best_a = &c[i];
			best_b = NULL;
		}
		if (x && best) {
			b = badness(need, c[i].catches | exact.catches, c[i].unsafe | exact.unsafe);
			if (b < best) {
				best = b;
				best_a = &c[i];
				best_b = &exact;
			}
		}
	}
	if (ok && best_a && (best == 0 || !f->absent))
		ok = choose(mk, best_a->text) && (!best_b || choose(mk, best_b->text));
	if (ok && best && !f->absent) {
		const unsigned got = (best_a ? best_a->catches : 0) | (best_b ? best_b->catches : 0);
		const unsigned bad = (best_a ? best_a->unsafe : 0) | (best_b ? best_b->unsafe : 0);
		ok = warn(mk, p, (need & ~got) | bad);
	}
	for (size_t i = 0; i < nc; i++) {
		hf_skip_entry_free(&c[i].e);
		free(c[i].text);
	}
	hf_skip_entry_free(&exact.e);
	free(x);
	return ok;
}

lq_status hf_skip_list_make(const hf_skip_module *mods, size_t n, hf_skip_list *l)
{
	memset(l, 0, sizeof *l);
	maker mk = {.mods = mods, .n = n, .l = l};
	bool ok = true;
	/* absent modules (a tied head) first, then the checkpoint's in order */
	for (int pass = 0; pass < 2 && ok; pass++)
		for (size_t i = 0; i < n && ok; i++)
			if (!mods[i].quantized && mods[i].absent == (pass == 0) && (mods[i].linear4 || mods[i].linear5))
				ok = place(&mk, &mods[i]);
	for (size_t i = 0; i < l->n; i++)
		hf_skip_entry_free(&mk.chosen[i]);
	free(mk.chosen);
	if (!l->entries && ok)
		ok = (l->entries = malloc(sizeof *l->entries)) != NULL; /* an empty list, not null */
	return ok ? LQ_OK : LQ_ERR_NOMEM;
}

void hf_skip_list_free(hf_skip_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->entries[i]);
	free(l->entries);
	for (size_t i = 0; i < l->nwarnings; i++)
		free(l->warnings[i]);
	free(l->warnings);
	memset(l, 0, sizeof *l);
}
