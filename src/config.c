/*
 * Configuration loading.  Every key is in one table; a key that is not
 * there is an error, because a misspelt directive that silently does
 * nothing is worse than one that stops the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "config.h"

struct ctx {
	struct config	*c;
	const char	*path;
	char		*err;
	size_t		 errsize;
	int		 in_listen;	/* applying a listen group */
	int		 public;	/* secret values are placeholders */
};

enum key_type { K_INT, K_FLOAT, K_STRING, K_LIST, K_BOOL, K_GROUP };

struct key {
	const char	*group;		/* NULL: top level */
	const char	*name;
	enum key_type	 type;
	int		(*apply)(struct ctx *, const config_setting_t *);
};

static int
fail(struct ctx *x, const config_setting_t *s, const char *fmt, ...)
{
	char what[256];
	const char *name = s != NULL ? config_setting_name(s) : NULL;
	const config_setting_t *parent;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* List elements have no name: name the list they belong to. */
	if (s != NULL && name == NULL && (parent = config_setting_parent(s)))
		name = config_setting_name(parent);
	if (s == NULL)
		snprintf(x->err, x->errsize, "%s: %s", x->path, what);
	else
		snprintf(x->err, x->errsize, "%s:%u: %s: %s", x->path,
		    config_setting_source_line(s), name ? name : "(list)", what);
	return -1;
}

static int
get_int(struct ctx *x, const config_setting_t *s, long lo, long hi, int *out)
{
	long long v;

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return fail(x, s, "expected an integer");
	v = config_setting_get_int64(s);
	if (v < lo || v > hi)
		return fail(x, s, "%lld is out of range (%ld..%ld)", v, lo, hi);
	*out = (int)v;
	return 0;
}

static int
get_float(struct ctx *x, const config_setting_t *s, double lo, double hi,
    double *out)
{
	double v;

	if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		v = config_setting_get_float(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64)
		v = (double)config_setting_get_int64(s);
	else
		return fail(x, s, "expected a number");
	if (!(v >= lo && v <= hi))
		return fail(x, s, "%g is out of range (%g..%g)", v, lo, hi);
	*out = v;
	return 0;
}

static int
get_string(struct ctx *x, const config_setting_t *s, char **out)
{
	const char *v;

	if ((v = config_setting_get_string(s)) == NULL)
		return fail(x, s, "expected a string");
	free(*out);
	if ((*out = strdup(v)) == NULL)
		return fail(x, s, "out of memory");
	return 0;
}

static int
get_path(struct ctx *x, const config_setting_t *s, char **out)
{
	if (get_string(x, s, out) < 0)
		return -1;
	if ((*out)[0] != '/')
		return fail(x, s, "\"%s\" is not an absolute path", *out);
	return 0;
}

/* A list (or array) of strings into out[max]; returns the count. */
static int
get_strings(struct ctx *x, const config_setting_t *s, char **out, int max)
{
	int i, n;

	if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
		return fail(x, s, "expected a list of strings, [\"a\", \"b\"]");
	if ((n = config_setting_length(s)) > max)
		return fail(x, s, "more than %d entries", max);
	for (i = 0; i <= max && out[i] != NULL; i++) {
		free(out[i]);		/* the defaults */
		out[i] = NULL;
	}
	for (i = 0; i < n; i++) {
		out[i] = NULL;
		if (get_string(x, config_setting_get_elem(s, i), &out[i]) < 0)
			return -1;
	}
	out[n] = NULL;
	return n;
}

/* A secret is redacted from the main file's text only (see
 * redact()): one read from an @include file would reach the session. */
static int
not_included(struct ctx *x, const config_setting_t *s)
{
	if (config_setting_source_file(s) != NULL &&
	    strcmp(config_setting_source_file(s), x->path) != 0)
		return fail(x, s, "a secret must be in the main file, not "
		    "in an @include file (%s)",
		    config_setting_source_file(s));
	return 0;
}

static int
apply_capabilities(struct ctx *x, const config_setting_t *s)
{
	int i, n;

	if ((n = get_strings(x, s, x->c->capa_tokens, CAPA_TOKENS_MAX - 1)) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		const char *t = x->c->capa_tokens[i];
		const config_setting_t *e = config_setting_get_elem(s, i);

		if (!capability_token_ok(t))
			return fail(x, e, "\"%s\" is not a capability token", t);
		/* These follow imap_auth and the TLS policy; listed by hand
		 * they could offer AUTH= where the policy forbids it. */
		if (strncasecmp(t, "AUTH=", 5) == 0 ||
		    strcasecmp(t, "STARTTLS") == 0 ||
		    strcasecmp(t, "LOGINDISABLED") == 0)
			return fail(x, e, "\"%s\" is added automatically; "
			    "use imap_auth", t);
	}
	x->c->ncapa = (size_t)n;
	return 0;
}

static int
apply_auth_methods(struct ctx *x, const config_setting_t *s)
{
	char *m[8] = { 0 };
	int i, n, rc = 0;

	if ((n = get_strings(x, s, m, 7)) < 0)
		return -1;
	x->c->auth_methods = 0;
	for (i = 0; i < n && rc == 0; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);

		if (strcmp(m[i], "plain") == 0)
			x->c->auth_methods |= AUTHM_PLAIN;
		else if (strcmp(m[i], "login") == 0)
			x->c->auth_methods |= AUTHM_LOGIN;
		else if (strcmp(m[i], "cram-md5") == 0)
			x->c->auth_methods |= AUTHM_CRAM_MD5;
		else if (strcmp(m[i], "oauthbearer") == 0)
			x->c->auth_methods |= AUTHM_OAUTHBEARER;
		else if (strcmp(m[i], "xoauth2") == 0)
			x->c->auth_methods |= AUTHM_XOAUTH2;
		else if (strcmp(m[i], "external") == 0)
			x->c->auth_methods |= AUTHM_EXTERNAL;
		else
			rc = fail(x, e, "unknown method \"%s\" (plain, login, "
			    "cram-md5, oauthbearer, xoauth2, external)", m[i]);
	}
	for (i = 0; i < n; i++)
		free(m[i]);
	return rc;
}

static int
apply_client_buffer(struct ctx *x, const config_setting_t *s)
{
	int v = 0;

	if (get_int(x, s, CLIENT_BUFFER_MIN, CLIENT_BUFFER_MAX, &v) < 0)
		return -1;
	x->c->client_buffer = (size_t)v;
	return 0;
}

static int
apply_greeting(struct ctx *x, const config_setting_t *s)
{
	const unsigned char *p;

	if (get_string(x, s, &x->c->greeting) < 0)
		return -1;
	if (strlen(x->c->greeting) > GREETING_MAX)
		return fail(x, s, "longer than %d characters", GREETING_MAX);
	for (p = (const unsigned char *)x->c->greeting; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return fail(x, s, "only printable ASCII is allowed");
	return 0;
}

static int
apply_timeout(struct ctx *x, const config_setting_t *s)
{
	return get_int(x, s, 1, 3600, &x->c->timeout);
}

static int
apply_max_errors(struct ctx *x, const config_setting_t *s)
{
	return get_int(x, s, 1, 1000, &x->c->max_errors);
}

/* Listener mode's limits (issue 9): how many connections at once. */
static int
apply_max_connections(struct ctx *x, const config_setting_t *s)
{
	return get_int(x, s, 1, MAX_CONNECTIONS_MAX, &x->c->max_connections);
}

static int
apply_max_preauth(struct ctx *x, const config_setting_t *s)
{
	return get_int(x, s, 1, MAX_CONNECTIONS_MAX, &x->c->max_preauth);
}

static int
apply_max_preauth_per_source(struct ctx *x, const config_setting_t *s)
{
	return get_int(x, s, 1, MAX_CONNECTIONS_MAX,
	    &x->c->max_preauth_per_source);
}

static int
apply_passwd_file(struct ctx *x, const config_setting_t *s)
{
	return get_path(x, s, &x->c->passwd_file);
}

static int
apply_failure_delay(struct ctx *x, const config_setting_t *s)
{
	return get_float(x, s, 0.0, 60.0, &x->c->failure_delay);
}

static int
apply_max_attempts(struct ctx *x, const config_setting_t *s)
{
	return get_int(x, s, 1, 100, &x->c->max_attempts);
}

static int
apply_exec(struct ctx *x, const config_setting_t *s)
{
	int n;

	if ((n = get_strings(x, s, x->c->exec_argv, EXEC_ARGS_MAX)) < 0)
		return -1;
	if (n == 0)
		return fail(x, s, "empty: name the mail server program");
	if (x->c->exec_argv[0][0] != '/')
		return fail(x, s, "\"%s\" is not an absolute path",
		    x->c->exec_argv[0]);
	x->c->exec_argc = n;
	return 0;
}

static int
apply_privsep_user(struct ctx *x, const config_setting_t *s)
{
	return get_string(x, s, &x->c->privsep_user);
}

static int
apply_privsep_chroot(struct ctx *x, const config_setting_t *s)
{
	return get_path(x, s, &x->c->privsep_chroot);
}

int
backend_addr_parse(const char *s, struct backend_addr *a)
{
	const char *colon, *host = s;
	size_t hostlen;

	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/' || strlen(s + 5) > UNIX_PATH_MAX)
			return -1;
		a->is_unix = 1;
		memcpy(a->host, s + 5, strlen(s + 5) + 1);
		return 0;
	}
	if (*s == '[') {
		if ((colon = strstr(s, "]:")) == NULL)
			return -1;
		host = s + 1;
		hostlen = (size_t)(colon - host);
		colon++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL || strchr(s, ':') != colon)
			return -1;
		hostlen = (size_t)(colon - s);
	}
	if (hostlen == 0 || hostlen > HOST_MAX || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= PORT_MAX ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atol(colon + 1) < 1 || atol(colon + 1) > 65535)
		return -1;
	memcpy(a->host, host, hostlen);
	a->host[hostlen] = '\0';
	snprintf(a->port, sizeof(a->port), "%s", colon + 1);
	return 0;
}

static int
get_bool(struct ctx *x, const config_setting_t *s, int *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail(x, s, "expected true or false");
	*out = config_setting_get_bool(s);
	return 0;
}

/* A string that must be one of names[]; its index into *out. */
static int
get_choice(struct ctx *x, const config_setting_t *s, const char *const *names,
    int *out)
{
	const char *v = config_setting_get_string(s);
	int i;

	if (v == NULL)
		return fail(x, s, "expected a string");
	for (i = 0; names[i] != NULL; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	return fail(x, s, "\"%s\" is not one of the allowed values", v);
}

static int
apply_connect(struct ctx *x, const config_setting_t *s)
{
	char *v[CONNECT_MAX + 1] = { 0 };
	int i, n, rc = 0;

	if ((n = get_strings(x, s, v, CONNECT_MAX)) < 0)
		return -1;
	if (n == 0)
		rc = fail(x, s, "empty: name at least one backend");
	for (i = 0; i < n && rc == 0; i++)
		if (backend_addr_parse(v[i], &x->c->connect[i]) < 0)
			rc = fail(x, config_setting_get_elem(s, i),
			    "\"%s\" is not host:port, [v6addr]:port or "
			    "unix:/path", v[i]);
	for (i = 0; i < n; i++)
		free(v[i]);
	x->c->nconnect = rc == 0 ? n : 0;
	return rc;
}

static int
apply_connect_timeout(struct ctx *x, const config_setting_t *s)
{
	return get_float(x, s, 0.1, 600.0, &x->c->connect_timeout);
}

static int
apply_backend_login(struct ctx *x, const config_setting_t *s)
{
	static const char *const names[] = { "login", "plain", NULL };
	int v;

	if (get_choice(x, s, names, &v) < 0)
		return -1;
	x->c->backend_login = (enum backend_login)v;
	return 0;
}

static int
apply_master_user(struct ctx *x, const config_setting_t *s)
{
	if (get_string(x, s, &x->c->master_user) < 0)
		return -1;
	if (x->c->master_user[0] == '\0' || strlen(x->c->master_user) > USER_MAX)
		return fail(x, s, "must be 1 to %d bytes", USER_MAX);
	return 0;
}

static int
apply_master_password(struct ctx *x, const config_setting_t *s)
{
	if (not_included(x, s) < 0 ||
	    get_string(x, s, &x->c->master_password) < 0)
		return -1;
	/* A placeholder is as long as the value's text, escapes included:
	 * the real value is checked in the monitor. */
	if (!x->public && strlen(x->c->master_password) > PASS_MAX)
		return fail(x, s, "longer than %d bytes", PASS_MAX);
	return 0;
}

static int
apply_client_input(struct ctx *x, const config_setting_t *s)
{
	static const char *const names[] = { "auto", "env", "relay", NULL };
	int v;

	if (get_choice(x, s, names, &v) < 0)
		return -1;
	x->c->client_input = (enum client_input)v;
	return 0;
}

static int
apply_forward_client(struct ctx *x, const config_setting_t *s)
{
	static const char *const names[] =
	    { "id", "proxy-v1", "proxy-v2", "none", NULL };
	int v;

	if (get_choice(x, s, names, &v) < 0)
		return -1;
	x->c->forward_client = (enum forward_client)v;
	return 0;
}

static int
apply_proxy_timeout(struct ctx *x, const config_setting_t *s)
{
	return get_int(x, s, 1, 7 * 86400, &x->c->proxy_timeout);
}

static int
apply_pass_error(struct ctx *x, const config_setting_t *s)
{
	return get_bool(x, s, &x->c->proxy_pass_error_message);
}

static int
apply_ssl_external_trust_session(struct ctx *x, const config_setting_t *s)
{
	return get_bool(x, s, &x->c->ssl_external_trust_session);
}

static int
apply_proxy_protocol(struct ctx *x, const config_setting_t *s)
{
	return get_bool(x, s, &x->c->proxy_protocol);
}

static int
apply_real_ip_from(struct ctx *x, const config_setting_t *s)
{
	char *v[CIDR_MAX + 1] = { 0 };
	int i, n, rc = 0;

	if ((n = get_strings(x, s, v, CIDR_MAX)) < 0)
		return -1;
	for (i = 0; i < n && rc == 0; i++)
		if (cidr_parse(v[i], &x->c->real_ip_from[i]) < 0)
			rc = fail(x, config_setting_get_elem(s, i),
			    "\"%s\" is not an address or address/bits", v[i]);
	for (i = 0; i < n; i++)
		free(v[i]);
	x->c->nreal_ip_from = rc == 0 ? n : 0;
	return rc;
}

static int
apply_checkpassword(struct ctx *x, const config_setting_t *s)
{
	int n;

	if ((n = get_strings(x, s, x->c->checkpw_argv, CHECKPW_ARGS_MAX)) < 0)
		return -1;
	if (n == 0 || x->c->checkpw_argv[0][0] != '/')
		return fail(x, s, "name the checkpassword program by its "
		    "absolute path");
	x->c->checkpw_argc = n;
	return 0;
}

int
auth_http_url_parse(const char *url, struct auth_http_url *t)
{
	char spec[HOST_MAX + PORT_MAX + 8];
	const char *p, *slash;
	size_t n;

	memset(t, 0, sizeof(*t));
	if (strlen(url) > AUTH_HTTP_URI_MAX)
		return -1;
	if (strncmp(url, "unix:", 5) == 0) {
		if ((p = strstr(url + 5, ":/")) == NULL)
			return -1;
		snprintf(spec, sizeof(spec), "%.*s", (int)(p - url), url);
		snprintf(t->uri, sizeof(t->uri), "%s", p + 1);
		snprintf(t->host, sizeof(t->host), "localhost");
		return backend_addr_parse(spec, &t->addr);
	}
	if (strncmp(url, "http://", 7) != 0)
		return -1;
	p = url + 7;
	slash = strchr(p, '/');
	n = slash != NULL ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n >= sizeof(t->host))
		return -1;
	snprintf(t->host, sizeof(t->host), "%.*s", (int)n, p);
	snprintf(t->uri, sizeof(t->uri), "%s", slash != NULL ? slash : "/");
	/* No port: HTTP's own (a bare v6 address must come in brackets). */
	if (strrchr(t->host, ':') == NULL ||
	    (t->host[0] == '[' && t->host[n - 1] == ']'))
		snprintf(spec, sizeof(spec), "%s:80", t->host);
	else
		snprintf(spec, sizeof(spec), "%s", t->host);
	return backend_addr_parse(spec, &t->addr);
}

static int
apply_auth_http(struct ctx *x, const config_setting_t *s)
{
	struct auth_http_url u;

	if (get_string(x, s, &x->c->auth_http) < 0)
		return -1;
	if (auth_http_url_parse(x->c->auth_http, &u) < 0)
		return fail(x, s, "\"%s\" is not http://host[:port]/uri or "
		    "unix:/path:/uri", x->c->auth_http);
	return 0;
}

static int
apply_auth_http_header(struct ctx *x, const config_setting_t *s)
{
	int i, n;
	const char *h, *colon;

	if (not_included(x, s) < 0 || (n = get_strings(x, s,
	    x->c->auth_http_header, AUTH_HTTP_HEADERS_MAX)) < 0)
		return -1;
	/* Placeholders: the real values are checked in the monitor (and
	 * by -t). */
	for (i = 0; i < n && !x->public; i++) {
		h = x->c->auth_http_header[i];
		colon = strchr(h, ':');
		/* A header name of letters, digits and '-', and a value with
		 * no line ends: nothing here can split the request. */
		if (strlen(h) > AUTH_HTTP_HEADER_MAX || colon == NULL ||
		    colon == h || strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789-") !=
		    (size_t)(colon - h) || strpbrk(h, "\r\n") != NULL)
			return fail(x, config_setting_get_elem(s, i),
			    "\"%s\" is not \"Name: value\"", h);
	}
	x->c->nauth_http_header = n;
	return 0;
}

static int
apply_auth_http_timeout(struct ctx *x, const config_setting_t *s)
{
	return get_int(x, s, 1, 3600, &x->c->auth_http_timeout);
}

static int
apply_max_penalty(struct ctx *x, const config_setting_t *s)
{
	return get_float(x, s, 0.0, 3600.0, &x->c->max_penalty);
}

static int
apply_penalty_file(struct ctx *x, const config_setting_t *s)
{
	return get_path(x, s, &x->c->penalty_file);
}

static int
apply_server_name(struct ctx *x, const config_setting_t *s)
{
	const char *v;

	if (get_string(x, s, &x->c->server_name) < 0)
		return -1;
	v = x->c->server_name;
	if (*v == '\0' || strlen(v) > SERVER_NAME_MAX ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789.-") != strlen(v))
		return fail(x, s, "\"%s\" is not a host name", v);
	return 0;
}

/* ---- TLS ---- */

static int
apply_starttls(struct ctx *x, const config_setting_t *s)
{
	static const char *const names[] = { "off", "on", "only", NULL };
	int v;

	if (get_choice(x, s, names, &v) < 0)
		return -1;
	x->c->starttls = (enum starttls_mode)v;
	return 0;
}

static int
apply_ssl(struct ctx *x, const config_setting_t *s)
{
	return get_bool(x, s, &x->c->ssl);
}

/* A path, or a list of paths (several certificates, chosen by SNI). */
static int
get_paths(struct ctx *x, const config_setting_t *s, char **out, int *n)
{
	int i;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		for (i = 0; i < SSL_CERTS_MAX; i++) {
			free(out[i]);
			out[i] = NULL;
		}
		*n = 1;
		return get_path(x, s, &out[0]);
	}
	if ((*n = get_strings(x, s, out, SSL_CERTS_MAX)) < 0)
		return -1;
	if (*n == 0)
		return fail(x, s, "empty: name at least one file");
	for (i = 0; i < *n; i++)
		if (out[i][0] != '/')
			return fail(x, config_setting_get_elem(s, i),
			    "\"%s\" is not an absolute path", out[i]);
	return 0;
}

static int
apply_ssl_certificate(struct ctx *x, const config_setting_t *s)
{
	return get_paths(x, s, x->c->ssl_cert, &x->c->nssl_cert);
}

static int
apply_ssl_certificate_key(struct ctx *x, const config_setting_t *s)
{
	return get_paths(x, s, x->c->ssl_key, &x->c->nssl_key);
}

static int
apply_ssl_priority(struct ctx *x, const config_setting_t *s)
{
	if (x->c->ssl_protocols_set)
		return fail(x, s, "give ssl_priority or ssl_protocols, not both");
	x->c->ssl_priority_set = 1;
	return get_string(x, s, &x->c->ssl_priority);
}

/* nginx's ssl_protocols, as the GnuTLS priority string it stands for. */
static int
apply_ssl_protocols(struct ctx *x, const config_setting_t *s)
{
	static const char *const names[][2] = { { "TLSv1", "TLS1.0" },
	    { "TLSv1.1", "TLS1.1" }, { "TLSv1.2", "TLS1.2" },
	    { "TLSv1.3", "TLS1.3" } };
	char *v[5] = { 0 }, prio[128];
	size_t i, j;
	int n, rc = 0;

	if (x->c->ssl_priority_set)
		return fail(x, s, "give ssl_priority or ssl_protocols, not both");
	if ((n = get_strings(x, s, v, 4)) < 0)
		return -1;
	snprintf(prio, sizeof(prio), "NORMAL:-VERS-ALL");
	for (i = 0; i < (size_t)n && rc == 0; i++) {
		for (j = 0; j < 4 && strcmp(v[i], names[j][0]) != 0; j++)
			;
		if (j == 4)
			rc = fail(x, config_setting_get_elem(s, (int)i),
			    "\"%s\" is not one of TLSv1, TLSv1.1, TLSv1.2, "
			    "TLSv1.3", v[i]);
		else
			snprintf(prio + strlen(prio), sizeof(prio) - strlen(prio),
			    ":+VERS-%s", names[j][1]);
	}
	if (rc == 0 && n == 0)
		rc = fail(x, s, "empty: name at least one protocol");
	for (i = 0; i < (size_t)n; i++)
		free(v[i]);
	if (rc < 0)
		return -1;
	x->c->ssl_protocols_set = 1;
	free(x->c->ssl_priority);
	if ((x->c->ssl_priority = strdup(prio)) == NULL)
		return fail(x, s, "out of memory");
	return 0;
}

static int
apply_ssl_ticket_key(struct ctx *x, const config_setting_t *s)
{
	return get_path(x, s, &x->c->ssl_ticket_key);
}

static int
apply_ssl_verify_client(struct ctx *x, const config_setting_t *s)
{
	static const char *const names[] = { "off", "optional", "on", NULL };
	int v;

	if (get_choice(x, s, names, &v) < 0)
		return -1;
	x->c->ssl_verify_client = (enum ssl_verify)v;
	return 0;
}

static int
apply_ssl_client_certificate(struct ctx *x, const config_setting_t *s)
{
	return get_path(x, s, &x->c->ssl_client_ca);
}

static int
apply_ssl_handshake_timeout(struct ctx *x, const config_setting_t *s)
{
	return get_int(x, s, 1, 3600, &x->c->ssl_handshake_timeout);
}

static int
apply_backend_ssl(struct ctx *x, const config_setting_t *s)
{
	return get_bool(x, s, &x->c->backend_ssl);
}

static int
apply_backend_starttls(struct ctx *x, const config_setting_t *s)
{
	return get_bool(x, s, &x->c->backend_starttls);
}

static int
apply_backend_ca(struct ctx *x, const config_setting_t *s)
{
	return get_path(x, s, &x->c->backend_ca);
}

static int
apply_backend_ssl_name(struct ctx *x, const config_setting_t *s)
{
	const char *v;

	if (get_string(x, s, &x->c->backend_ssl_name) < 0)
		return -1;
	v = x->c->backend_ssl_name;
	if (v[0] == '\0' || strlen(v) > HOST_MAX ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789.-:") != strlen(v))
		return fail(x, s, "\"%s\" is not a host name or address", v);
	return 0;
}

/*
 * listen = ( { port = 993; ssl = true; }, ... ): checked here, applied
 * by config_load_port() for the connection's local port.
 */
static int
apply_listen(struct ctx *x, const config_setting_t *s)
{
	const config_setting_t *e, *p;
	int i, j, n, port = 0;

	if (x->in_listen)
		return fail(x, s, "listen groups do not nest");
	if (!config_setting_is_list(s))
		return fail(x, s, "expected a list of groups, "
		    "( { port = 993; ... } )");
	if ((n = config_setting_length(s)) > LISTEN_MAX)
		return fail(x, s, "more than %d entries", LISTEN_MAX);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, i);
		if (!config_setting_is_group(e))
			return fail(x, e, "expected a group, { port = N; ... }");
		if ((p = config_setting_get_member(e, "port")) == NULL)
			return fail(x, e, "a listen group needs a port");
		if (get_int(x, p, 1, 65535, &port) < 0)
			return -1;
		for (j = 0; j < i; j++)
			if (x->c->listen_port[j] == port)
				return fail(x, p, "port %d is listed twice",
				    port);
		x->c->listen_port[i] = port;
	}
	x->c->nlisten = n;
	return 0;
}

static const struct key keys[] = {
	{ NULL, "imap_capabilities", K_LIST, apply_capabilities },
	{ NULL, "imap_auth", K_LIST, apply_auth_methods },
	{ NULL, "imap_client_buffer", K_INT, apply_client_buffer },
	{ NULL, "greeting", K_STRING, apply_greeting },
	{ NULL, "timeout", K_INT, apply_timeout },
	{ NULL, "max_errors", K_INT, apply_max_errors },
	{ NULL, "max_connections", K_INT, apply_max_connections },
	{ NULL, "max_preauth", K_INT, apply_max_preauth },
	{ NULL, "max_preauth_per_source", K_INT, apply_max_preauth_per_source },
	{ NULL, "auth", K_GROUP, NULL },
	{ NULL, "backend", K_GROUP, NULL },
	{ NULL, "privsep", K_GROUP, NULL },
	{ "auth", "passwd_file", K_STRING, apply_passwd_file },
	{ "auth", "failure_delay", K_FLOAT, apply_failure_delay },
	{ "auth", "max_attempts", K_INT, apply_max_attempts },
	{ "auth", "checkpassword", K_LIST, apply_checkpassword },
	{ "auth", "http", K_STRING, apply_auth_http },
	{ "auth", "max_penalty", K_FLOAT, apply_max_penalty },
	{ "auth", "penalty_file", K_STRING, apply_penalty_file },
	{ NULL, "auth_http_header", K_LIST, apply_auth_http_header },
	{ NULL, "auth_http_timeout", K_INT, apply_auth_http_timeout },
	{ NULL, "server_name", K_STRING, apply_server_name },
	{ "backend", "exec", K_LIST, apply_exec },
	{ "backend", "client_input", K_STRING, apply_client_input },
	{ "privsep", "user", K_STRING, apply_privsep_user },
	{ "privsep", "chroot", K_STRING, apply_privsep_chroot },
	{ NULL, "proxy_timeout", K_INT, apply_proxy_timeout },
	{ NULL, "proxy_pass_error_message", K_BOOL, apply_pass_error },
	{ NULL, "proxy_protocol", K_BOOL, apply_proxy_protocol },
	{ NULL, "set_real_ip_from", K_LIST, apply_real_ip_from },
	{ "backend", "connect", K_LIST, apply_connect },
	{ "backend", "connect_timeout", K_FLOAT, apply_connect_timeout },
	{ "backend", "login", K_STRING, apply_backend_login },
	{ "backend", "master_user", K_STRING, apply_master_user },
	{ "backend", "master_password", K_STRING, apply_master_password },
	{ "backend", "forward_client", K_STRING, apply_forward_client },
	{ NULL, "starttls", K_STRING, apply_starttls },
	{ NULL, "ssl", K_BOOL, apply_ssl },
	{ NULL, "ssl_certificate", K_LIST, apply_ssl_certificate },
	{ NULL, "ssl_certificate_key", K_LIST, apply_ssl_certificate_key },
	{ NULL, "ssl_priority", K_STRING, apply_ssl_priority },
	{ NULL, "ssl_protocols", K_LIST, apply_ssl_protocols },
	{ NULL, "ssl_session_ticket_key", K_STRING, apply_ssl_ticket_key },
	{ NULL, "ssl_verify_client", K_STRING, apply_ssl_verify_client },
	{ NULL, "ssl_external_trust_session", K_BOOL,
	    apply_ssl_external_trust_session },
	{ NULL, "ssl_client_certificate", K_STRING,
	    apply_ssl_client_certificate },
	{ NULL, "ssl_handshake_timeout", K_INT, apply_ssl_handshake_timeout },
	{ NULL, "listen", K_LIST, apply_listen },
	{ "backend", "ssl", K_BOOL, apply_backend_ssl },
	{ "backend", "starttls", K_BOOL, apply_backend_starttls },
	{ "backend", "ssl_trusted_certificate", K_STRING, apply_backend_ca },
	{ "backend", "ssl_name", K_STRING, apply_backend_ssl_name },
};

static const struct key *
find_key(const char *group, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0 &&
		    ((group == NULL && keys[i].group == NULL) ||
		    (group != NULL && keys[i].group != NULL &&
		    strcmp(group, keys[i].group) == 0)))
			return &keys[i];
	return NULL;
}

/* Walk one level: every setting must be a known key. */
static int
apply_level(struct ctx *x, const config_setting_t *level, const char *group)
{
	int i, n = config_setting_length(level);

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(level, i);
		const char *name = config_setting_name(s);
		const struct key *k = find_key(group, name);

		/* A listen group's own key, read by apply_listen(). */
		if (x->in_listen && group == NULL && strcmp(name, "port") == 0)
			continue;
		if (k == NULL)
			return fail(x, s, "unknown key%s%s", group ? " in " : "",
			    group ? group : "");
		if (k->type == K_GROUP) {
			if (!config_setting_is_group(s))
				return fail(x, s, "expected a group, { ... }");
			if (apply_level(x, s, name) < 0)
				return -1;
		} else if (k->apply(x, s) < 0)
			return -1;
	}
	return 0;
}

static int
set_defaults(struct config *c, const char *path)
{
	static const char *const capa[] = { "IMAP4", "IMAP4rev1", "UIDPLUS" };
	size_t i;

	memset(c, 0, sizeof(*c));
	c->path = path;
	for (i = 0; i < 3; i++)
		if ((c->capa_tokens[i] = strdup(capa[i])) == NULL)
			return -1;
	c->ncapa = 3;
	c->auth_methods = AUTHM_PLAIN;
	c->client_buffer = CLIENT_BUFFER_DEFAULT;
	c->timeout = TIMEOUT_DEFAULT;
	c->max_errors = MAX_ERRORS_DEFAULT;
	c->max_connections = MAX_CONNECTIONS_DEFAULT;
	c->max_preauth = MAX_PREAUTH_DEFAULT;
	c->max_preauth_per_source = MAX_PREAUTH_PER_SOURCE_DEFAULT;
	c->failure_delay = FAILURE_DELAY_DEFAULT;
	c->max_attempts = MAX_ATTEMPTS_DEFAULT;
	c->connect_timeout = CONNECT_TIMEOUT_DEFAULT;
	c->auth_http_timeout = AUTH_HTTP_TIMEOUT_DEFAULT;
	c->max_penalty = MAX_PENALTY_DEFAULT;
	c->proxy_timeout = PROXY_TIMEOUT_DEFAULT;
	c->backend_login = BLOGIN_LOGIN;
	c->forward_client = FWD_ID;
	c->ssl_handshake_timeout = SSL_HANDSHAKE_TIMEOUT_DEFAULT;
	if ((c->greeting = strdup("imapgate ready")) == NULL ||
	    (c->privsep_user = strdup("imapgate")) == NULL ||
	    (c->privsep_chroot = strdup("/var/lib/imapgate/empty")) == NULL ||
	    (c->penalty_file = strdup(PENALTY_FILE_DEFAULT)) == NULL ||
	    (c->ssl_priority = strdup(SSL_PRIORITY_DEFAULT)) == NULL)
		return -1;
	return 0;
}

/* TLS keys that go together. */
static int
check_tls(struct ctx *x)
{
	const struct config *c = x->c;
	int i;

	if ((c->ssl || c->starttls != STARTTLS_OFF) && c->nssl_cert == 0)
		return fail(x, NULL, "ssl and starttls need ssl_certificate "
		    "and ssl_certificate_key");
	if (c->nssl_cert != c->nssl_key)
		return fail(x, NULL, "ssl_certificate and ssl_certificate_key "
		    "must name as many files each");
	if (c->ssl_verify_client != VERIFY_OFF && c->ssl_client_ca == NULL)
		return fail(x, NULL, "ssl_verify_client needs "
		    "ssl_client_certificate (the CA that signs client "
		    "certificates)");
	/* The session owns the handshake: the monitor checks the chain it
	 * is given, but cannot tell that this connection's client holds its
	 * key (issue 10 item 5).  Only an operator who says so trusts it. */
	if ((c->auth_methods & AUTHM_EXTERNAL) &&
	    !c->ssl_external_trust_session)
		return fail(x, NULL, "imap_auth external needs "
		    "ssl_external_trust_session = true: a taken-over session "
		    "could log in as anyone whose certificate it has (see "
		    "imapgate(8), THREAT MODEL)");
	if ((c->auth_methods & AUTHM_EXTERNAL) &&
	    c->ssl_verify_client == VERIFY_OFF)
		return fail(x, NULL, "imap_auth external needs ssl_verify_client "
		    "optional or on");
	if ((c->auth_methods & AUTHM_EXTERNAL) && c->passwd_file == NULL &&
	    c->auth_http == NULL)
		return fail(x, NULL, "imap_auth external needs auth.passwd_file "
		    "or auth.http");
	if ((c->auth_methods & AUTHM_EXTERNAL) && c->nconnect > 0 &&
	    c->passwd_file != NULL && c->master_user == NULL)
		return fail(x, NULL, "imap_auth external with backend.connect "
		    "and auth.passwd_file needs backend.master_user");
	if (c->backend_ssl && c->backend_starttls)
		return fail(x, NULL, "give one of backend.ssl and "
		    "backend.starttls");
	if ((c->backend_ssl || c->backend_starttls) && c->exec_argc > 0)
		return fail(x, NULL, "backend.ssl and backend.starttls are for "
		    "backend.connect");
	for (i = 0; i < c->nconnect; i++)
		if ((c->backend_ssl || c->backend_starttls) &&
		    c->connect[i].is_unix && c->backend_ssl_name == NULL)
			return fail(x, NULL, "TLS to a unix socket backend "
			    "needs backend.ssl_name");
	return 0;
}

/* What must be there once every key is read. */
static int
check_required(struct ctx *x)
{
	struct capa_policy p;
	char capa[CAPABILITY_MAX + 1];

	int sources = (x->c->passwd_file != NULL) + (x->c->checkpw_argc > 0) +
	    (x->c->auth_http != NULL);

	/* With auth.http, as in nginx, the route may be the answer's
	 * Auth-Server/Auth-Port alone: backend.connect is optional. */
	if ((x->c->exec_argc > 0) == (x->c->nconnect > 0) &&
	    (x->c->exec_argc > 0 || x->c->auth_http == NULL))
		return fail(x, NULL, "give exactly one of backend.exec and "
		    "backend.connect");
	if (sources > 1)
		return fail(x, NULL, "give at most one of auth.passwd_file, "
		    "auth.checkpassword and auth.http");
	/* Exec mode has no one else to judge a password. */
	if (x->c->exec_argc > 0 && sources == 0)
		return fail(x, NULL, "backend.exec needs an auth source "
		    "(auth.passwd_file, auth.checkpassword or auth.http)");
	if ((x->c->auth_methods & (AUTHM_OAUTHBEARER | AUTHM_XOAUTH2)) &&
	    x->c->auth_http == NULL)
		return fail(x, NULL, "imap_auth oauthbearer and xoauth2 need "
		    "auth.http to check the token");
	if ((x->c->auth_methods & AUTHM_CRAM_MD5) && x->c->passwd_file == NULL &&
	    x->c->auth_http == NULL)
		return fail(x, NULL, "imap_auth cram-md5 needs auth.passwd_file "
		    "({PLAIN} entries) or auth.http");
	if ((x->c->master_user == NULL) != (x->c->master_password == NULL))
		return fail(x, NULL, "backend.master_user and "
		    "backend.master_password go together");
	/* CRAM-MD5 leaves no password to log in to a backend with: only a
	 * master user (or auth_http's Auth-Pass) can. */
	if ((x->c->auth_methods & AUTHM_CRAM_MD5) && x->c->nconnect > 0 &&
	    x->c->passwd_file != NULL && x->c->master_user == NULL)
		return fail(x, NULL, "imap_auth cram-md5 with backend.connect "
		    "and auth.passwd_file needs backend.master_user");
	/* The master logs in for anyone: someone else must check first. */
	if (x->c->master_user != NULL && sources == 0)
		return fail(x, NULL, "backend.master_user needs an auth "
		    "source: without one, anybody could log in as anybody");
	if (check_tls(x) < 0)
		return -1;
	if (x->c->proxy_protocol && x->c->nreal_ip_from == 0)
		return fail(x, NULL, "proxy_protocol needs set_real_ip_from: "
		    "whose PROXY header is to be believed?");
	config_capa_policy(x->c, 0, &p);
	if (capability_build(&p, capa, sizeof(capa)) < 0)
		return fail(x, NULL, "imap_capabilities: longer than %d bytes",
		    CAPABILITY_MAX);
	return 0;
}

/* The listen group for port, applied over the top level. */
static int
apply_port(struct ctx *x, const config_setting_t *root, int port)
{
	const config_setting_t *l, *e, *p;
	int i, rc;

	if ((l = config_setting_get_member(root, "listen")) == NULL)
		return 0;
	for (i = 0; i < config_setting_length(l); i++) {
		e = config_setting_get_elem(l, i);
		p = config_setting_get_member(e, "port");
		if (config_setting_get_int(p) != port)
			continue;
		x->in_listen = 1;
		rc = apply_level(x, e, NULL);
		x->in_listen = 0;
		return rc;
	}
	return 0;
}

int
config_load(struct config *c, const char *path, char *err, size_t errsize)
{
	return config_load_port(c, path, 0, err, errsize);
}

/* The file's text: a buffer of our own, wiped after every parse. */
static char text[CONFIG_FILE_MAX + 1];
static int snapshot_fd = -1;	/* config_snapshot_use() */

int
config_snapshot(const char *path, char *err, size_t errsize)
{
	ssize_t n;
	size_t len = 0;
	int in, fd;

	if ((in = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errsize, "%s: cannot read the file", path);
		return -1;
	}
	if ((fd = memfd_create("imapgate.conf", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) < 0) {
		snprintf(err, errsize, "%s: memfd_create: %s", path,
		    strerror(errno));
		close(in);
		return -1;
	}
	/* The kernel copies: the text never passes through this process's
	 * memory (the listener's, which its sessions inherit). */
	while (len <= CONFIG_FILE_MAX && ((n = sendfile(fd, in, NULL,
	    CONFIG_FILE_MAX + 1 - len)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	close(in);
	if (n < 0) {
		snprintf(err, errsize, "%s: cannot read the file: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	/* What the monitors will read is what was checked. */
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL);
	return fd;
}

int
config_snapshot_use(int fd)
{
	int old = snapshot_fd;

	snapshot_fd = fd;
	return old;
}

void
config_snapshot_close(void)
{
	if (snapshot_fd >= 0)
		close(snapshot_fd);
	snapshot_fd = -1;
}

static ssize_t
read_text(const char *path, char *err, size_t errsize)
{
	ssize_t n = 0;
	size_t len = 0;
	int fd;

	/* A snapshot (listener mode): the text as validated, not the file
	 * on disk, which may have changed since. */
	if ((fd = snapshot_fd) >= 0) {
		while (len < sizeof(text) && ((n = pread(fd, text + len,
		    sizeof(text) - len, (off_t)len)) > 0 ||
		    (n < 0 && errno == EINTR)))
			if (n > 0)
				len += (size_t)n;
	} else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errsize, "%s: cannot read the file", path);
		return -1;
	} else {
		while (len < sizeof(text) &&
		    ((n = read(fd, text + len, sizeof(text) - len)) > 0 ||
		    (n < 0 && errno == EINTR)))
			if (n > 0)
				len += (size_t)n;
		close(fd);
	}
	if (n < 0) {
		snprintf(err, errsize, "%s: cannot read the file", path);
		explicit_bzero(text, len);
		return -1;
	}
	if (len > CONFIG_FILE_MAX) {
		snprintf(err, errsize, "%s: longer than %d bytes", path,
		    CONFIG_FILE_MAX);
		explicit_bzero(text, len);
		return -1;
	}
	text[len] = '\0';
	return (ssize_t)len;
}

/* libconfig's name characters. */
static int
name_char(int ch, int first)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    ch == '*' || (!first && ((ch >= '0' && ch <= '9') || ch == '-' ||
	    ch == '_'));
}

/*
 * Replace, in libconfig text t, every byte inside the string literals
 * that make the value of a secret key (master_password; each element of
 * auth_http_header) with 'x', so that the secret never reaches libconfig
 * -- whose freed buffers would keep it -- in a process that forks
 * sessions.  A scanner of libconfig's lexical syntax (comments, strings
 * with escapes, names, = and :, lists), not a parser: libconfig checks
 * the structure, the monitor's own load the real values.  Returns how
 * many literals it replaced.
 */
static int
redact(char *t)
{
	enum { NONE, NAMED, VALUE } st = NONE;
	int n = 0, depth = 0, list = 0;
	char *p = t, *q;

	while (*p) {
		if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			if ((q = strstr(p + 2, "*/")) == NULL)
				return n;	/* libconfig will say */
			p = q + 2;
		} else if (*p == '"') {
			for (q = p + 1; *q && *q != '"'; q++)
				if (*q == '\\' && q[1])
					q++;
			if (st == VALUE && (!list || depth > 0)) {
				memset(p + 1, 'x', (size_t)(q - p - 1));
				n++;
			}
			p = *q ? q + 1 : q;
		} else if (name_char((unsigned char)*p, 1)) {
			for (q = p; name_char((unsigned char)*q, 0); q++)
				;
			if (st != VALUE || !list || depth == 0) {
				st = NONE;
				if (((size_t)(q - p) == 15 &&
				    memcmp(p, "master_password", 15) == 0) ||
				    ((size_t)(q - p) == 16 &&
				    memcmp(p, "auth_http_header", 16) == 0)) {
					st = NAMED;
					list = q - p == 16;
					depth = 0;
				}
			}
			p = q;
		} else {
			if ((*p == '=' || *p == ':') && st == NAMED)
				st = VALUE;
			else if ((*p == '[' || *p == '(') && st == VALUE && list)
				depth++;
			else if ((*p == ']' || *p == ')') && st == VALUE &&
			    list && depth > 0 && --depth == 0)
				st = NONE;
			else if ((*p == ';' || *p == ',' || *p == '{' ||
			    *p == '}') && (!list || depth == 0))
				st = NONE;
			p++;
		}
	}
	return n;
}

static int
load(struct config *c, const char *path, int port, int public, char *err,
    size_t errsize)
{
	struct ctx x = { c, path, err, errsize, 0, public };
	config_t cf;
	ssize_t len;
	int rc;

	if (set_defaults(c, path) < 0) {
		snprintf(err, errsize, "%s: out of memory", path);
		return -1;
	}
	c->port = port;
	if ((len = read_text(path, err, errsize)) < 0)
		return -1;
	if (public)
		c->redacted = redact(text);
	config_init(&cf);
	/* Settings read from this text have no file name; an @include
	 * file's have theirs (not_included()). */
	rc = config_read_string(&cf, text);
	explicit_bzero(text, (size_t)len);
	if (rc != CONFIG_TRUE) {
		snprintf(err, errsize, "%s:%d: %s",
		    config_error_file(&cf) ? config_error_file(&cf) : path,
		    config_error_line(&cf), config_error_text(&cf));
		config_destroy(&cf);
		return -1;
	}
	rc = apply_level(&x, config_root_setting(&cf), NULL);
	if (rc == 0 && port > 0)
		rc = apply_port(&x, config_root_setting(&cf), port);
	if (rc == 0)
		rc = check_required(&x);
	config_destroy(&cf);
	return rc;
}

int
config_load_port(struct config *c, const char *path, int port, char *err,
    size_t errsize)
{
	return load(c, path, port, 0, err, errsize);
}

int
config_load_public(struct config *c, const char *path, int port, char *err,
    size_t errsize)
{
	return load(c, path, port, 1, err, errsize);
}

/* Move list from[] into to[] (its placeholders wiped and freed). */
static void
take_list(char **to, char **from, int max)
{
	int i;

	for (i = 0; i <= max; i++) {
		if (to[i] != NULL) {
			explicit_bzero(to[i], strlen(to[i]));
			free(to[i]);
		}
		to[i] = from[i];
		from[i] = NULL;
	}
}

int
config_load_secrets(struct config *c, char *err, size_t errsize)
{
	static struct config full;

	if (!c->redacted)
		return 0;
	if (config_load_port(&full, c->path, c->port, err, errsize) < 0)
		return -1;
	if (c->master_password != NULL) {
		explicit_bzero(c->master_password, strlen(c->master_password));
		free(c->master_password);
	}
	c->master_password = full.master_password;
	full.master_password = NULL;
	take_list(c->auth_http_header, full.auth_http_header,
	    AUTH_HTTP_HEADERS_MAX);
	c->nauth_http_header = full.nauth_http_header;
	c->redacted = 0;
	config_free(&full);
	return 0;
}

static void
free_list(char **v, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free(v[i]);
		v[i] = NULL;
	}
}

void
config_free(struct config *c)
{
	free_list(c->capa_tokens, CAPA_TOKENS_MAX);
	free_list(c->exec_argv, EXEC_ARGS_MAX + 1);
	free_list(c->checkpw_argv, CHECKPW_ARGS_MAX + 2);
	free_list(c->auth_http_header, AUTH_HTTP_HEADERS_MAX + 1);
	free(c->greeting);
	free(c->passwd_file);
	free(c->auth_http);
	free(c->penalty_file);
	free(c->server_name);
	free(c->privsep_user);
	free(c->privsep_chroot);
	free(c->master_user);
	free(c->master_password);
	free_list(c->ssl_cert, SSL_CERTS_MAX + 1);
	free_list(c->ssl_key, SSL_CERTS_MAX + 1);
	free(c->ssl_priority);
	free(c->ssl_ticket_key);
	free(c->ssl_client_ca);
	free(c->backend_ca);
	free(c->backend_ssl_name);
	memset(c, 0, sizeof(*c));
}

void
config_capa_policy(const struct config *c, int tls_active,
    struct capa_policy *p)
{
	p->tokens = c->capa_tokens;
	p->ntokens = c->ncapa;
	p->auth_methods = c->auth_methods;
	/* Implicit TLS: STARTTLS is never offered. */
	p->starttls = c->ssl ? STARTTLS_OFF : c->starttls;
	p->tls_active = tls_active;
	p->external = 0;
}
