/*
 * Base64 (RFC 4648) and the PLAIN (RFC 4616) and LOGIN decoders.
 */
#include <stdlib.h>
#include <string.h>

#include "bounds.h"
#include "sasl.h"
#include "unit.h"

static const struct { const char *plain, *b64; } rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void
b64_vectors(void)
{
	unsigned char out[16];
	char enc[16];
	size_t i, n;

	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		n = strlen(rfc4648[i].plain);
		memset(out, 'x', sizeof(out));
		CHECK_EQ(b64_decode(rfc4648[i].b64, strlen(rfc4648[i].b64),
		    out, sizeof(out)), n);
		CHECK_MEM(out, n, rfc4648[i].plain, n);
		CHECK_EQ(b64_encode((const unsigned char *)rfc4648[i].plain, n,
		    enc, sizeof(enc)), strlen(rfc4648[i].b64));
		CHECK_STR(enc, rfc4648[i].b64);
	}
}

static void
b64_exact_sizes(void)
{
	unsigned char out[8];
	char enc[16];

	/* Decoding: exactly the decoded length fits, one less does not. */
	CHECK_EQ(b64_decode(S("Zm9vYmFy"), out, 6), 6);
	CHECK_EQ(b64_decode(S("Zm9vYmFy"), out, 5), -1);
	CHECK_EQ(b64_decode(S("Zm9vYg=="), out, 4), 4);
	CHECK_EQ(b64_decode(S("Zm9vYg=="), out, 3), -1);
	CHECK_EQ(b64_decode(S("Zm9vYmE="), out, 5), 5);
	CHECK_EQ(b64_decode(S("Zm9vYmE="), out, 4), -1);
	CHECK_EQ(b64_decode(S(""), out, 0), 0);
	/* Encoding: the text and its NUL. */
	CHECK_EQ(b64_encode((const unsigned char *)"foob", 4, enc, 9), 8);
	CHECK_STR(enc, "Zm9vYg==");
	CHECK_EQ(b64_encode((const unsigned char *)"foob", 4, enc, 8), -1);
	CHECK_EQ(b64_encode((const unsigned char *)"", 0, enc, 1), 0);
	CHECK_STR(enc, "");
	CHECK_EQ(b64_encode((const unsigned char *)"", 0, enc, 0), -1);
}

static void
b64_invalid(void)
{
	static const char *const bad[] = {
		"Zm9v!mFy", "Zm9 ", "Zm9v\n", "Zm9v\r\n", "Zg=", "Zg",
		"Z===", "====", "=Zg=", "Zg=a", "Z=g=", "Zm8=Zm8=",
		"Zg==Zg==", "Zg==\n", "Zm9-", "Zm9_", "Zm9v\x80\x80\x80\x80",
		"Zm9vY", "Zm9vYg=", "Zm9vYg===", " Zg=",
	};
	unsigned char out[32];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(b64_decode(bad[i], strlen(bad[i]), out, sizeof(out)),
		    -1);
	CHECK_EQ(b64_decode("Zm\0v", 4, out, sizeof(out)), -1);
}

static void
b64_round_trip(void)
{
	unsigned char in[256], out[256];
	char enc[4 * 86 + 1];
	size_t n;
	long e;
	int ok = 1;

	for (n = 0; n < sizeof(in); n++)
		in[n] = (unsigned char)(255 - n);
	for (n = 0; n <= sizeof(in); n++) {
		e = b64_encode(in, n, enc, sizeof(enc));
		ok &= e == (long)((n + 2) / 3 * 4) && enc[e] == '\0';
		ok &= b64_decode(enc, (size_t)e, out, sizeof(out)) == (long)n;
		ok &= memcmp(in, out, n) == 0;
	}
	CHECK(ok);
	/* The whole alphabet. */
	CHECK_EQ(b64_decode(S("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
	    "wxyz0123456789+/"), out, sizeof(out)), 48);
	CHECK_EQ(out[0], 0x00);
	CHECK_EQ(out[1], 0x10);
	CHECK_EQ(out[2], 0x83);
	CHECK_EQ(out[47], 0xbf);
}

/* sasl_plain into buffers the size the session uses. */
static enum sasl_result
plain(const char *msg, size_t len, char *user, char *pass)
{
	return sasl_plain((const unsigned char *)msg, len, user, USER_MAX + 1,
	    pass, PASS_MAX + 1);
}

static void
sasl_plain_ok(void)
{
	char user[USER_MAX + 1], pass[PASS_MAX + 1];

	CHECK_EQ(plain(S("\0user\0pass"), user, pass), SASL_OK);
	CHECK_STR(user, "user");
	CHECK_STR(pass, "pass");
	CHECK_EQ(plain(S("user\0user\0pass"), user, pass), SASL_OK);
	CHECK_STR(user, "user");
	CHECK_STR(pass, "pass");
	/* An empty password is a (wrong) password, not a syntax error. */
	CHECK_EQ(plain(S("\0user\0"), user, pass), SASL_OK);
	CHECK_STR(pass, "");
	CHECK_EQ(plain(S("\0\xc3\xa9\0p w\r\n"), user, pass), SASL_OK);
	CHECK_STR(user, "\xc3\xa9");
	CHECK_STR(pass, "p w\r\n");
}

static void
sasl_plain_authz(void)
{
	char user[USER_MAX + 1], pass[PASS_MAX + 1];

	CHECK_EQ(plain(S("other\0user\0pass"), user, pass), SASL_AUTHZ);
	CHECK_STR(user, "user");
	CHECK_EQ(plain(S("User\0user\0pass"), user, pass), SASL_AUTHZ);
	CHECK_EQ(plain(S("use\0user\0pass"), user, pass), SASL_AUTHZ);
	CHECK_EQ(plain(S("users\0user\0pass"), user, pass), SASL_AUTHZ);
}

static void
sasl_plain_malformed(void)
{
	char user[USER_MAX + 1], pass[PASS_MAX + 1];

	CHECK_EQ(plain(S("\0\0pass"), user, pass), SASL_MALFORMED);
	CHECK_EQ(plain(S("user\0\0pass"), user, pass), SASL_MALFORMED);
	CHECK_EQ(plain(S("userpass"), user, pass), SASL_MALFORMED);
	CHECK_EQ(plain(S("\0userpass"), user, pass), SASL_MALFORMED);
	CHECK_EQ(plain(S("\0user\0pa\0ss"), user, pass), SASL_MALFORMED);
	CHECK_EQ(plain(S("\0user\0pass\0"), user, pass), SASL_MALFORMED);
	CHECK_EQ(plain(S(""), user, pass), SASL_MALFORMED);
	CHECK_EQ(plain(S("\0"), user, pass), SASL_MALFORMED);
	CHECK_EQ(plain(S("\0\0"), user, pass), SASL_MALFORMED);
}

static void
sasl_plain_lengths(void)
{
	static char msg[2 * USER_MAX + PASS_MAX + 16];
	char user[USER_MAX + 1], pass[PASS_MAX + 1];
	size_t n;

	/* RFC 4616: at least 255 octets each; we take USER_MAX and
	 * PASS_MAX, the sizes of the session's buffers less the NUL. */
	n = 0;
	msg[n++] = '\0';
	memset(msg + n, 'u', 255);
	n += 255;
	msg[n++] = '\0';
	memset(msg + n, 'p', 255);
	n += 255;
	CHECK_EQ(plain(msg, n, user, pass), SASL_OK);
	CHECK_EQ(strlen(user), 255);
	CHECK_EQ(strlen(pass), 255);

	/* authzid = authcid, both USER_MAX; password PASS_MAX. */
	n = 0;
	memset(msg + n, 'u', USER_MAX);
	n += USER_MAX;
	msg[n++] = '\0';
	memset(msg + n, 'u', USER_MAX);
	n += USER_MAX;
	msg[n++] = '\0';
	memset(msg + n, 'p', PASS_MAX);
	n += PASS_MAX;
	CHECK_EQ(plain(msg, n, user, pass), SASL_OK);
	CHECK_EQ(strlen(user), USER_MAX);
	CHECK_EQ(strlen(pass), PASS_MAX);
	/* One more password octet does not fit. */
	msg[n++] = 'p';
	CHECK_EQ(plain(msg, n, user, pass), SASL_MALFORMED);

	/* One more user octet does not fit. */
	n = 0;
	msg[n++] = '\0';
	memset(msg + n, 'u', USER_MAX + 1);
	n += USER_MAX + 1;
	msg[n++] = '\0';
	msg[n++] = 'p';
	CHECK_EQ(plain(msg, n, user, pass), SASL_MALFORMED);

	/* Tiny buffers: exactly the field and its NUL fit. */
	CHECK_EQ(sasl_plain((const unsigned char *)"\0ab\0cd", 6, user, 3,
	    pass, 3), SASL_OK);
	CHECK_EQ(sasl_plain((const unsigned char *)"\0ab\0cd", 6, user, 2,
	    pass, 3), SASL_MALFORMED);
	CHECK_EQ(sasl_plain((const unsigned char *)"\0ab\0cd", 6, user, 3,
	    pass, 2), SASL_MALFORMED);
}

static void
sasl_login(void)
{
	char out[8];

	CHECK_EQ(sasl_login_field((const unsigned char *)"alice", 5, out,
	    sizeof(out)), SASL_OK);
	CHECK_STR(out, "alice");
	CHECK_EQ(sasl_login_field((const unsigned char *)"", 0, out,
	    sizeof(out)), SASL_OK);
	CHECK_STR(out, "");
	CHECK_EQ(sasl_login_field((const unsigned char *)"al\0ce", 5, out,
	    sizeof(out)), SASL_MALFORMED);
	CHECK_EQ(sasl_login_field((const unsigned char *)"1234567", 7, out,
	    sizeof(out)), SASL_OK);
	CHECK_EQ(sasl_login_field((const unsigned char *)"12345678", 8, out,
	    sizeof(out)), SASL_MALFORMED);
}

void
suite_sasl(void)
{
	RUN(b64_vectors);
	RUN(b64_exact_sizes);
	RUN(b64_invalid);
	RUN(b64_round_trip);
	RUN(sasl_plain_ok);
	RUN(sasl_plain_authz);
	RUN(sasl_plain_malformed);
	RUN(sasl_plain_lengths);
	RUN(sasl_login);
}
