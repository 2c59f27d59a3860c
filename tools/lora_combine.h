/*
 * lora_combine.h: loramerge --combine TYPE ADAPTER[:WEIGHT]... -o ADAPTER_OUT, several PEFT LoRA adapters
 * into one adapter as PEFT's add_weighted_adapter computes it (man/loramerge.1, COMBINING ADAPTERS).
 */
#ifndef TOOLS_LORA_COMBINE_H
#define TOOLS_LORA_COMBINE_H

#include <stdbool.h>

/* Whether the command line asks for --combine (before a "--" that ends the options). */
bool lora_combine_wanted(int argc, char **argv);

/* The whole run of loramerge --combine: its own options, the checks, the combined adapter written as one
 * transaction. Returns the exit status. */
int lora_combine_main(int argc, char **argv);

#endif /* TOOLS_LORA_COMBINE_H */
