/*
 * run.h: what nf4quant and loramerge share once their plan is made: the tasks that fill the output, with
 * the source they read and the sink they write; the memory they will need (for --dry-run, from the very
 * tasks that will run); and the run itself.
 *
 * A tool is its options, a plan (inputs opened, every output tensor declared, run_tasks filled) and this
 * run: run_tasks_execute, then the tool's config.json, om_finish and om_commit.
 */
#ifndef TOOLS_RUN_H
#define TOOLS_RUN_H

#include "hf_model.h"
#include "libquant.h"
#include "out_model.h"
#include "st_exec.h"

typedef struct run_tasks {
	lq_task *v;
	size_t *shard; /* per task: the output shard its outputs are in */
	size_t n, cap;
	st_source *src;
	st_sink *sink;
	/* Called after each task's bytes are written, with what it computed (NULL: nothing to observe); it
	 * fails only for memory (LQ_ERR_NOMEM). */
	lq_status (*on_result)(void *arg, const lq_task *t, const lq_task_result *result);
	void *on_result_arg;
} run_tasks;

/* Room for cap tasks, and an empty source and sink. */
lq_status run_tasks_init(run_tasks *r, size_t cap, char *err);
/* The next task, zeroed, whose outputs are in output shard `shard`; NULL beyond cap. */
lq_task *run_tasks_add(run_tasks *r, size_t shard);
void run_tasks_free(run_tasks *r);

/* The memory the run holds at most: the executor's staging for the tasks, and the source's. */
uint64_t run_tasks_memory(const lq_ctx *ctx, const run_tasks *r);

/* Opens the output's shard files and streams the tasks of the shards this run writes (om_begin may have
 * found parts already made) through the executor into them, showing `what` and the progress on a
 * terminal; a signal cancels ("interrupted"). A stream input is then read to its end. */
lq_status run_tasks_execute(lq_ctx *ctx, out_model *om, const hf_model *m, const run_tasks *r, const char *what,
			    char *err);

/* Runs every task without an output, for what they compute (on_result, which must be set): the tasks'
 * output ids are -1. Shows `what` and the progress on a terminal; a signal cancels ("interrupted"). */
lq_status run_tasks_measure(lq_ctx *ctx, const run_tasks *r, const char *what, char *err);

#endif /* TOOLS_RUN_H */
