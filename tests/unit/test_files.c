/*
 * test_files.c: how the formats open and remove files: fmt_open_input (a regular file only, never waiting
 * on a FIFO), fmt_temp_path (a name that fits NAME_MAX), the descriptor pool (any number of files open, a
 * few descriptors held, a replaced file noticed), out_tree (what an earlier output may lose to -f, never
 * through a link), and out_place (where an output may not go).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_pool.h"
#include "fmt.h"
#include "out_model.h"
#include "out_place.h"
#include "out_tree.h"
#include "safetensors.h"
#include "test.h"
#include "util.h"

/* A fresh directory under the run's temporary directory. */
static const char *fresh_dir(const char *name)
{
	static char path[4096];
	snprintf(path, sizeof path, "%s/files-%s-%d", util_tmpdir(), name, (int)getpid());
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0 || mkdir(path, 0755) != 0)
		test_fail(__FILE__, __LINE__, "cannot make %s", path);
	return path;
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (!f) {
		test_fail(__FILE__, __LINE__, "cannot write %s", p);
		return;
	}
	fputs(text, f);
	fclose(f);
}

static bool there(const char *dir, const char *name)
{
	char p[4096];
	struct stat sb;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return lstat(p, &sb) == 0;
}

TEST(fmt_open_input_refuses_what_is_not_a_file)
{
	const char *d = fresh_dir("open");
	char err[FMT_ERRBUF], p[4096];
	int fd;
	struct stat sb;
	put(d, "f", "hello");
	snprintf(p, sizeof p, "%s/f", d);
	if (CHECK_INT(fmt_open_input(p, &fd, &sb, err), LQ_OK)) {
		CHECK_INT(sb.st_size, 5);
		CHECK_INT(fcntl(fd, F_GETFL) & O_NONBLOCK, 0); /* blocking again */
		close(fd);
	}
	/* a FIFO with no writer: refused at once, not waited on */
	snprintf(p, sizeof p, "%s/fifo", d);
	CHECK(mkfifo(p, 0644) == 0);
	test_context("fifo");
	CHECK_INT(fmt_open_input(p, &fd, NULL, err), LQ_ERR_IO);
	CHECK_CONTAINS(err, "not a regular file (a FIFO)");
	CHECK_INT(fd, -1);
	char *text;
	size_t len;
	CHECK_INT(fmt_read_small(p, 1024, &text, &len, err), LQ_ERR_IO);
	CHECK_CONTAINS(err, "not a regular file (a FIFO)");
	test_context("device, directory, missing");
	CHECK_INT(fmt_open_input("/dev/zero", &fd, NULL, err), LQ_ERR_IO);
	CHECK_CONTAINS(err, "cannot read '/dev/zero': not a regular file (a character device)");
	CHECK_INT(fmt_open_input(d, &fd, NULL, err), LQ_ERR_IO);
	CHECK_CONTAINS(err, "(a directory)");
	snprintf(p, sizeof p, "%s/missing", d);
	CHECK_INT(fmt_open_input(p, &fd, NULL, err), LQ_ERR_IO);
	CHECK_CONTAINS(err, strerror(ENOENT));
	/* O_NOFOLLOW through the _at form */
	snprintf(p, sizeof p, "%s/link", d);
	CHECK(symlink("f", p) == 0);
	int dfd = open(d, O_RDONLY | O_DIRECTORY);
	CHECK_INT(fmt_open_input_at(dfd, "link", O_NOFOLLOW, &fd, NULL, err), LQ_ERR_IO);
	if (CHECK_INT(fmt_open_input_at(dfd, "link", 0, &fd, NULL, err), LQ_OK))
		close(fd);
	close(dfd);
	test_context("read_small");
	snprintf(p, sizeof p, "%s/f", d);
	if (CHECK_INT(fmt_read_small(p, 5, &text, &len, err), LQ_OK)) {
		CHECK_STR(text, "hello");
		free(text);
	}
	CHECK_INT(fmt_read_small(p, 4, &text, &len, err), LQ_ERR_CORRUPT);
	st_file *f = st_file_create();
	snprintf(p, sizeof p, "%s/fifo", d);
	CHECK_INT(st_file_open(f, p), LQ_ERR_IO);
	CHECK_CONTAINS(st_file_error(f), "not a regular file (a FIFO)");
	st_file_free(f);
}

TEST(fmt_temp_path_fits_name_max)
{
	char name[300];
	memset(name, 'a', 255);
	name[255] = '\0';
	char path[320];
	snprintf(path, sizeof path, "dir/%s", name);
	char *t = fmt_temp_path(path, "tmp");
	if (CHECK(t != NULL)) {
		const char *base = strrchr(t, '/') + 1;
		CHECK_INT(strlen(base), NAME_MAX);
		CHECK(strncmp(t, "dir/.aaa", 8) == 0);
		CHECK(strcmp(t + strlen(t) - 11, ".tmp-XXXXXX") == 0);
		free(t);
	}
	t = fmt_temp_path("out", "tmp");
	CHECK_STR(t, "./.out.tmp-XXXXXX");
	free(t);
	t = fmt_temp_path("a/b/", "old");
	CHECK_STR(t, "a/.b.old-XXXXXX");
	free(t);
	t = fmt_temp_path("/x", "tmp");
	CHECK_STR(t, "/.x.tmp-XXXXXX");
	free(t);
	/* cut at a character boundary: a name of two-byte characters */
	char wide[300] = "";
	for (int i = 0; i < 127; i++)
		strcat(wide, "\xc3\xa9");
	t = fmt_temp_path(wide, "archive");
	if (CHECK(t != NULL)) {
		const char *base = strrchr(t, '/') + 1;
		CHECK(strlen(base) <= NAME_MAX);
		const char *dot = strstr(base, ".archive-");
		CHECK(dot && (dot - base - 1) % 2 == 0); /* whole characters */
		free(t);
	}
}

TEST(fd_pool_holds_few_descriptors)
{
	const char *d = fresh_dir("pool");
	int limit = pooled_limit();
	CHECK(limit >= 4 && limit <= 64);
	enum { N = 200 };
	/* N files written and read back, more than the pool holds */
	st_writer *w[N];
	char p[4400], err[FMT_ERRBUF];
	int64_t shape[1] = {4};
	for (int i = 0; i < N; i++) {
		w[i] = st_writer_create();
		st_writer_add(w[i], "t", ST_F32, 1, shape);
		snprintf(p, sizeof p, "%s/w%03d.safetensors", d, i);
		CHECK_INT(st_writer_open(w[i], p), LQ_OK);
	}
	int open_fds = 0;
	for (int fd = 0; fd < 4096; fd++)
		open_fds += fcntl(fd, F_GETFD) != -1;
	CHECK(open_fds <= limit + 16);
	float v[4] = {1, 2, 3, 4};
	for (int i = N - 1; i >= 0; i--)
		CHECK_INT(st_writer_write(w[i], 0, 0, v, sizeof v), LQ_OK);
	for (int i = 0; i < N; i++) {
		CHECK_INT(st_writer_finish(w[i]), LQ_OK);
		st_writer_free(w[i]);
	}
	st_file *f[N];
	for (int i = 0; i < N; i++) {
		f[i] = st_file_create();
		snprintf(p, sizeof p, "%s/w%03d.safetensors", d, i);
		CHECK_INT(st_file_open(f[i], p), LQ_OK);
	}
	for (int i = 0; i < N; i++) {
		float got[4] = {0};
		if (CHECK_INT(st_file_read(f[i], &f[i]->tensors[0], 0, got, sizeof got), LQ_OK))
			CHECK(memcmp(got, v, sizeof v) == 0);
	}
	/* a file replaced while it was closed by the pool is not read as if it were the same */
	snprintf(p, sizeof p, "%s/w000.safetensors", d);
	char q[4096];
	snprintf(q, sizeof q, "%s/w001.safetensors", d);
	for (int i = 2; i < N; i++) { /* f[0] is now the least recently used: its descriptor goes */
		float got[4];
		st_file_read(f[i], &f[i]->tensors[0], 0, got, sizeof got);
	}
	CHECK(rename(q, p) == 0);
	float got[4];
	CHECK_INT(st_file_read(f[0], &f[0]->tensors[0], 0, got, sizeof got), LQ_ERR_IO);
	CHECK_CONTAINS(st_file_error(f[0]), "replaced");
	for (int i = 0; i < N; i++)
		st_file_free(f[i]);
	/* a pooled file closed twice, or never opened, is fine */
	pooled_file pf = POOLED_FILE_INIT;
	CHECK_INT(pooled_close(&pf, "x", err), LQ_OK);
}

/* The names in dir, sorted, as "a b c/ ..." (a directory with a slash). */
static void listing(const char *dir, char *out, size_t size)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "cd '%s' && find . -mindepth 1 | sort | tr '\\n' ' '", dir);
	FILE *p = popen(cmd, "r");
	out[0] = '\0';
	if (p) {
		size_t n = fread(out, 1, size - 1, p);
		out[n] = '\0';
		pclose(p);
	}
}

TEST(out_tree_removes_only_what_is_listed)
{
	const char *d0 = fresh_dir("tree");
	char d[2048], victim[2048], p[4096], err[FMT_ERRBUF], got[4096];
	snprintf(d, sizeof d, "%s/out", d0);
	snprintf(victim, sizeof victim, "%s/victim", d0);
	mkdir(d, 0755);
	mkdir(victim, 0755);
	put(victim, "keep", "canary");
	snprintf(p, sizeof p, "%s/sub", d);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/sub/deep", d);
	mkdir(p, 0755);
	put(d, "a", "1");
	put(d, "sub/b", "2");
	put(d, "sub/deep/c", "3");
	put(d, "MANIFEST", "{\"manifest\": 1, \"files\": [{\"path\": \"a\"}, {\"path\": \"sub/deep/c\"}, "
			   "{\"path\": \"sub/b\"}, {\"path\": \"sub/link\"}]}");
	snprintf(p, sizeof p, "%s/sub/link", d);
	CHECK(symlink("../../victim", p) == 0);
	int fd = open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	char **list;
	size_t n;
	bool has;
	if (!CHECK_INT(out_tree_manifest(fd, d, &list, &n, &has, err), LQ_OK))
		return;
	CHECK(has);
	CHECK_INT(n, 4);
	CHECK_STR(list[0], "a");
	CHECK_STR(list[3], "sub/link");
	char *other;
	CHECK_INT(out_tree_find_other(fd, list, n, "MANIFEST", &other, err), LQ_OK);
	CHECK(other == NULL);
	/* something added, in a subdirectory: found */
	put(d, "sub/deep/extra", "x");
	CHECK_INT(out_tree_find_other(fd, list, n, "MANIFEST", &other, err), LQ_OK);
	CHECK_STR(other, "sub/deep/extra");
	free(other);
	/* a directory of its own: found as "dir/" */
	snprintf(p, sizeof p, "%s/sub/deep/extra", d);
	unlink(p);
	snprintf(p, sizeof p, "%s/other", d);
	mkdir(p, 0755);
	CHECK_INT(out_tree_find_other(fd, list, n, "MANIFEST", &other, err), LQ_OK);
	CHECK_STR(other, "other/");
	free(other);
	rmdir(p);
	/* removal: the listed entries, the link itself (never what it leads to), the emptied directories;
	 * an unlisted file stays, and so does its directory */
	put(d, "sub/stay", "x");
	out_tree_remove_listed(fd, list, n, "MANIFEST");
	listing(d, got, sizeof got);
	CHECK_STR(got, "./sub ./sub/stay ");
	listing(victim, got, sizeof got);
	CHECK_STR(got, "./keep ");
	out_tree_free_list(list, n);
	close(fd);
	/* remove_all: everything under a directory, a link inside it removed as a link */
	snprintf(p, sizeof p, "%s/sub/link2", d);
	CHECK(symlink("../../victim", p) == 0);
	out_tree_remove_all(d);
	CHECK(!there(d0, "out"));
	listing(victim, got, sizeof got);
	CHECK_STR(got, "./keep ");
	/* remove_all of a link: the link */
	snprintf(p, sizeof p, "%s/vlink", d0);
	CHECK(symlink("victim", p) == 0);
	out_tree_remove_all(p);
	CHECK(!there(d0, "vlink"));
	CHECK(there(victim, "keep"));
}

TEST(out_tree_manifest_refuses_what_is_not_ours)
{
	static const char *const bad[] = {
		"not json",
		"{\"files\": []}",                                   /* no "manifest": 1 */
		"{\"manifest\": 2, \"files\": []}",
		"{\"manifest\": 1}",
		"{\"manifest\": 1, \"files\": [{\"path\": \"../x\"}]}",
		"{\"manifest\": 1, \"files\": [{\"path\": \"/etc/passwd\"}]}",
		"{\"manifest\": 1, \"files\": [{\"path\": \"a//b\"}]}",
		"{\"manifest\": 1, \"files\": [{\"path\": \"a/./b\"}]}",
		"{\"manifest\": 1, \"files\": [{\"path\": \"a/\"}]}",
		"{\"manifest\": 1, \"files\": [{\"path\": \"\"}]}",
		"{\"manifest\": 1, \"files\": [{\"size\": 3}]}",
		"{\"manifest\": 1, \"files\": [{\"path\": 3}]}",
	};
	const char *d = fresh_dir("manifest");
	char err[FMT_ERRBUF];
	int fd = open(d, O_RDONLY | O_DIRECTORY);
	char **list;
	size_t n;
	bool has;
	CHECK_INT(out_tree_manifest(fd, d, &list, &n, &has, err), LQ_OK);
	CHECK(!has && n == 0);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		test_context("%s", bad[i]);
		put(d, "MANIFEST", bad[i]);
		CHECK_INT(out_tree_manifest(fd, d, &list, &n, &has, err), LQ_ERR_CORRUPT);
		CHECK_CONTAINS(err, "is not a MANIFEST of these tools");
	}
	/* a link named MANIFEST is not followed */
	char p[4096];
	snprintf(p, sizeof p, "%s/MANIFEST", d);
	unlink(p);
	CHECK(symlink("/etc/hostname", p) == 0);
	CHECK_INT(out_tree_manifest(fd, d, &list, &n, &has, err), LQ_ERR_CORRUPT);
	close(fd);
}

TEST(out_place_is_inside_contains)
{
	const char *d = fresh_dir("place");
	char in[2048], file[2048], up[2048], p[4096];
	snprintf(in, sizeof in, "%s/in", d);
	snprintf(file, sizeof file, "%s/in/w.safetensors", d);
	snprintf(up, sizeof up, "%s/up", d);
	mkdir(in, 0755);
	put(in, "w.safetensors", "x");
	CHECK(symlink(".", up) == 0);
	out_inputs *ins = out_inputs_create();
	if (!CHECK(ins))
		return;
	CHECK(out_inputs_add_dir(ins, in, "in"));
	CHECK(out_inputs_add(ins, "/no/such/path", "gone")); /* adds nothing */
	CHECK(!out_inputs_oom(ins));
	out_hit h;
	char *at = out_place_of_name(file);
	CHECK(at && out_inputs_find(ins, at, NULL, OUT_CLASH_ANY, &h));
	/* the directory comes first: tried for every clash, it is the one that holds the file */
	CHECK_INT(h.clash, OUT_CLASH_INSIDE);
	CHECK_STR(h.input, "in");
	CHECK(!h.whole);
	CHECK(out_inputs_find(ins, at, NULL, OUT_CLASH_IS, &h) && h.clash == OUT_CLASH_IS);
	free(at);
	/* the output holds the input; a link's name is where it is, its target where it leads */
	at = out_place_of_name(up);
	CHECK(at && !out_inputs_find(ins, at, NULL, OUT_CLASH_ANY, &h));
	free(at);
	at = out_place_of_target(up);
	CHECK(at && out_inputs_find(ins, at, NULL, OUT_CLASH_ANY, &h) && h.clash == OUT_CLASH_CONTAINS);
	free(at);
	/* by identity alone (a hard link elsewhere is the file) */
	snprintf(p, sizeof p, "%s/hard", d);
	struct stat sb;
	CHECK(link(file, p) == 0 && stat(p, &sb) == 0);
	CHECK(out_inputs_find(ins, NULL, &sb, OUT_CLASH_ANY, &h) && h.clash == OUT_CLASH_IS);
	CHECK(!out_inputs_find(ins, NULL, &sb, OUT_CLASH_INSIDE | OUT_CLASH_CONTAINS, &h));
	/* a name whose directory does not resolve */
	snprintf(p, sizeof p, "%s/none/x", d);
	errno = 0;
	CHECK(out_place_of_name(p) == NULL && errno == ENOENT);
	out_inputs_free(ins);
}

TEST(om_place_check_says_why)
{
	hf_model *m = hf_model_create();
	if (!CHECK(m) || !CHECK_INT(hf_model_open(m, test_path("fixtures/models/tiny-llama")), LQ_OK)) {
		hf_model_free(m);
		return;
	}
	char err[FMT_ERRBUF], out[4096];
	CHECK_INT(om_place_check(m, NULL, 0, "-", err), LQ_OK);
	snprintf(out, sizeof out, "%s/nf4", m->input);
	CHECK_INT(om_place_check(m, NULL, 0, out, err), LQ_ERR_ARG);
	CHECK_CONTAINS(err, "is inside the input directory");
	snprintf(out, sizeof out, "%s/config.json", m->input);
	CHECK_INT(om_place_check(m, NULL, 0, out, err), LQ_ERR_ARG);
	CHECK_CONTAINS(err, "is part of the input");
	CHECK_INT(om_place_check(m, NULL, 0, m->input, err), LQ_ERR_ARG);
	CHECK_CONTAINS(err, "is the input");
	snprintf(out, sizeof out, "%s/no/such/dir/out", util_tmpdir());
	CHECK_INT(om_place_check(m, NULL, 0, out, err), LQ_ERR_IO);
	CHECK_CONTAINS(err, "cannot use output");
	snprintf(out, sizeof out, "%s/out", util_tmpdir());
	CHECK_INT(om_place_check(m, NULL, 0, out, err), LQ_OK);
	hf_model_free(m);
}
