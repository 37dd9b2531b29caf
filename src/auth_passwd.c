/*
 * passwd-file authentication (Dovecot's format), through libcrypt.
 */
#include <crypt.h>
#include <errno.h>
#include <stdint.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_passwd.h"
#include "cram.h"
#include "dl.h"
#include "log.h"

/* Hashed for an unknown user when the file has no crypt hash to borrow:
 * a SHA-512 crypt setting at the default cost. */
#define DUMMY_SETTING	"$6$imapgate.dummy$"

int
passwd_split(char *line, char *field[PASSWD_FIELDS])
{
	int n = 0, i;
	char *p = line;

	for (;;) {
		field[n++] = p;
		if (n == PASSWD_FIELDS || (p = strchr(p, ':')) == NULL)
			break;
		*p++ = '\0';
	}
	for (i = n; i < PASSWD_FIELDS; i++)
		field[i] = (char *)"";
	return n;
}

/* Compare without an early exit: the time depends on lengths only. */
static int
equal_ct(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char diff = la != lb;

	for (i = 0; i < lb; i++)
		diff |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
	return diff == 0;
}

static int
scheme_is(const char *s, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

/*
 * libcrypt is loaded the first time a hash is checked, not at start-up:
 * it costs every connection about 35,000 instructions of symbol binding
 * before the greeting (bench/README.md), and a connection that never
 * logs in, or a connect-mode login without a passwd-file, needs none.
 */
#define LIBCRYPT	"libcrypt.so.1"

typedef char *(*crypt_r_fn)(const char *, const char *, struct crypt_data *);

static crypt_r_fn
load_crypt_r(void)
{
	static crypt_r_fn fn;

	if (fn == NULL)
		*(void **)&fn = dl_symbol(LIBCRYPT, "crypt_r");
	return fn;
}

int
passwd_verify(const char *stored, const char *pass)
{
	static struct crypt_data cd;
	crypt_r_fn crypt_fn;
	const char *hash = stored, *end, *out;
	size_t len;

	if (stored[0] == '{') {
		if ((end = strchr(stored, '}')) == NULL)
			return -1;
		len = (size_t)(end - stored - 1);
		hash = end + 1;
		if (scheme_is(stored + 1, len, "PLAIN") ||
		    scheme_is(stored + 1, len, "CLEARTEXT"))
			return equal_ct(hash, pass);
		if (!scheme_is(stored + 1, len, "CRYPT") &&
		    !scheme_is(stored + 1, len, "SHA512-CRYPT") &&
		    !scheme_is(stored + 1, len, "SHA256-CRYPT") &&
		    !scheme_is(stored + 1, len, "BLF-CRYPT") &&
		    !scheme_is(stored + 1, len, "MD5-CRYPT"))
			return -1;
	}
	if ((crypt_fn = load_crypt_r()) == NULL)
		return -1;
	cd.initialized = 0;
	errno = 0;
	out = crypt_fn(pass, hash, &cd);
	/* A passphrase the hash function refuses (libxcrypt: 512 bytes or
	 * more, ERANGE) is a wrong password, for a known user as for the
	 * dummy hash of an unknown one: a temporary failure would tell
	 * them apart (issue 9). */
	if ((out == NULL || out[0] == '*') && errno == ERANGE &&
	    hash[0] != '\0')
		return 0;
	if (out == NULL || out[0] == '*' || hash[0] == '\0')
		return -1;
	return equal_ct(out, hash);
}

/* CRAM-MD5 against a stored password: only a {PLAIN} one can do. */
static int
cram_verify(const char *stored, const char *salt, const char *hex)
{
	const char *plain;

	if (strncasecmp(stored, "{PLAIN}", 7) == 0)
		plain = stored + 7;
	else if (strncasecmp(stored, "{CLEARTEXT}", 11) == 0)
		plain = stored + 11;
	else {
		/* The same work, the same answer as a wrong digest. */
		(void)cram_md5_verify(stored, salt, hex);
		return 0;
	}
	return cram_md5_verify(plain, salt, hex);
}

/* Is this stored password a crypt hash we could borrow as a dummy? */
static const char *
crypt_part(const char *stored)
{
	if (stored[0] == '$')
		return stored;
	if (strncasecmp(stored, "{SHA512-CRYPT}", 14) == 0 ||
	    strncasecmp(stored, "{SHA256-CRYPT}", 14) == 0)
		return stored + 14;
	if (strncasecmp(stored, "{BLF-CRYPT}", 11) == 0)
		return stored + 11;
	return NULL;
}

static int
parse_id(const char *s, int is_gid, unsigned long *out)
{
	char *end;
	struct passwd *pw;
	struct group *gr;

	if (*s == '\0')
		return -1;
	if (*s >= '0' && *s <= '9') {
		/* Digits only, and below (uid_t)-1, which means "no id". */
		errno = 0;
		*out = strtoul(s, &end, 10);
		if (*end != '\0' || errno == ERANGE || *out >= UINT32_MAX)
			return -1;
		return 0;
	}
	if (is_gid) {
		if ((gr = getgrnam(s)) == NULL)
			return -1;
		*out = gr->gr_gid;
	} else {
		if ((pw = getpwnam(s)) == NULL)
			return -1;
		*out = pw->pw_uid;
	}
	return 0;
}

/* Dovecot-style extra fields: space-separated key=value; we use host=
 * and port= (default 143) to route the user to a backend. */
static void
parse_route(struct auth_user *u, char *extra)
{
	char *tok, *save = NULL, host[HOST_MAX + 1] = "", port[PORT_MAX] = "143";
	char spec[HOST_MAX + PORT_MAX + 4];

	for (tok = strtok_r(extra, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		if (strncmp(tok, "host=", 5) == 0)
			snprintf(host, sizeof(host), "%s", tok + 5);
		else if (strncmp(tok, "port=", 5) == 0)
			snprintf(port, sizeof(port), "%s", tok + 5);
	}
	if (host[0] == '\0')
		return;
	snprintf(spec, sizeof(spec), strchr(host, ':') ? "[%s]:%s" : "%s:%s",
	    host, port);
	if (backend_addr_parse(spec, &u->route) == 0)
		u->has_route = 1;
	else
		log_warn("passwd_file: user %s: bad host=/port=, ignored",
		    u->name);
}

static void
fill_user(struct auth_user *u, char *field[PASSWD_FIELDS])
{
	unsigned long uid, gid;

	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", field[0]);
	snprintf(u->home, sizeof(u->home), "%s", field[5]);
	if (parse_id(field[2], 0, &uid) == 0 && parse_id(field[3], 1, &gid) == 0) {
		u->uid = (uid_t)uid;
		u->gid = (gid_t)gid;
		u->has_ids = 1;
	}
	parse_route(u, field[7]);
}

/* Read one line; a line longer than the buffer is skipped whole. */
static int
read_line(FILE *f, char *line, size_t size, int *too_long)
{
	size_t n;
	int c;

	*too_long = 0;
	if (fgets(line, (int)size, f) == NULL)
		return 0;
	n = strlen(line);
	if (n > 0 && line[n - 1] == '\n') {
		line[--n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		return 1;
	}
	if (!feof(f)) {
		*too_long = 1;
		while ((c = getc(f)) != EOF && c != '\n')
			;
	}
	return 1;
}

enum auth_result
passwd_check(const char *path, const char *user, const char *pass,
    const char *salt, struct auth_user *out, const char **why)
{
	static char line[PASSWD_LINE_MAX], stored[PASSWD_LINE_MAX],
	    dummy[PASSWD_LINE_MAX];
	char *field[PASSWD_FIELDS];
	const char *cp;
	int found = 0, too_long, r, lineno = 0;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		*why = "cannot open passwd_file";
		return AUTH_TEMPFAIL;
	}
	snprintf(dummy, sizeof(dummy), "%s", DUMMY_SETTING);
	while (read_line(f, line, sizeof(line), &too_long)) {
		lineno++;
		if (too_long)
			log_warn("%s:%d: line too long, skipped", path, lineno);
		if (too_long || line[0] == '#' || line[0] == '\0')
			continue;
		passwd_split(line, field);
		if (!found && strcmp(field[0], user) == 0) {
			found = 1;
			snprintf(stored, sizeof(stored), "%s", field[1]);
			fill_user(out, field);
		}
		if (dummy[0] == '$' && strcmp(dummy, DUMMY_SETTING) == 0 &&
		    (cp = crypt_part(field[1])) != NULL)
			snprintf(dummy, sizeof(dummy), "%s", cp);
	}
	r = ferror(f);
	fclose(f);
	explicit_bzero(line, sizeof(line));
	if (r) {
		*why = "error reading passwd_file";
		return AUTH_TEMPFAIL;
	}
	if (pass == NULL) {
		/* Proven otherwise (a client certificate): only look up. */
		*why = found ? "ok" : "unknown user";
		return found ? AUTH_OK : AUTH_NO;
	}
	if (!found) {
		/* Same work as a wrong password: hash anyway. */
		if (salt != NULL)
			(void)cram_md5_verify(dummy, salt, pass);
		else
			(void)passwd_verify(dummy, pass);
		*why = "unknown user";
		return AUTH_NO;
	}
	r = salt != NULL ? cram_verify(stored, salt, pass) :
	    passwd_verify(stored, pass);
	explicit_bzero(stored, sizeof(stored));
	if (r < 0) {
		*why = "unsupported password scheme or hash";
		return AUTH_TEMPFAIL;
	}
	if (r == 0) {
		*why = "wrong password";
		return AUTH_NO;
	}
	*why = "ok";
	return AUTH_OK;
}
