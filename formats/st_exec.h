/*
 * st_exec.h: the executor's source and sink over safetensors files (libquant.h, lq_source/lq_sink).
 *
 * st_source reads input tensors from open safetensors files, transposing 2-D tensors on the way where a
 * task asks for it (GPT-2's Conv1D weights are stored [in, out] and quantized as [out, in]).
 *
 * st_sink writes output tensors through their files' writers (out_writer.h), and completes each bitsandbytes group when its
 * task is done: the code tables and the quant_state JSON, which holds the offset the task computed.
 */
#ifndef FORMATS_ST_EXEC_H
#define FORMATS_ST_EXEC_H

#include "bnb.h"
#include "out_writer.h"
#include "safetensors.h"

typedef struct st_source st_source;

st_source *st_source_create(void);
void st_source_free(st_source *s); /* NULL is a no-op */
/* Registers tensor t of file f as an input; returns its id, or -1 when memory runs out. With transpose,
 * t must be 2-D and its bytes are served as those of its transpose. */
int32_t st_source_add(st_source *s, st_file *f, const st_tensor *t, bool transpose);
lq_source st_source_iface(st_source *s);
/* The memory the source holds at most: a tensor served transposed is read whole, and transposed whole. */
uint64_t st_source_memory(const st_source *s);

typedef struct st_sink st_sink;

st_sink *st_sink_create(void);
void st_sink_free(st_sink *k); /* NULL is a no-op */
/* Registers tensor writer_id of writer w (copied; the writer itself must outlive the sink) as an output;
 * returns the sink's id or -1. */
int32_t st_sink_add(st_sink *k, const out_writer *w, int32_t writer_id);
/* Declares that the task whose out_data is `data_id` produces a bitsandbytes group: when it is done the
 * sink writes quant_map (and nested_quant_map) and the quant_state JSON of `state`, with the offset the
 * task computed, to the given sink ids (nested_map_id is -1 without double quantization). */
lq_status st_sink_add_group(st_sink *k, int32_t data_id, const bnb_state *state, int32_t quant_map_id,
			    int32_t nested_map_id, int32_t state_id);
lq_sink st_sink_iface(st_sink *k);

#endif /* FORMATS_ST_EXEC_H */
