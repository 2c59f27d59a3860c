/*
 * lq_errors.h: status codes of libquant.
 *
 * The values are frozen: a new code is added at the end, an old one is never renumbered, so that a
 * program built against one version reads the codes of another the same way.
 */
#ifndef LQ_ERRORS_H
#define LQ_ERRORS_H

/* What the shared library exports: exactly the functions these headers declare (libquant is built with
 * -fvisibility=hidden; its internal functions stay inside it). */
#ifndef LQ_API
#if defined(__GNUC__)
#define LQ_API __attribute__((visibility("default")))
#else
#define LQ_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lq_status {
	LQ_OK = 0,
	LQ_ERR_ARG = 1,         /* a caller passed a value the call does not accept */
	LQ_ERR_NOMEM = 2,       /* an allocation failed */
	LQ_ERR_IO = 3,          /* reading or writing a file failed (the message has errno's text) */
	LQ_ERR_CORRUPT = 4,     /* input that breaks its format's rules */
	LQ_ERR_UNSUPPORTED = 5, /* well-formed input this version does not handle */
	LQ_ERR_NONFINITE = 6,   /* NaN or infinity where a finite value is required */
	LQ_ERR_EXISTS = 7,      /* an output exists and overwriting was not asked for */
	LQ_ERR_DEVICE = 8,      /* the GPU failed (the message has the CUDA error) */
	LQ_ERR_CANCELLED = 9,   /* a callback asked to stop */
} lq_status;

/* A short constant description of a status ("corrupt input"), never NULL. */
LQ_API const char *lq_status_string(lq_status status);

#ifdef __cplusplus
}
#endif

#endif /* LQ_ERRORS_H */
