/*
 * qinspect_report.c: the names of qinspect's gates, shared by the options, the messages and every writer.
 */
#include "qinspect_report.h"

static const char *const gate_options[QI_NGATES] = {"max-rel-err", "max-rmse", "max-abs-err", "min-snr", "min-cosine"};
static const char *const gate_keys[QI_NGATES] = {"max_rel_err", "max_rmse", "max_abs_err", "min_snr_db", "min_cosine"};

const char *qi_gate_option(qi_gate_kind g)
{
	return g < QI_NGATES ? gate_options[g] : "?";
}

const char *qi_gate_key(qi_gate_kind g)
{
	return g < QI_NGATES ? gate_keys[g] : "?";
}
