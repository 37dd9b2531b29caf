/*
 * The SESSION process: the pre-auth IMAP dialogue (RFC 9051/3501, with
 * nginx's mail proxy as the model for what is accepted before login).
 *
 * One fixed buffer holds the command being read; it always starts at
 * offset 0 and is compacted after each command.  Three modes:
 *   CMD   parse the command at the buffer's start, answer it;
 *   SKIP  stream past a rejected command (its literals included), then BAD;
 *   ID    stream through ID arguments, which may be larger than the buffer.
 * The session owns no secrets: credentials go to the monitor and are wiped.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backend_imap.h"
#include "capability.h"
#include "cidr.h"
#include "clock.h"
#include "imap_parse.h"
#include "log.h"
#include "msg.h"
#include "proxy.h"
#include "relay.h"
#include "sasl.h"
#include "session.h"
#include "tls.h"

/* Every string the session puts on the wire. */
#define R_GREETING	"* OK [CAPABILITY %s] %s\r\n"
#define R_CAPABILITY	"* CAPABILITY %s\r\n%s OK CAPABILITY completed\r\n"
#define R_NOOP		"%s OK NOOP completed\r\n"
#define R_LOGOUT	"* BYE Logging out\r\n%s OK LOGOUT completed\r\n"
#define R_ID		"* ID (\"name\" \"imapgate\")\r\n%s OK ID completed\r\n"
#define R_BAD		"%s BAD %s\r\n"
#define R_CONTINUE	"+ OK\r\n"
#define R_SASL_EMPTY	"+ \r\n"
#define R_SASL_USER	"+ VXNlcm5hbWU6\r\n"	/* "Username:" */
#define R_SASL_PASS	"+ UGFzc3dvcmQ6\r\n"	/* "Password:" */
#define R_NO_MECH	"%s NO Unsupported authentication mechanism\r\n"
#define R_NO_AUTH	"%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
#define R_NO_AUTHZ	"%s NO [AUTHORIZATIONFAILED] Authorization failed.\r\n"
#define R_NO_TEMP	"%s NO [UNAVAILABLE] Temporary authentication " \
			"failure.\r\n"
#define R_NO_UNAVAIL	"%s NO [UNAVAILABLE] Backend unavailable.\r\n"
#define R_NO_TEXT	"%s NO %s\r\n"
#define R_SASL_CHALLENGE "+ %s\r\n"
/* RFC 7628 error statuses for OAUTHBEARER, and Google's for XOAUTH2. */
#define OAUTHBEARER_ERROR "{\"status\":\"invalid_token\",\"schemes\":\"bearer\"}"
#define XOAUTH2_ERROR	"{\"status\":\"401\",\"schemes\":\"bearer\"}"
#define R_BYE_IDLE	"* BYE Autologout; idle for too long\r\n"
#define R_BYE_SHUTDOWN	"* BYE Server shutting down\r\n"
#define R_BYE_ERRORS	"* BYE Too many invalid commands\r\n"
#define R_BYE_FAILURES	"* BYE Too many authentication failures\r\n"
#define R_BYE_REFUSED	"* BYE Authentication refused\r\n"
#define R_TOO_LONG	"* BAD Command line too long\r\n" \
			"* BYE Command line too long\r\n"
#define R_BYE_LITERAL	"* BYE Literal too large\r\n"
#define R_BYE_INTERNAL	"* BYE [UNAVAILABLE] Internal error\r\n"
#define R_STARTTLS	"%s OK Begin TLS negotiation now\r\n"
#define R_NO_PRIVACY	"%s NO [PRIVACYREQUIRED] Use STARTTLS first\r\n"
#define R_BYE_CERT	"* BYE Client certificate not verified\r\n"

#define SASL_DECODED_MAX (2 * USER_MAX + PASS_MAX + 2)

enum mode { M_CMD, M_SKIP, M_ID };
enum step { STEP_AGAIN, STEP_READ };

struct session {
	const struct config *cfg;
	const struct conn *conn;
	struct chan	 ch;		/* the client, through TLS once it is up */
	struct tls_facts tf;
	int		 mon;
	unsigned char	*buf;
	size_t		 size, len;
	size_t		 acked;		/* {n} headers before here got "+" */
	enum mode	 mode;
	struct imap_skip skip;
	struct imap_id	 id;
	char		 tag[TAG_MAX + 1];	/* "*" when there is none */
	const char	*pending;	/* BAD text once a skip ends */
	const char	*sasl_error;	/* OAuth: the failure continuation */
	int		 errors;
	struct timespec	 deadline;	/* end of the whole pre-auth phase */
	char		 capa[CAPABILITY_MAX + 1];
	/* Arguments of the command being run, copied out of the buffer. */
	char		 arg[2][SASL_LINE_MAX + 1];
};

struct command {
	const char	*name;
	int		 min_args, max_args;
	void		(*run)(struct session *, int nargs);
};

static unsigned char session_buf[CLIENT_BUFFER_MAX];

static long	read_line(struct session *, char *, size_t);

static void
session_exit(struct session *s, int status, const char *reason)
{
	log_info("session closed: reason=%s ip=%s errors=%d", reason,
	    s->conn->peer_ip, s->errors);
	/* A TLS client is told the end (close_notify), not left to guess
	 * whether it was truncated. */
	if (s->ch.tls != NULL)
		chan_shutdown(&s->ch);
	_exit(status);
}

static void
session_write(struct session *s, const char *p, size_t len)
{
	if (chan_write_all(&s->ch, p, len, (long)s->cfg->timeout * 1000) < 0)
		session_exit(s, 1, "write error");
}

static void
reply(struct session *s, const char *fmt, ...)
{
	char line[REPLY_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		log_fatal("reply too long");
	session_write(s, line, (size_t)n);
}

static void
bye(struct session *s, const char *text, const char *reason)
{
	session_write(s, text, strlen(text));
	session_exit(s, 1, reason);
}

/* Drop n bytes from the buffer's start; wipe what they leave behind,
 * since a password may have been among them. */
static void
consume(struct session *s, size_t n)
{
	size_t old = s->len;

	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
	explicit_bzero(s->buf + s->len, old - s->len);
	s->acked = 0;
}


/* Listener mode: the monitor's word (SIGCONT) that the listener stopped.
 * The signal is blocked but while client_wait() waits (wait_mask), so it
 * interrupts no write and no handshake, and is never lost. */
static volatile sig_atomic_t stopping;
static sigset_t wait_mask;

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/*
 * chan_wait(), and SIGCONT: a client that has not logged in is told of
 * the listener's stop at once, not left to its timeout.  1 client bytes,
 * 0 timeout, -1 error.
 */
static int
client_wait(struct session *s, long ms)
{
	struct pollfd p = { s->ch.in, POLLIN, 0 };
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	int r;

	if (stopping)
		bye(s, R_BYE_SHUTDOWN, "listener stopped");
	if (chan_pending(&s->ch) > 0)
		return 1;
	do
		r = ppoll(&p, 1, &ts, &wait_mask);
	while (r < 0 && errno == EINTR && !stopping);
	if (stopping)
		bye(s, R_BYE_SHUTDOWN, "listener stopped");
	return r;
}

/* Wait for client bytes, within the idle timeout and the phase deadline. */
static void
session_fill(struct session *s)
{
	struct timespec idle;
	long wait;
	ssize_t n;
	int r;

	if (s->len == s->size)
		bye(s, R_TOO_LONG, "line too long");
	deadline_after(&idle, NULL, s->cfg->timeout);
	/* A TLS record may come in pieces: wait again for the rest. */
	do {
		wait = ms_left(&s->deadline);
		if (wait > ms_left(&idle))
			wait = ms_left(&idle);
		if (wait <= 0 || (r = client_wait(s, wait)) == 0)
			bye(s, R_BYE_IDLE, "timeout");
		if (r < 0)
			session_exit(s, 1, "poll error");
		n = chan_read(&s->ch, s->buf + s->len, s->size - s->len);
	} while (n == CHAN_AGAIN);
	if (n == 0)
		session_exit(s, 1, "client closed");
	if (n < 0)
		session_exit(s, 1, "read error");
	s->len += (size_t)n;
}

/* Answer BAD and count it against max_errors. */
static void
bad(struct session *s, const char *text)
{
	reply(s, R_BAD, s->tag, text);
	if (++s->errors >= s->cfg->max_errors)
		bye(s, R_BYE_ERRORS, "too many errors");
}

/*
 * Reject the command at the buffer's start: skip it whole, then BAD.
 * Skipping starts where its parse stopped (cmd->resume), not at its first
 * byte: a literal before that point was announced and its data taken as
 * data (a {n} may have been answered "+"); scanned again from the start
 * its header would look unanswered and its data like commands.
 */
static void
reject(struct session *s, const struct imap_cmd *cmd, const char *text)
{
	consume(s, cmd->resume);
	s->pending = text;
	imap_skip_init(&s->skip);
	s->mode = M_SKIP;
}

static void
set_tag(struct session *s, const struct imap_cmd *cmd)
{
	if (cmd->tag_ok) {
		memcpy(s->tag, s->buf, cmd->tag_len);
		s->tag[cmd->tag_len] = '\0';
	} else
		snprintf(s->tag, sizeof(s->tag), "*");
}

/* ---- authentication ---- */

/* After login with TLS up: this process holds the TLS state, so it
 * carries the relay, and tells the monitor what it moved. */
static void
relay_here(struct session *s, struct chan *other, const unsigned char *b2c,
    size_t b2clen)
{
	struct msg_type_only k = { MSG_RELAY_KEEP };
	struct msg_relay_end e;
	struct relay_stats st;

	if (msg_send(s->mon, &k, sizeof(k)) < 0)
		bye(s, R_BYE_INTERNAL, "monitor gone");
	relay_chan(&s->ch, other, s->buf, s->len, b2c, b2clen,
	    s->cfg->proxy_timeout, &st);
	memset(&e, 0, sizeof(e));
	e.type = MSG_RELAY_END;
	e.c2b = st.c2b;
	e.b2c = st.b2c;
	snprintf(e.end, sizeof(e.end), "%s", st.end);
	(void)msg_send(s->mon, &e, sizeof(e));
	_exit(0);
}

/* Hand the bytes read past the login to the monitor, which execs the mail
 * server on the client socket; this process is done. */
static void
handoff(struct session *s)
{
	static struct msg_handoff h;
	struct msg_type_only m;
	struct chan mail;
	int fd = -1;

	h.type = MSG_HANDOFF;
	if (s->ch.tls != NULL) {
		/* TLS cannot cross execve(): the mail server gets a
		 * socketpair, this process relays, and the bytes pipelined
		 * after the login go to it first. */
		h.tls = 1;
		if (msg_send(s->mon, &h, MSG_HANDOFF_HDR) < 0 ||
		    msg_recv_fd(s->mon, &m, sizeof(m), &fd) != sizeof(m) ||
		    m.type != MSG_PIPE || fd < 0)
			bye(s, R_BYE_INTERNAL, "monitor gone");
		mail.in = mail.out = fd;
		mail.tls = NULL;
		relay_here(s, &mail, NULL, 0);
	}
	h.len = (uint32_t)s->len;
	memcpy(h.data, s->buf, s->len);
	if (msg_send(s->mon, &h, MSG_HANDOFF_HDR + s->len) < 0)
		bye(s, R_BYE_INTERNAL, "monitor gone");
	_exit(0);
}

/* OAuth (RFC 7628 section 3.2.2): a failure is first told in a
 * continuation the client must answer, then in the tagged NO. */
static void
sasl_error(struct session *s)
{
	char b64[128], line[SASL_LINE_MAX + 1];

	if (s->sasl_error == NULL)
		return;
	if (b64_encode((const unsigned char *)s->sasl_error,
	    strlen(s->sasl_error), b64, sizeof(b64)) < 0)
		log_fatal("SASL error too long");
	reply(s, "+ %s\r\n", b64);
	(void)read_line(s, line, sizeof(line));
	s->sasl_error = NULL;
}

/* A login that did not succeed, told as the monitor says. */
static void
say_no(struct session *s, const struct msg_auth_result *r)
{
	/* OAuth failures were told in the error continuation already. */
	int oauth = s->sasl_error != NULL;

	sasl_error(s);
	switch (r->result) {
	case AUTH_AUTHZ:
		reply(s, R_NO_AUTHZ, s->tag);
		break;
	case AUTH_TEMPFAIL:
		reply(s, R_NO_TEMP, s->tag);
		break;
	case AUTH_UNAVAILABLE:
		reply(s, R_NO_UNAVAIL, s->tag);
		break;
	default:
		/* auth_http's own words, as nginx passes them */
		if (!oauth && r->text[0] != '\0' && memchr(r->text, '\0',
		    sizeof(r->text)) != NULL)
			reply(s, R_NO_TEXT, s->tag, r->text);
		else
			reply(s, R_NO_AUTH, s->tag);
		break;
	}
}

/* The monitor's verdict on a login. */
static struct msg_auth_result
await_result(struct session *s)
{
	struct msg_auth_result r;

	if (msg_recv(s->mon, &r, sizeof(r)) != (ssize_t)sizeof(r) ||
	    r.type != MSG_AUTH_RESULT)
		bye(s, R_BYE_INTERNAL, "bad monitor reply");
	return r;
}

/* "<tag> <text>" where text is the backend's, of any length it had: one
 * write, so that with TCP_NODELAY it is one segment, not four. */
static void
reply_backend(struct session *s, const char *text)
{
	static char line[TAG_MAX + 1 + BACKEND_BUFFER + 2];
	int n;

	n = snprintf(line, sizeof(line), "%s %s\r\n", s->tag, text);
	if (n < 0 || (size_t)n >= sizeof(line))
		bye(s, R_BYE_INTERNAL, "backend reply too long");
	session_write(s, line, (size_t)n);
}

/* Logged in on the backend: the monitor takes the relay, with the bytes
 * each side sent past the login; this process is done. */
static void
relay_handoff(struct session *s, const struct backend_io *b)
{
	static struct msg_relay r;

	r.type = MSG_RELAY;
	r.client_len = (uint32_t)s->len;
	r.backend_len = (uint32_t)b->len;
	memcpy(r.data, s->buf, s->len);
	memcpy(r.data + s->len, b->buf, b->len);
	if (msg_send_fd(s->mon, &r, MSG_RELAY_HDR + s->len + b->len,
	    b->ch.in) < 0)
		bye(s, R_BYE_INTERNAL, "monitor gone");
	_exit(0);
}

/* Connect mode: log in on the backend the monitor reached, tell the
 * monitor what it said, answer the client. */
static struct msg_auth_result
backend_step(struct session *s, struct msg_connect *c, int fd)
{
	static unsigned char bbuf[BACKEND_BUFFER];
	static struct backend_io b;
	struct msg_verdict v = { MSG_VERDICT, 0 };
	struct msg_auth_result r;

	b.ch.in = b.ch.out = fd;
	b.ch.tls = NULL;
	b.buf = bbuf;
	b.size = sizeof(bbuf);
	b.reply[0] = '\0';
	v.verdict = backend_login(&b, s->cfg, s->conn, c);
	explicit_bzero(c, sizeof(*c));
	if (msg_send(s->mon, &v, sizeof(v)) < 0)
		bye(s, R_BYE_INTERNAL, "monitor gone");
	r = await_result(s);
	if (r.result == AUTH_OK) {
		reply_backend(s, b.reply);
		if (s->ch.tls != NULL || b.ch.tls != NULL)
			relay_here(s, &b.ch, b.buf, b.len);
		relay_handoff(s, &b);
	}
	if (r.result == AUTH_BACKEND_NO && s->cfg->proxy_pass_error_message) {
		sasl_error(s);
		reply_backend(s, b.reply);
	} else
		say_no(s, &r);
	close(fd);
	explicit_bzero(bbuf, sizeof(bbuf));
	return r;
}

static void
authenticate(struct session *s, enum auth_mech mech, const char *user,
    const char *pass, int authz_mismatch)
{
	static union {
		uint32_t		type;
		struct msg_auth_result	result;
		struct msg_connect	connect;
	} u;
	struct msg_auth m;
	struct msg_auth_result r;
	size_t der;
	ssize_t n;
	int fd;

	/* The header only: the chain's bytes are copied as long as they are
	 * (issue 14: no 16 KiB zeroed and sent per login). */
	memset(&m, 0, MSG_AUTH_HDR);
	m.type = MSG_AUTH;
	m.mech = mech;
	m.authz_mismatch = (uint32_t)authz_mismatch;
	snprintf(m.tag, sizeof(m.tag), "%s", s->tag);
	snprintf(m.user, sizeof(m.user), "%s", user);
	snprintf(m.pass, sizeof(m.pass), "%s", pass);
	memcpy(&m.tls, &s->tf, offsetof(struct tls_facts, der));
	if ((der = msg_auth_der(&m)) == SIZE_MAX)
		bye(s, R_BYE_INTERNAL, "client chain does not fit");
	memcpy(m.tls.der, s->tf.der, der);
	if (msg_send(s->mon, &m, MSG_AUTH_HDR + der) < 0)
		bye(s, R_BYE_INTERNAL, "monitor gone");
	explicit_bzero(&m, MSG_AUTH_HDR);	/* the password is in it */
	n = msg_recv_fd(s->mon, &u, sizeof(u), &fd);
	if (n == (ssize_t)sizeof(u.connect) && u.type == MSG_CONNECT &&
	    fd >= 0)
		r = backend_step(s, &u.connect, fd);
	else if (n == (ssize_t)sizeof(u.result) && u.type == MSG_AUTH_RESULT &&
	    fd < 0) {
		r = u.result;
		if (r.result == AUTH_OK)
			handoff(s);
		say_no(s, &r);
	} else
		bye(s, R_BYE_INTERNAL, "bad monitor reply");
	explicit_bzero(&u, sizeof(u));
	if (r.close == CLOSE_REFUSED)
		bye(s, R_BYE_REFUSED, "refused by auth_http");
	if (r.close)
		bye(s, R_BYE_FAILURES, "too many authentication failures");
}

/* One client line, without its line end, into line (NUL-terminated).
 * Its length, or -1 after answering BAD when it does not fit. */
static long
read_line(struct session *s, char *line, size_t size)
{
	unsigned char *lf;
	size_t n;

	while ((lf = memchr(s->buf, '\n', s->len)) == NULL)
		session_fill(s);
	n = (size_t)(lf - s->buf);
	if (n > 0 && s->buf[n - 1] == '\r')
		n--;
	if (n >= size) {
		consume(s, (size_t)(lf - s->buf) + 1);
		bad(s, "SASL response too long");
		return -1;
	}
	memcpy(line, s->buf, n);
	line[n] = '\0';
	consume(s, (size_t)(lf - s->buf) + 1);
	return (long)n;
}

/*
 * Decode one SASL response (an initial response, or a line read now) into
 * out.  Returns its length, or -1 after answering BAD (cancel, bad base64).
 */
static long
sasl_response(struct session *s, const char *ir, unsigned char *out,
    size_t outsize)
{
	char line[SASL_LINE_MAX + 1];
	long dec;

	if (ir == NULL) {
		if (read_line(s, line, sizeof(line)) < 0)
			return -1;
		ir = line;
	}
	if (strcmp(ir, "*") == 0) {
		bad(s, "Authentication canceled");
		return -1;
	}
	dec = strcmp(ir, "=") == 0 ? 0 : b64_decode(ir, strlen(ir), out, outsize);
	explicit_bzero(line, sizeof(line));
	if (dec < 0)
		bad(s, "Invalid base64");
	return dec;
}

/* The first response of a mechanism that has no challenge: the initial
 * response, or a line asked for with an empty continuation. */
static long
first_response(struct session *s, const char *ir, unsigned char *out,
    size_t outsize)
{
	if (ir == NULL)
		reply(s, R_SASL_EMPTY);
	return sasl_response(s, ir, out, outsize);
}

static void
auth_plain(struct session *s, const char *ir)
{
	unsigned char msg[SASL_DECODED_MAX];
	char user[USER_MAX + 1], pass[PASS_MAX + 1];
	enum sasl_result r;
	long n;

	if ((n = first_response(s, ir, msg, sizeof(msg))) < 0)
		return;
	r = sasl_plain(msg, (size_t)n, user, sizeof(user), pass, sizeof(pass));
	explicit_bzero(msg, sizeof(msg));
	if (r == SASL_MALFORMED)
		bad(s, "Invalid PLAIN message");
	else
		authenticate(s, MECH_PLAIN, user, pass, r == SASL_AUTHZ);
	explicit_bzero(pass, sizeof(pass));
}

static void
auth_login(struct session *s, const char *ir)
{
	unsigned char msg[SASL_DECODED_MAX];
	char user[USER_MAX + 1], pass[PASS_MAX + 1];
	long n;

	if (ir == NULL)
		reply(s, R_SASL_USER);
	if ((n = sasl_response(s, ir, msg, sizeof(msg))) < 0)
		return;
	if (sasl_login_field(msg, (size_t)n, user, sizeof(user)) != SASL_OK ||
	    user[0] == '\0') {
		bad(s, "Invalid user name");
		return;
	}
	reply(s, R_SASL_PASS);
	if ((n = sasl_response(s, NULL, msg, sizeof(msg))) < 0)
		return;
	if (sasl_login_field(msg, (size_t)n, pass, sizeof(pass)) != SASL_OK)
		bad(s, "Invalid password");
	else
		authenticate(s, MECH_SASL_LOGIN, user, pass, 0);
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(pass, sizeof(pass));
}

/* CRAM-MD5 (RFC 2195): the monitor makes the challenge. */
static void
auth_cram_md5(struct session *s, const char *ir)
{
	struct msg_challenge c;
	unsigned char msg[SASL_DECODED_MAX];
	char b64[4 * (CHALLENGE_MAX / 3 + 1) + 1], user[USER_MAX + 1], hex[33];
	long n;

	if (ir != NULL) {
		bad(s, "CRAM-MD5 takes no initial response");
		return;
	}
	memset(&c, 0, sizeof(c));
	c.type = MSG_CHALLENGE;
	if (msg_send(s->mon, &c, sizeof(c)) < 0 ||
	    msg_recv(s->mon, &c, sizeof(c)) != (ssize_t)sizeof(c) ||
	    c.type != MSG_CHALLENGE || !msg_string_ok(c.text, sizeof(c.text)) ||
	    b64_encode((const unsigned char *)c.text, strlen(c.text), b64,
	    sizeof(b64)) < 0)
		bye(s, R_BYE_INTERNAL, "bad monitor reply");
	reply(s, R_SASL_CHALLENGE, b64);
	if ((n = sasl_response(s, NULL, msg, sizeof(msg))) < 0)
		return;
	if (sasl_cram_md5(msg, (size_t)n, user, sizeof(user), hex,
	    sizeof(hex)) != SASL_OK)
		bad(s, "Invalid CRAM-MD5 response");
	else
		authenticate(s, MECH_CRAM_MD5, user, hex, 0);
}

/* OAUTHBEARER (RFC 7628) and XOAUTH2: the token goes to auth_http. */
static void
auth_oauth(struct session *s, const char *ir, int xoauth2)
{
	unsigned char msg[SASL_DECODED_MAX];
	char user[USER_MAX + 1], token[PASS_MAX + 1];
	enum sasl_result r;
	long n;

	if ((n = first_response(s, ir, msg, sizeof(msg))) < 0)
		return;
	r = xoauth2 ?
	    sasl_xoauth2(msg, (size_t)n, user, sizeof(user), token,
	    sizeof(token)) :
	    sasl_oauthbearer(msg, (size_t)n, user, sizeof(user), token,
	    sizeof(token));
	explicit_bzero(msg, sizeof(msg));
	if (r != SASL_OK)
		bad(s, xoauth2 ? "Invalid XOAUTH2 message" :
		    "Invalid OAUTHBEARER message");
	else {
		s->sasl_error = xoauth2 ? XOAUTH2_ERROR : OAUTHBEARER_ERROR;
		authenticate(s, xoauth2 ? MECH_XOAUTH2 : MECH_OAUTHBEARER,
		    user, token, 0);
		s->sasl_error = NULL;
	}
	explicit_bzero(token, sizeof(token));
}

/* EXTERNAL (RFC 4422 appendix A): the verified client certificate is
 * the credential; the response is an authorization identity, or empty. */
static void
auth_external(struct session *s, const char *ir)
{
	unsigned char msg[USER_MAX + 1];
	long n;

	if ((n = first_response(s, ir, msg, sizeof(msg) - 1)) < 0)
		return;
	if (memchr(msg, '\0', (size_t)n) != NULL) {
		bad(s, "Invalid authorization identity");
		return;
	}
	msg[n] = '\0';
	authenticate(s, MECH_EXTERNAL, (const char *)msg, "", 0);
}

/* ---- TLS ---- */

static void
set_capability(struct session *s)
{
	struct capa_policy p;

	config_capa_policy(s->cfg, s->ch.tls != NULL, &p);
	p.external = s->tf.verified && s->tf.cn[0] != '\0';
	if (capability_build(&p, s->capa, sizeof(s->capa)) < 0)
		log_fatal("capability list too long");
}

static void
start_tls(struct session *s)
{
	char err[256], cn[USER_MAX * 4 + 1];

	if (tls_accept(&s->ch, s->cfg, &s->tf, err, sizeof(err)) < 0)
		session_exit(s, 1, err);
	log_escape(cn, sizeof(cn), s->tf.cn, strlen(s->tf.cn));
	log_info("tls: ip=%s protocol=%s cipher=%s resumed=%s cert=%s%s%s",
	    s->conn->peer_ip, s->tf.protocol, s->tf.cipher,
	    s->tf.resumed ? "yes" : "no", !s->tf.cert ? "none" :
	    s->tf.verified ? "verified" : "unverified", cn[0] ? " cn=" : "",
	    cn);
	if (s->cfg->ssl_verify_client == VERIFY_ON && !s->tf.verified)
		bye(s, R_BYE_CERT, "client certificate not verified");
	set_capability(s);
}

/* starttls only: no credentials before TLS.  A NO, counted as an error. */
static int
privacy_required(struct session *s)
{
	if (s->ch.tls != NULL || s->cfg->starttls != STARTTLS_ONLY)
		return 0;
	reply(s, R_NO_PRIVACY, s->tag);
	if (++s->errors >= s->cfg->max_errors)
		bye(s, R_BYE_ERRORS, "too many errors");
	return 1;
}

/* ---- commands ---- */

static void
cmd_capability(struct session *s, int nargs)
{
	(void)nargs;
	reply(s, R_CAPABILITY, s->capa, s->tag);
}

static void
cmd_noop(struct session *s, int nargs)
{
	(void)nargs;
	reply(s, R_NOOP, s->tag);
}

static void
cmd_logout(struct session *s, int nargs)
{
	(void)nargs;
	reply(s, R_LOGOUT, s->tag);
	session_exit(s, 0, "logout");
}

static void
cmd_starttls(struct session *s, int nargs)
{
	(void)nargs;
	if (s->ch.tls != NULL) {
		bad(s, "TLS is already active");
		return;
	}
	if (s->cfg->starttls == STARTTLS_OFF) {
		bad(s, "STARTTLS is not enabled");
		return;
	}
	reply(s, R_STARTTLS, s->tag);
	/* Nothing read before the handshake is used after it: commands
	 * injected behind STARTTLS are dropped (CVE-2011-0411). */
	consume(s, s->len);
	start_tls(s);
}

static void
cmd_login(struct session *s, int nargs)
{
	(void)nargs;
	if (privacy_required(s))
		return;
	if (s->arg[0][0] == '\0' || strlen(s->arg[0]) > USER_MAX ||
	    strlen(s->arg[1]) > PASS_MAX) {
		bad(s, "Invalid arguments");
		return;
	}
	authenticate(s, MECH_LOGIN, s->arg[0], s->arg[1], 0);
}

static void
cmd_authenticate(struct session *s, int nargs)
{
	const char *ir = nargs == 2 ? s->arg[1] : NULL;

	unsigned m = s->cfg->auth_methods;

	if (privacy_required(s))
		return;
	if (strcasecmp(s->arg[0], "PLAIN") == 0)
		auth_plain(s, ir);
	else if (strcasecmp(s->arg[0], "LOGIN") == 0)
		auth_login(s, ir);
	else if (strcasecmp(s->arg[0], "CRAM-MD5") == 0 &&
	    (m & AUTHM_CRAM_MD5))
		auth_cram_md5(s, ir);
	else if (strcasecmp(s->arg[0], "OAUTHBEARER") == 0 &&
	    (m & AUTHM_OAUTHBEARER))
		auth_oauth(s, ir, 0);
	else if (strcasecmp(s->arg[0], "XOAUTH2") == 0 && (m & AUTHM_XOAUTH2))
		auth_oauth(s, ir, 1);
	else if (strcasecmp(s->arg[0], "EXTERNAL") == 0 &&
	    (m & AUTHM_EXTERNAL) && s->tf.verified && s->tf.cn[0] != '\0')
		auth_external(s, ir);
	else {
		/* A NO, but a client cycling through names is misbehaving. */
		reply(s, R_NO_MECH, s->tag);
		if (++s->errors >= s->cfg->max_errors)
			bye(s, R_BYE_ERRORS, "too many errors");
	}
}

static const struct command commands[] = {
	{ "CAPABILITY", 0, 0, cmd_capability },
	{ "NOOP", 0, 0, cmd_noop },
	{ "LOGOUT", 0, 0, cmd_logout },
	{ "STARTTLS", 0, 0, cmd_starttls },
	{ "LOGIN", 2, 2, cmd_login },
	{ "AUTHENTICATE", 1, 2, cmd_authenticate },
	{ "ID", 0, 0, NULL },		/* streamed: see id_step() */
};

static const struct command *
command_find(const unsigned char *buf, const struct imap_cmd *cmd)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (imap_name_is(buf, cmd, commands[i].name))
			return &commands[i];
	return NULL;
}

/* Largest non-synchronizing literal we take at hdr_end: LITERAL- (RFC
 * 7888) unless the operator advertises LITERAL+, never more than what is
 * left of the buffer. */
static uint64_t
literal_plus_max(const struct session *s, size_t hdr_end)
{
	uint64_t room = s->size - hdr_end;
	size_t i;

	for (i = 0; i < s->cfg->ncapa; i++)
		if (strcasecmp(s->cfg->capa_tokens[i], "LITERAL+") == 0)
			return room;
	return room < LITERAL_MINUS_MAX ? room : LITERAL_MINUS_MAX;
}

/* A whole command is in the buffer: copy its arguments out, drop it from
 * the buffer, run it. */
static void
dispatch(struct session *s, const struct command *c, const struct imap_cmd *cmd)
{
	int i, ok = cmd->nargs >= c->min_args && cmd->nargs <= c->max_args;

	for (i = 0; ok && i < cmd->nargs; i++)
		ok = imap_arg_copy(s->buf, &cmd->arg[i], s->arg[i],
		    sizeof(s->arg[i])) >= 0;
	consume(s, cmd->end);
	if (ok)
		c->run(s, cmd->nargs);
	else
		bad(s, "Invalid arguments");
	explicit_bzero(s->arg, sizeof(s->arg));
}

static enum step
cmd_step(struct session *s)
{
	const struct command *c = NULL;
	struct imap_cmd cmd;
	enum imap_status st;

	st = imap_parse(s->buf, s->len, &cmd);
	set_tag(s, &cmd);
	if (cmd.name_len > 0) {
		if ((c = command_find(s->buf, &cmd)) == NULL) {
			reject(s, &cmd, "Unknown command");
			return STEP_AGAIN;
		}
		if (c->run == NULL) {
			consume(s, cmd.name_off + cmd.name_len);
			imap_id_init(&s->id);
			s->mode = M_ID;
			return STEP_AGAIN;
		}
	}
	switch (st) {
	case IMAP_MORE:
		if (cmd.lit_hdr_end > 0 && !cmd.lit_sync &&
		    cmd.lit_size > literal_plus_max(s, cmd.lit_hdr_end)) {
			reject(s, &cmd, "Literal too large");
			return STEP_AGAIN;
		}
		return STEP_READ;
	case IMAP_LITERAL:
		if (cmd.lit_hdr_end > s->acked) {
			if (cmd.lit_size > s->size - cmd.lit_hdr_end) {
				reject(s, &cmd, "Literal too large");
				return STEP_AGAIN;
			}
			reply(s, R_CONTINUE);
			s->acked = cmd.lit_hdr_end;
		}
		return STEP_READ;
	case IMAP_BAD:
		if (cmd.lit_size == UINT64_MAX && !cmd.lit_sync) {
			/* Its bytes cannot be skipped in any sane time. */
			reply(s, R_BAD, s->tag, cmd.error);
			bye(s, R_BYE_LITERAL, "literal too large");
		}
		reject(s, &cmd, cmd.error);
		return STEP_AGAIN;
	case IMAP_DONE:
		dispatch(s, c, &cmd);
		return STEP_AGAIN;
	}
	return STEP_AGAIN;
}

static enum step
skip_step(struct session *s)
{
	enum skip_status st;
	size_t used;

	st = imap_skip(&s->skip, s->buf, s->len, &used);
	consume(s, used);
	switch (st) {
	case SKIP_MORE:
		return STEP_READ;
	case SKIP_HUGE:
		reply(s, R_BAD, s->tag, s->pending);
		bye(s, R_BYE_LITERAL, "literal too large");
		break;
	default:
		s->mode = M_CMD;
		bad(s, s->pending);
		break;
	}
	return STEP_AGAIN;
}

static enum step
id_step(struct session *s)
{
	enum id_status st;
	size_t used;

	st = imap_id(&s->id, s->buf, s->len, &used);
	consume(s, used);
	switch (st) {
	case ID_MORE:
		return STEP_READ;
	case ID_LITERAL:
		reply(s, R_CONTINUE);
		break;
	case ID_DONE:
		s->mode = M_CMD;
		reply(s, R_ID, s->tag);
		break;
	case ID_BAD:
		if (s->id.ended_sync) {
			s->mode = M_CMD;
			bad(s, s->id.error);
			break;
		}
		if (s->id.lit_left > LITERAL_SKIP_MAX) {
			reply(s, R_BAD, s->tag, s->id.error);
			bye(s, R_BYE_LITERAL, "literal too large");
		}
		imap_skip_literal(&s->skip, s->id.lit_left);
		s->pending = s->id.error;
		s->mode = M_SKIP;
		break;
	}
	return STEP_AGAIN;
}

/*
 * PROXY protocol in: a load balancer's header comes before anything else,
 * from a trusted peer only, within PROXY_HEADER_TIMEOUT.  The address in
 * it becomes the client's, here and in the monitor.
 */
static void
proxy_header_in(struct session *s, struct conn *conn)
{
	struct msg_client_addr m;
	struct proxy_addr a;
	struct timespec deadline, pause = { 0, PROXY_PEEK_PAUSE_MS * 1000000L };
	enum proxy_status st;
	size_t used, seen = 0;
	ssize_t n;
	long wait;

	if (!cidr_match(s->cfg->real_ip_from, s->cfg->nreal_ip_from,
	    conn->peer_ip))
		session_exit(s, 1, "PROXY header expected from an untrusted "
		    "peer");
	deadline_after(&deadline, NULL, PROXY_HEADER_TIMEOUT);
	/*
	 * Peek, and take exactly the header: what follows it may be a TLS
	 * ClientHello, which GnuTLS must read from the socket itself.
	 */
	for (;;) {
		if ((wait = ms_left(&deadline)) <= 0 ||
		    chan_wait(&s->ch, wait) <= 0)
			session_exit(s, 1, "no PROXY header");
		do
			n = recv(conn->in, s->buf, s->size, MSG_PEEK);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			session_exit(s, 1, "client closed");
		if ((st = proxy_parse(s->buf, (size_t)n, &a, &used)) !=
		    PROXY_MORE)
			break;
		/* Nothing new since the last peek: the socket stays
		 * readable, so pause rather than spin. */
		if ((size_t)n == seen)
			nanosleep(&pause, NULL);
		seen = (size_t)n;
	}
	if (st == PROXY_BAD)
		session_exit(s, 1, "bad PROXY header");
	if (read(conn->in, s->buf, used) != (ssize_t)used)
		session_exit(s, 1, "client closed");
	explicit_bzero(s->buf, used);
	if (a.local)
		return;
	memset(&m, 0, sizeof(m));
	m.type = MSG_CLIENT_ADDR;
	snprintf(m.ip, sizeof(m.ip), "%s", a.src_ip);
	snprintf(m.port, sizeof(m.port), "%s", a.src_port);
	snprintf(m.dst_ip, sizeof(m.dst_ip), "%s", a.dst_ip);
	snprintf(m.dst_port, sizeof(m.dst_port), "%s", a.dst_port);
	if (msg_send(s->mon, &m, sizeof(m)) < 0)
		session_exit(s, 1, "monitor gone");
	memcpy(conn->peer_ip, m.ip, sizeof(m.ip));
	memcpy(conn->peer_port, m.port, sizeof(m.port));
	memcpy(conn->proxy_dst_ip, m.dst_ip, sizeof(m.dst_ip));
	memcpy(conn->proxy_dst_port, m.dst_port, sizeof(m.dst_port));
	conn->proxied = 1;
}

void
session_run(const struct config *cfg, const struct conn *conn_in,
    int monitor_fd)
{
	static struct session s;
	static struct conn conn;
	enum step st;

	conn = *conn_in;
	s.cfg = cfg;
	s.conn = &conn;
	s.mon = monitor_fd;
	s.ch.in = conn.in;
	s.ch.out = conn.out;
	tls_sign_via(monitor_fd);
	/* Blocked since the fork (serve_spare()): a stop signalled before
	 * this point waits for the first client_wait(). */
	signal(SIGCONT, on_stop);
	sigprocmask(SIG_BLOCK, NULL, &wait_mask);
	sigdelset(&wait_mask, SIGCONT);
	s.buf = session_buf;
	s.size = cfg->client_buffer;
	s.mode = M_CMD;
	deadline_after(&s.deadline, NULL,
	    (double)cfg->timeout * TIMEOUT_TOTAL_FACTOR);
	if (cfg->proxy_protocol)
		proxy_header_in(&s, &conn);
	if (cfg->ssl)
		start_tls(&s);
	else
		set_capability(&s);
	reply(&s, R_GREETING, s.capa, cfg->greeting);
	for (;;) {
		if (s.len == 0)
			st = STEP_READ;
		else if (s.mode == M_SKIP)
			st = skip_step(&s);
		else if (s.mode == M_ID)
			st = id_step(&s);
		else
			st = cmd_step(&s);
		if (st == STEP_READ)
			session_fill(&s);
	}
}
