/*
 * Base64 (RFC 4648) and the PLAIN (RFC 4616), LOGIN, OAUTHBEARER
 * (RFC 7628), XOAUTH2 and CRAM-MD5 (RFC 2195) decoders.
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

/* S() as the decoders take it: unsigned bytes and their length. */
#define US(lit)	(const unsigned char *)(lit), (sizeof(lit) - 1)

/* sasl_oauthbearer and sasl_xoauth2 into the session's buffer sizes. */
static enum sasl_result
oauth(const char *msg, size_t len, char *user, char *token)
{
	return sasl_oauthbearer((const unsigned char *)msg, len, user,
	    USER_MAX + 1, token, PASS_MAX + 1);
}

static enum sasl_result
xoauth(const char *msg, size_t len, char *user, char *token)
{
	return sasl_xoauth2((const unsigned char *)msg, len, user,
	    USER_MAX + 1, token, PASS_MAX + 1);
}

static void
sasl_oauthbearer_ok(void)
{
	char user[USER_MAX + 1], token[PASS_MAX + 1];

	/* RFC 7628 section 4.1's example. */
	CHECK_EQ(oauth(S("n,a=user@example.com,\1host=server.example.com\1"
	    "port=143\1auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
	    "\1\1"), user, token), SASL_OK);
	CHECK_STR(user, "user@example.com");
	CHECK_STR(token, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
	/* No a=, no other kvpairs: the user is empty. */
	CHECK_EQ(oauth(S("n,,\1auth=Bearer abc\1\1"), user, token), SASL_OK);
	CHECK_STR(user, "");
	CHECK_STR(token, "abc");
	/* "y" flag; the scheme in any case; more than one space; auth=
	 * before the others; an empty value elsewhere. */
	CHECK_EQ(oauth(S("y,a=u,\1auth=bEARER   a-._~+/b==\1host=\1x=\t\r\n"
	    "\1\1"), user, token), SASL_OK);
	CHECK_STR(user, "u");
	CHECK_STR(token, "a-._~+/b==");
	/* saslname escapes, either case of the hex. */
	CHECK_EQ(oauth(S("n,a=a=2Cb=3Dc=2c=3d,\1auth=Bearer t\1\1"), user,
	    token), SASL_OK);
	CHECK_STR(user, "a,b=c,=");
	CHECK_EQ(oauth(S("n,a=\xc3\xa9 x,\1auth=Bearer t\1\1"), user, token),
	    SASL_OK);
	CHECK_STR(user, "\xc3\xa9 x");
}

static void
sasl_oauthbearer_malformed(void)
{
	static const struct { const char *m; size_t len; } bad[] = {
#define B(lit)	{ lit, sizeof(lit) - 1 }
		B(""),
		B("\1"),			/* the reply to an error */
		B("n,,\1\1"),			/* no auth */
		B("n,,\1host=x\1port=143\1\1"),
		B("p=tls-unique,,\1auth=Bearer t\1\1"),
		B("N,,\1auth=Bearer t\1\1"),
		B("n,\1auth=Bearer t\1\1"),
		B("n,a=u\1auth=Bearer t\1\1"),	/* no closing comma */
		B(",,\1auth=Bearer t\1\1"),
		B("n,,auth=Bearer t\1\1"),	/* no kvsep after gs2 */
		B("n,a=,\1auth=Bearer t\1\1"),	/* empty saslname */
		B("n,b=u,\1auth=Bearer t\1\1"),
		B("n,a=u=,\1auth=Bearer t\1\1"),
		B("n,a=u=2,\1auth=Bearer t\1\1"),
		B("n,a=u=3E,\1auth=Bearer t\1\1"),
		B("n,a=u=2D,\1auth=Bearer t\1\1"),
		B("n,a=u\0v,\1auth=Bearer t\1\1"),
		B("n,,\1auth=Basic dXNlcjpwYXNz\1\1"),
		B("n,,\1auth=Bearertoken\1\1"),
		B("n,,\1auth=Bearer \1\1"),
		B("n,,\1auth=Bearer\1\1"),
		B("n,,\1auth=Bear t\1\1"),
		B("n,,\1auth= Bearer t\1\1"),
		B("n,,\1auth=Bearer t \1\1"),
		B("n,,\1auth=Bearer a b\1\1"),
		B("n,,\1auth=Bearer t\r\n\1\1"),
		B("n,,\1auth=Bearer t=a\1\1"),
		B("n,,\1auth=Bearer t\0k\1\1"),
		B("n,,\1auth=Bearer t\1"),	/* no terminator */
		B("n,,\1auth=Bearer t"),
		B("n,,\1auth=Bearer t\1\1\1"),
		B("n,,\1auth=Bearer t\1\1x"),
		B("n,,\1auth=Bearer t\1auth=Bearer u\1\1"),
		B("n,,\1Auth=Bearer t\1\1"),
		B("n,,\1=x\1auth=Bearer t\1\1"),
		B("n,,\1h0st=x\1auth=Bearer t\1\1"),
		B("n,,\1host\1auth=Bearer t\1\1"),
		B("n,,\1host=a\0b\1auth=Bearer t\1\1"),
		B("n,,\1host=\x80\1auth=Bearer t\1\1"),
		B("n,,\1\1auth=Bearer t\1\1"),
#undef B
	};
	char user[USER_MAX + 1], token[PASS_MAX + 1];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (oauth(bad[i].m, bad[i].len, user, token) != SASL_MALFORMED)
			unit_fail(__FILE__, __LINE__, "accepted \"%s\"",
			    unit_show(bad[i].m, bad[i].len));
		else
			unit_pass();
}

/* sasl_oauthbearer into buffers of the given sizes; the user is kept
 * for a look afterwards. */
static char oauth_user[USER_MAX + 1];

static enum sasl_result
oauth_in(const char *msg, size_t len, size_t usersize, size_t tokensize)
{
	char token[PASS_MAX + 1];

	return sasl_oauthbearer((const unsigned char *)msg, len, oauth_user,
	    usersize, token, tokensize);
}

static void
sasl_oauthbearer_lengths(void)
{
	static char msg[USER_MAX * 3 + PASS_MAX + 64];
	char user[USER_MAX + 1], token[PASS_MAX + 1];
	size_t n, i, k;

	/* Tiny buffers: exactly the field and its NUL fit. */
	CHECK_EQ(oauth_in(S("n,a=ab,\1auth=Bearer cd\1\1"), 3, 3), SASL_OK);
	CHECK_EQ(oauth_in(S("n,a=ab,\1auth=Bearer cd\1\1"), 2, 3),
	    SASL_MALFORMED);
	CHECK_EQ(oauth_in(S("n,a=ab,\1auth=Bearer cd\1\1"), 3, 2),
	    SASL_MALFORMED);
	/* An escape counts once decoded. */
	CHECK_EQ(oauth_in(S("n,a==2C=3D,\1auth=Bearer cd\1\1"), 3, 3),
	    SASL_OK);
	/* USER_MAX escaped commas and a PASS_MAX token fit; one more
	 * octet of either does not. */
	for (i = 0; i < 2; i++) {
		n = 0;
		memcpy(msg + n, "n,a=", 4);
		n += 4;
		for (k = 0; k < USER_MAX + i; k++, n += 3)
			memcpy(msg + n, "=2C", 3);
		memcpy(msg + n, ",\1auth=Bearer ", 14);
		n += 14;
		memset(msg + n, 'T', PASS_MAX);
		n += PASS_MAX;
		memcpy(msg + n, "\1\1", 2);
		n += 2;
		CHECK_EQ(oauth(msg, n, user, token),
		    i == 0 ? SASL_OK : SASL_MALFORMED);
	}
	CHECK_EQ(strlen(user), USER_MAX);
	CHECK_EQ(strlen(token), PASS_MAX);
	n = 0;
	memcpy(msg + n, "n,,\1auth=Bearer ", 16);
	n += 16;
	memset(msg + n, 'T', PASS_MAX + 1);
	n += PASS_MAX + 1;
	memcpy(msg + n, "\1\1", 2);
	n += 2;
	CHECK_EQ(oauth(msg, n, user, token), SASL_MALFORMED);
}

static void
sasl_xoauth2_ok(void)
{
	char user[USER_MAX + 1], token[PASS_MAX + 1];

	/* Google's documented example. */
	CHECK_EQ(xoauth(S("user=someuser@example.com\1auth=Bearer "
	    "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\1\1"), user, token),
	    SASL_OK);
	CHECK_STR(user, "someuser@example.com");
	CHECK_STR(token, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
	CHECK_EQ(xoauth(S("user=a b,c=d\1auth=bearer  t\1\1"), user, token),
	    SASL_OK);
	CHECK_STR(user, "a b,c=d");
	CHECK_STR(token, "t");
	/* Tiny buffers: exactly the field and its NUL fit. */
	CHECK_EQ(sasl_xoauth2(US("user=ab\1auth=Bearer cd\1\1"), user, 3,
	    token, 3), SASL_OK);
	CHECK_EQ(sasl_xoauth2(US("user=ab\1auth=Bearer cd\1\1"), user, 2,
	    token, 3), SASL_MALFORMED);
	CHECK_EQ(sasl_xoauth2(US("user=ab\1auth=Bearer cd\1\1"), user, 3,
	    token, 2), SASL_MALFORMED);
}

static void
sasl_xoauth2_malformed(void)
{
	static const struct { const char *m; size_t len; } bad[] = {
#define B(lit)	{ lit, sizeof(lit) - 1 }
		B(""),
		B("\1"),
		B("user="),
		B("user=\1auth=Bearer t\1\1"),	/* empty user */
		B("usr=u\1auth=Bearer t\1\1"),
		B("User=u\1auth=Bearer t\1\1"),
		B("user=u\1\1"),		/* no auth */
		B("user=u\1\1auth=Bearer t\1\1"),
		B("user=u\1auth=Basic dDp0\1\1"),
		B("user=u\1auth=Bearer\1\1"),
		B("user=u\1auth=Bearer \1\1"),
		B("user=u\1auth=Bearert\1\1"),
		B("user=u\1auth=Bearer t"),	/* no terminator */
		B("user=u\1auth=Bearer t\1"),
		B("user=u\1auth=Bearer t\1\1\1"),
		B("user=u\1auth=Bearer t\1\1x"),
		B("user=u\1auth=Bearer t\1host=x\1\1"),
		B("user=u\0v\1auth=Bearer t\1\1"),
		B("user=u\1auth=Bearer t\0k\1\1"),
		B("user=u\1auth=Bearer t k\1\1"),
		B("user=u\1auth=Bearer t\r\n\1\1"),
		B("user=u\1auth=Bearer t\1\1\0"),
		B("user=u auth=Bearer t\1\1"),
#undef B
	};
	char user[USER_MAX + 1], token[PASS_MAX + 1];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (xoauth(bad[i].m, bad[i].len, user, token) != SASL_MALFORMED)
			unit_fail(__FILE__, __LINE__, "accepted \"%s\"",
			    unit_show(bad[i].m, bad[i].len));
		else
			unit_pass();
}

/* sasl_cram_md5 into the session's buffer sizes. */
static enum sasl_result
cram(const char *msg, size_t len, char *user, char *hex)
{
	return sasl_cram_md5((const unsigned char *)msg, len, user,
	    USER_MAX + 1, hex, 33);
}

static void
sasl_cram_md5_ok(void)
{
	char user[USER_MAX + 1], hex[33];

	/* RFC 2195's example. */
	CHECK_EQ(cram(S("tim b913a602c7eda7a495b4e6e7334d3890"), user, hex),
	    SASL_OK);
	CHECK_STR(user, "tim");
	CHECK_STR(hex, "b913a602c7eda7a495b4e6e7334d3890");
	/* Split at the last space; upper case comes back lower. */
	CHECK_EQ(cram(S("a b c B913A602C7EDA7A495B4E6E7334D389F"), user, hex),
	    SASL_OK);
	CHECK_STR(user, "a b c");
	CHECK_STR(hex, "b913a602c7eda7a495b4e6e7334d389f");
	CHECK_EQ(cram(S("u  0123456789abcdefABCDEF0123456789"), user, hex),
	    SASL_OK);
	CHECK_STR(user, "u ");
	CHECK_STR(hex, "0123456789abcdefabcdef0123456789");
	/* Tiny buffers: exactly the user and its NUL fit. */
	CHECK_EQ(sasl_cram_md5(US("ab b913a602c7eda7a495b4e6e7334d3890"),
	    user, 3, hex, 33), SASL_OK);
	CHECK_EQ(sasl_cram_md5(US("ab b913a602c7eda7a495b4e6e7334d3890"),
	    user, 2, hex, 33), SASL_MALFORMED);
	CHECK_EQ(sasl_cram_md5(US("ab b913a602c7eda7a495b4e6e7334d3890"),
	    user, 3, hex, 32), SASL_MALFORMED);
}

static void
sasl_cram_md5_malformed(void)
{
	static const struct { const char *m; size_t len; } bad[] = {
#define B(lit)	{ lit, sizeof(lit) - 1 }
		B(""),
		B(" "),
		B("tim"),
		B("timb913a602c7eda7a495b4e6e7334d3890"),	/* no space */
		B("b913a602c7eda7a495b4e6e7334d3890"),
		B(" b913a602c7eda7a495b4e6e7334d3890"),	/* no user */
		B("tim b913a602c7eda7a495b4e6e7334d389"),	/* 31 */
		B("tim b913a602c7eda7a495b4e6e7334d38900"),	/* 33 */
		B("tim b913a602c7eda7a495b4e6e7334d389g"),
		B("tim b913a602c7eda7a495b4e6e7334d389 "),
		B("tim b913a602c7eda7a495 4e6e7334d3890"),
		B("tim b913a602c7eda7a495b4e6e7334d3890 "),
		B("tim b913a602c7eda7a495b4e6e7334d389\0"),
		B("tim b913a602c7eda7a495b4e6e7334d3890\r\n"),
		B("t\0m b913a602c7eda7a495b4e6e7334d3890"),
		B("tim -913a602c7eda7a495b4e6e7334d3890"),
#undef B
	};
	char user[USER_MAX + 1], hex[33];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cram(bad[i].m, bad[i].len, user, hex) != SASL_MALFORMED)
			unit_fail(__FILE__, __LINE__, "accepted \"%s\"",
			    unit_show(bad[i].m, bad[i].len));
		else
			unit_pass();
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
	RUN(sasl_oauthbearer_ok);
	RUN(sasl_oauthbearer_malformed);
	RUN(sasl_oauthbearer_lengths);
	RUN(sasl_xoauth2_ok);
	RUN(sasl_xoauth2_malformed);
	RUN(sasl_cram_md5_ok);
	RUN(sasl_cram_md5_malformed);
}
