/*
 * imap_parse(), imap_arg_copy(), imap_name_is(), imap_tag_char().
 *
 * Every command is parsed whole and as each of its prefixes, each copied
 * into a buffer of exactly its size so that ASan catches a read past the
 * end: the session re-parses from the start as bytes arrive, so a prefix
 * must never be answered differently from the whole.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parse.h"
#include "unit.h"

static enum imap_status
parse_exact(const char *in, size_t len, struct imap_cmd *cmd)
{
	unsigned char *b = malloc(len > 0 ? len : 1);
	enum imap_status st;

	if (b == NULL)
		abort();
	memcpy(b, in, len);
	st = imap_parse(b, len, cmd);
	free(b);
	return st;
}

static const char *
st_name(enum imap_status st)
{
	switch (st) {
	case IMAP_MORE:
		return "MORE";
	case IMAP_LITERAL:
		return "LITERAL";
	case IMAP_DONE:
		return "DONE";
	case IMAP_BAD:
		return "BAD";
	}
	return "?";
}

/*
 * Is the answer for the k-byte prefix consistent with the whole's?  Before
 * the whole's line end: MORE or LITERAL, or the whole's own BAD once its
 * error is visible (and from then on).  Past a DONE's end: the same DONE.
 */
static int
prefix_ok(enum imap_status whole, const struct imap_cmd *w, size_t k,
    enum imap_status st, const struct imap_cmd *c, int *seen_bad)
{
	int i;

	if (whole == IMAP_DONE && k >= w->end) {
		if (st != IMAP_DONE || c->end != w->end || c->nargs != w->nargs)
			return 0;
		for (i = 0; i < w->nargs; i++)
			if (c->arg[i].off != w->arg[i].off ||
			    c->arg[i].len != w->arg[i].len ||
			    c->arg[i].type != w->arg[i].type)
				return 0;
		return 1;
	}
	if (st == IMAP_BAD) {
		*seen_bad = 1;
		return whole == IMAP_BAD && strcmp(c->error, w->error) == 0;
	}
	return !*seen_bad && (st == IMAP_MORE || st == IMAP_LITERAL);
}

static enum imap_status
parse_feed(const char *f, int l, const char *in, size_t len,
    struct imap_cmd *cmd)
{
	struct imap_cmd c;
	enum imap_status whole, st;
	int seen_bad = 0;
	size_t k;

	whole = parse_exact(in, len, cmd);
	for (k = 0; k < len; k++) {
		st = parse_exact(in, k, &c);
		if (!prefix_ok(whole, cmd, k, st, &c, &seen_bad)) {
			unit_fail(f, l, "prefix of %zu bytes \"%s\": %s (%s), "
			    "whole: %s (%s)", k, unit_show(in, k), st_name(st),
			    st == IMAP_BAD ? c.error : "", st_name(whole),
			    whole == IMAP_BAD ? cmd->error : "");
			return whole;
		}
	}
	unit_pass();
	return whole;
}

#define PARSE(in, cmd)	parse_feed(__FILE__, __LINE__, S(in), cmd)

/* Argument i of cmd, unescaped; "<-1>" when imap_arg_copy refuses it. */
static const char *
arg(const char *in, const struct imap_cmd *cmd, int i)
{
	static char out[8192];

	if (imap_arg_copy((const unsigned char *)in, &cmd->arg[i], out,
	    sizeof(out)) < 0)
		return "<-1>";
	return out;
}

static void
parse_simple_command(void)
{
	static const char in[] = "a1 NOOP\r\n";
	struct imap_cmd c;

	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK_EQ(c.tag_len, 2);
	CHECK_EQ(c.tag_ok, 1);
	CHECK_EQ(c.name_off, 3);
	CHECK_EQ(c.name_len, 4);
	CHECK_EQ(c.nargs, 0);
	CHECK_EQ(c.end, 9);
	CHECK(c.error == NULL);
	CHECK(imap_name_is((const unsigned char *)in, &c, "NOOP"));
	CHECK(!imap_name_is((const unsigned char *)in, &c, "NOO"));
	CHECK(!imap_name_is((const unsigned char *)in, &c, "NOOPS"));
	CHECK(!imap_name_is((const unsigned char *)in, &c, "LOGIN"));
}

static void
parse_name_case_insensitive(void)
{
	static const char in[] = "x capaBILITY\r\n";
	struct imap_cmd c;

	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK(imap_name_is((const unsigned char *)in, &c, "CAPABILITY"));
	CHECK_EQ(c.end, sizeof(in) - 1);
}

static void
parse_tag_chars(void)
{
	static const char in[] = "Az09._- NOOP\r\n";
	struct imap_cmd c;
	int ch, n = 0;

	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK_EQ(c.tag_len, 7);
	CHECK_EQ(c.tag_ok, 1);
	for (ch = 0; ch < 256; ch++)
		n += imap_tag_char(ch);
	CHECK_EQ(n, 26 + 26 + 10 + 3);
	CHECK(imap_tag_char('.') && imap_tag_char('_') && imap_tag_char('-'));
	CHECK(!imap_tag_char('+') && !imap_tag_char('*') &&
	    !imap_tag_char(0x80) && !imap_tag_char(' ') && !imap_tag_char(0));
}

static void
parse_tag_invalid_char(void)
{
	static const char bad[] = "+*!\"#$%&'()/:;<=>?@[\\]^`{|}~"
	    "\x7f\x80\xff\x01\t";
	char in[32];
	struct imap_cmd c;
	size_t i;
	int n;

	for (i = 0; i < sizeof(bad) - 1; i++) {
		n = snprintf(in, sizeof(in), "a%cb NOOP\r\n", bad[i]);
		CHECK_EQ(parse_feed(__FILE__, __LINE__, in, (size_t)n, &c),
		    IMAP_BAD);
		CHECK_STR(c.error, "Invalid tag");
		CHECK_EQ(c.tag_ok, 0);
	}
}

static void
parse_tag_length(void)
{
	struct imap_cmd c;

	CHECK_EQ(PARSE("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa NOOP\r\n", &c),
	    IMAP_DONE);
	CHECK_EQ(c.tag_len, 32);
	CHECK_EQ(c.tag_ok, 1);
	CHECK_EQ(PARSE("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa NOOP\r\n", &c),
	    IMAP_BAD);
	CHECK_STR(c.error, "Invalid tag");
	CHECK_EQ(c.tag_ok, 0);
	/* Known bad at its 33rd byte, before any line end. */
	CHECK_EQ(parse_exact(S("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), &c),
	    IMAP_BAD);
	CHECK_EQ(parse_exact(S("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), &c),
	    IMAP_MORE);
}

static void
parse_empty_line(void)
{
	struct imap_cmd c;

	CHECK_EQ(PARSE("\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Empty command line");
	CHECK_EQ(c.tag_ok, 0);
	CHECK_EQ(PARSE("\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Empty command line");
	CHECK_EQ(PARSE(" NOOP\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Invalid tag");
	/* A lone CR may yet be a CR LF, or a CR and a tag byte. */
	CHECK_EQ(parse_exact(S("\r"), &c), IMAP_MORE);
	CHECK_EQ(PARSE("\rX\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Invalid tag");
	CHECK_EQ(parse_exact("", 0, &c), IMAP_MORE);
}

static void
parse_missing_command(void)
{
	struct imap_cmd c;

	CHECK_EQ(PARSE("a \r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Missing command");
	CHECK_EQ(c.tag_ok, 1);
	CHECK_EQ(c.tag_len, 1);
	CHECK_EQ(PARSE("a  NOOP\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Missing command");
	/* A tag alone: no space after it. */
	CHECK_EQ(PARSE("abc\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Invalid tag");
}

static void
parse_command_name_length(void)
{
	struct imap_cmd c;

	CHECK_EQ(PARSE("a AAAAAAAAAAAAAAAA\r\n", &c), IMAP_DONE);
	CHECK_EQ(c.name_len, 16);
	/* No command is longer than CMDNAME_MAX: the name is reported
	 * (MORE with name_len past the limit) so that the session rejects
	 * it without waiting for the line end. */
	CHECK_EQ(PARSE("a AAAAAAAAAAAAAAAAA\r\n", &c), IMAP_MORE);
	CHECK_EQ(c.name_len, CMDNAME_MAX + 1);
	CHECK_EQ(c.name_off, 2);
	CHECK_EQ(parse_exact(S("a AAAAAAAAAAAAAAAAA"), &c), IMAP_MORE);
	CHECK_EQ(c.name_len, CMDNAME_MAX + 1);
	/* While the name is still short, it is not reported. */
	CHECK_EQ(parse_exact(S("a AUTHENTICATE"), &c), IMAP_MORE);
	CHECK_EQ(c.name_len, 0);
	CHECK_EQ(parse_exact(S("a AUTHENTICATE "), &c), IMAP_MORE);
	CHECK_EQ(c.name_len, 12);
}

static void
parse_atoms(void)
{
	static const char in[] = "a LOGIN user pass\r\n";
	static const char utf8[] = "b LOGIN \xc3\xa9l\xc3\xa8ve p]}+\r\n";
	struct imap_cmd c;

	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK_EQ(c.nargs, 2);
	CHECK_EQ(c.arg[0].type, ARG_ATOM);
	CHECK_EQ(c.arg[0].off, 8);
	CHECK_EQ(c.arg[0].len, 4);
	CHECK_EQ(c.arg[1].type, ARG_ATOM);
	CHECK_EQ(c.arg[1].off, 13);
	CHECK_EQ(c.arg[1].len, 4);
	CHECK_EQ(c.end, 19);
	CHECK_STR(arg(in, &c, 0), "user");
	CHECK_STR(arg(in, &c, 1), "pass");

	CHECK_EQ(PARSE(utf8, &c), IMAP_DONE);
	CHECK_EQ(c.nargs, 2);
	CHECK_STR(arg(utf8, &c, 0), "\xc3\xa9l\xc3\xa8ve");
	CHECK_STR(arg(utf8, &c, 1), "p]}+");
}

static void
parse_atom_invalid(void)
{
	static const char *const bad[] = {
		"a LOGIN u(x p\r\n", "a LOGIN u)x p\r\n", "a LOGIN %\r\n",
		"a LOGIN u* p\r\n", "a LOGIN \x7f\r\n", "a LOGIN u\tp\r\n",
		"a LOGIN u\\p x\r\n", "a LOGIN u{1}\r\n", "a NOOP\rx\r\n",
		"a LOGIN u\"p\" x\r\n", "a LOGIN \"u\"x\r\n",
	};
	struct imap_cmd c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(parse_feed(__FILE__, __LINE__, bad[i], strlen(bad[i]),
		    &c), IMAP_BAD);
		CHECK_STR(c.error, "Invalid characters in arguments");
	}
}

static void
parse_quoted(void)
{
	static const char in[] = "a LOGIN \"us er\" \"p\\\"a\\\\ss\"\r\n";
	static const char empty[] = "a LOGIN \"\" \"{5}\"\r\n";
	struct imap_cmd c;

	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK_EQ(c.nargs, 2);
	CHECK_EQ(c.arg[0].type, ARG_QUOTED);
	CHECK_EQ(c.arg[0].off, 9);
	CHECK_EQ(c.arg[0].len, 5);
	CHECK_EQ(c.arg[1].type, ARG_QUOTED);
	CHECK_EQ(c.arg[1].len, 8);		/* raw, still escaped */
	CHECK_STR(arg(in, &c, 0), "us er");
	CHECK_STR(arg(in, &c, 1), "p\"a\\ss");
	CHECK_EQ(c.end, sizeof(in) - 1);

	CHECK_EQ(PARSE(empty, &c), IMAP_DONE);
	CHECK_EQ(c.arg[0].len, 0);
	CHECK_STR(arg(empty, &c, 0), "");
	CHECK_STR(arg(empty, &c, 1), "{5}");
	CHECK_EQ(c.lit_hdr_end, 0);

	/* A prefix ending on the backslash waits for the escaped byte. */
	CHECK_EQ(parse_exact(S("a LOGIN \"p\\"), &c), IMAP_MORE);
}

static void
parse_quoted_bad(void)
{
	struct imap_cmd c;

	CHECK_EQ(PARSE("a LOGIN \"a\\b\" x\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Invalid escape in quoted string");
	CHECK_EQ(PARSE("a LOGIN \"abc\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Invalid quoted string");
	CHECK_EQ(PARSE("a LOGIN \"abc\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Invalid quoted string");
	CHECK_EQ(PARSE("a LOGIN \"a\0c\" x\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Invalid quoted string");
	CHECK_EQ(PARSE("a LOGIN \"a\\\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Invalid escape in quoted string");
}

static void
parse_literal_sync(void)
{
	static const char in[] = "a LOGIN {4}\r\nuser pass\r\n";
	struct imap_cmd c;

	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK_EQ(c.nargs, 2);
	CHECK_EQ(c.arg[0].type, ARG_LITERAL);
	CHECK_EQ(c.arg[0].off, 13);
	CHECK_EQ(c.arg[0].len, 4);
	CHECK_STR(arg(in, &c, 0), "user");
	CHECK_STR(arg(in, &c, 1), "pass");
	CHECK_EQ(c.end, sizeof(in) - 1);

	/* Header incomplete: MORE; complete, data missing: LITERAL. */
	CHECK_EQ(parse_exact(in, 12, &c), IMAP_MORE);
	CHECK_EQ(parse_exact(in, 13, &c), IMAP_LITERAL);
	CHECK_UEQ(c.lit_size, 4);
	CHECK_EQ(c.lit_sync, 1);
	CHECK_EQ(c.lit_hdr_end, 13);
	CHECK_EQ(parse_exact(in, 16, &c), IMAP_LITERAL);
	CHECK_EQ(c.lit_hdr_end, 13);
	/* Data complete, line not: MORE, header still described. */
	CHECK_EQ(parse_exact(in, 17, &c), IMAP_MORE);
	CHECK_EQ(c.lit_hdr_end, 13);
	CHECK_UEQ(c.lit_size, 4);
}

static void
parse_literal_nonsync(void)
{
	static const char in[] = "a LOGIN {4+}\r\nuser {2+}\r\npw\r\n";
	struct imap_cmd c;

	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK_EQ(c.nargs, 2);
	CHECK_STR(arg(in, &c, 0), "user");
	CHECK_STR(arg(in, &c, 1), "pw");
	CHECK_EQ(c.arg[1].type, ARG_LITERAL);
	CHECK_EQ(c.end, sizeof(in) - 1);
	CHECK_EQ(c.lit_sync, 0);
	CHECK_UEQ(c.lit_size, 2);

	/* A {n+} never asks for a continuation: MORE while data is due. */
	CHECK_EQ(parse_exact(in, 14, &c), IMAP_MORE);
	CHECK_UEQ(c.lit_size, 4);
	CHECK_EQ(c.lit_sync, 0);
	CHECK_EQ(c.lit_hdr_end, 14);
	CHECK_EQ(parse_exact(in, 17, &c), IMAP_MORE);
	CHECK_EQ(c.lit_hdr_end, 14);
}

static void
parse_literal_empty(void)
{
	static const char sync[] = "a LOGIN user {0}\r\n\r\n";
	static const char nonsync[] = "a LOGIN user {0+}\r\n\r\nb NOOP\r\n";
	struct imap_cmd c;

	/* An empty password is "", and the line end after it is not eaten
	 * as its data (nginx's {0} consumed one byte). */
	CHECK_EQ(PARSE(sync, &c), IMAP_DONE);
	CHECK_EQ(c.nargs, 2);
	CHECK_EQ(c.arg[1].type, ARG_LITERAL);
	CHECK_EQ(c.arg[1].len, 0);
	CHECK_STR(arg(sync, &c, 1), "");
	CHECK_EQ(c.end, sizeof(sync) - 1);
	/* The client waits for "+" even before sending {0}'s nothing. */
	CHECK_EQ(parse_exact(sync, 18, &c), IMAP_LITERAL);
	CHECK_UEQ(c.lit_size, 0);
	CHECK_EQ(c.lit_hdr_end, 18);
	CHECK_EQ(parse_exact(sync, 19, &c), IMAP_MORE);

	CHECK_EQ(PARSE(nonsync, &c), IMAP_DONE);
	CHECK_STR(arg(nonsync, &c, 1), "");
	CHECK_EQ(c.end, 21);
	CHECK_EQ(parse_exact(nonsync, 19, &c), IMAP_MORE);
}

static void
parse_literal_too_large(void)
{
	static const char *const big[] = {
		"a LOGIN {4294967296}\r\n",
		"a LOGIN {4294967296+}\r\n",
		"a LOGIN {18446744073709551615}\r\n",
		"a LOGIN {18446744073709551616}\r\n",
		"a LOGIN {99999999999999999999+}\r\n",
		"a LOGIN {123456789012345678901234567890}\r\n",
	};
	struct imap_cmd c;
	size_t i;

	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		CHECK_EQ(parse_feed(__FILE__, __LINE__, big[i], strlen(big[i]),
		    &c), IMAP_BAD);
		CHECK_STR(c.error, "Literal too large");
		CHECK_UEQ(c.lit_size, UINT64_MAX);
		CHECK_EQ(c.lit_sync, strchr(big[i], '+') == NULL);
	}
	/* The largest count that may be skipped is no error here. */
	CHECK_EQ(PARSE("a LOGIN {4294967295}\r\n", &c), IMAP_LITERAL);
	CHECK_UEQ(c.lit_size, 4294967295u);
	CHECK_EQ(PARSE("a LOGIN {4294967295+}\r\n", &c), IMAP_MORE);
	CHECK_UEQ(c.lit_size, 4294967295u);
	CHECK_EQ(c.lit_sync, 0);
}

static void
parse_literal_leading_zeros(void)
{
	static const char in[] = "a LOGIN {000000000000000000000000005+}\r\n"
	    "hello x\r\n";
	struct imap_cmd c;

	/* number = 1*DIGIT: leading zeros do not make a count large. */
	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK_STR(arg(in, &c, 0), "hello");
	CHECK_EQ(PARSE("a LOGIN {00000000000000000000004294967296}\r\n", &c),
	    IMAP_BAD);
	CHECK_STR(c.error, "Literal too large");
}

static void
parse_literal_bad_header(void)
{
	static const struct { const char *in, *error; } t[] = {
		{ "a LOGIN {4}x\r\n", "Literal not at end of line" },
		{ "a LOGIN {4} \r\n", "Literal not at end of line" },
		{ "a LOGIN {4}\rx\r\n", "Literal not at end of line" },
		{ "a LOGIN {4} x {2}\r\nab\r\n", "Literal not at end of line" },
		{ "a LOGIN {}\r\n", "Invalid literal" },
		{ "a LOGIN {+}\r\n", "Invalid literal" },
		{ "a LOGIN {+4}\r\n", "Invalid literal" },
		{ "a LOGIN {4+x}\r\n", "Invalid literal" },
		{ "a LOGIN {4++}\r\n", "Invalid literal" },
		{ "a LOGIN {4 }\r\n", "Invalid literal" },
		{ "a LOGIN {-1}\r\n", "Invalid literal" },
		{ "a LOGIN {4}}\r\n", "Literal not at end of line" },
	};
	struct imap_cmd c;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		CHECK_EQ(parse_feed(__FILE__, __LINE__, t[i].in,
		    strlen(t[i].in), &c), IMAP_BAD);
		CHECK_STR(c.error, t[i].error);
	}
}

static void
parse_nul(void)
{
	static const char lit[] = "a LOGIN {3}\r\na\0b x\r\n";
	struct imap_cmd c;
	char out[16];

	CHECK_EQ(PARSE("a NOOP\0\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "NUL byte in command");
	CHECK_EQ(PARSE("a LOGIN u\0p x\r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "NUL byte in command");
	CHECK_EQ(PARSE("a LOGIN \0\r\n", &c), IMAP_BAD);
	CHECK_EQ(PARSE("a\0 NOOP\r\n", &c), IMAP_BAD);
	CHECK_EQ(PARSE("a NO\0OP\r\n", &c), IMAP_BAD);
	/* Inside a literal a NUL is data; the copy refuses it. */
	CHECK_EQ(PARSE(lit, &c), IMAP_DONE);
	CHECK_EQ(c.arg[0].len, 3);
	CHECK_EQ(imap_arg_copy((const unsigned char *)lit, &c.arg[0], out,
	    sizeof(out)), -1);
	CHECK_STR(arg(lit, &c, 1), "x");
}

static void
parse_pipelined(void)
{
	static const char in[] = "a NOOP\r\nb CAPABILITY\r\n";
	static const char lit[] = "a LOGIN {1+}\r\nx y\r\nb NOOP\r\n";
	static const char lf[] = "a NOOP\nb LOGIN u p\nc";
	struct imap_cmd c;

	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK_EQ(c.end, 8);
	CHECK_EQ(parse_feed(__FILE__, __LINE__, in + 8, sizeof(in) - 9, &c),
	    IMAP_DONE);
	CHECK_EQ(c.end, 14);
	CHECK(imap_name_is((const unsigned char *)in + 8, &c, "CAPABILITY"));

	CHECK_EQ(PARSE(lit, &c), IMAP_DONE);
	CHECK_EQ(c.end, 19);
	CHECK_STR(arg(lit, &c, 0), "x");
	CHECK_STR(arg(lit, &c, 1), "y");
	CHECK_EQ(parse_feed(__FILE__, __LINE__, lit + 19, sizeof(lit) - 20,
	    &c), IMAP_DONE);
	CHECK_EQ(c.end, 8);

	CHECK_EQ(PARSE(lf, &c), IMAP_DONE);
	CHECK_EQ(c.end, 7);
	CHECK_EQ(parse_feed(__FILE__, __LINE__, lf + 7, sizeof(lf) - 8, &c),
	    IMAP_DONE);
	CHECK_EQ(c.end, 12);
	CHECK_STR(arg(lf + 7, &c, 1), "p");
}

static void
parse_line_ends(void)
{
	static const char lf[] = "a LOGIN {1}\nx y\n";
	struct imap_cmd c;

	CHECK_EQ(PARSE("a NOOP\n", &c), IMAP_DONE);
	CHECK_EQ(c.end, 7);
	CHECK_EQ(PARSE("a NOOP\r\n", &c), IMAP_DONE);
	CHECK_EQ(c.end, 8);
	CHECK_EQ(PARSE(lf, &c), IMAP_DONE);
	CHECK_EQ(c.lit_hdr_end, 12);
	CHECK_STR(arg(lf, &c, 0), "x");
	CHECK_EQ(c.end, sizeof(lf) - 1);
	/* A CR at the end of the bytes so far may still become CR LF. */
	CHECK_EQ(parse_exact(S("a NOOP\r"), &c), IMAP_MORE);
	CHECK_EQ(parse_exact(S("a LOGIN {1}\r"), &c), IMAP_MORE);
	CHECK_EQ(PARSE("a NOOP\r\r\n", &c), IMAP_BAD);
}

static void
parse_trailing_space(void)
{
	static const char in[] = "a LOGIN u p \r\n";
	struct imap_cmd c;

	CHECK_EQ(PARSE("a NOOP \r\n", &c), IMAP_DONE);
	CHECK_EQ(c.nargs, 0);
	CHECK_EQ(c.end, 9);
	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	CHECK_EQ(c.nargs, 2);
	CHECK_STR(arg(in, &c, 1), "p");
	CHECK_EQ(PARSE("a NOOP \n", &c), IMAP_DONE);
	CHECK_EQ(PARSE("a NOOP  \r\n", &c), IMAP_BAD);
	CHECK_STR(c.error, "Invalid characters in arguments");
	CHECK_EQ(PARSE("a LOGIN u  p\r\n", &c), IMAP_BAD);
}

static void
parse_too_many_args(void)
{
	static const char max[] = "a X 1 2 3 4 5 6 7 8\r\n";
	static const char over[] = "a X 1 2 3 4 5 6 7 8 9\r\n";
	struct imap_cmd c;

	CHECK_EQ(IMAP_ARGS_MAX, 8);
	CHECK_EQ(PARSE(max, &c), IMAP_DONE);
	CHECK_EQ(c.nargs, IMAP_ARGS_MAX);
	CHECK_STR(arg(max, &c, 7), "8");
	CHECK_EQ(PARSE(over, &c), IMAP_BAD);
	CHECK_STR(c.error, "Too many arguments");
	/* A trailing space after the last one allowed is no argument. */
	CHECK_EQ(PARSE("a X 1 2 3 4 5 6 7 8 \r\n", &c), IMAP_DONE);
	CHECK_EQ(c.nargs, IMAP_ARGS_MAX);
}

static void
parse_arg_copy(void)
{
	static const char in[] = "a LOGIN abcd \"a\\\"b\"\r\n";
	struct imap_cmd c;
	char out[8];

	CHECK_EQ(PARSE(in, &c), IMAP_DONE);
	memset(out, 'x', sizeof(out));
	CHECK_EQ(imap_arg_copy((const unsigned char *)in, &c.arg[0], out, 5),
	    4);
	CHECK_STR(out, "abcd");
	CHECK_EQ(imap_arg_copy((const unsigned char *)in, &c.arg[0], out, 4),
	    -1);
	CHECK_EQ(imap_arg_copy((const unsigned char *)in, &c.arg[1], out, 4),
	    3);
	CHECK_STR(out, "a\"b");
	CHECK_EQ(imap_arg_copy((const unsigned char *)in, &c.arg[1], out, 3),
	    -1);
	/* No room even for the NUL: nothing is written. */
	CHECK_EQ(PARSE("a LOGIN \"\" x\r\n", &c), IMAP_DONE);
	out[0] = 'x';
	CHECK_EQ(imap_arg_copy((const unsigned char *)"a LOGIN \"\" x\r\n",
	    &c.arg[0], out, 0), -1);
	CHECK_EQ(out[0], 'x');
	CHECK_EQ(imap_arg_copy((const unsigned char *)"a LOGIN \"\" x\r\n",
	    &c.arg[0], out, 1), 0);
	CHECK_EQ(out[0], '\0');
}

/* Where a rejected command's skipping starts: past every whole argument,
 * a literal's data included (issue 9: never rescanned as commands). */
static void
parse_resume(void)
{
	struct imap_cmd c;

	CHECK_EQ(PARSE("a LOGIN \x01\r\n", &c), IMAP_BAD);
	CHECK_EQ(c.resume, 0);
	CHECK_EQ(PARSE("a LOGIN {10}\r\nx LOGOUT\r\n\x01\r\n", &c), IMAP_BAD);
	CHECK_EQ(c.resume, 24);
	CHECK_EQ(PARSE("a LOGIN {10}\r\nx LOGOUT\r\n {9000}\r\n", &c),
	    IMAP_LITERAL);
	CHECK_EQ(c.resume, 24);
	CHECK_EQ(PARSE("a LOGIN alice \"x\\q\"\r\n", &c), IMAP_BAD);
	CHECK_EQ(c.resume, 13);
	CHECK_EQ(PARSE("a LOGIN {3+}\r\nabc {5000+}\r\nxy", &c), IMAP_MORE);
	CHECK_EQ(c.resume, 17);
	CHECK_EQ(PARSE("a LOGIN alice secret\r\n", &c), IMAP_DONE);
	CHECK_EQ(c.resume, 20);
}

void
suite_parse(void)
{
	RUN(parse_simple_command);
	RUN(parse_name_case_insensitive);
	RUN(parse_tag_chars);
	RUN(parse_tag_invalid_char);
	RUN(parse_tag_length);
	RUN(parse_empty_line);
	RUN(parse_missing_command);
	RUN(parse_command_name_length);
	RUN(parse_atoms);
	RUN(parse_atom_invalid);
	RUN(parse_quoted);
	RUN(parse_quoted_bad);
	RUN(parse_literal_sync);
	RUN(parse_literal_nonsync);
	RUN(parse_literal_empty);
	RUN(parse_literal_too_large);
	RUN(parse_literal_leading_zeros);
	RUN(parse_literal_bad_header);
	RUN(parse_nul);
	RUN(parse_pipelined);
	RUN(parse_line_ends);
	RUN(parse_trailing_space);
	RUN(parse_too_many_args);
	RUN(parse_arg_copy);
	RUN(parse_resume);
}
