/* fmt.c: see fmt.h. */
#include "fmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

lq_status fmt_fail(char *err, lq_status status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, FMT_ERRBUF, fmt, ap);
	va_end(ap);
	return status;
}

const char *fmt_quote_n(const char *s, size_t len, char *buf, size_t size)
{
	size_t n = 0;
	if (size == 0)
		return buf;
	for (size_t i = 0; i < len && n + 4 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		/* C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F) steer terminals as much as C0 ones */
		if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) {
			buf[n++] = '?';
			i++;
			continue;
		}
		buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n + 4 >= size && len > n) {
		/* cut: back off to a UTF-8 boundary and mark it */
		while (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0x80)
			n--;
		if (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0xc0)
			n--;
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

const char *fmt_quote(const char *s, char *buf, size_t size)
{
	return fmt_quote_n(s, strlen(s), buf, size);
}
