/*
 * adapter_out.h: what loramerge --combine and loraextract write alike, a PEFT adapter directory as
 * save_pretrained lays it out (adapter_config.json, adapter_model.safetensors with the keys under
 * `base_model.model.`) and its MANIFEST, inside an hf_out transaction the tool began.
 */
#ifndef TOOLS_ADAPTER_OUT_H
#define TOOLS_ADAPTER_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include "hf_out.h"

#define ADAPTER_WEIGHTS_NAME "adapter_model.safetensors"
#define ADAPTER_CONFIG_NAME "adapter_config.json"
#define ADAPTER_KEY_PREFIX "base_model.model."

/* Writes the MANIFEST of the adapter's two files, already in out, with the tool and the options that
 * shaped their bytes (keys[i] = values[i]); false: said (cli_error). */
bool adapter_out_manifest(hf_out *out, const char *tool, const char *const *keys, const char *const *values,
			  size_t noptions);

#endif /* TOOLS_ADAPTER_OUT_H */
