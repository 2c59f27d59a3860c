/*
 * device_work.h: a tool's plan told as the figures `--device auto` weighs (lq_work, libquant's cost model
 * in libquant/device_auto.c): what is read and written and the elements each operation touches.
 */
#ifndef TOOLS_DEVICE_WORK_H
#define TOOLS_DEVICE_WORK_H

#include "hf_tensors.h"
#include "libquant.h"
#include "merge_plan.h"

/* A merge (loramerge, qinspect --adapter): its merges, dequantizations, quantizations and, when measured,
 * comparisons. out_synced: the output goes to a disk (false: a stream, or nothing written). */
lq_work device_work_merge(const merge_plan *p, bool out_synced);

/* qinspect: every tensor of the checkpoint read, its 4-bit ones dequantized, and compared with the
 * reference's (ref may be NULL: described only). */
lq_work device_work_inspect(const hf_tensors *checkpoint, const hf_tensors *ref);

#endif /* TOOLS_DEVICE_WORK_H */
