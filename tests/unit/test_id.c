/*
 * imap_id(): ID arguments streamed (RFC 2971 limits).  Each case is fed
 * whole, byte by byte and in chunks; the events (ID_LITERAL, ID_DONE,
 * ID_BAD and where each left off) must be the same every time.  After
 * ID_BAD the session hands over to imap_skip(); id_then_skip() does the
 * same to check that the two together end where the command does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parse.h"
#include "unit.h"

#define EVENTS_MAX	128

struct id_event {
	enum id_status	st;
	size_t		off;	/* input consumed after this call */
};

struct id_result {
	struct id_event	ev[EVENTS_MAX];
	int		nev;
	struct imap_id	s;	/* the state at the end */
};

/* Feed in[0..len) in chunks of chunk bytes (0: all at once) until DONE or
 * BAD; after ID_LITERAL go on with the rest of the same chunk.  A run that
 * ends in ID_MORE records one (ID_MORE, len) event. */
static void
id_run(const char *in, size_t len, size_t chunk, struct id_result *r)
{
	enum id_status st = ID_MORE;
	size_t off = 0, end = 0, used;
	unsigned char *b;

	memset(r, 0, sizeof(*r));
	imap_id_init(&r->s);
	while (off < len) {
		if (off == end)
			end = chunk == 0 || chunk > len - off ? len :
			    off + chunk;
		if ((b = malloc(end - off)) == NULL)
			abort();
		memcpy(b, in + off, end - off);
		used = (size_t)-1;
		st = imap_id(&r->s, b, end - off, &used);
		free(b);
		if (used > end - off || (st == ID_MORE && used != end - off))
			abort();
		off += used;
		if (st == ID_MORE)
			continue;
		if (r->nev == EVENTS_MAX)
			abort();
		r->ev[r->nev].st = st;
		r->ev[r->nev++].off = off;
		if (st == ID_DONE || st == ID_BAD)
			return;
	}
	if (r->nev == EVENTS_MAX)
		abort();
	r->ev[r->nev].st = ID_MORE;
	r->ev[r->nev++].off = off;
}

static int
id_same(const struct id_result *a, const struct id_result *b)
{
	int i;

	if (a->nev != b->nev || a->s.nstrings != b->s.nstrings ||
	    a->s.ended_sync != b->s.ended_sync ||
	    a->s.lit_left != b->s.lit_left || a->s.error != b->s.error)
		return 0;
	for (i = 0; i < a->nev; i++)
		if (a->ev[i].st != b->ev[i].st || a->ev[i].off != b->ev[i].off)
			return 0;
	return 1;
}

/* Run in every chunking; *r gets the all-at-once result. */
static void
id_check(const char *f, int l, const char *in, size_t len,
    struct id_result *r)
{
	static const size_t chunks[] = { 1, 2, 3, 5, 7, 31, 1000 };
	static struct id_result c;
	size_t i;

	id_run(in, len, 0, r);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		id_run(in, len, chunks[i], &c);
		if (!id_same(r, &c)) {
			unit_fail(f, l, "chunks of %zu differ from the whole: "
			    "%d events, last %d at %zu; whole: %d, %d at %zu",
			    chunks[i], c.nev, c.ev[c.nev - 1].st,
			    c.ev[c.nev - 1].off, r->nev, r->ev[r->nev - 1].st,
			    r->ev[r->nev - 1].off);
			return;
		}
	}
	unit_pass();
}

static const struct id_event *
last(const struct id_result *r)
{
	return &r->ev[r->nev - 1];
}

/* The single outcome of a case without literals. */
static void
id_expect(const char *f, int l, const char *in, size_t len,
    enum id_status st, size_t off, const char *error)
{
	static struct id_result r;

	id_check(f, l, in, len, &r);
	CHECK_EQ_AT(f, l, r.nev, 1);
	CHECK_EQ_AT(f, l, last(&r)->st, st);
	CHECK_EQ_AT(f, l, last(&r)->off, off);
	if (error == NULL)
		CHECK_AT(f, l, r.s.error == NULL);
	else
		CHECK_STR_AT(f, l, r.s.error, error);
}

#define ID(in, st, off, error) \
	id_expect(__FILE__, __LINE__, S(in), st, off, error)
#define L(lit)	(sizeof(lit) - 1)

/* ---- building long arguments ---- */

struct buf {
	char	*p;
	size_t	 len, size;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->size) {
		b->size = (b->len + n) * 2 + 64;
		if ((b->p = realloc(b->p, b->size)) == NULL)
			abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

enum kind { K_QUOTED, K_SYNC, K_NONSYNC, K_NIL };

/*
 * A string of n octets: quoted (with two escapes, each one octet), or a
 * literal whose data looks like ID syntax.  A sync literal's header end
 * is noted in lits[] (where ID_LITERAL must be reported).
 */
static void
put_string(struct buf *b, enum kind k, size_t n, size_t *lits, int *nlits)
{
	static const char junk[] = ")\"\r\n{1}\r\n\\ (NIL";
	char hdr[32];
	size_t i;

	switch (k) {
	case K_QUOTED:
		puts_(b, "\"");
		for (i = 0; i < n; i++)
			puts_(b, i == 0 ? "\\\"" : i == 1 ? "\\\\" : "q");
		puts_(b, "\"");
		break;
	case K_SYNC:
	case K_NONSYNC:
		snprintf(hdr, sizeof(hdr), "{%zu%s}\r\n", n,
		    k == K_SYNC ? "" : "+");
		puts_(b, hdr);
		if (k == K_SYNC)
			lits[(*nlits)++] = b->len;
		for (i = 0; i < n; i++)
			put(b, &junk[i % (sizeof(junk) - 1)], 1);
		break;
	case K_NIL:
		puts_(b, "NIL");
		break;
	}
}

/* pairs field/value pairs, field i of kind fk(i) and flen octets, value of
 * kind vk(i) and vlen octets, then ")\r\n" and tail. */
static void
put_id(struct buf *b, int pairs, size_t flen, size_t vlen, size_t *lits,
    int *nlits, const char *tail)
{
	int i;

	puts_(b, " (");
	for (i = 0; i < pairs; i++) {
		if (i > 0)
			puts_(b, " ");
		put_string(b, (enum kind)(i % 3), flen, lits, nlits);
		puts_(b, " ");
		put_string(b, (enum kind)((i + 1) % 4), vlen, lits, nlits);
	}
	puts_(b, ")\r\n");
	puts_(b, tail);
}

/* ---- the cases ---- */

static void
id_nil(void)
{
	ID(" NIL\r\n", ID_DONE, 6, NULL);
	ID(" nil\n", ID_DONE, 5, NULL);
	ID(" Nil\r\nb NOOP\r\n", ID_DONE, 6, NULL);
	ID(" NIL", ID_MORE, 4, NULL);
	/* Errors leave the offending byte to the skipper. */
	ID(" NIL \r\n", ID_BAD, 4, "Invalid ID arguments");
	ID(" NILX\r\n", ID_BAD, 4, "Invalid ID arguments");
	ID(" NI\r\n", ID_BAD, 3, "Invalid ID arguments");
	ID(" NIL\r\r\n", ID_BAD, 5, "Invalid ID arguments");
	ID("\r\n", ID_BAD, 0, "Invalid ID arguments");
	ID("  NIL\r\n", ID_BAD, 1, "Invalid ID arguments");
	ID(" \"x\"\r\n", ID_BAD, 1, "Invalid ID arguments");
}

static void
id_list(void)
{
	static struct id_result r;

	ID(" ()\r\n", ID_DONE, 5, NULL);
	ID(" ()\n", ID_DONE, 4, NULL);
	ID(" ( )\r\n", ID_BAD, 2, "Invalid ID arguments");
	ID(" ()x\r\n", ID_BAD, 3, "Invalid ID arguments");
	ID(" (\"name\" \"x\" \"version\" NIL)\r\n", ID_DONE,
	    L(" (\"name\" \"x\" \"version\" NIL)\r\n"), NULL);
	ID(" (\"name\" nil)\r\n", ID_DONE, L(" (\"name\" nil)\r\n"), NULL);
	ID(" (\"\" \"\")\r\n", ID_DONE, L(" (\"\" \"\")\r\n"), NULL);
	id_check(__FILE__, __LINE__, S(" (\"name\" \"x\" \"os\" NIL)\r\n"),
	    &r);
	CHECK_EQ(r.s.nstrings, 4);
	/* A field may not be NIL; two spaces; a missing space. */
	ID(" (NIL \"x\")\r\n", ID_BAD, 2, "Invalid ID arguments");
	ID(" (\"a\"  \"b\")\r\n", ID_BAD, 6, "Invalid ID arguments");
	ID(" (\"a\"\"b\")\r\n", ID_BAD, 5, "Invalid ID arguments");
	ID(" (\"a\" \"b\" )\r\n", ID_BAD, 10, "Invalid ID arguments");
	ID(" (\"a\" x)\r\n", ID_BAD, 6, "Invalid ID arguments");
}

static void
id_odd_strings(void)
{
	ID(" (\"name\")\r\n", ID_BAD, 8, "Invalid ID arguments");
	ID(" (\"a\" \"b\" \"c\")\r\n", ID_BAD, 13, "Invalid ID arguments");
	ID(" (\"a\" \"b\" {1+}\r\nc)\r\n", ID_BAD,
	    L(" (\"a\" \"b\" {1+}\r\nc"), "Invalid ID arguments");
}

static void
id_at_the_limits(void)
{
	static struct id_result r;
	struct buf b = { 0 };
	size_t lits[2 * ID_PAIRS_MAX];
	int nlits = 0, i;

	put_id(&b, ID_PAIRS_MAX, ID_FIELD_MAX, ID_VALUE_MAX, lits, &nlits,
	    "b NOOP\r\n");
	CHECK(nlits > 10);
	id_check(__FILE__, __LINE__, b.p, b.len, &r);
	/* One ID_LITERAL per {n}, just past its header; then DONE. */
	CHECK_EQ(r.nev, nlits + 1);
	for (i = 0; i < nlits && i < r.nev; i++) {
		CHECK_EQ(r.ev[i].st, ID_LITERAL);
		CHECK_EQ(r.ev[i].off, lits[i]);
	}
	CHECK_EQ(last(&r)->st, ID_DONE);
	CHECK_EQ(last(&r)->off, b.len - L("b NOOP\r\n"));
	CHECK_EQ(r.s.nstrings, 2 * ID_PAIRS_MAX);
	CHECK(r.s.error == NULL);
	free(b.p);
}

static void
id_too_many_pairs(void)
{
	static struct id_result r;
	struct buf b = { 0 };
	size_t lits[2 * ID_PAIRS_MAX + 2];
	int nlits = 0;

	/* The 31st field (a quoted string here) is one too many; its
	 * closing quote is taken, so the skipper resumes outside it. */
	put_id(&b, ID_PAIRS_MAX + 1, 3, 4, lits, &nlits, "");
	id_check(__FILE__, __LINE__, b.p, b.len, &r);
	CHECK_EQ(r.nev, nlits + 1);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_STR(r.s.error, "Too many ID fields");
	CHECK_EQ(ID_PAIRS_MAX % 3, 0);	/* so field 31 is K_QUOTED */
	CHECK_EQ((ID_PAIRS_MAX + 1) % 4, 3);	/* and its value NIL */
	CHECK_EQ(last(&r)->off, b.len - L(" NIL)\r\n"));
	free(b.p);
}

static void
id_too_many_as_literal(void)
{
	static struct id_result r;
	struct buf b = { 0 };
	size_t lits[2 * ID_PAIRS_MAX + 2], before;
	int nlits = 0;

	/* 30 pairs, then a 61st string as {0}, {0+}, {1} and {1+}. */
	put_id(&b, ID_PAIRS_MAX, 1, 1, lits, &nlits, "");
	b.len -= L(")\r\n");
	before = b.len;

	puts_(&b, " {0}\r\n");
	id_check(__FILE__, __LINE__, b.p, b.len, &r);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_EQ(last(&r)->off, b.len);
	CHECK_STR(r.s.error, "Too many ID fields");
	CHECK_EQ(r.s.ended_sync, 1);	/* the client sends no more */

	b.len = before;
	puts_(&b, " {0+}\r\n");
	id_check(__FILE__, __LINE__, b.p, b.len, &r);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_EQ(last(&r)->off, b.len);	/* header line end taken */
	CHECK_EQ(r.s.ended_sync, 0);
	CHECK_UEQ(r.s.lit_left, 0);

	b.len = before;
	puts_(&b, " {1}\r\nx \"v\")\r\n");
	id_check(__FILE__, __LINE__, b.p, b.len, &r);
	CHECK_EQ(r.ev[r.nev - 2].st, ID_LITERAL);
	CHECK_EQ(r.ev[r.nev - 2].off, before + L(" {1}\r\n"));
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_EQ(last(&r)->off, before + L(" {1}\r\nx"));
	CHECK_STR(r.s.error, "Too many ID fields");
	CHECK_EQ(r.s.ended_sync, 0);

	b.len = before;
	puts_(&b, " {1+}\r\nx \"v\")\r\n");
	id_check(__FILE__, __LINE__, b.p, b.len, &r);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_EQ(last(&r)->off, before + L(" {1+}\r\nx"));
	free(b.p);
}

/* One string of n octets of kind k as the field (or the value) of a
 * single pair; returns the result. */
static void
one_string(struct id_result *r, int value, enum kind k, size_t n)
{
	struct buf b = { 0 };
	size_t lits[2];
	int nlits = 0;

	puts_(&b, " (");
	if (value) {
		puts_(&b, "\"f\" ");
		put_string(&b, k, n, lits, &nlits);
	} else {
		put_string(&b, k, n, lits, &nlits);
		puts_(&b, " \"v\"");
	}
	puts_(&b, ")\r\n");
	id_check(__FILE__, __LINE__, b.p, b.len, r);
	free(b.p);
}

static void
id_field_limit(void)
{
	static struct id_result r;

	one_string(&r, 0, K_QUOTED, ID_FIELD_MAX);
	CHECK_EQ(last(&r)->st, ID_DONE);
	one_string(&r, 0, K_SYNC, ID_FIELD_MAX);
	CHECK_EQ(last(&r)->st, ID_DONE);
	CHECK_EQ(r.nev, 2);
	one_string(&r, 0, K_NONSYNC, ID_FIELD_MAX);
	CHECK_EQ(last(&r)->st, ID_DONE);

	one_string(&r, 0, K_QUOTED, ID_FIELD_MAX + 1);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_STR(r.s.error, "ID field name too long");
	/* Through its closing quote (2 + 2 escape bytes + the octets). */
	CHECK_EQ(last(&r)->off, L(" (\"\"") + 2 + ID_FIELD_MAX + 1);

	one_string(&r, 0, K_SYNC, ID_FIELD_MAX + 1);
	CHECK_EQ(r.nev, 1);			/* no continuation */
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_STR(r.s.error, "ID field name too long");
	CHECK_EQ(r.s.ended_sync, 1);
	CHECK_EQ(last(&r)->off, L(" ({31}\r\n"));

	one_string(&r, 0, K_NONSYNC, ID_FIELD_MAX + 1);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_EQ(r.s.ended_sync, 0);
	CHECK_UEQ(r.s.lit_left, ID_FIELD_MAX + 1);
	CHECK_EQ(last(&r)->off, L(" ({31+}\r\n"));
}

static void
id_value_limit(void)
{
	static struct id_result r;

	one_string(&r, 1, K_QUOTED, ID_VALUE_MAX);
	CHECK_EQ(last(&r)->st, ID_DONE);
	one_string(&r, 1, K_SYNC, ID_VALUE_MAX);
	CHECK_EQ(last(&r)->st, ID_DONE);
	one_string(&r, 1, K_NONSYNC, ID_VALUE_MAX);
	CHECK_EQ(last(&r)->st, ID_DONE);

	one_string(&r, 1, K_QUOTED, ID_VALUE_MAX + 1);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_STR(r.s.error, "ID value too long");
	one_string(&r, 1, K_SYNC, ID_VALUE_MAX + 1);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_EQ(r.s.ended_sync, 1);
	one_string(&r, 1, K_NONSYNC, ID_VALUE_MAX + 1);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_EQ(r.s.ended_sync, 0);
	CHECK_UEQ(r.s.lit_left, ID_VALUE_MAX + 1);
	id_check(__FILE__, __LINE__, S(" (\"f\" {4294967296+}\r\n"), &r);
	CHECK_EQ(last(&r)->st, ID_BAD);
	CHECK_EQ(last(&r)->off, L(" (\"f\" {4294967296+}\r\n"));
	CHECK(r.s.lit_left > LITERAL_SKIP_MAX);
}

static void
id_quoted_errors(void)
{
	/* A line end inside a quoted string is left for the skipper. */
	ID(" (\"ab\r\n", ID_BAD, 5, "Invalid quoted string");
	ID(" (\"ab\n", ID_BAD, 5, "Invalid quoted string");
	/* Other errors inside one: consumed through its closing quote. */
	ID(" (\"a\\b\" {2+}\r\n\"x)\r\n", ID_BAD, L(" (\"a\\b\""),
	    "Invalid escape in quoted string");
	ID(" (\"a\0b\" \"v\")\r\n", ID_BAD, L(" (\"a\0b\""),
	    "Invalid quoted string");
	ID(" (\"a\\\\\" \"v\")\r\n", ID_DONE, L(" (\"a\\\\\" \"v\")\r\n"),
	    NULL);
	ID(" (\"a\\", ID_MORE, 5, NULL);
}

static void
id_literal_errors(void)
{
	static struct id_result r;

	/* {0} still asks for its continuation. */
	id_check(__FILE__, __LINE__, S(" (\"f\" {0}\r\n)\r\n"), &r);
	CHECK_EQ(r.nev, 2);
	CHECK_EQ(r.ev[0].st, ID_LITERAL);
	CHECK_EQ(r.ev[0].off, L(" (\"f\" {0}\r\n"));
	CHECK_EQ(r.ev[1].st, ID_DONE);
	CHECK_EQ(r.ev[1].off, L(" (\"f\" {0}\r\n)\r\n"));
	ID(" ({}\r\n", ID_BAD, 3, "Invalid literal");
	ID(" ({+}\r\n", ID_BAD, 3, "Invalid literal");
	ID(" ({1x}\r\n", ID_BAD, 4, "Invalid literal");
	ID(" ({1}x\r\n", ID_BAD, 5, "Invalid literal");
	ID(" ({1}\rx\r\n", ID_BAD, 6, "Invalid literal");
	ID(" ({1+x}\r\n", ID_BAD, 5, "Invalid literal");
	ID(" ({1} \r\n", ID_BAD, 5, "Invalid literal");
	ID(" (\"f\" {0+}\r\n)\r\n", ID_DONE, L(" (\"f\" {0+}\r\n)\r\n"), NULL);
	ID(" (\"f\" {01+}\r\nx)\r\n", ID_DONE, L(" (\"f\" {01+}\r\nx)\r\n"),
	    NULL);
}

/*
 * What the session does: ID until DONE or BAD; after BAD, unless the
 * command ended at a {n} header, skip lit_left literal bytes and then the
 * rest of the command.  Returns the offset where the command ended.
 */
static size_t
id_then_skip(const char *in, size_t len, int *bad)
{
	struct imap_id id;
	struct imap_skip sk;
	size_t off = 0, used;
	enum id_status st;

	imap_id_init(&id);
	do {
		st = imap_id(&id, (const unsigned char *)in + off, len - off,
		    &used);
		off += used;
	} while (st == ID_LITERAL);
	*bad = st == ID_BAD;
	if (st != ID_BAD || id.ended_sync)
		return off;
	imap_skip_literal(&sk, id.lit_left);
	if (imap_skip(&sk, (const unsigned char *)in + off, len - off,
	    &used) == SKIP_MORE)
		return len + 1;
	return off + used;
}

static void
id_skip_check(const char *f, int l, const char *in, size_t len, size_t end)
{
	int bad;

	CHECK_EQ_AT(f, l, id_then_skip(in, len, &bad), end);
	CHECK_AT(f, l, bad);
}

#define ID_SKIP(in, end) id_skip_check(__FILE__, __LINE__, S(in), end)

static void
id_bad_then_skip(void)
{
	struct buf b = { 0 };
	size_t lits[2 * ID_PAIRS_MAX + 2], end;
	int nlits = 0, bad;

	/* Over-long field, then a {n+} value whose data looks like lines. */
	ID_SKIP(" (\"0123456789012345678901234567890\" {8+}\r\nb NOOP\r\n)"
	    "\r\nc NOOP\r\n",
	    L(" (\"0123456789012345678901234567890\" {8+}\r\nb NOOP\r\n)\r\n"));
	ID_SKIP(" (\"a\\b\" {8+}\r\nb NOOP\r\n)\r\nc NOOP\r\n",
	    L(" (\"a\\b\" {8+}\r\nb NOOP\r\n)\r\n"));
	ID_SKIP(" (\"a\0b\" {8+}\r\nb NOOP\r\n)\r\nc NOOP\r\n",
	    L(" (\"a\0b\" {8+}\r\nb NOOP\r\n)\r\n"));
	ID_SKIP(" ({31+}\r\n0123456789\r\n0123456789\r\n0123456 \"v\")\r\n"
	    "c NOOP\r\n",
	    L(" ({31+}\r\n0123456789\r\n0123456789\r\n0123456 \"v\")\r\n"));
	ID_SKIP(" ({31}\r\nc NOOP\r\n", L(" ({31}\r\n"));
	ID_SKIP(" (\"f\" \"v\" x {2+}\r\n\r\n)\r\nc NOOP\r\n",
	    L(" (\"f\" \"v\" x {2+}\r\n\r\n)\r\n"));
	ID_SKIP(" (\"ab\r\nc NOOP\r\n", L(" (\"ab\r\n"));

	/* 31 pairs: the 61st string is quoted, the 62nd a {n+} literal. */
	put_id(&b, ID_PAIRS_MAX, 1, 1, lits, &nlits, "");
	b.len -= L(")\r\n");
	puts_(&b, " \"f\" {8+}\r\nb NOOP\r\n)\r\n");
	end = b.len;
	puts_(&b, "c NOOP\r\n");
	CHECK_EQ(id_then_skip(b.p, b.len, &bad), end);
	CHECK(bad);
	/* ...or the 61st a {0+} literal and more after it. */
	b.len = end - L(" \"f\" {8+}\r\nb NOOP\r\n)\r\n");
	puts_(&b, " {0+}\r\n {8+}\r\nb NOOP\r\n)\r\n");
	end = b.len;
	puts_(&b, "c NOOP\r\n");
	CHECK_EQ(id_then_skip(b.p, b.len, &bad), end);
	CHECK(bad);
	free(b.p);
}

void
suite_id(void)
{
	RUN(id_nil);
	RUN(id_list);
	RUN(id_odd_strings);
	RUN(id_at_the_limits);
	RUN(id_too_many_pairs);
	RUN(id_too_many_as_literal);
	RUN(id_field_limit);
	RUN(id_value_limit);
	RUN(id_quoted_errors);
	RUN(id_literal_errors);
	RUN(id_bad_then_skip);
}
