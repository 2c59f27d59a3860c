/* test_quote.c: fmt_char and fmt_quote, how names are shown in messages (formats/fmt.c). */
#include "fmt.h"
#include "test.h"

TEST(quote_unsafe_characters)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"plain.weight", "plain.weight"},
		{"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80"}, /* é, 中, 😀 */
		{"a\tb\x1b[2Jc\x7f", "a?b?[2Jc?"},                                                        /* C0, DEL */
		{"x\xc2\x80y\xc2\x85z\xc2\x9b" "1m\xc2\x9f", "x?y?z?1m?"},                               /* C1 */
		{"\xc2\xa0nbsp", "\xc2\xa0nbsp"},                                                          /* U+00A0 is text */
		{"l\xe2\x80\xa8p\xe2\x80\xa9", "l?p?"},                                                     /* U+2028, U+2029 */
		{"\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae", "?????"},                 /* U+202A..E */
		{"\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9", "????"},                               /* U+2066..9 */
		{"\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", "???"},                                                /* LRM, RLM, ALM */
		{"\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5", "\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5"},           /* neighbours */
		{"bad\x9b" "byte\xff\xc0\xaf", "bad?byte???"},                                             /* not UTF-8 */
		{"\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80", "??????????"},                                /* overlong, surrogate, > U+10FFFF */
		{"cut\xe2\x80", "cut??"},                                                                   /* truncated */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char buf[256];
		test_context("case %zu", i);
		CHECK_STR(fmt_quote(cases[i].in, buf, sizeof buf), cases[i].want);
	}
	test_context("%s", "");
}

TEST(quote_cut_between_characters)
{
	char buf[8];
	CHECK_STR(fmt_quote("abcdefghij", buf, sizeof buf), "abcd...");
	CHECK_STR(fmt_quote("ab\xe4\xb8\xad\xe4\xb8\xad", buf, sizeof buf), "ab...");
	CHECK_STR(fmt_quote("\xc2\x85\xc2\x85\xc2\x85\xc2\x85\xc2\x85\xc2\x85\xc2\x85", buf, sizeof buf), "???????");
	CHECK_STR(fmt_quote("\xc2\x85\xc2\x85\xc2\x85\xc2\x85\xc2\x85\xc2\x85\xc2\x85\xc2\x85", buf, sizeof buf), "????...");
	CHECK_STR(fmt_quote("abcdefg", buf, sizeof buf), "abcdefg"); /* fits: not cut */
	CHECK_STR(fmt_quote("a\xc2\x85" "bcdef", buf, sizeof buf), "a?bcdef");
	CHECK_STR(fmt_quote("abcd", buf, 4), "...");
	CHECK_STR(fmt_quote("abc", buf, 4), "abc");
	CHECK_STR(fmt_quote("abcdef", buf, 3), "");
	CHECK_STR(fmt_quote_n("a\0b", 3, buf, sizeof buf), "a?b");
}

TEST(quote_char_lengths)
{
	bool safe;
	CHECK_INT(fmt_char("\xf0\x9f\x98\x80", 4, &safe), 4);
	CHECK(safe);
	CHECK_INT(fmt_char("\xf0\x9f\x98\x80", 3, &safe), 1); /* the rest is past the end */
	CHECK(!safe);
	CHECK_INT(fmt_char("\xe2\x80\xae", 3, &safe), 3); /* one '?' for the whole override */
	CHECK(!safe);
	CHECK_INT(fmt_char("\xc2\x9b", 2, &safe), 2);
	CHECK(!safe);
}
