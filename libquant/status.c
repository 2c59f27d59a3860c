/* status.c: descriptions of the status codes. */
#include "lq_internal.h"

const char *lq_status_string(lq_status status)
{
	switch (status) {
	case LQ_OK:
		return "success";
	case LQ_ERR_ARG:
		return "invalid argument";
	case LQ_ERR_NOMEM:
		return "out of memory";
	case LQ_ERR_IO:
		return "input/output error";
	case LQ_ERR_CORRUPT:
		return "corrupt input";
	case LQ_ERR_UNSUPPORTED:
		return "unsupported input";
	case LQ_ERR_NONFINITE:
		return "non-finite value";
	case LQ_ERR_EXISTS:
		return "output exists";
	case LQ_ERR_DEVICE:
		return "GPU error";
	case LQ_ERR_CANCELLED:
		return "cancelled";
	}
	return "unknown status";
}

const char *lq_version_string(void)
{
	return LQ_VERSION_STRING;
}
