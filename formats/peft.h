/*
 * peft.h: PEFT LoRA adapters (shared/specs/lora-merge.md): adapter_config.json with every field that
 * changes the merge, rank_pattern and alpha_pattern resolved as PEFT resolves them, and
 * adapter_model.safetensors, its keys mapped to the base model's tensor names.
 *
 * Pickled adapters (adapter_model.bin) are refused, never read. So are adapter types whose merge is not
 * W + s * B @ A shaped (aLoRA, QALoRA, KaSA, BD-LoRA, Arrow, LoRA on bare parameters, layer replication,
 * PiSSA/OLoRA/CorDA/LoRA-GA/LoftQ initializations saved without conversion), with a message that says why.
 * VeLoRA and MonteCLoRA change only training; PEFT merges them as plain LoRA, and so are they here (with a
 * warning; their own tensors are not used).
 */
#ifndef FORMATS_PEFT_H
#define FORMATS_PEFT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fmt.h"
#include "safetensors.h"

typedef enum peft_kind {
	PEFT_LINEAR,    /* lora_A [r, in], lora_B [out, r]: W [out, in] += s * B @ A */
	PEFT_EMBEDDING, /* lora_embedding_A [r, num], lora_embedding_B [dim, r]: W [num, dim] += (s * B @ A)^T */
} peft_kind;

/* One LoRA'd module of the adapter. */
typedef struct peft_module {
	char *module;          /* module path in the base's naming: "model.layers.0.self_attn.q_proj" */
	char *weight;          /* the base tensor it merges into: module + ".weight" */
	peft_kind kind;
	const st_tensor *a;    /* lora_A (or lora_embedding_A) */
	const st_tensor *b;    /* lora_B (or lora_embedding_B) */
	const st_tensor *magnitude; /* DoRA's lora_magnitude_vector [b->shape[0]], or NULL: per row of a
				     * Linear's W [out, in]; per column of an embedding's W [num, dim] (PEFT's
				     * DoraEmbeddingVariant norms W^T + D^T by row) */
	const st_tensor *bias;      /* lora_B.bias [out] (lora_bias), or NULL */
	int rank;              /* the actual rank: lora_A's first dimension */
	int config_rank;       /* r after rank_pattern (may differ from rank: a warning) */
	double alpha;          /* lora_alpha after alpha_pattern */
	float scaling;         /* alpha / r or alpha / sqrt(r) (rsLoRA), with r = rank, computed in double */
	bool dora;
} peft_module;

/* Why the adapter holds a whole tensor of the model (PEFT loads each of them in the base's place). */
typedef enum peft_source {
	PEFT_FROM_MODULES_TO_SAVE,   /* `<m>.<p>` of a module under modules_to_save: trained, replaces the base's */
	PEFT_FROM_TRAINABLE_TOKENS,  /* `<emb>.token_adapter.trainable_tokens_delta`: replaces rows */
	PEFT_FROM_BASE_LAYER,        /* `<m>.base_layer.<p>`: the LoRA'd layer's own parameter. A trained bias
				      * (bias="all"/"lora_only"), or an embedding saved by save_embedding_layers, which
				      * equals the base's unless the vocabulary was resized; replaced before the delta
				      * is added */
	PEFT_FROM_BIAS,              /* `<m>.bias` trained with bias="all" */
	PEFT_FROM_EMBEDDING_LAYER,   /* `<emb>.weight` of an embedding saved by save_embedding_layers (resized
				      * vocabulary): equals the base's unless resized */
} peft_source;

/* A tensor the adapter replaces whole (modules_to_save), or rows it replaces (trainable tokens). */
typedef struct peft_replacement {
	char *target;          /* base tensor name, e.g. "lm_head.weight" */
	const st_tensor *t;    /* the full tensor, or the rows (trainable tokens) */
	int64_t *rows;         /* trainable token indices, NULL for a whole tensor */
	size_t nrows;
	peft_source source;
} peft_replacement;

struct bundle;
struct bundle_entry_ref;

typedef struct peft_adapter {
	char *dir;             /* the adapter's directory, or its bundle */
	struct bundle *bundle; /* ADAPTER is a .tar.zst or .tar bundle: its files are entries, read in place */
	struct bundle_entry_ref *ref; /* the weights' entry, which a->st reads through */
	cJSON *config;         /* adapter_config.json */
	st_file *st;           /* adapter_model.safetensors */
	int r;
	double lora_alpha;
	bool use_rslora, use_dora, lora_bias;
	bool fan_in_fan_out;   /* as the config says; PEFT transposes by the layer's type (Conv1D), not by this */
	peft_module *modules;
	size_t nmodules;
	peft_replacement *replacements;
	size_t nreplacements;
	char **warnings;       /* e.g. "rank in the config (8) differs from the tensor's (4): the tensor's is used" */
	size_t nwarnings;
	char err[FMT_ERRBUF];
} peft_adapter;

/* A rewrite of adapter keys before they are matched to the base: POSIX extended regex and replacement
 * with \1..\9 (from --key-map REGEX=REPLACEMENT), applied in order to the module path. Every
 * non-overlapping match is replaced, as Python's re.sub does; "\\" in the replacement is a backslash. */
typedef struct peft_key_map {
	const char *regex;
	const char *replacement;
} peft_key_map;

peft_adapter *peft_adapter_create(void);
void peft_adapter_free(peft_adapter *a); /* NULL is a no-op */

/* Opens an adapter directory (or its adapter_config.json, or a .tar.zst or .tar bundle of the directory,
 * read in place with the checks of bundle.h; messages then name "ARCHIVE:adapter_config.json"): parses and checks the config, refuses what
 * cannot be merged (status LQ_ERR_UNSUPPORTED with the reason), reads the safetensors header and maps every
 * key: "base_model.model." stripped when present, then the key maps applied. rank_pattern and alpha_pattern
 * are matched against the module names before the key maps (the names PEFT saw). Tensor data is not read.
 * LQ_ERR_IO (missing or unreadable file), LQ_ERR_CORRUPT (a config or tensor that breaks PEFT's rules),
 * LQ_ERR_UNSUPPORTED (pickles, variants, unknown keys, convolutions, non-float LoRA tensors),
 * LQ_ERR_ARG (a key map that does not compile or names a group it lacks, a path that is no adapter, a
 * handle already opened), LQ_ERR_NOMEM; the message names the file and key. Warnings (rank mismatches,
 * VeLoRA/MonteCLoRA, modules_to_save entries that saved nothing) go to a->warnings. */
lq_status peft_adapter_open(peft_adapter *a, const char *path, const peft_key_map *maps, size_t nmaps);

/* PEFT's resolution of a pattern dict (rank_pattern or alpha_pattern): the value of the first key k, in
 * the JSON's order, for which the Python regex (.*\.)?(k)$ matches the whole module name (else a key equal
 * to the name); false when none does. Duplicate keys read as json.loads reads them (the place of the first,
 * the value of the last). A key ERE cannot express (lookaround, backreferences) is skipped here;
 * peft_adapter_open refuses a config that has one. */
bool peft_pattern_lookup(const cJSON *patterns, const char *module, double *value);

/* The entry of an opened adapter's modules_to_save under which the base's tensor `tensor` lies (PEFT's rule:
 * a module whose name ends with the entry wraps every tensor below it), or NULL. PEFT loads each such
 * tensor from the adapter, and cannot load an adapter that lacks one (a KeyError). */
const char *peft_saved_module(const peft_adapter *a, const char *tensor);

const char *peft_adapter_error(const peft_adapter *a);

#endif /* FORMATS_PEFT_H */
