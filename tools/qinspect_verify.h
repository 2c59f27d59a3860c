/*
 * qinspect_verify.h: `qinspect --verify PATH`: a model directory or bundle checked against its MANIFEST
 * (formats/manifest.h), every mismatch named.
 */
#ifndef TOOLS_QINSPECT_VERIFY_H
#define TOOLS_QINSPECT_VERIFY_H

#include <stdbool.h>

/* Checks PATH; prints one line per mismatch and a summary on standard output (or, with json, one JSON
 * object: {"verified": bool, "path": ..., "tool": ..., "version": ..., "files": N, "mismatches": [...]}).
 * Returns the exit status: 0 all match, 1 a mismatch or an error (said on standard error). */
int qi_verify(const char *path, bool json);

#endif /* TOOLS_QINSPECT_VERIFY_H */
