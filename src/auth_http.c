/*
 * nginx's auth_http protocol (REFERENCE.md section 3): one HTTP/1.0 GET
 * per login attempt, the verdict in response headers.  Built and parsed
 * here with fixed buffers: it is one small exchange, and a general HTTP
 * library would cost every connection its start-up time.  Anything the
 * server says that we cannot read is a temporary failure, never a crash
 * and never "wrong password".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "backend_connect.h"
#include "clock.h"
#include "http_parse.h"
#include "log.h"


enum { HTTP_OK, HTTP_NO, HTTP_WAIT, HTTP_FAIL };

/* nginx's escaping for Auth-User and Auth-Pass: space, '%' and control
 * bytes become %XX, so that nothing can end the header line. */
static void
escape(char *out, size_t outsize, const char *in)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *in != '\0' && n + 4 < outsize; in++) {
		unsigned char c = (unsigned char)*in;

		if (c <= 0x20 || c == '%' || c == 0x7f) {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else
			out[n++] = (char)c;
	}
	out[n] = '\0';
}

static const char *
method_name(uint32_t mech)
{
	switch (mech) {
	case MECH_CRAM_MD5:
		return "cram-md5";
	case MECH_OAUTHBEARER:
		return "oauthbearer";
	case MECH_XOAUTH2:
		return "xoauth2";
	case MECH_EXTERNAL:
		return "external";
	default:
		return "plain";		/* LOGIN, PLAIN and AUTH-LOGIN alike */
	}
}

/* Append to the request; -1 once it no longer fits. */
static int
add(char *req, size_t size, size_t *len, const char *fmt, const char *a,
    const char *b)
{
	int n = snprintf(req + *len, size - *len, fmt, a, b);

	if (n < 0 || (size_t)n >= size - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

/* nginx's Auth-SSL-* headers; certificate fields are the client's
 * bytes, escaped as Auth-User is.  The protocol and cipher names are the
 * session's word: the monitor checked their characters, and they are
 * escaped all the same, so that nothing can end the line. */
static int
add_tls(char *req, size_t size, size_t *len, const struct tls_facts *t)
{
	static const char *const names[] = { "Subject", "Issuer", "Serial",
	    "Fingerprint" };
	const char *values[] = { t->subject, t->issuer, t->serial,
	    t->fingerprint };
	char v[3 * TLS_DN_MAX + 1], w[3 * TLS_NAME_MAX + 1], h[32];
	size_t i;
	int bad = 0;

	escape(w, sizeof(w), t->protocol);
	bad |= add(req, size, len, "Auth-SSL: on\r\nAuth-SSL-Protocol: %s\r\n",
	    w, "");
	escape(w, sizeof(w), t->cipher);
	bad |= add(req, size, len, "Auth-SSL-Cipher: %s\r\nAuth-SSL-Verify: %s"
	    "\r\n", w, !t->cert ? "NONE" : t->verified ? "SUCCESS" :
	    "FAILED");
	for (i = 0; t->cert && i < sizeof(names) / sizeof(names[0]); i++) {
		escape(v, sizeof(v), values[i]);
		snprintf(h, sizeof(h), "Auth-SSL-%s", names[i]);
		bad |= add(req, size, len, "%s: %s\r\n", h, v);
	}
	return bad;
}

/* The connection's addresses: checked by the monitor (a PROXY header's
 * come from the session), escaped here too. */
static int
add_addresses(char *req, size_t size, size_t *len, const struct conn *cn)
{
	char ip[3 * ADDR_MAX + 1], port[3 * PORT_MAX + 1];
	int bad = 0;

	escape(ip, sizeof(ip), cn->peer_ip);
	bad |= add(req, size, len, "Client-IP: %s\r\n%s", ip, "");
	if (!cn->proxied)
		return bad;
	escape(port, sizeof(port), cn->peer_port);
	bad |= add(req, size, len, "Proxy-Protocol-Addr: %s\r\n"
	    "Proxy-Protocol-Port: %s\r\n", ip, port);
	escape(ip, sizeof(ip), cn->proxy_dst_ip);
	escape(port, sizeof(port), cn->proxy_dst_port);
	bad |= add(req, size, len, "Proxy-Protocol-Server-Addr: %s\r\n"
	    "Proxy-Protocol-Server-Port: %s\r\n", ip, port);
	return bad;
}

static size_t
build_request(const struct config *c, const struct auth_http_url *t,
    const struct auth_request *r, char *req, size_t size)
{
	static char user[3 * USER_MAX + 1], pass[3 * PASS_MAX + 1];
	const struct conn *cn = r->conn;
	char attempt[16], host[sizeof(t->host)];
	const char *end;
	size_t len = 0;
	int i, bad = 0;

	escape(user, sizeof(user), r->user);
	escape(pass, sizeof(pass), r->pass);
	snprintf(attempt, sizeof(attempt), "%d", r->attempt);
	/* nginx's Host: the URL's host without the port ("[v6]" kept). */
	end = t->host[0] == '[' ? strchr(t->host, ']') : strrchr(t->host, ':');
	snprintf(host, sizeof(host), "%.*s", end == NULL ? (int)strlen(t->host) :
	    (int)(end - t->host) + (t->host[0] == '['), t->host);
	bad |= add(req, size, &len, "GET %s HTTP/1.0\r\nHost: %s\r\n", t->uri,
	    host);
	bad |= add(req, size, &len, "Auth-Method: %s\r\nAuth-User: %s\r\n",
	    method_name(r->mech), user);
	bad |= add(req, size, &len, "Auth-Pass: %s\r\n%s", pass, "");
	if (r->salt != NULL)
		bad |= add(req, size, &len, "Auth-Salt: %s\r\n%s", r->salt,
		    "");
	bad |= add(req, size, &len, "Auth-Protocol: imap\r\n"
	    "Auth-Login-Attempt: %s\r\n%s", attempt, "");
	bad |= add_addresses(req, size, &len, cn);
	if (r->tls != NULL && r->tls->active)
		bad |= add_tls(req, size, &len, r->tls);
	for (i = 0; i < c->nauth_http_header; i++)
		bad |= add(req, size, &len, "%s\r\n%s", c->auth_http_header[i],
		    "");
	bad |= add(req, size, &len, "\r\n%s%s", "", "");
	explicit_bzero(pass, sizeof(pass));
	return bad ? 0 : len;
}


/* Send the request, read the answer until the server closes (HTTP/1.0)
 * or the buffer is full, all within the deadline.  The length read, or
 * -1.  The socket blocks, so each write is non-blocking: a server that
 * accepts and never reads would otherwise hold a blocking write, and
 * the monitor, past any deadline once its buffers are full (issue 9). */
static ssize_t
exchange(int fd, const char *req, size_t reqlen, char *resp, size_t size,
    const struct timespec *deadline)
{
	struct pollfd pfd = { fd, POLLOUT, 0 };
	size_t got = 0;
	ssize_t n;
	long ms;

	while (reqlen > 0) {
		if ((ms = ms_left(deadline)) <= 0 || poll(&pfd, 1, (int)ms) <= 0)
			return -1;
		if ((n = send(fd, req, reqlen, MSG_DONTWAIT | MSG_NOSIGNAL)) <
		    0 && errno != EINTR && errno != EAGAIN)
			return -1;
		if (n > 0) {
			req += n;
			reqlen -= (size_t)n;
		}
	}
	pfd.events = POLLIN;
	for (;;) {
		if (got == size)
			return -1;	/* longer than any answer we take */
		if ((ms = ms_left(deadline)) <= 0 || poll(&pfd, 1, (int)ms) <= 0)
			return -1;
		if ((n = read(fd, resp + got, size - got)) == 0)
			return (ssize_t)got;
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0)
			got += (size_t)n;
	}
}

/* The client text from Auth-Status: printable ASCII only. */
static void
client_text(char *out, size_t size, const char *status)
{
	size_t i;

	for (i = 0; status[i] != '\0' && i + 1 < size; i++)
		out[i] = status[i] >= 0x20 && status[i] < 0x7f ? status[i] : '?';
	out[i] = '\0';
}

/* One request and its answer. */
static int
query(const struct config *c, const struct auth_http_url *t,
    const struct auth_request *r, struct http_answer *a, const char **why)
{
	static char req[AUTH_HTTP_REQUEST_MAX], resp[AUTH_HTTP_RESPONSE_MAX + 1];
	struct timespec deadline;
	char name[HOST_MAX + PORT_MAX + 8];
	size_t reqlen;
	ssize_t n;
	int fd;

	deadline_after(&deadline, NULL, c->auth_http_timeout);
	if ((reqlen = build_request(c, t, r, req, sizeof(req))) == 0) {
		*why = "auth_http request too long";
		return HTTP_FAIL;
	}
	fd = net_connect("auth_http", &t->addr, c->auth_http_timeout * 1000, name,
	    sizeof(name));
	n = fd < 0 ? -1 : exchange(fd, req, reqlen, resp, sizeof(resp) - 1,
	    &deadline);
	explicit_bzero(req, reqlen);
	if (fd >= 0)
		close(fd);
	if (n < 0) {
		*why = fd < 0 ? "auth_http server unreachable" :
		    "auth_http server timed out, or answered too much";
		return HTTP_FAIL;
	}
	resp[n] = '\0';
	if (http_parse_head(resp, (size_t)n, a) < 0) {
		explicit_bzero(resp, sizeof(resp));
		*why = "malformed auth_http response";
		return HTTP_FAIL;
	}
	explicit_bzero(resp, sizeof(resp));
	if (strcmp(a->status, "OK") == 0)
		return HTTP_OK;
	return strcmp(a->status, "WAIT") == 0 ? HTTP_WAIT : HTTP_NO;
}

/* Auth-Wait: seconds, or -1 when absent or unreadable. */
static int
wait_seconds(const char *v)
{
	if (*v == '\0' || strspn(v, "0123456789") != strlen(v) ||
	    strlen(v) > 6)
		return -1;
	return atoi(v) > AUTH_WAIT_MAX ? AUTH_WAIT_MAX : atoi(v);
}

/* Sleep s seconds unless the client hangs up first: 0, or -1 if gone. */
static int
client_waits(const struct conn *cn, int s)
{
	struct pollfd pfd = { cn->in, POLLRDHUP, 0 };
	struct timespec deadline;
	long ms;

	deadline_after(&deadline, NULL, s);
	while ((ms = ms_left(&deadline)) > 0) {
		if (poll(&pfd, 1, (int)ms) > 0 &&
		    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return -1;
	}
	return 0;
}

/* OK: the route and the credentials for the backend. */
static enum auth_result
accept_ok(const struct config *c, const struct auth_request *r,
    const struct http_answer *a, struct auth_reply *out, const char **why)
{
	char spec[HOST_MAX + PORT_MAX + 4];

	if (a->server[0] != '\0' && a->port[0] != '\0') {
		snprintf(spec, sizeof(spec), strchr(a->server, ':') ?
		    "[%s]:%s" : "%s:%s", a->server, a->port);
		if (backend_addr_parse(spec, &out->user.route) < 0) {
			*why = "auth_http Auth-Server/Auth-Port unusable";
			return AUTH_TEMPFAIL;
		}
		out->user.has_route = 1;
	}
	snprintf(out->login_user, sizeof(out->login_user), "%s", a->user);
	snprintf(out->login_pass, sizeof(out->login_pass), "%s", a->pass);
	/* We never saw a password for these: the server must give one. */
	if (c->exec_argc == 0 && c->master_user == NULL &&
	    r->mech >= MECH_CRAM_MD5 && out->login_pass[0] == '\0') {
		*why = "auth_http gave no Auth-Pass for the backend login";
		return AUTH_TEMPFAIL;
	}
	*why = "ok";
	return AUTH_OK;
}

enum auth_result
auth_http(const struct config *c, const struct auth_request *r,
    struct auth_reply *out, const char **why)
{
	static struct http_answer a;
	struct auth_http_url t;
	enum auth_result res = AUTH_TEMPFAIL;
	int st;

	if (auth_http_url_parse(c->auth_http, &t) < 0) {
		*why = "auth.http is not a usable URL";
		return AUTH_TEMPFAIL;
	}
	/* WAIT: ask again later, as long as the client is still there. */
	while ((st = query(c, &t, r, &a, why)) == HTTP_WAIT) {
		if (client_waits(r->conn, wait_seconds(a.wait) < 0 ? 1 :
		    wait_seconds(a.wait)) < 0) {
			*why = "client left while auth_http said WAIT";
			goto done;
		}
	}
	if (st == HTTP_OK)
		res = accept_ok(c, r, &a, out, why);
	else if (st == HTTP_NO) {
		client_text(out->text, sizeof(out->text), a.status);
		out->wait = wait_seconds(a.wait);
		*why = "auth_http said no";
		res = AUTH_NO;
	}
done:
	explicit_bzero(&a, sizeof(a));
	return res;
}
