/*
 * imap_skip(): streaming past a rejected command.  Each case is fed whole,
 * byte by byte and in chunks of several sizes (each chunk copied into a
 * buffer of exactly its size); all must end at the same byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parse.h"
#include "unit.h"

/* Feed in[0..len) in chunks of chunk bytes (0: all at once), after
 * imap_skip_literal(lit) when lit is not UINT64_MAX.  Returns the status
 * and sets *total to the bytes consumed; 0 with *total == len means
 * SKIP_MORE throughout. */
static enum skip_status
skip_run(const char *in, size_t len, size_t chunk, uint64_t lit,
    size_t *total, int *short_more)
{
	struct imap_skip s;
	enum skip_status st = SKIP_MORE;
	size_t off = 0, n, used;
	unsigned char *b;

	if (lit == UINT64_MAX)
		imap_skip_init(&s);
	else
		imap_skip_literal(&s, lit);
	*short_more = 0;
	while (off < len) {
		n = chunk == 0 || chunk > len - off ? len - off : chunk;
		if ((b = malloc(n)) == NULL)
			abort();
		memcpy(b, in + off, n);
		used = (size_t)-1;
		st = imap_skip(&s, b, n, &used);
		free(b);
		if (used > n)
			abort();
		off += used;
		if (st != SKIP_MORE)
			break;
		if (used != n)
			*short_more = 1;	/* MORE must take everything */
	}
	*total = off;
	return st;
}

static void
skip_check(const char *f, int l, const char *in, size_t len, uint64_t lit,
    enum skip_status want, size_t want_used)
{
	static const size_t chunks[] = { 0, 1, 2, 3, 4, 5, 7, 11, 64 };
	enum skip_status st;
	size_t i, used;
	int short_more;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		st = skip_run(in, len, chunks[i], lit, &used, &short_more);
		if (st != want || used != want_used || short_more) {
			unit_fail(f, l, "\"%s\" in chunks of %zu: status %d, "
			    "used %zu%s; want %d, %zu", unit_show(in, len),
			    chunks[i], st, used,
			    short_more ? ", MORE left bytes" : "", want,
			    want_used);
			return;
		}
	}
	unit_pass();
}

#define SKIP(in, st, used) \
	skip_check(__FILE__, __LINE__, S(in), UINT64_MAX, st, used)
#define SKIP_LIT(in, lit, st, used) \
	skip_check(__FILE__, __LINE__, S(in), lit, st, used)
/* The length of a string literal: where a skip must stop. */
#define L(lit)	(sizeof(lit) - 1)

static void
skip_plain_line(void)
{
	SKIP("a FOO bar\r\nb NOOP\r\n", SKIP_END, L("a FOO bar\r\n"));
	SKIP("a FOO bar\nb NOOP\r\n", SKIP_END, L("a FOO bar\n"));
	SKIP("a FOO bar", SKIP_MORE, L("a FOO bar"));
	SKIP("a FOO bar\r", SKIP_MORE, L("a FOO bar\r"));
	/* A CR alone does not end the line. */
	SKIP("a FOO\rb\r\nc", SKIP_END, L("a FOO\rb\r\n"));
	SKIP("\r\n\r\n", SKIP_END, 2);
}

static void
skip_nonsync_literal(void)
{
	/* The literal's bytes look like commands; they are data. */
	SKIP("a FOO {5+}\r\nb NO\r\nc NOOP\r\n", SKIP_END,
	    L("a FOO {5+}\r\nb NO\r\n"));
	SKIP("a FOO {5+}\nb NO\r\nc NOOP\r\n", SKIP_END,
	    L("a FOO {5+}\nb NO\r\n"));
	SKIP("a FOO {5+}\r\nb NO", SKIP_MORE, L("a FOO {5+}\r\nb NO"));
	/* Two in a row, the second one inside the first's data looking
	 * like a header. */
	SKIP("a X {6+}\r\n{2+}\r\n {2+}\r\nab\r\nc\r\n", SKIP_END,
	    L("a X {6+}\r\n{2+}\r\n {2+}\r\nab\r\n"));
	SKIP("a X {0+}\r\n\r\nb\r\n", SKIP_END, L("a X {0+}\r\n\r\n"));
	SKIP("a X {007+}\r\n\r\n\r\n\r\n\r\nb\r\n", SKIP_END,
	    L("a X {007+}\r\n\r\n\r\n\r\n\r\n"));
}

static void
skip_sync_literal(void)
{
	/* After BAD the client never sends a {n} literal's data. */
	SKIP("a FOO {5}\r\nhello\r\n", SKIP_SYNC, L("a FOO {5}\r\n"));
	SKIP("a FOO {5}\nhello\r\n", SKIP_SYNC, L("a FOO {5}\n"));
	SKIP("a FOO {5+}\r\n{1}\r\n {1}\r\nx\r\n", SKIP_SYNC,
	    L("a FOO {5+}\r\n{1}\r\n {1}\r\n"));
	SKIP("a FOO {99999999999999999999}\r\nb\r\n", SKIP_SYNC,
	    L("a FOO {99999999999999999999}\r\n"));
}

static void
skip_not_a_literal(void)
{
	SKIP("a FOO {5x}\r\nb\r\n", SKIP_END, L("a FOO {5x}\r\n"));
	SKIP("a FOO {5}x\r\nb\r\n", SKIP_END, L("a FOO {5}x\r\n"));
	SKIP("a FOO {5} \r\nb\r\n", SKIP_END, L("a FOO {5} \r\n"));
	SKIP("a FOO {5+x}\r\nb\r\n", SKIP_END, L("a FOO {5+x}\r\n"));
	SKIP("a FOO {5}\rx\r\nb\r\n", SKIP_END, L("a FOO {5}\rx\r\n"));
	/* The second brace starts the header that ends the line. */
	SKIP("a FOO {{5+}\r\nb\r\nc\r\nd\r\n", SKIP_END,
	    L("a FOO {{5+}\r\nb\r\nc\r\n"));
	/* A count needs a digit, as in imap_parse(). */
	SKIP("a FOO {+}\r\nb NOOP\r\n", SKIP_END, L("a FOO {+}\r\n"));
	SKIP("a FOO {}\r\nb NOOP\r\n", SKIP_END, L("a FOO {}\r\n"));
	SKIP("a FOO {\r\nb NOOP\r\n", SKIP_END, L("a FOO {\r\n"));
}

static void
skip_quoted(void)
{
	SKIP("a FOO \"{3}\" bar\r\nb NOOP\r\n", SKIP_END,
	    L("a FOO \"{3}\" bar\r\n"));
	SKIP("a FOO \"x {3}\r\nb NOOP\r\n", SKIP_END, L("a FOO \"x {3}\r\n"));
	SKIP("a FOO \"a\\\"{3}\r\nb\r\n", SKIP_END, L("a FOO \"a\\\"{3}\r\n"));
	/* An escaped backslash closes nothing; the quote after it does. */
	SKIP("a FOO \"x\\\\\" {2+}\r\nab\r\nc\r\n", SKIP_END,
	    L("a FOO \"x\\\\\" {2+}\r\nab\r\n"));
	SKIP("a FOO \"x\\\" {2+}\r\nab\r\nc\r\n", SKIP_END,
	    L("a FOO \"x\\\" {2+}\r\n"));
	/* A line end ends a quoted string, even escaped. */
	SKIP("a FOO \"ab\\\nc\r\n", SKIP_END, L("a FOO \"ab\\\n"));
	SKIP("a FOO \"ab\nc\r\n", SKIP_END, L("a FOO \"ab\n"));
	SKIP("a FOO \"\" {1+}\r\n\n\r\n", SKIP_END,
	    L("a FOO \"\" {1+}\r\n\n\r\n"));
}

static void
skip_huge(void)
{
	SKIP("a FOO {4294967296+}\r\nb\r\n", SKIP_HUGE,
	    L("a FOO {4294967296+}\r\n"));
	SKIP("a FOO {99999999999999999999999+}\r\nb\r\n", SKIP_HUGE,
	    L("a FOO {99999999999999999999999+}\r\n"));
	/* The largest count that is skipped. */
	SKIP("a FOO {4294967295+}\r\nb\r\n", SKIP_MORE,
	    L("a FOO {4294967295+}\r\nb\r\n"));
	CHECK_UEQ(LITERAL_SKIP_MAX, 4294967295u);
}

static void
skip_state_after_huge_literal(void)
{
	static const char in[] = "a FOO {4294967295+}\r\nxyz";
	struct imap_skip s;
	enum skip_status st;
	size_t used;

	imap_skip_init(&s);
	st = imap_skip(&s, (const unsigned char *)in, L(in), &used);
	CHECK_EQ(st, SKIP_MORE);
	CHECK_EQ(used, L(in));
	CHECK_UEQ(s.lit_left, 4294967295u - 3);
}

static void
skip_from_literal(void)
{
	/* The ID scanner hands over in the middle of a {n+} literal. */
	SKIP_LIT("abcde\r\nb\r\n", 5, SKIP_END, L("abcde\r\n"));
	SKIP_LIT("ab\r\nde \"x\" {1+}\r\n\n\r\nb\r\n", 5, SKIP_END,
	    L("ab\r\nde \"x\" {1+}\r\n\n\r\n"));
	SKIP_LIT("\r\nb NOOP\r\n", 0, SKIP_END, 2);
	SKIP_LIT(")\r\nb NOOP\r\n", 0, SKIP_END, 3);
	SKIP_LIT("abc", 5, SKIP_MORE, 3);
}

static void
skip_resets_after_end(void)
{
	static const char in[] = "a FOO \"x\r\nb FOO {2}\r\n";
	struct imap_skip s;
	size_t used, off;

	/* After SKIP_END the same scanner takes the next command afresh. */
	imap_skip_init(&s);
	CHECK_EQ(imap_skip(&s, (const unsigned char *)in, L(in), &used),
	    SKIP_END);
	CHECK_EQ(used, 10);
	off = used;
	CHECK_EQ(imap_skip(&s, (const unsigned char *)in + off, L(in) - off,
	    &used), SKIP_SYNC);
	CHECK_EQ(off + used, L(in));
	CHECK_EQ(imap_skip(&s, (const unsigned char *)"", 0, &used), SKIP_MORE);
	CHECK_EQ(used, 0);
}

void
suite_skip(void)
{
	RUN(skip_plain_line);
	RUN(skip_nonsync_literal);
	RUN(skip_sync_literal);
	RUN(skip_not_a_literal);
	RUN(skip_quoted);
	RUN(skip_huge);
	RUN(skip_state_after_huge_literal);
	RUN(skip_from_literal);
	RUN(skip_resets_after_end);
}
