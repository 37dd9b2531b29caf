/*
 * passwd-file authentication: passwd_split(), passwd_verify() for every
 * scheme (hashes made now with libcrypt), passwd_check() on a file.
 */
#include <crypt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_passwd.h"
#include "unit.h"

/* A fresh hash of pass with the method named by prefix ("$6$", ...). */
static const char *
hash(const char *prefix, const char *pass)
{
	static struct crypt_data cd;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h;

	if (crypt_gensalt_rn(prefix, 0, NULL, 0, setting,
	    sizeof(setting)) == NULL)
		return "crypt_gensalt failed";
	memset(&cd, 0, sizeof(cd));
	h = crypt_r(pass, setting, &cd);
	return h != NULL && h[0] != '*' ? h : "crypt failed";
}

static void
passwd_split_fields(void)
{
	char line[] = "alice:{PLAIN}x:1000:100:Alice A.:/home/alice:/bin/sh:"
	    "userdb_quota=1G:x";
	char empty[] = "", colons[] = "::", one[] = "bob:{PLAIN}y";
	char *f[PASSWD_FIELDS];

	CHECK_EQ(passwd_split(line, f), 8);
	CHECK_STR(f[0], "alice");
	CHECK_STR(f[1], "{PLAIN}x");
	CHECK_STR(f[2], "1000");
	CHECK_STR(f[3], "100");
	CHECK_STR(f[4], "Alice A.");
	CHECK_STR(f[5], "/home/alice");
	CHECK_STR(f[6], "/bin/sh");
	/* The extra field keeps its colons. */
	CHECK_STR(f[7], "userdb_quota=1G:x");
	CHECK_EQ(passwd_split(empty, f), 1);
	CHECK_STR(f[0], "");
	CHECK_STR(f[7], "");
	CHECK_EQ(passwd_split(colons, f), 3);
	CHECK_STR(f[0], "");
	CHECK_STR(f[2], "");
	CHECK_STR(f[3], "");
	CHECK_EQ(passwd_split(one, f), 2);
	CHECK_STR(f[1], "{PLAIN}y");
	CHECK_STR(f[5], "");
}

static void
passwd_verify_plain(void)
{
	CHECK_EQ(passwd_verify("{PLAIN}secret", "secret"), 1);
	CHECK_EQ(passwd_verify("{PLAIN}secret", "Secret"), 0);
	CHECK_EQ(passwd_verify("{PLAIN}secret", "secre"), 0);
	CHECK_EQ(passwd_verify("{PLAIN}secret", "secrets"), 0);
	CHECK_EQ(passwd_verify("{PLAIN}secret", ""), 0);
	CHECK_EQ(passwd_verify("{plain}secret", "secret"), 1);
	CHECK_EQ(passwd_verify("{CLEARTEXT}s:e}c", "s:e}c"), 1);
	CHECK_EQ(passwd_verify("{PLAIN}", ""), 1);
	CHECK_EQ(passwd_verify("{PLAIN}", "x"), 0);
}

/* A password of n bytes ('p' after "pw"). */
static const char *
long_pw(size_t n)
{
	static char pw[4096 + 1];

	memset(pw, 'p', n);
	memcpy(pw, "pw", n < 2 ? n : 2);
	pw[n] = '\0';
	return pw;
}

/* Right and wrong password against stored, a fresh hash with prefix. */
static void
verify_scheme(const char *f, int l, const char *scheme, const char *prefix)
{
	char stored[256];

	snprintf(stored, sizeof(stored), "%s%s", scheme, hash(prefix, "pw"));
	CHECK_EQ_AT(f, l, passwd_verify(stored, "pw"), 1);
	CHECK_EQ_AT(f, l, passwd_verify(stored, "pW"), 0);
	CHECK_EQ_AT(f, l, passwd_verify(stored, ""), 0);
	CHECK_EQ_AT(f, l, passwd_verify(stored, "pw "), 0);
	/* libxcrypt refuses a passphrase of 512 bytes or more: that is a
	 * wrong password, not a broken hash (issue 9). */
	CHECK_EQ_AT(f, l, passwd_verify(stored, long_pw(511)), 0);
	CHECK_EQ_AT(f, l, passwd_verify(stored, long_pw(512)), 0);
	CHECK_EQ_AT(f, l, passwd_verify(stored, long_pw(4000)), 0);
}

#define SCHEME(scheme, prefix) \
	verify_scheme(__FILE__, __LINE__, scheme, prefix)

static void
passwd_verify_crypt(void)
{
	SCHEME("{SHA512-CRYPT}", "$6$");
	SCHEME("{sha512-crypt}", "$6$");
	SCHEME("{SHA256-CRYPT}", "$5$");
	SCHEME("{BLF-CRYPT}", "$2b$");
	SCHEME("{MD5-CRYPT}", "$1$");
	SCHEME("{CRYPT}", "$6$");
	SCHEME("{CRYPT}", "$1$");
	/* Raw crypt hashes, no scheme. */
	SCHEME("", "$6$");
	SCHEME("", "$5$");
	SCHEME("", "$y$");
	SCHEME("", "$2b$");
	/* A fixed one made once with python3's crypt module. */
	CHECK_EQ(passwd_verify("{SHA512-CRYPT}$6$imapgate.unit$jOBjT3kuGLGog."
	    "D5O8N4Xhh3TQqkHTUCLj36ix3oadyojsyxnr/CcgqvKehD8.q6DwLgLLYlA8fvSl"
	    "pgx/ZXq1", "secret"), 1);
	CHECK_EQ(passwd_verify("{SHA512-CRYPT}$6$imapgate.unit$jOBjT3kuGLGog."
	    "D5O8N4Xhh3TQqkHTUCLj36ix3oadyojsyxnr/CcgqvKehD8.q6DwLgLLYlA8fvSl"
	    "pgx/ZXq1", "secreT"), 0);
}

static void
passwd_verify_unknown(void)
{
	CHECK_EQ(passwd_verify("{ARGON2ID}$argon2id$v=19$x", "pw"), -1);
	CHECK_EQ(passwd_verify("{SSHA}abcd", "pw"), -1);
	CHECK_EQ(passwd_verify("{SHA512-CRYPT$6$x$y", "pw"), -1);
	CHECK_EQ(passwd_verify("{}x", "pw"), -1);
	CHECK_EQ(passwd_verify("", "pw"), -1);
	CHECK_EQ(passwd_verify("{CRYPT}", "pw"), -1);
	CHECK_EQ(passwd_verify("{SHA512-CRYPT}", ""), -1);
	CHECK_EQ(passwd_verify("*", "pw"), -1);
	CHECK_EQ(passwd_verify("!", "pw"), -1);
}

static char file[64];

static void
write_file(const char *text)
{
	FILE *f;
	int fd;

	snprintf(file, sizeof(file), "/tmp/imapgate-passwd-XXXXXX");
	if ((fd = mkstemp(file)) < 0 || (f = fdopen(fd, "w")) == NULL)
		abort();
	fputs(text, f);
	if (fclose(f) != 0)
		abort();
}

static enum auth_result
check(const char *user, const char *pass, struct auth_user *u,
    const char **why)
{
	memset(u, 0xa5, sizeof(*u));
	*why = NULL;
	return passwd_check(file, user, pass, NULL, u, why);
}

static void
passwd_check_file(void)
{
	struct auth_user u;
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");
	const char *why;
	char text[1024], bobhash[256], davehash[256];

	/* hash() returns its static buffer: copy each one out. */
	snprintf(bobhash, sizeof(bobhash), "%s", hash("$6$", "bobpw"));
	snprintf(davehash, sizeof(davehash), "%s", hash("$y$", "davepw"));
	snprintf(text, sizeof(text),
	    "# users\n"
	    "\n"
	    "#frank:{PLAIN}commented\n"
	    "alice:{PLAIN}secret:1000:1001::/home/alice::\n"
	    "bob:{SHA512-CRYPT}%s:nobody:nogroup:Bob B.:/home/bob:/bin/false:"
	    "extra:fields\n"
	    "carol:{ARGON2}xyz:1002:1002\n"
	    "dave:%s\n"
	    "erin:{PLAIN}pw:erin-no-such-user:1000\n"
	    "grace:{PLAIN}crlf:7:8::/g\r\n"
	    "alice:{PLAIN}second-alice:1:1\n"
	    "heidi:{PLAIN}last-line-no-newline:9:9",
	    bobhash, davehash);
	write_file(text);

	CHECK_EQ(check("alice", "secret", &u, &why), AUTH_OK);
	CHECK_STR(why, "ok");
	CHECK_STR(u.name, "alice");
	CHECK_EQ(u.uid, 1000);
	CHECK_EQ(u.gid, 1001);
	CHECK_EQ(u.has_ids, 1);
	CHECK_STR(u.home, "/home/alice");

	/* The first entry wins; a wrong password is just that. */
	CHECK_EQ(check("alice", "second-alice", &u, &why), AUTH_NO);
	CHECK_STR(why, "wrong password");
	CHECK_EQ(check("alice", "", &u, &why), AUTH_NO);
	CHECK_STR(why, "wrong password");

	CHECK_EQ(check("bob", "bobpw", &u, &why), AUTH_OK);
	CHECK(pw != NULL && gr != NULL);
	if (pw != NULL && gr != NULL) {
		CHECK_EQ(u.uid, pw->pw_uid);
		CHECK_EQ(u.gid, gr->gr_gid);
	}
	CHECK_EQ(u.has_ids, 1);
	CHECK_STR(u.home, "/home/bob");
	CHECK_EQ(check("bob", "alicepw", &u, &why), AUTH_NO);
	CHECK_STR(why, "wrong password");

	CHECK_EQ(check("carol", "xyz", &u, &why), AUTH_TEMPFAIL);
	CHECK_STR(why, "unsupported password scheme or hash");

	CHECK_EQ(check("dave", "davepw", &u, &why), AUTH_OK);
	CHECK_EQ(u.has_ids, 0);			/* no uid:gid fields */
	CHECK_STR(u.home, "");
	CHECK_EQ(check("erin", "pw", &u, &why), AUTH_OK);
	CHECK_EQ(u.has_ids, 0);			/* uid names nobody */

	CHECK_EQ(check("grace", "crlf", &u, &why), AUTH_OK);
	CHECK_EQ(u.uid, 7);
	CHECK_STR(u.home, "/g");
	CHECK_EQ(check("heidi", "last-line-no-newline", &u, &why), AUTH_OK);

	CHECK_EQ(check("frank", "commented", &u, &why), AUTH_NO);
	CHECK_STR(why, "unknown user");
	CHECK_EQ(check("#frank", "commented", &u, &why), AUTH_NO);
	CHECK_STR(why, "unknown user");
	CHECK_EQ(check("mallory", "x", &u, &why), AUTH_NO);
	CHECK_STR(why, "unknown user");
	CHECK_EQ(check("", "", &u, &why), AUTH_NO);
	CHECK_STR(why, "unknown user");
	CHECK_EQ(check("Alice", "secret", &u, &why), AUTH_NO);
	CHECK_STR(why, "unknown user");
	unlink(file);
}

static void
passwd_check_long_lines(void)
{
	static char text[3 * PASSWD_LINE_MAX];
	struct auth_user u;
	const char *why;
	size_t n = 0;

	/* Too long: skipped whole, and the next line is read as a line. */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "mallory:{PLAIN}");
	memset(text + n, 'x', PASSWD_LINE_MAX + 100);
	n += PASSWD_LINE_MAX + 100;
	n += (size_t)snprintf(text + n, sizeof(text) - n,
	    ":1:1\nivan:{PLAIN}pw:1:1\n");
	/* Long but within the limit. */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "judy:{PLAIN}");
	memset(text + n, 'y', PASSWD_LINE_MAX - 100);
	n += PASSWD_LINE_MAX - 100;
	snprintf(text + n, sizeof(text) - n, ":2:2\n");
	write_file(text);

	CHECK_EQ(check("mallory", "x", &u, &why), AUTH_NO);
	CHECK_STR(why, "unknown user");
	CHECK_EQ(check("ivan", "pw", &u, &why), AUTH_OK);
	CHECK_EQ(check("judy", "y", &u, &why), AUTH_NO);
	CHECK_STR(why, "wrong password");
	unlink(file);
}

static void
passwd_check_bad_ids(void)
{
	struct auth_user u;
	const char *why;

	/* uid:gid that are not one number each must not become one. */
	write_file("a:{PLAIN}pw:-1:1\n"
	    "b:{PLAIN}pw:4294967297:1\n"
	    "c:{PLAIN}pw:1:4294967296\n"
	    "e:{PLAIN}pw:5x:1\n"
	    "f:{PLAIN}pw:0:0\n");
	CHECK_EQ(check("a", "pw", &u, &why), AUTH_OK);
	CHECK_EQ(u.has_ids, 0);
	CHECK_EQ(check("b", "pw", &u, &why), AUTH_OK);
	CHECK_EQ(u.has_ids, 0);
	CHECK_EQ(check("c", "pw", &u, &why), AUTH_OK);
	CHECK_EQ(u.has_ids, 0);
	CHECK_EQ(check("e", "pw", &u, &why), AUTH_OK);
	CHECK_EQ(u.has_ids, 0);
	/* Root is a valid id here; the exec handoff refuses it. */
	CHECK_EQ(check("f", "pw", &u, &why), AUTH_OK);
	CHECK_EQ(u.has_ids, 1);
	CHECK_EQ(u.uid, 0);
	unlink(file);
}

static void
passwd_check_missing_file(void)
{
	struct auth_user u;
	const char *why = NULL;

	CHECK_EQ(passwd_check("/nonexistent/passwd", "alice", "pw", NULL, &u, &why),
	    AUTH_TEMPFAIL);
	CHECK_STR(why, "cannot open passwd_file");
	/* A directory opens but cannot be read. */
	CHECK_EQ(passwd_check("/tmp", "alice", "pw", NULL, &u, &why), AUTH_TEMPFAIL);
	CHECK_STR(why, "error reading passwd_file");
}

void
suite_passwd(void)
{
	RUN(passwd_split_fields);
	RUN(passwd_verify_plain);
	RUN(passwd_verify_crypt);
	RUN(passwd_verify_unknown);
	RUN(passwd_check_file);
	RUN(passwd_check_long_lines);
	RUN(passwd_check_bad_ids);
	RUN(passwd_check_missing_file);
}
