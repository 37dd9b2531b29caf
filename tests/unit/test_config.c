/*
 * config_load(): defaults, every key, and errors that name FILE:LINE and
 * the key.  Each case writes its file under /tmp with mkstemp().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

#define MINIMAL \
	"auth = { passwd_file = \"/etc/imapgate/passwd\"; };\n" \
	"backend = { exec = [\"/usr/lib/dovecot/imap\"]; };\n"

static char path[64];

#define write_conf(text)	unit_tmpfile(path, sizeof(path), (text))

/* Free what config_load() allocated. */
static void
release(struct config *c)
{
	config_free(c);
}

/* Load text; returns config_load()'s result, err filled. */
static int
load(struct config *c, const char *text, char *err, size_t errsize)
{
	int rc;

	err[0] = '\0';
	rc = config_load(c, write_conf(text), err, errsize);
	unlink(path);
	return rc;
}

/* The file must fail with exactly "PATH:LINE: what", or "PATH: what" when
 * line is 0 (what is missing has no line). */
static void
fails_with(const char *f, int l, const char *text, int line,
    const char *what)
{
	struct config c;
	char err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX];

	CHECK_EQ_AT(f, l, load(&c, text, err, sizeof(err)), -1);
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: %s", path, line, what);
	else
		snprintf(want, sizeof(want), "%s: %s", path, what);
	CHECK_STR_AT(f, l, err, want);
	release(&c);
}

#define FAILS(text, line, what) \
	fails_with(__FILE__, __LINE__, text, line, what)

static void
config_minimal_defaults(void)
{
	struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(load(&c, MINIMAL, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_STR(c.path, path);
	CHECK_EQ(c.ncapa, 3);
	CHECK_STR(c.capa_tokens[0], "IMAP4");
	CHECK_STR(c.capa_tokens[1], "IMAP4rev1");
	CHECK_STR(c.capa_tokens[2], "UIDPLUS");
	CHECK_EQ(c.auth_methods, AUTHM_PLAIN);
	CHECK_EQ(c.client_buffer, 8192);
	CHECK_STR(c.greeting, "imapgate ready");
	CHECK_EQ(c.timeout, 60);
	CHECK_EQ(c.max_errors, 5);
	CHECK_STR(c.passwd_file, "/etc/imapgate/passwd");
	CHECK(c.failure_delay == 2.0);
	CHECK_EQ(c.max_attempts, 3);
	CHECK_EQ(c.exec_argc, 1);
	CHECK_STR(c.exec_argv[0], "/usr/lib/dovecot/imap");
	CHECK(c.exec_argv[1] == NULL);
	CHECK_STR(c.privsep_user, "imapgate");
	CHECK_STR(c.privsep_chroot, "/var/lib/imapgate/empty");
	/* The defaults README gives for the rest (issue 15). */
	CHECK(c.max_penalty == 15.0);
	CHECK_STR(c.penalty_file, "/run/imapgate/penalty");
	CHECK_EQ(c.checkpw_argc, 0);
	CHECK(c.auth_http == NULL);
	CHECK_EQ(c.nauth_http_header, 0);
	CHECK_EQ(c.auth_http_timeout, 60);
	CHECK(c.server_name == NULL);
	CHECK_EQ(c.nconnect, 0);
	CHECK(c.connect_timeout == 5.0);
	CHECK_EQ(c.backend_login, BLOGIN_LOGIN);
	CHECK(c.master_user == NULL && c.master_password == NULL);
	CHECK_EQ(c.forward_client, FWD_ID);
	CHECK_EQ(c.proxy_timeout, 86400);
	CHECK_EQ(c.proxy_pass_error_message, 0);
	CHECK_EQ(c.proxy_protocol, 0);
	CHECK_EQ(c.nreal_ip_from, 0);
	CHECK_EQ(c.backend_ssl, 0);
	CHECK_EQ(c.backend_starttls, 0);
	CHECK(c.backend_ca == NULL && c.backend_ssl_name == NULL);
	release(&c);
}

/* Connect mode: every key that the exec-mode file above cannot have. */
static void
config_every_key_connect(void)
{
	static const char text[] =
	    "auth = {\n"
	    "  http = \"http://127.0.0.1:9000/auth\";\n"
	    "  max_penalty = 30.5;\n"
	    "  penalty_file = \"/var/run/ig/pen\";\n"
	    "};\n"
	    "auth_http_header = [\"X-Key: 1\", \"X-Other: two\"];\n"
	    "auth_http_timeout = 7;\n"
	    "server_name = \"mail.example.org\";\n"
	    "proxy_timeout = 600;\n"
	    "proxy_pass_error_message = true;\n"
	    "proxy_protocol = true;\n"
	    "set_real_ip_from = [\"10.0.0.0/8\", \"2001:db8::/32\"];\n"
	    "backend = {\n"
	    "  connect = [\"imap1.example.org:143\", \"[2001:db8::5]:993\", "
	    "\"unix:/run/imap.sock\"];\n"
	    "  connect_timeout = 2.5;\n"
	    "  login = \"plain\";\n"
	    "  master_user = \"master\";\n"
	    "  master_password = \"m-secret\";\n"
	    "  forward_client = \"proxy-v2\";\n"
	    "  ssl = true;\n"
	    "  ssl_trusted_certificate = \"/etc/ssl/backend-ca.pem\";\n"
	    "  ssl_name = \"imap.example.org\";\n"
	    "};\n";
	struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(load(&c, text, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_STR(c.auth_http, "http://127.0.0.1:9000/auth");
	CHECK(c.max_penalty == 30.5);
	CHECK_STR(c.penalty_file, "/var/run/ig/pen");
	CHECK_EQ(c.nauth_http_header, 2);
	CHECK_STR(c.auth_http_header[0], "X-Key: 1");
	CHECK_STR(c.auth_http_header[1], "X-Other: two");
	CHECK_EQ(c.auth_http_timeout, 7);
	CHECK_STR(c.server_name, "mail.example.org");
	CHECK_EQ(c.proxy_timeout, 600);
	CHECK_EQ(c.proxy_pass_error_message, 1);
	CHECK_EQ(c.proxy_protocol, 1);
	CHECK_EQ(c.nreal_ip_from, 2);
	CHECK_EQ(c.real_ip_from[0].bits, 8);
	CHECK_EQ(c.real_ip_from[1].bits, 32);
	CHECK_EQ(c.nconnect, 3);
	CHECK_STR(c.connect[0].host, "imap1.example.org");
	CHECK_STR(c.connect[0].port, "143");
	CHECK_STR(c.connect[1].host, "2001:db8::5");
	CHECK_STR(c.connect[1].port, "993");
	CHECK_EQ(c.connect[2].is_unix, 1);
	CHECK_STR(c.connect[2].host, "/run/imap.sock");
	CHECK(c.connect_timeout == 2.5);
	CHECK_EQ(c.backend_login, BLOGIN_PLAIN);
	CHECK_STR(c.master_user, "master");
	CHECK_STR(c.master_password, "m-secret");
	CHECK_EQ(c.forward_client, FWD_PROXY_V2);
	CHECK_EQ(c.backend_ssl, 1);
	CHECK_EQ(c.backend_starttls, 0);
	CHECK_STR(c.backend_ca, "/etc/ssl/backend-ca.pem");
	CHECK_STR(c.backend_ssl_name, "imap.example.org");
	CHECK_EQ(c.exec_argc, 0);
	release(&c);
}

/* checkpassword, and backend.starttls. */
static void
config_every_key_checkpassword(void)
{
	static const char text[] =
	    "auth = { checkpassword = [\"/usr/bin/checkpw\", \"-v\"]; };\n"
	    "backend = { connect = [\"127.0.0.1:143\"]; starttls = true;\n"
	    "  ssl_trusted_certificate = \"/ca.pem\";\n"
	    "  forward_client = \"proxy-v1\"; };\n";
	struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(load(&c, text, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_EQ(c.checkpw_argc, 2);
	CHECK_STR(c.checkpw_argv[0], "/usr/bin/checkpw");
	CHECK_STR(c.checkpw_argv[1], "-v");
	CHECK(c.auth_http == NULL && c.passwd_file == NULL);
	CHECK_EQ(c.backend_starttls, 1);
	CHECK_EQ(c.backend_ssl, 0);
	CHECK_EQ(c.forward_client, FWD_PROXY_V1);
	release(&c);
}

static void
config_every_key(void)
{
	static const char text[] =
	    "# every key\n"
	    "imap_auth = [\"login\", \"plain\"];\n"
	    "imap_client_buffer = 16384;\n"
	    "greeting = \"Hello there\";\n"
	    "timeout = 30;\n"
	    "max_errors = 3;\n"
	    "auth = {\n"
	    "  passwd_file = \"/srv/passwd\";\n"
	    "  failure_delay = 0.5;\n"
	    "  max_attempts = 2;\n"
	    "};\n"
	    "backend = { exec = (\"/usr/sbin/imapd\", \"Maildir\"); };\n"
	    "privsep = { user = \"_imapgate\"; chroot = \"/var/empty\"; };\n";
	struct config c;
	struct capa_policy p;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(load(&c, text, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_EQ(c.auth_methods, AUTHM_PLAIN | AUTHM_LOGIN);
	CHECK_EQ(c.client_buffer, 16384);
	CHECK_STR(c.greeting, "Hello there");
	CHECK_EQ(c.timeout, 30);
	CHECK_EQ(c.max_errors, 3);
	CHECK_STR(c.passwd_file, "/srv/passwd");
	CHECK(c.failure_delay == 0.5);
	CHECK_EQ(c.max_attempts, 2);
	CHECK_EQ(c.exec_argc, 2);
	CHECK_STR(c.exec_argv[0], "/usr/sbin/imapd");
	CHECK_STR(c.exec_argv[1], "Maildir");
	CHECK(c.exec_argv[2] == NULL);
	CHECK_STR(c.privsep_user, "_imapgate");
	CHECK_STR(c.privsep_chroot, "/var/empty");
	config_capa_policy(&c, 1, &p);
	CHECK_EQ(p.ntokens, 3);
	CHECK_EQ(p.auth_methods, AUTHM_PLAIN | AUTHM_LOGIN);
	CHECK_EQ(p.starttls, STARTTLS_OFF);
	CHECK_EQ(p.tls_active, 1);
	release(&c);
}

static void
config_capabilities(void)
{
	struct config c;
	char err[CONFIG_ERR_MAX];

	/* The list replaces the defaults (which must not leak). */
	CHECK_EQ(load(&c, "imap_capabilities = [\"IMAP4rev1\", \"IDLE\"];\n"
	    MINIMAL, err, sizeof(err)), 0);
	CHECK_EQ(c.ncapa, 2);
	CHECK_STR(c.capa_tokens[0], "IMAP4rev1");
	CHECK_STR(c.capa_tokens[1], "IDLE");
	CHECK(c.capa_tokens[2] == NULL);
	release(&c);
	CHECK_EQ(load(&c, "imap_capabilities = [];\n" MINIMAL, err,
	    sizeof(err)), 0);
	CHECK_EQ(c.ncapa, 0);
	release(&c);
}

static void
config_unknown_keys(void)
{
	FAILS("# a comment\n\nbogus = 1;\n" MINIMAL, 3, "bogus: unknown key");
	FAILS("auth = {\n  colour = \"red\";\n  passwd_file = \"/p\";\n};\n"
	    "backend = { exec = [\"/x\"]; };\n", 2,
	    "colour: unknown key in auth");
	/* A top-level key inside a group is unknown there. */
	FAILS(MINIMAL "privsep = {\n timeout = 5;\n};\n", 4,
	    "timeout: unknown key in privsep");
	FAILS(MINIMAL "auth2 = { x = 1; };\n", 3, "auth2: unknown key");
	FAILS(MINIMAL "Timeout = 5;\n", 3, "Timeout: unknown key");
}

static void
config_wrong_types(void)
{
	FAILS(MINIMAL "timeout = \"60\";\n", 3, "timeout: expected an integer");
	FAILS(MINIMAL "timeout = 60.0;\n", 3, "timeout: expected an integer");
	FAILS(MINIMAL "greeting = 5;\n", 3, "greeting: expected a string");
	FAILS(MINIMAL "imap_auth = \"plain\";\n", 3,
	    "imap_auth: expected a list of strings, [\"a\", \"b\"]");
	FAILS(MINIMAL "imap_auth = [1];\n", 3,
	    "imap_auth: expected a string");
	FAILS("auth = \"/etc/passwd\";\n", 1,
	    "auth: expected a group, { ... }");
	FAILS("auth = { passwd_file = \"/p\"; failure_delay = \"2\"; };\n", 1,
	    "failure_delay: expected a number");
	FAILS("auth = { passwd_file = \"/p\"; };\nbackend = { exec = "
	    "\"/bin/x\"; };\n", 2,
	    "exec: expected a list of strings, [\"a\", \"b\"]");
}

static void
config_ranges(void)
{
	FAILS(MINIMAL "timeout = 0;\n", 3,
	    "timeout: 0 is out of range (1..3600)");
	FAILS(MINIMAL "timeout = 3601;\n", 3,
	    "timeout: 3601 is out of range (1..3600)");
	FAILS(MINIMAL "timeout = 10000000000L;\n", 3,
	    "timeout: 10000000000 is out of range (1..3600)");
	FAILS(MINIMAL "imap_client_buffer = 1023;\n", 3,
	    "imap_client_buffer: 1023 is out of range (1024..65536)");
	FAILS(MINIMAL "imap_client_buffer = 65537;\n", 3,
	    "imap_client_buffer: 65537 is out of range (1024..65536)");
	FAILS(MINIMAL "max_errors = -1;\n", 3,
	    "max_errors: -1 is out of range (1..1000)");
	FAILS("auth = { passwd_file = \"/p\"; max_attempts = 0; };\n", 1,
	    "max_attempts: 0 is out of range (1..100)");
	FAILS("auth = { passwd_file = \"/p\";\n failure_delay = 60.5; };\n", 2,
	    "failure_delay: 60.5 is out of range (0..60)");
	FAILS("auth = { passwd_file = \"/p\";\n failure_delay = -1; };\n", 2,
	    "failure_delay: -1 is out of range (0..60)");
}

static void
config_limits_accepted(void)
{
	struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(load(&c, MINIMAL "imap_client_buffer = 1024;\ntimeout = 3600;"
	    "\n", err, sizeof(err)), 0);
	CHECK_EQ(c.client_buffer, 1024);
	CHECK_EQ(c.timeout, 3600);
	release(&c);
	/* An integer where a float is expected is fine. */
	CHECK_EQ(load(&c, "auth = { passwd_file = \"/p\"; failure_delay = 3; };"
	    "\nbackend = { exec = [\"/x\"]; };\n", err, sizeof(err)), 0);
	CHECK(c.failure_delay == 3.0);
	release(&c);
	CHECK_EQ(load(&c, "auth = { passwd_file = \"/p\"; failure_delay = 0; };"
	    "\nbackend = { exec = [\"/x\"]; };\n", err, sizeof(err)), 0);
	CHECK(c.failure_delay == 0.0);
	release(&c);
}

static void
config_imap_auth(void)
{
	FAILS(MINIMAL "imap_auth = [\"external\"];\n", 0,
	    "imap_auth external needs ssl_external_trust_session = true: a "
	    "taken-over session could log in as anyone whose certificate it "
	    "has (see imapgate(8), THREAT MODEL)");
	FAILS(MINIMAL "imap_auth = [\"external\"];\n"
	    "ssl_external_trust_session = true;\n", 0,
	    "imap_auth external needs ssl_verify_client optional or on");
	FAILS(MINIMAL "imap_auth = [\"PLAIN\"];\n", 3,
	    "imap_auth: unknown method \"PLAIN\" (plain, login, cram-md5, "
	    "oauthbearer, xoauth2, external)");
	FAILS(MINIMAL "imap_auth = [\"plain\", \"xoauth2\"];\n", 0,
	    "imap_auth oauthbearer and xoauth2 need auth.http to check the "
	    "token");
	FAILS("backend = { connect = [\"h:143\"]; };\n"
	    "imap_auth = [\"cram-md5\"];\n", 0, "imap_auth cram-md5 needs "
	    "auth.passwd_file ({PLAIN} entries) or auth.http");
	FAILS("backend = { connect = [\"h:143\"]; };\n"
	    "auth = { passwd_file = \"/p\"; };\n"
	    "imap_auth = [\"cram-md5\"];\n", 0, "imap_auth cram-md5 with "
	    "backend.connect and auth.passwd_file needs backend.master_user");
	FAILS("auth = { passwd_file = \"/p\"; http = \"http://h:1/a\"; };\n"
	    "backend = { exec = [\"/x\"]; };\n", 0,
	    "give at most one of auth.passwd_file, auth.checkpassword and "
	    "auth.http");
	FAILS(MINIMAL "auth_http_header = [\"X-Bad\\r\\nInjected: 1\"];\n", 3,
	    "auth_http_header: \"X-Bad\r\nInjected: 1\" is not "
	    "\"Name: value\"");
	FAILS(MINIMAL "imap_capabilities = [\"IMAP4rev1\", \"BAD TOKEN\"];\n",
	    3, "imap_capabilities: \"BAD TOKEN\" is not a capability token");
}

static void
config_paths(void)
{
	FAILS("auth = { passwd_file = \"etc/passwd\"; };\n"
	    "backend = { exec = [\"/x\"]; };\n", 1,
	    "passwd_file: \"etc/passwd\" is not an absolute path");
	FAILS("auth = { passwd_file = \"/p\"; };\n"
	    "backend = { exec = [\"imap\"]; };\n", 2,
	    "exec: \"imap\" is not an absolute path");
	FAILS("auth = { passwd_file = \"/p\"; };\n"
	    "backend = { exec = []; };\n", 2,
	    "exec: empty: name the mail server program");
	FAILS(MINIMAL "privsep = { chroot = \"var/empty\"; };\n", 3,
	    "chroot: \"var/empty\" is not an absolute path");
}

/* Eight tokens of 150 octets: each is fine, the list is too long. */
static const char *
long_capabilities(void)
{
	static char text[2048];
	size_t n;
	int i;

	n = (size_t)snprintf(text, sizeof(text), "imap_capabilities = [");
	for (i = 0; i < 8; i++) {
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"X-",
		    i > 0 ? ", " : "");
		memset(text + n, 'A' + i, 148);
		n += 148;
		text[n++] = '"';
	}
	snprintf(text + n, sizeof(text) - n, "];\n" MINIMAL);
	return text;
}

static void
config_required(void)
{
	FAILS("auth = { passwd_file = \"/p\"; };\n", 0,
	    "give exactly one of backend.exec and backend.connect");
	FAILS("backend = { exec = [\"/x\"]; };\n", 0,
	    "backend.exec needs an auth source (auth.passwd_file, "
	    "auth.checkpassword or auth.http)");
	FAILS("", 0, "give exactly one of backend.exec and backend.connect");
	FAILS("backend = { exec = [\"/x\"]; connect = [\"h:143\"]; };\n"
	    "auth = { passwd_file = \"/p\"; };\n", 0,
	    "give exactly one of backend.exec and backend.connect");
	FAILS("backend = { connect = [\"h:143\"]; master_user = \"m\"; };\n",
	    0, "backend.master_user and backend.master_password go together");
	FAILS("backend = { connect = [\"h:143\"]; master_user = \"m\";\n"
	    "master_password = \"p\"; };\n", 0, "backend.master_user needs "
	    "an auth source: without one, anybody could log in as anybody");
	FAILS("backend = { connect = [\"h:143\"]; };\nproxy_protocol = true;\n",
	    0, "proxy_protocol needs set_real_ip_from: whose PROXY header is "
	    "to be believed?");
	FAILS(long_capabilities(), 0, "imap_capabilities: longer than 1024 "
	    "bytes");
	/* auth.http alone, as nginx's auth_http: the answer routes (issue
	 * 11 item 6); backend.exec still excludes backend.connect. */
	{
		struct config c;
		char err[CONFIG_ERR_MAX];

		CHECK_EQ(load(&c, "auth = { http = \"http://h:1/a\"; };\n",
		    err, sizeof(err)), 0);
		CHECK_EQ(c.nconnect, 0);
		CHECK_EQ(c.exec_argc, 0);
		release(&c);
		CHECK_EQ(load(&c, "auth = { http = \"http://h:1/a\"; };\n"
		    "backend = { ssl = true; };\n", err, sizeof(err)), 0);
		release(&c);
	}
	FAILS("auth = { http = \"http://h:1/a\"; };\n"
	    "backend = { exec = [\"/x\"]; connect = [\"h:143\"]; };\n", 0,
	    "give exactly one of backend.exec and backend.connect");
	FAILS("auth = { checkpassword = [\"/c\"]; };\n", 0,
	    "give exactly one of backend.exec and backend.connect");
}

static void
config_greeting(void)
{
	char text[512];

	FAILS(MINIMAL "greeting = \"a\\tb\";\n", 3,
	    "greeting: only printable ASCII is allowed");
	snprintf(text, sizeof(text), MINIMAL "greeting = \"%0257d\";\n", 0);
	FAILS(text, 3, "greeting: longer than 256 characters");
}

static void
config_syntax_error(void)
{
	struct config c;
	char err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX];

	CHECK_EQ(load(&c, MINIMAL "\ntimeout = ;\n", err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:4: ", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	CHECK(strstr(err, "syntax error") != NULL);
	release(&c);
	CHECK_EQ(load(&c, MINIMAL "timeout = 5;\ntimeout = 6;\n", err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:4: ", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	release(&c);
}

static void
config_unreadable(void)
{
	struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(config_load(&c, "/nonexistent/imapgate.conf", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "/nonexistent/imapgate.conf: cannot read the file");
	release(&c);
}

#define CERT \
	"ssl_certificate = \"/etc/ssl/a.pem\";\n" \
	"ssl_certificate_key = \"/etc/ssl/a.key\";\n"

static void
config_tls(void)
{
	struct config c;
	struct capa_policy p;
	char err[CONFIG_ERR_MAX];

	/* Defaults: no TLS anywhere. */
	CHECK_EQ(load(&c, MINIMAL, err, sizeof(err)), 0);
	CHECK_EQ(c.ssl, 0);
	CHECK_EQ(c.starttls, STARTTLS_OFF);
	CHECK_EQ(c.ssl_verify_client, VERIFY_OFF);
	CHECK_EQ(c.ssl_handshake_timeout, 10);
	CHECK_STR(c.ssl_priority, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
	release(&c);
	/* Every key. */
	CHECK_EQ(load(&c, MINIMAL CERT "starttls = \"only\";\n"
	    "ssl_priority = \"NORMAL\";\n"
	    "ssl_session_ticket_key = \"/etc/ssl/ticket\";\n"
	    "ssl_verify_client = \"optional\";\n"
	    "ssl_client_certificate = \"/etc/ssl/ca.pem\";\n"
	    "ssl_handshake_timeout = 3;\n"
	    "ssl_external_trust_session = true;\n"
	    "imap_auth = [\"plain\", \"external\"];\n", err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_EQ(c.starttls, STARTTLS_ONLY);
	CHECK_EQ(c.nssl_cert, 1);
	CHECK_STR(c.ssl_cert[0], "/etc/ssl/a.pem");
	CHECK_STR(c.ssl_key[0], "/etc/ssl/a.key");
	CHECK_STR(c.ssl_ticket_key, "/etc/ssl/ticket");
	CHECK_EQ(c.ssl_verify_client, VERIFY_OPTIONAL);
	CHECK_EQ(c.ssl_handshake_timeout, 3);
	CHECK_EQ(c.auth_methods, AUTHM_PLAIN | AUTHM_EXTERNAL);
	config_capa_policy(&c, 0, &p);
	CHECK_EQ(p.starttls, STARTTLS_ONLY);
	release(&c);
	/* Several pairs, for SNI. */
	CHECK_EQ(load(&c, MINIMAL
	    "ssl_certificate = [\"/a.pem\", \"/b.pem\"];\n"
	    "ssl_certificate_key = [\"/a.key\", \"/b.key\"];\n"
	    "ssl = true;\n", err, sizeof(err)), 0);
	CHECK_EQ(c.nssl_cert, 2);
	CHECK_STR(c.ssl_key[1], "/b.key");
	/* Implicit TLS never offers STARTTLS. */
	config_capa_policy(&c, 1, &p);
	CHECK_EQ(p.starttls, STARTTLS_OFF);
	release(&c);
	/* nginx's ssl_protocols: shorthand for a priority string. */
	CHECK_EQ(load(&c, MINIMAL "ssl_protocols = [\"TLSv1.3\"];\n", err,
	    sizeof(err)), 0);
	CHECK_STR(c.ssl_priority, "NORMAL:-VERS-ALL:+VERS-TLS1.3");
	release(&c);
	CHECK_EQ(load(&c, MINIMAL "ssl_protocols = [\"TLSv1.2\", \"TLSv1.3\"];\n",
	    err, sizeof(err)), 0);
	CHECK_STR(c.ssl_priority,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3");
	release(&c);
	FAILS(MINIMAL "ssl_protocols = [\"SSLv3\"];\n", 3, "ssl_protocols: "
	    "\"SSLv3\" is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3");
	FAILS(MINIMAL "ssl_protocols = [];\n", 3,
	    "ssl_protocols: empty: name at least one protocol");
	FAILS(MINIMAL "ssl_priority = \"NORMAL\";\n"
	    "ssl_protocols = [\"TLSv1.3\"];\n", 4,
	    "ssl_protocols: give ssl_priority or ssl_protocols, not both");
	FAILS(MINIMAL "ssl = true;\n", 0, "ssl and starttls need "
	    "ssl_certificate and ssl_certificate_key");
	FAILS(MINIMAL "starttls = \"on\";\n", 0, "ssl and starttls need "
	    "ssl_certificate and ssl_certificate_key");
	FAILS(MINIMAL "starttls = \"yes\";\n", 3,
	    "starttls: \"yes\" is not one of the allowed values");
	FAILS(MINIMAL "ssl_certificate = [\"/a.pem\", \"/b.pem\"];\n"
	    "ssl_certificate_key = \"/a.key\";\nssl = true;\n", 0,
	    "ssl_certificate and ssl_certificate_key must name as many files "
	    "each");
	FAILS(MINIMAL "ssl_certificate = \"a.pem\";\n", 3,
	    "ssl_certificate: \"a.pem\" is not an absolute path");
	FAILS(MINIMAL CERT "ssl_verify_client = \"on\";\n", 0,
	    "ssl_verify_client needs ssl_client_certificate (the CA that "
	    "signs client certificates)");
	FAILS("auth = { passwd_file = \"/etc/imapgate/passwd\"; };\n"
	    "backend = { exec = [\"/usr/lib/dovecot/imap\"]; ssl = true; };\n", 0,
	    "backend.ssl and backend.starttls are for backend.connect");
	FAILS("backend = { connect = [\"h:993\"]; ssl = true; "
	    "starttls = true; };\n", 0,
	    "give one of backend.ssl and backend.starttls");
	FAILS("backend = { connect = [\"unix:/run/imap\"]; ssl = true; };\n",
	    0, "TLS to a unix socket backend needs backend.ssl_name");
	FAILS("backend = { connect = [\"h:993\"]; ssl_name = \"a b\"; };\n",
	    1, "ssl_name: \"a b\" is not a host name or address");
}

/* Load text with the listen group for port applied. */
static int
load_port(struct config *c, const char *text, int port, char *err,
    size_t errsize)
{
	int rc;

	err[0] = '\0';
	rc = config_load_port(c, write_conf(text), port, err, errsize);
	unlink(path);
	return rc;
}

static void
config_listen(void)
{
	static const char text[] = MINIMAL CERT
	    "timeout = 30;\n"
	    "listen = ( { port = 993; ssl = true; timeout = 20; },\n"
	    "           { port = 143; starttls = \"only\";\n"
	    "             auth = { failure_delay = 0.5; }; } );\n";
	struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(load_port(&c, text, 0, err, sizeof(err)), 0);
	CHECK_EQ(c.nlisten, 2);
	CHECK_EQ(c.listen_port[0], 993);
	CHECK_EQ(c.listen_port[1], 143);
	CHECK_EQ(c.ssl, 0);
	CHECK_EQ(c.timeout, 30);
	release(&c);
	CHECK_EQ(load_port(&c, text, 993, err, sizeof(err)), 0);
	CHECK_EQ(c.ssl, 1);
	CHECK_EQ(c.timeout, 20);
	CHECK_EQ(c.starttls, STARTTLS_OFF);
	release(&c);
	CHECK_EQ(load_port(&c, text, 143, err, sizeof(err)), 0);
	CHECK_EQ(c.ssl, 0);
	CHECK_EQ(c.starttls, STARTTLS_ONLY);
	CHECK(c.failure_delay == 0.5);
	CHECK_EQ(c.timeout, 30);
	release(&c);
	/* A port with no group: the top level. */
	CHECK_EQ(load_port(&c, text, 10143, err, sizeof(err)), 0);
	CHECK_EQ(c.ssl, 0);
	CHECK_EQ(c.starttls, STARTTLS_OFF);
	release(&c);
	/* Errors name the line. */
	CHECK_EQ(load_port(&c, MINIMAL "listen = ( { port = 993; bogus = 1; } );\n",
	    993, err, sizeof(err)), -1);
	CHECK(strstr(err, ":3: bogus: unknown key") != NULL);
	release(&c);
	CHECK_EQ(load_port(&c, MINIMAL "listen = ( { port = 993; ssl = true; } );\n",
	    993, err, sizeof(err)), -1);
	CHECK(strstr(err, "ssl and starttls need ssl_certificate") != NULL);
	release(&c);
	FAILS(MINIMAL "listen = ( { ssl = true; } );\n", 3,
	    "listen: a listen group needs a port");
	FAILS(MINIMAL "listen = ( { port = 1; }, { port = 1; } );\n", 3,
	    "port: port 1 is listed twice");
	FAILS(MINIMAL "listen = ( { port = 70000; } );\n", 3,
	    "port: 70000 is out of range (1..65535)");
	FAILS(MINIMAL "listen = [ 993 ];\n", 3,
	    "listen: expected a list of groups, ( { port = 993; ... } )");
	CHECK_EQ(load_port(&c, MINIMAL
	    "listen = ( { port = 9; listen = ( { port = 10; } ); } );\n", 9,
	    err, sizeof(err)), -1);
	CHECK(strstr(err, "listen groups do not nest") != NULL);
	release(&c);
}

/* Listener mode's limits (issue 9 item 4): defaults, values, ranges. */
static void
config_listener_limits(void)
{
	struct config c;
	char err[CONFIG_ERR_MAX];

	CHECK_EQ(load(&c, MINIMAL, err, sizeof(err)), 0);
	CHECK_EQ(c.max_connections, 10000);
	CHECK_EQ(c.max_preauth, 256);
	CHECK_EQ(c.max_preauth_per_source, 10);
	release(&c);
	CHECK_EQ(load(&c, MINIMAL "max_connections = 500;\nmax_preauth = 50;\n"
	    "max_preauth_per_source = 4;\n", err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_EQ(c.max_connections, 500);
	CHECK_EQ(c.max_preauth, 50);
	CHECK_EQ(c.max_preauth_per_source, 4);
	release(&c);
	FAILS(MINIMAL "max_preauth_per_source = 0;\n", 3,
	    "max_preauth_per_source: 0 is out of range (1..100000)");
	FAILS(MINIMAL "max_preauth = 100001;\n", 3,
	    "max_preauth: 100001 is out of range (1..100000)");
	FAILS(MINIMAL "\nmax_connections = -1;\n", 4,
	    "max_connections: -1 is out of range (1..100000)");
	FAILS(MINIMAL "max_connections = \"many\";\n", 3,
	    "max_connections: expected an integer");
}

void
suite_config(void)
{
	RUN(config_minimal_defaults);
	RUN(config_every_key);
	RUN(config_every_key_connect);
	RUN(config_every_key_checkpassword);
	RUN(config_listener_limits);
	RUN(config_capabilities);
	RUN(config_unknown_keys);
	RUN(config_wrong_types);
	RUN(config_ranges);
	RUN(config_limits_accepted);
	RUN(config_imap_auth);
	RUN(config_paths);
	RUN(config_required);
	RUN(config_greeting);
	RUN(config_syntax_error);
	RUN(config_unreadable);
	RUN(config_tls);
	RUN(config_listen);
}
