/*
 * out_place.h: the rule for where an output may go: never onto, into or around what the run reads. An
 * output that is an input would destroy it; one inside an input directory would be taken for part of the
 * model by a later run; one that contains an input (a link to "/", a parent of the adapter, the blobs/ of
 * a Hugging Face cache whose snapshot links into it) would be removed with it by -f. So every input file
 * and directory is registered by its real path (every link resolved) and its identity (device and inode),
 * and an output's place, a real path too, must be none of them, lie inside none of the directories and
 * contain none of them.
 *
 * The tools apply it: nf4quant and loramerge to OUTPUT (om_place_check, out_model.h); qinspect to its
 * --html file and standard output, loramerge to its --fidelity report (tools/report_file.c); each says in
 * its own words which input was hit and how.
 */
#ifndef FORMATS_OUT_PLACE_H
#define FORMATS_OUT_PLACE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "hf_model.h"

/* The places of the inputs. */
typedef struct out_inputs out_inputs;

/* How an output's place meets an input's (a bit set of them selects the ones out_inputs_find looks for). */
typedef enum out_clash {
	OUT_CLASH_NONE = 0,
	OUT_CLASH_IS = 1,       /* the same real path, or the same identity */
	OUT_CLASH_INSIDE = 2,   /* the output lies inside the input, a directory */
	OUT_CLASH_CONTAINS = 4, /* the input lies inside the output */
	OUT_CLASH_ANY = 7
} out_clash;

/* The input place an output's place clashes with. The strings are owned by the out_inputs. */
typedef struct out_hit {
	out_clash clash;
	const char *real;  /* the input place's real path */
	const char *input; /* the input it belongs to, as given */
	bool whole;        /* the place is that input itself, not a file of it */
} out_hit;

/* NULL when out of memory. */
out_inputs *out_inputs_create(void);
void out_inputs_free(out_inputs *in); /* NULL is a no-op */

/* Adds path, by its real path and identity, as part of the input `input` (as given, for the messages;
 * `whole` when path is input itself). A path that does not resolve adds nothing (opening it says why).
 * false when out of memory, which out_inputs_oom remembers. */
bool out_inputs_add(out_inputs *in, const char *path, const char *input);

/* Adds a directory that makes up input `input`, and every entry in it (each may be a link elsewhere: the
 * files of a Hugging Face cache snapshot link into its blobs/). false when out of memory. */
bool out_inputs_add_dir(out_inputs *in, const char *dir, const char *input);

/* Adds an opened model: its directory and every entry of it, the shards (an index may name them in
 * folders) and the carried files, its bundle, or its file; nothing for standard input. false when out of
 * memory. */
bool out_inputs_add_model(out_inputs *in, const hf_model *m);

/* Adds an adapter as given: its directory and entries, a file of it (with its directory and entries), or
 * a bundle. false when out of memory. */
bool out_inputs_add_adapter(out_inputs *in, const char *path);

/* Whether an addition ran out of memory. */
bool out_inputs_oom(const out_inputs *in);

/* The first input place, in the order they were added, that the output place `out` (a real path, or NULL
 * to compare the identity alone) clashes with in one of the ways `clashes` selects, each place tried for
 * IS, then INSIDE, then CONTAINS. `id` (may be NULL) is the output's identity when it exists: an input of
 * that device and inode IS it whatever its path. Fills *hit and returns true when there is one. */
bool out_inputs_find(const out_inputs *in, const char *out, const struct stat *id, unsigned clashes, out_hit *hit);

/* The place of the entry path names: its directory resolved, its last component as it is (a link there
 * not followed: it is what a rename replaces; "." and ".." resolved). malloc'd; NULL, errno set, when its
 * directory does not resolve or memory runs out. */
char *out_place_of_name(const char *path);

/* Where path leads: its real path when it exists, else out_place_of_name's. malloc'd; NULL as there. */
char *out_place_of_target(const char *path);

#endif /* FORMATS_OUT_PLACE_H */
