/*
 * nf4quant_deq.h: nf4quant -d, a bitsandbytes 4-bit checkpoint back to float: every 4-bit group (its codes,
 * absmax, maps, nested constants and quant_state) becomes one float tensor equal to what bitsandbytes'
 * dequantize_4bit gives, every other tensor is copied, and config.json loses its quantization_config:
 * what transformers' model.dequantize() and save_pretrained write.
 */
#ifndef TOOLS_NF4QUANT_DEQ_H
#define TOOLS_NF4QUANT_DEQ_H

#include <stdbool.h>

#include "cli.h"

typedef struct deq_options {
	const char *input, *output;
	bool dtype_set;   /* --dtype: the dequantized weights' type (default: each one's quant_state dtype) */
	lq_dtype dtype;
	cli_output out;   /* --max-shard-size, --shard, --finish, --zstd-level */
	cli_common common;
} deq_options;

/* Runs the whole of nf4quant -d (options already checked); returns the exit status. */
int deq_main(const deq_options *o);

#endif /* TOOLS_NF4QUANT_DEQ_H */
