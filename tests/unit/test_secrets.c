/*
 * config_load_public() / config_load_secrets() (issue 10 item 2): the
 * process that forks sessions parses a text whose secret values are
 * placeholders; the monitor gets the real ones after the fork.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

#define BASE \
	"auth = { passwd_file = \"/p\"; };\n" \
	"backend = { connect = [\"127.0.0.1:143\"]; master_user = \"m\";\n" \
	"  master_password = \"s3cr\\\"et\" /* two literals */ \"-pw\"; };\n" \
	"# master_password = \"in-a-comment\"\n" \
	"greeting = \"master_password = \\\"not-secret\\\"\";\n" \
	"auth_http_header = [ \"X-Api-Key: k3y-1\", \"X-Other: \" \"k3y-2\" ];\n" \
	"imap_capabilities = [ \"IMAP4rev1\" ];\n"

static char path[64];

#define write_conf(text)	unit_tmpfile(path, sizeof(path), (text))

/* No byte of the secrets in any string of c. */
static int
holds(const struct config *c, const char *needle)
{
	int i;

	if (c->master_password && strstr(c->master_password, needle))
		return 1;
	for (i = 0; i < c->nauth_http_header; i++)
		if (strstr(c->auth_http_header[i], needle))
			return 1;
	return strstr(c->greeting, needle) != NULL;
}

static void
secrets_public_then_monitor(void)
{
	static struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(config_load_public(&c, write_conf(BASE), 0, err,
	    sizeof(err)), 0);
	CHECK(c.redacted > 0);
	CHECK(!holds(&c, "s3cr"));
	CHECK(!holds(&c, "-pw"));
	CHECK(!holds(&c, "k3y"));
	CHECK_EQ(c.nauth_http_header, 2);
	/* What is not a secret's value is untouched. */
	CHECK_STR(c.greeting, "master_password = \"not-secret\"");
	CHECK_STR(c.master_user, "m");
	CHECK_EQ(config_load_secrets(&c, err, sizeof(err)), 0);
	CHECK_STR(c.master_password, "s3cr\"et-pw");
	CHECK_STR(c.auth_http_header[0], "X-Api-Key: k3y-1");
	CHECK_STR(c.auth_http_header[1], "X-Other: k3y-2");
	CHECK(c.auth_http_header[2] == NULL);
	CHECK_EQ(c.redacted, 0);
	unlink(path);
	config_free(&c);
}

static void
secrets_in_listen_group(void)
{
	static struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(config_load_public(&c, write_conf(BASE
	    "listen = ( { port = 993; auth_http_header = [\"X-K: "
	    "gr0up-key\"]; backend = { master_password = \"gr0up-pw\"; }; "
	    "} );\n"), 993, err, sizeof(err)), 0);
	CHECK(!holds(&c, "gr0up"));
	CHECK_EQ(c.nauth_http_header, 1);
	CHECK_EQ(config_load_secrets(&c, err, sizeof(err)), 0);
	CHECK_STR(c.master_password, "gr0up-pw");
	CHECK_STR(c.auth_http_header[0], "X-K: gr0up-key");
	unlink(path);
	config_free(&c);
}

/* Nothing to redact: the monitor has nothing to load. */
static void
secrets_none(void)
{
	static struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(config_load_public(&c, write_conf(
	    "auth = { passwd_file = \"/p\"; };\n"
	    "backend = { exec = [\"/x\"]; };\n"), 0, err, sizeof(err)), 0);
	CHECK_EQ(c.redacted, 0);
	CHECK_EQ(config_load_secrets(&c, err, sizeof(err)), 0);
	unlink(path);
	config_free(&c);
}

/* The real header values are checked in the monitor (and by -t). */
static void
secrets_bad_header_refused_by_monitor(void)
{
	static struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(config_load_public(&c, write_conf(
	    "auth = { passwd_file = \"/p\"; };\n"
	    "backend = { exec = [\"/x\"]; };\n"
	    "auth_http_header = [\"X-Bad: a\\r\\nInjected: 1\"];\n"), 0, err,
	    sizeof(err)), 0);
	CHECK_EQ(config_load_secrets(&c, err, sizeof(err)), -1);
	CHECK(strstr(err, "is not \"Name: value\"") != NULL);
	unlink(path);
	config_free(&c);
}

/* A secret in an @include file would be parsed unredacted. */
static void
secrets_not_in_include(void)
{
	static struct config c;
	char err[CONFIG_ERR_MAX], inc[64], text[512];
	int fd;

	snprintf(inc, sizeof(inc), "/tmp/imapgate-unit-inc-XXXXXX");
	static const char incl[] = "auth_http_header = [\"X-K: v\"];\n";

	if ((fd = mkstemp(inc)) < 0 || write(fd, incl, sizeof(incl) - 1) !=
	    (ssize_t)sizeof(incl) - 1 || close(fd) < 0)
		abort();
	snprintf(text, sizeof(text), "auth = { passwd_file = \"/p\"; };\n"
	    "backend = { exec = [\"/x\"]; };\n@include \"%s\"\n", inc);
	CHECK_EQ(config_load_public(&c, write_conf(text), 0, err,
	    sizeof(err)), -1);
	CHECK(strstr(err, "a secret must be in the main file") != NULL);
	unlink(path);
	unlink(inc);
	config_free(&c);
}

void
suite_secrets(void)
{
	RUN(secrets_public_then_monitor);
	RUN(secrets_in_listen_group);
	RUN(secrets_none);
	RUN(secrets_bad_header_refused_by_monitor);
	RUN(secrets_not_in_include);
}
