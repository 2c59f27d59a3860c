/*
 * qinspect_adapter.c: qinspect --adapter (qinspect_adapter.h). The merge is planned as loramerge plans it
 * (merge_plan.h): a float BASE is read as its 4-bit form (Wq, what a QLoRA adapter trained against, the
 * float weights W16 measured against it), a 4-bit BASE dequantized exactly; then each module's merge runs
 * once, written nowhere, its fidelity sums measured (libquant's MERGE with fidelity) against M: the 4-bit
 * requantization of the merge itself (exactly as loramerge --requantize writes it), or MERGED's tensor of
 * the same name.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qinspect_adapter.h"
#include "device_work.h"

const char *qi_adapter_base_kind(const qi_adapter_report *r)
{
	if (r->base_quantized)
		return "bitsandbytes 4-bit base, dequantized exactly (Wq)";
	return "float base (W16), merged into its 4-bit quantize-dequantize (Wq), as QLoRA trains";
}

/* report_file_write's writer of the HTML page. */
static bool write_html(const void *report, FILE *f)
{
	return qi_adapter_write_html(report, f);
}

/* --min-survival: the modules that keep less of their change; false when any does. */
static bool survival_gate(const qi_adapter_args *a, const fidelity_report *fid)
{
	size_t failed = 0;
	for (size_t i = 0; i < fid->n; i++) {
		const fidelity_figures f = fidelity_figures_of(&fid->v[i].sums, fid->limits);
		if (fidelity_below(&f, a->min_survival)) {
			if (f.unbounded)
				cli_error("'%s': its figures are not finite, which fails --min-survival %g", fid->v[i].name,
					  a->min_survival);
			else
				cli_error("'%s': survival %.3g is below --min-survival %g (residual %.3g)", fid->v[i].name, f.survival,
					  a->min_survival, f.residual);
			failed++;
		}
	}
	if (failed)
		cli_error("%zu of %zu merged modules keep less than %g of their change", failed, fid->n, a->min_survival);
	return failed == 0;
}

/* The inputs opened: BASE, each adapter, MERGED; their paths added to inputs. False: said. */
static bool open_inputs(const qi_adapter_args *a, hf_model *m, peft_adapter **ad, hf_model *mm,
			report_inputs *inputs)
{
	if (hf_model_open(m, a->base) != LQ_OK) {
		cli_error("%s", m->err);
		return false;
	}
	for (size_t i = 0; i < a->rq.nadapters; i++)
		if (!(ad[i] = peft_adapter_create()) || peft_adapter_open(ad[i], a->rq.adapters[i], NULL, 0) != LQ_OK) {
			cli_error("%s", ad[i] ? peft_adapter_error(ad[i]) : "out of memory");
			return false;
		}
	if (mm && hf_model_open(mm, a->merged) != LQ_OK) {
		cli_error("%s", mm->err);
		return false;
	}
	bool ok = report_inputs_add_model(inputs, m) && (!mm || report_inputs_add_model(inputs, mm));
	for (size_t i = 0; ok && i < a->rq.nadapters; i++)
		ok = out_inputs_add_adapter(inputs, a->rq.adapters[i]);
	if (!ok)
		cli_error("out of memory");
	return ok;
}

/* The plan of the merge measured: a float base's quantized weights read in their 4-bit form, the merged
 * ones requantized (without MERGED) or left in float (M is MERGED's). False: said. */
static bool plan(const qi_adapter_args *a, const hf_model *m, peft_adapter **ad, const hf_tensors *base,
		 const hf_select *sel, merge_plan *p)
{
	char err[FMT_ERRBUF] = "";
	merge_request rq = a->rq;
	rq.requantize = !a->merged;
	if (merge_plan_base(base, p, err) != LQ_OK || merge_plan_adapters(&rq, ad, sel, p, err) != LQ_OK) {
		cli_error("%s", err[0] ? err : "out of memory");
		return false;
	}
	if (!p->base_quantized &&
	    (!merge_plan_check_refused(m, sel, "--adapter") || merge_plan_base_as(&rq, p, sel, err) != LQ_OK)) {
		if (err[0])
			cli_error("%s", err);
		return false;
	}
	if (merge_plan_outputs(&rq, sel, p, err) != LQ_OK) {
		cli_error("%s", err);
		return false;
	}
	p->measure = true;
	p->measure_quant = rq.quant;
	return true;
}

/* -n: the modules that would be measured, and against what. */
static void print_dry_run(const qi_adapter_args *a, const merge_plan *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++) {
		const merge_item *it = &p->items[i];
		if (it->act != ACT_MERGE || !it->nloras || (a->nglobs && !cli_glob_any(it->name, a->globs, a->nglobs)))
			continue;
		printf("measure %s (%zu adapter%s; M %s)\n", it->name, it->nloras, it->nloras == 1 ? "" : "s",
		       a->merged ? "from MERGED" : it->quantized_out ? "requantized here" : "the float merge");
		n++;
	}
	printf("%zu module%s to measure\n", n, n == 1 ? "" : "s");
}

static bool write_stdout(const qi_adapter_report *r)
{
	const qi_adapter_args *a = r->args;
	bool written = a->common->json ? qi_adapter_write_json(r, stdout)
		       : a->csv	       ? qi_adapter_write_csv(r, stdout)
				       : cli_verbosity < 0 || qi_adapter_write_table(r, stdout);
	if (!written || fflush(stdout) != 0) {
		cli_error("cannot write to standard output: %s", strerror(errno));
		return false;
	}
	return true;
}

int qi_adapter_main(const qi_adapter_args *a, report_inputs *inputs)
{
	double t0 = cli_now();
	int status = CLI_EXIT_FAILURE;
	char err[FMT_ERRBUF] = "";
	hf_model *m = hf_model_create(), *mm = a->merged ? hf_model_create() : NULL;
	peft_adapter **ad = calloc(a->rq.nadapters + 1, sizeof *ad);
	hf_tensors base = {0}, merged = {0};
	hf_select *sel = NULL;
	merge_plan p = {0};
	lq_ctx *ctx = NULL;
	qi_adapter_report r = {.args = a, .fid = {.limits = a->limits}};
	if (!m || (a->merged && !mm) || !ad) {
		cli_error("out of memory");
		goto finish;
	}
	/* refused before anything is read, and again with every file the inputs lead to */
	if (!report_stdout_ok(inputs) || (a->html && !report_file_ok(inputs, "--html file", a->html, a->common->force)) ||
	    !open_inputs(a, m, ad, mm, inputs) || !report_stdout_ok(inputs) ||
	    (a->html && !report_file_ok(inputs, "--html file", a->html, a->common->force)))
		goto finish;
	if (hf_tensors_list(m, &base, err) != LQ_OK || (mm && hf_tensors_list(mm, &merged, err) != LQ_OK)) {
		cli_error("%s", err);
		goto finish;
	}
	if (!(sel = hf_select_create(m->is_model_dir ? m->config : NULL))) {
		cli_error("out of memory");
		goto finish;
	}
	if (!plan(a, m, ad, &base, sel, &p))
		goto finish;
	r.base_quantized = p.base_quantized;
	if (a->common->dry_run) {
		print_dry_run(a, &p);
		status = CLI_EXIT_OK;
		goto finish;
	}
	lq_ctx_options copts = cli_ctx_options(a->common);
	if (!(ctx = lq_ctx_create(&copts))) {
		cli_error("cannot start: out of memory or threads");
		goto finish;
	}
	const lq_work work = device_work_merge(&p, false);
	lq_ctx_set_work(ctx, &work);
	if (lq_ctx_use_device(ctx, a->common->device) != LQ_OK) {
		cli_error("--device %s: %s", a->common->device, lq_ctx_error_string(ctx));
		goto finish;
	}
	r.device = lq_ctx_device_note(ctx);
	cli_device_why(ctx);
	cli_info(1, "compute: %s; %s kernels, %d thread%s", r.device, lq_ctx_backend_name(ctx), lq_ctx_threads(ctx),
		 lq_ctx_threads(ctx) == 1 ? "" : "s");
	cli_info(1, "%s; M %s", qi_adapter_base_kind(&r), a->merged ? "as MERGED holds it" : "the 4-bit requantization");
	const merge_measure how = {.given = mm ? &merged : NULL, .given_path = a->merged, .every = true, .globs = a->globs, .nglobs = a->nglobs,
				   .what = "measuring"};
	if (merge_plan_measure(&p, ctx, &how, &r.fid, err) != LQ_OK) {
		cli_error("%s", err);
		goto finish;
	}
	if (!r.fid.n) {
		cli_error("%s: the adapters change no weight%s", a->base, a->nglobs ? " that --tensor selects" : "");
		goto finish;
	}
	fidelity_sort(&r.fid);
	for (size_t i = 0; i < r.fid.n; i++)
		if (fidelity_figures_of(&r.fid.v[i].sums, r.fid.limits).unbounded)
			cli_warn("'%s': %s holds values that are not finite there: its figures are unbounded (null in the "
				 "JSON) and it counts as erased", r.fid.v[i].name, a->merged ? a->merged : "the merge");
	r.seconds = cli_now() - t0;
	if (!write_stdout(&r) ||
	    (a->html && !report_file_write(a->html, "--html file", a->common->force, inputs, write_html, &r)))
		goto finish;
	status = !a->min_survival_set || survival_gate(a, &r.fid) ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
finish:
	fidelity_free(&r.fid);
	merge_plan_free(&p);
	hf_tensors_free(&base);
	hf_tensors_free(&merged);
	hf_select_free(sel);
	lq_ctx_free(ctx);
	for (size_t i = 0; ad && i < a->rq.nadapters; i++)
		peft_adapter_free(ad[i]);
	free(ad);
	hf_model_free(m);
	hf_model_free(mm);
	return status;
}
