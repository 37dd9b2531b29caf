/*
 * CRAM-MD5: HMAC-MD5 through the dlopen()ed GnuTLS against RFC 2195's
 * example and RFC 2202's vectors, and the challenge's form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounds.h"
#include "cram.h"
#include "unit.h"

#define RFC2195_CHALLENGE	"<1896.697170952@postoffice.reston.mci.net>"
#define RFC2195_SECRET		"tanstaaftanstaaf"
#define RFC2195_DIGEST		"b913a602c7eda7a495b4e6e7334d3890"

static void
cram_rfc2195(void)
{
	char key[81];

	CHECK_EQ(cram_md5_verify(RFC2195_SECRET, RFC2195_CHALLENGE,
	    RFC2195_DIGEST), 1);
	/* RFC 2202 HMAC-MD5 test cases 2 and 6 (a key longer than a
	 * block). */
	CHECK_EQ(cram_md5_verify("Jefe", "what do ya want for nothing?",
	    "750c783e6ab0b503eaa86e310a5db738"), 1);
	memset(key, 0xaa, 80);
	key[80] = '\0';
	CHECK_EQ(cram_md5_verify(key,
	    "Test Using Larger Than Block-Size Key - Hash Key First",
	    "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"), 1);
	/* An empty secret is still a secret. */
	CHECK_EQ(cram_md5_verify("", "", "74e6f7298a9c2d168935f58c001bad88"),
	    1);
}

static void
cram_wrong(void)
{
	CHECK_EQ(cram_md5_verify("tanstaaftanstaag", RFC2195_CHALLENGE,
	    RFC2195_DIGEST), 0);
	CHECK_EQ(cram_md5_verify("", RFC2195_CHALLENGE, RFC2195_DIGEST), 0);
	CHECK_EQ(cram_md5_verify(RFC2195_SECRET,
	    "<1897.697170952@postoffice.reston.mci.net>", RFC2195_DIGEST), 0);
	CHECK_EQ(cram_md5_verify(RFC2195_SECRET, "", RFC2195_DIGEST), 0);
	/* The digest: one digit off at either end, upper case (the
	 * contract is lower case), too short, too long, empty. */
	CHECK_EQ(cram_md5_verify(RFC2195_SECRET, RFC2195_CHALLENGE,
	    "c913a602c7eda7a495b4e6e7334d3890"), 0);
	CHECK_EQ(cram_md5_verify(RFC2195_SECRET, RFC2195_CHALLENGE,
	    "b913a602c7eda7a495b4e6e7334d3891"), 0);
	CHECK_EQ(cram_md5_verify(RFC2195_SECRET, RFC2195_CHALLENGE,
	    "B913A602C7EDA7A495B4E6E7334D3890"), 0);
	CHECK_EQ(cram_md5_verify(RFC2195_SECRET, RFC2195_CHALLENGE,
	    "b913a602c7eda7a495b4e6e7334d389"), 0);
	CHECK_EQ(cram_md5_verify(RFC2195_SECRET, RFC2195_CHALLENGE,
	    RFC2195_DIGEST "0"), 0);
	CHECK_EQ(cram_md5_verify(RFC2195_SECRET, RFC2195_CHALLENGE, ""), 0);
}

/* Parse "<random.time@name>"; 0 if out has exactly that form. */
static int
parse_challenge(const char *out, unsigned long *r, long *t, char *name,
    size_t namesize)
{
	const char *dot, *at;
	char *end;
	size_t len = strlen(out);

	if (len < 5 || out[0] != '<' || out[len - 1] != '>' ||
	    (dot = strchr(out, '.')) == NULL ||
	    (at = strchr(dot, '@')) == NULL ||
	    out[1] < '0' || out[1] > '9' || dot[1] < '0' || dot[1] > '9')
		return -1;
	*r = strtoul(out + 1, &end, 10);
	if (end != dot || *r > 0xffffffffUL)
		return -1;
	*t = strtol(dot + 1, &end, 10);
	if (end != at || (size_t)(out + len - 1 - at - 1) >= namesize)
		return -1;
	memcpy(name, at + 1, (size_t)(out + len - 1 - at - 1));
	name[out + len - 1 - at - 1] = '\0';
	return 0;
}

static void
cram_challenge_form(void)
{
	char out[CHALLENGE_MAX + 1], out2[CHALLENGE_MAX + 1],
	    out3[CHALLENGE_MAX + 1], name[SERVER_NAME_MAX + 1],
	    longname[SERVER_NAME_MAX + 1];
	unsigned long r;
	long t, before = (long)time(NULL), after;

	CHECK_EQ(cram_md5_challenge("mail.example.org", out, sizeof(out)), 0);
	after = (long)time(NULL);
	CHECK_EQ(parse_challenge(out, &r, &t, name, sizeof(name)), 0);
	CHECK_STR(name, "mail.example.org");
	CHECK(t >= before && t <= after);
	/* Random: three in a row are not all the same. */
	CHECK_EQ(cram_md5_challenge("mail.example.org", out2, sizeof(out2)),
	    0);
	CHECK_EQ(cram_md5_challenge("mail.example.org", out3, sizeof(out3)),
	    0);
	CHECK(strcmp(out, out2) != 0 || strcmp(out, out3) != 0);
	/* The longest name fits CHALLENGE_MAX. */
	memset(longname, 'a', SERVER_NAME_MAX);
	longname[SERVER_NAME_MAX] = '\0';
	CHECK_EQ(cram_md5_challenge(longname, out, sizeof(out)), 0);
	CHECK_EQ(parse_challenge(out, &r, &t, name, sizeof(name)), 0);
	CHECK_STR(name, longname);
	/* The challenge verifies as any other. */
	CHECK_EQ(cram_md5_challenge("x", out, sizeof(out)), 0);
	CHECK(cram_md5_verify("s", out, RFC2195_DIGEST) == 0);
}

static void
cram_challenge_bad(void)
{
	static const char *const bad[] = {
		"", "a b", "a<b", "a>b", "a\r\nb", "\x80x", "a\tb", "a\x7f",
	};
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 'x', sizeof(out));
		CHECK_EQ(cram_md5_challenge(bad[i], out, sizeof(out)), -1);
		CHECK_STR(out, "");
	}
	CHECK_EQ(cram_md5_challenge(NULL, out, sizeof(out)), -1);
	/* Too small a buffer: -1 and an empty string, never a cut one. */
	memset(out, 'x', sizeof(out));
	CHECK_EQ(cram_md5_challenge("mail.example.org", out, 20), -1);
	CHECK_STR(out, "");
	out[0] = 'x';
	CHECK_EQ(cram_md5_challenge("mail.example.org", out, 0), -1);
	CHECK_EQ(out[0], 'x');
}

void
suite_cram(void)
{
	RUN(cram_rfc2195);
	RUN(cram_wrong);
	RUN(cram_challenge_form);
	RUN(cram_challenge_bad);
}
