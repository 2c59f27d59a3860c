/* adapter_out.c: see adapter_out.h. */
#include "adapter_out.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fmt.h"
#include "libquant.h"
#include "manifest.h"

static lq_status read_for_manifest(void *arg, uint64_t offset, void *dst, size_t len, char *err)
{
	return manifest_read_path(arg, offset, dst, len, err);
}

bool adapter_out_manifest(hf_out *out, const char *tool, const char *const *keys, const char *const *values,
			  size_t noptions)
{
	const char *names[2] = {ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME};
	char *paths[2] = {fmt_join(hf_out_dir(out), "/", names[0]), fmt_join(hf_out_dir(out), "/", names[1])};
	manifest_file files[2];
	char err[FMT_ERRBUF] = "out of memory";
	lq_status st = paths[0] && paths[1] ? LQ_OK : LQ_ERR_NOMEM;
	for (int i = 0; i < 2 && st == LQ_OK; i++) {
		struct stat sb;
		if (stat(paths[i], &sb) != 0) {
			snprintf(err, sizeof err, "cannot stat '%s': %s", paths[i], strerror(errno));
			st = LQ_ERR_IO;
		}
		files[i] = (manifest_file){.path = names[i], .size = (uint64_t)sb.st_size, .read = read_for_manifest,
					   .arg = paths[i]};
	}
	const manifest_origin origin = {.tool = tool, .version = LQ_VERSION_STRING, .keys = keys,
					.values = values, .noptions = noptions};
	char *text = NULL;
	size_t len = 0;
	if (st == LQ_OK)
		st = manifest_build(&origin, files, 2, &text, &len, err);
	if (st == LQ_OK && (st = hf_out_write_file(out, MANIFEST_NAME, text, len)) != LQ_OK)
		snprintf(err, sizeof err, "%s", hf_out_error(out));
	if (st != LQ_OK)
		cli_error("%s", err);
	free(text);
	free(paths[0]);
	free(paths[1]);
	return st == LQ_OK;
}
