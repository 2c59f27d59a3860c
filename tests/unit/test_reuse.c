/*
 * test_reuse.c: the pool of large buffers kept from one task for the next (reuse.c): a take gets the
 * smallest kept buffer that holds the bytes asked for, or a fresh one; a give keeps the LQ_REUSE_SLOTS
 * largest and frees the rest (under ASan a lost or double-freed buffer shows).
 */
#include <stdlib.h>
#include <string.h>

#include "lq_internal.h"
#include "test.h"

TEST(reuse_takes_the_smallest_that_fits_and_keeps_the_largest)
{
	lq_reuse r;
	lq_reuse_init(&r);
	size_t cap;
	void *bufs[LQ_REUSE_SLOTS + 1];
	for (int i = 0; i <= LQ_REUSE_SLOTS; i++) { /* sizes 1000, 2000, ...: the smallest goes when all are given */
		bufs[i] = lq_reuse_take(&r, (size_t)(i + 1) * 1000, &cap);
		CHECK(bufs[i] != NULL);
		CHECK_INT(cap, (i + 1) * 1000);
		memset(bufs[i], i, cap);
	}
	for (int i = 0; i <= LQ_REUSE_SLOTS; i++)
		lq_reuse_give(&r, bufs[i], (size_t)(i + 1) * 1000);
	/* 1500 bytes: the 2000-byte buffer, the smallest kept that holds them, with its capacity */
	void *p = lq_reuse_take(&r, 1500, &cap);
	CHECK(p == bufs[1]);
	CHECK_INT(cap, 2000);
	/* more than any kept: a fresh one of the size asked, none of those still kept (bufs[0] went: freed) */
	void *q = lq_reuse_take(&r, 1000000, &cap);
	CHECK_INT(cap, 1000000);
	for (int i = 2; i <= LQ_REUSE_SLOTS; i++)
		CHECK(q != bufs[i]);
	lq_reuse_give(&r, p, 2000);
	lq_reuse_give(&r, q, 1000000);
	lq_reuse_give(&r, NULL, 5); /* a no-op */
	lq_reuse_free(&r);
}
