/*
 * bundle_impl.h: what the two halves of bundle.h share, bundle_write.c and bundle_read.c; nothing else
 * includes it. The rule for the characters of a name is one rule, so that the writer never makes what the
 * reader refuses.
 */
#ifndef FORMATS_BUNDLE_IMPL_H
#define FORMATS_BUNDLE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "fmt.h"

/* Reads of files and of the archive, and the cursor's skips: large enough that a syscall or a libarchive
 * call is noise next to the bytes it moves, small enough to stay out of the memory budget. */
#define IO_CHUNK ((size_t)1 << 20)

#define STR_(x) #x
#define STR(x) STR_(x)

/* Whether an entry is a .safetensors file (a name before the extension): its header is what the reader
 * holds, not the whole entry. */
static inline bool bundle_is_safetensors(const char *name)
{
	return strlen(name) > strlen(".safetensors") && fmt_ends_with(name, ".safetensors");
}

/* Why the characters of a name are refused, or NULL. */
static inline const char *bundle_bad_chars(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return "has a control character in its name";
		if (c == '\\')
			return "has a backslash in its name";
	}
	return NULL;
}

#endif /* FORMATS_BUNDLE_IMPL_H */
