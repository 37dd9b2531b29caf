/*
 * The backend dialogue (REFERENCE.md section 5): replies are framed line
 * by line; untagged lines are tolerated at every step, and a continuation
 * may be a bare "+".  Our commands carry fixed tags; the client's tag is
 * put on the final answer by the session.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "backend_imap.h"
#include "clock.h"
#include "log.h"
#include "proxy.h"
#include "sasl.h"

#define TAG_PREFIX	"ig"
#define TAG_CAPA	TAG_PREFIX "1"
#define TAG_ID		TAG_PREFIX "2"
#define TAG_LOGIN	TAG_PREFIX "3"
#define TAG_STARTTLS	TAG_PREFIX "0"

struct dialogue {
	struct backend_io *b;
	const struct config *cfg;
	const struct conn *conn;
	struct timespec	 deadline;
	char		 line[BACKEND_BUFFER];	/* the last line, no CRLF */
	char		 capa[BACKEND_BUFFER];	/* the latest capability list */
	char		 pre[BACKEND_BUFFER];	/* the list before login */
};


static int
send_all(struct dialogue *d, const void *p, size_t len)
{
	if (chan_write_all(&d->b->ch, p, len, ms_left(&d->deadline)) < 0) {
		log_warn("backend write failed");
		return -1;
	}
	return 0;
}

/* Next line from the backend into d->line; 0, or -1 on EOF/timeout. */
static int
read_line(struct dialogue *d)
{
	struct backend_io *b = d->b;
	unsigned char *lf;
	size_t n;
	ssize_t r;

	while ((lf = memchr(b->buf, '\n', b->len)) == NULL) {
		if (b->len == b->size) {
			log_warn("backend line longer than %zu bytes", b->size);
			return -1;
		}
		if (chan_wait(&b->ch, ms_left(&d->deadline)) <= 0) {
			log_warn("backend timed out");
			return -1;
		}
		if ((r = chan_read(&b->ch, b->buf + b->len, b->size - b->len)) ==
		    CHAN_AGAIN)
			continue;
		if (r <= 0) {
			log_warn("backend closed the connection");
			return -1;
		}
		b->len += (size_t)r;
	}
	n = (size_t)(lf - b->buf);
	memcpy(d->line, b->buf, n);
	if (n > 0 && d->line[n - 1] == '\r')
		n--;
	d->line[n] = '\0';
	n = (size_t)(lf - b->buf) + 1;
	memmove(b->buf, b->buf + n, b->len - n);
	b->len -= n;
	return 0;
}

/* Does line start with word (case-insensitive) followed by a space or
 * its end?  Returns what follows the space. */
static const char *
starts(const char *line, const char *word)
{
	size_t n = strlen(word);

	if (strncasecmp(line, word, n) != 0 || (line[n] != ' ' &&
	    line[n] != '\0'))
		return NULL;
	return line + n + (line[n] == ' ');
}

/* Remember a capability list from "* CAPABILITY ..." or "[CAPABILITY ...]". */
static void
note_capability(struct dialogue *d, const char *line)
{
	const char *p, *end;

	if ((p = starts(line, "* CAPABILITY")) != NULL)
		snprintf(d->capa, sizeof(d->capa), "%s", p);
	else if ((p = strstr(line, "[CAPABILITY ")) != NULL &&
	    (end = strchr(p, ']')) != NULL)
		snprintf(d->capa, sizeof(d->capa), "%.*s", (int)(end - p - 12),
		    p + 12);
}

/* Did the backend offer cap before login? */
static int
has_capability(const struct dialogue *d, const char *cap)
{
	const char *p = d->pre;
	size_t n = strlen(cap);

	while ((p = strcasestr(p, cap)) != NULL) {
		if ((p == d->pre || p[-1] == ' ') &&
		    (p[n] == ' ' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

/*
 * Read until the line tagged tag; untagged lines are noted and skipped.
 * With want_plus, a continuation also ends the wait (returns 1).
 * Returns 0 at the tagged line (in d->line), -1 on failure.
 */
static int
wait_for(struct dialogue *d, const char *tag, int want_plus)
{
	for (;;) {
		if (read_line(d) < 0)
			return -1;
		if (d->line[0] == '*') {
			note_capability(d, d->line);
			continue;
		}
		if (d->line[0] == '+') {
			if (want_plus)
				return 1;
			continue;
		}
		if (starts(d->line, tag) != NULL)
			return 0;
		/* The answer to one of our earlier commands (ID). */
		if (strncmp(d->line, TAG_PREFIX, strlen(TAG_PREFIX)) == 0)
			continue;
		log_warn("backend sent an unexpected line");
		return -1;
	}
}

static int
capability(struct dialogue *d)
{
	return send_all(d, TAG_CAPA " CAPABILITY\r\n",
	    sizeof(TAG_CAPA " CAPABILITY\r\n") - 1) < 0 ||
	    wait_for(d, TAG_CAPA, 0) < 0 ? -1 : 0;
}

/* Greeting: "* OK"; PREAUTH or BYE (or anything else) is refused. */
static int
greeting(struct dialogue *d)
{
	if (read_line(d) < 0)
		return -1;
	if (starts(d->line, "* OK") == NULL) {
		log_warn("backend greeting is not * OK");
		return -1;
	}
	note_capability(d, d->line);
	if (d->capa[0] != '\0')
		return 0;
	return capability(d);
}

static int
handshake(struct dialogue *d, const struct msg_connect *m)
{
	char err[256];

	if (tls_connect(&d->b->ch, d->cfg, m->tls_name, err, sizeof(err)) < 0) {
		log_warn("backend %s: %s", m->backend, err);
		return -1;
	}
	return 0;
}

/*
 * STARTTLS to the backend: it must offer it and say OK; nothing it sent
 * before the handshake is used after it (the capability list is asked
 * again), and bytes behind its OK are an injection: refused.
 */
static int
starttls(struct dialogue *d, const struct msg_connect *m)
{
	memcpy(d->pre, d->capa, sizeof(d->pre));
	if (!has_capability(d, "STARTTLS")) {
		log_warn("backend %s does not offer STARTTLS", m->backend);
		return -1;
	}
	if (send_all(d, TAG_STARTTLS " STARTTLS\r\n",
	    sizeof(TAG_STARTTLS " STARTTLS\r\n") - 1) < 0 ||
	    wait_for(d, TAG_STARTTLS, 0) < 0)
		return -1;
	if (starts(starts(d->line, TAG_STARTTLS), "OK") == NULL) {
		log_warn("backend %s refused STARTTLS", m->backend);
		return -1;
	}
	if (d->b->len > 0) {
		log_warn("backend %s sent bytes behind its STARTTLS answer",
		    m->backend);
		return -1;
	}
	if (handshake(d, m) < 0)
		return -1;
	d->capa[0] = '\0';
	return capability(d);
}

/* The PROXY header, before anything else. */
static int
proxy_header(struct dialogue *d)
{
	unsigned char hdr[PROXY_V1_MAX + PROXY_V2_MAX];
	struct proxy_addr a;
	size_t n;

	memset(&a, 0, sizeof(a));
	snprintf(a.src_ip, sizeof(a.src_ip), "%s", d->conn->peer_ip);
	snprintf(a.src_port, sizeof(a.src_port), "%s", d->conn->peer_port);
	snprintf(a.dst_ip, sizeof(a.dst_ip), "%s", d->conn->local_ip);
	snprintf(a.dst_port, sizeof(a.dst_port), "%s", d->conn->local_port);
	n = d->cfg->forward_client == FWD_PROXY_V1 ?
	    proxy_build_v1(&a, hdr, sizeof(hdr)) :
	    proxy_build_v2(&a, hdr, sizeof(hdr));
	return n == 0 ? -1 : send_all(d, hdr, n);
}

/* ID with the client's addresses (Dovecot honours it from its
 * login_trusted_networks).  Appended to out, to go with the login. */
static void
id_command(struct dialogue *d, char *out, size_t outsize)
{
	unsigned char r[8];
	char sid[SESSION_ID_MAX + 1];
	size_t len = strlen(out);

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));
	snprintf(sid, sizeof(sid), "%02x%02x%02x%02x%02x%02x%02x%02x", r[0],
	    r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	snprintf(out + len, outsize - len, TAG_ID " ID (\"x-originating-ip\" "
	    "\"%s\" \"x-originating-port\" \"%s\" \"x-connected-ip\" \"%s\" "
	    "\"x-connected-port\" \"%s\" \"x-session-id\" \"%s\")\r\n",
	    d->conn->peer_ip, d->conn->peer_port, d->conn->local_ip,
	    d->conn->local_port, sid);
}

/*
 * The login commands return -1 on failure, 0 when the tagged answer is
 * still to be read, 1 when it came early (a NO instead of a continuation)
 * and is in d->line.
 */

/* LOGIN with literals: {n+} in one write when LITERAL+ is offered,
 * otherwise {n} and a continuation for each. */
static int
login_literal(struct dialogue *d, const struct msg_connect *m, char *out,
    size_t outsize)
{
	size_t ul = strlen(m->user), pl = strlen(m->pass), len = strlen(out);
	int plus = has_capability(d, "LITERAL+"), r;

	if (plus) {
		snprintf(out + len, outsize - len, TAG_LOGIN " LOGIN {%zu+}\r\n"
		    "%s {%zu+}\r\n%s\r\n", ul, m->user, pl, m->pass);
		r = send_all(d, out, strlen(out));
		explicit_bzero(out, outsize);
		return r;
	}
	snprintf(out + len, outsize - len, TAG_LOGIN " LOGIN {%zu}\r\n", ul);
	if (send_all(d, out, strlen(out)) < 0)
		return -1;
	if ((r = wait_for(d, TAG_LOGIN, 1)) != 1)
		return r < 0 ? -1 : 1;
	snprintf(out, outsize, "%s {%zu}\r\n", m->user, pl);
	if (send_all(d, out, strlen(out)) < 0)
		return -1;
	if ((r = wait_for(d, TAG_LOGIN, 1)) != 1)
		return r < 0 ? -1 : 1;
	snprintf(out, outsize, "%s\r\n", m->pass);
	r = send_all(d, out, strlen(out));
	explicit_bzero(out, outsize);
	return r;
}

/* AUTHENTICATE PLAIN, with SASL-IR when offered. */
static int
login_plain(struct dialogue *d, const struct msg_connect *m, char *out,
    size_t outsize)
{
	unsigned char raw[2 * USER_MAX + PASS_MAX + 2];
	char b64[4 * (sizeof(raw) / 3 + 1) + 1];
	size_t zl = strlen(m->authzid), ul = strlen(m->user);
	size_t pl = strlen(m->pass), len = strlen(out);
	int r = -1;

	memcpy(raw, m->authzid, zl);
	raw[zl] = '\0';
	memcpy(raw + zl + 1, m->user, ul);
	raw[zl + 1 + ul] = '\0';
	memcpy(raw + zl + ul + 2, m->pass, pl);
	if (b64_encode(raw, zl + ul + pl + 2, b64, sizeof(b64)) < 0)
		goto done;
	if (has_capability(d, "SASL-IR")) {
		snprintf(out + len, outsize - len, TAG_LOGIN
		    " AUTHENTICATE PLAIN %s\r\n", b64);
		r = send_all(d, out, strlen(out));
		goto done;
	}
	snprintf(out + len, outsize - len, TAG_LOGIN " AUTHENTICATE PLAIN\r\n");
	if (send_all(d, out, strlen(out)) < 0)
		goto done;
	if ((r = wait_for(d, TAG_LOGIN, 1)) != 1) {
		r = r < 0 ? -1 : 1;
		goto done;
	}
	snprintf(out, outsize, "%s\r\n", b64);
	r = send_all(d, out, strlen(out));
done:
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(b64, sizeof(b64));
	explicit_bzero(out, outsize);
	return r;
}

/* The client's answer: the backend's tagged line without our tag, with
 * the capability list it sent untagged put in, so that the client does
 * not have to ask. */
static void
client_reply(struct dialogue *d, const char *text)
{
	const char *rest;

	if (strstr(text, "[CAPABILITY ") == NULL && d->capa[0] != '\0' &&
	    (rest = starts(text, "OK")) != NULL)
		snprintf(d->b->reply, sizeof(d->b->reply),
		    "OK [CAPABILITY %s] %s", d->capa, rest);
	else
		snprintf(d->b->reply, sizeof(d->b->reply), "%s", text);
}

enum verdict
backend_login(struct backend_io *b, const struct config *cfg,
    const struct conn *conn, const struct msg_connect *m)
{
	static struct dialogue d;
	static char out[2 * BACKEND_BUFFER];
	const char *text;
	int r;

	memset(&d, 0, sizeof(d));
	d.b = b;
	d.cfg = cfg;
	d.conn = conn;
	b->len = 0;
	deadline_after(&d.deadline, NULL, BACKEND_LOGIN_TIMEOUT);
	if ((cfg->forward_client == FWD_PROXY_V1 ||
	    cfg->forward_client == FWD_PROXY_V2) && proxy_header(&d) < 0)
		return VERDICT_UNAVAILABLE;
	if ((cfg->backend_ssl && handshake(&d, m) < 0) || greeting(&d) < 0 ||
	    (cfg->backend_starttls && starttls(&d, m) < 0))
		return VERDICT_UNAVAILABLE;
	memcpy(d.pre, d.capa, sizeof(d.pre));
	out[0] = '\0';
	if (cfg->forward_client == FWD_ID && has_capability(&d, "ID"))
		id_command(&d, out, sizeof(out));
	/* A master user logs in with PLAIN's authzid: LOGIN has none. */
	d.capa[0] = '\0';	/* from here on, the post-login list */
	r = cfg->backend_login == BLOGIN_PLAIN || m->authzid[0] != '\0' ?
	    login_plain(&d, m, out, sizeof(out)) :
	    login_literal(&d, m, out, sizeof(out));
	if (r < 0 || (r == 0 && wait_for(&d, TAG_LOGIN, 0) < 0))
		return VERDICT_UNAVAILABLE;
	text = starts(d.line, TAG_LOGIN);
	client_reply(&d, text);
	if (starts(text, "OK") != NULL)
		return VERDICT_OK;
	if (starts(text, "NO") != NULL || starts(text, "BAD") != NULL)
		return VERDICT_NO;
	return VERDICT_UNAVAILABLE;
}
