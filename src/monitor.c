/*
 * The monitor process.  Its loop serves one session: AUTH requests until
 * one succeeds or attempts run out, then the HANDOFF, then exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "auth.h"
#include "backend_connect.h"
#include "backend_exec.h"
#include "cidr.h"
#include "clock.h"
#include "cram.h"
#include "listener.h"
#include "log.h"
#include "monitor.h"
#include "msg.h"
#include "penalty.h"
#include "relay.h"
#include "sandbox.h"
#include "tls.h"


static pid_t session_pid, mail_pid;

union msg_any {
	uint32_t		type;
	struct msg_auth		auth;
	struct msg_handoff	handoff;
	struct msg_verdict	verdict;
	struct msg_relay	relay;
	struct msg_client_addr	addr;
	struct msg_challenge	challenge;
	struct msg_relay_end	end;
	struct msg_sign		sign;
};

/* What the monitor expects next from the session.  With TLS the session
 * keeps the relay: RELAY_KEEP (the monitor drops its privileges), then
 * RELAY_END. */
enum state { ST_AUTH, ST_VERDICT, ST_HANDOFF, ST_RELAY, ST_KEEP, ST_END };

struct monitor {
	const struct config *cfg;
	struct conn	 conn;		/* a PROXY header may change it */
	const struct sandbox *sb;
	int		 fd;
	enum state	 state;
	int		 failures;
	int		 attempts;	/* Auth-Login-Attempt */
	int		 addr_set;
	struct auth_reply reply;	/* the auth source's facts */
	char		 challenge[CHALLENGE_MAX + 1];	/* CRAM-MD5, once */
	char		 tag[TAG_MAX + 1];
	char		 logname[USER_MAX * 4 + 1];	/* escaped */
	uint32_t	 mech;
	char		 backend[HOST_MAX + PORT_MAX + 2];
	struct timespec	 asked;		/* when the login was asked */
	struct timespec	 born;
};

/* The session outlived every deadline it has: it is not well. */
static void
on_alarm(int sig)
{
	(void)sig;
	if (session_pid > 0)
		kill(session_pid, SIGKILL);
	_exit(111);
}

/* A session (or relay) the seccomp allow-list ended: the kernel does not
 * tell a parent which call it was (SECCOMP_RET_KILL_PROCESS); its own
 * log has it (audit type SECCOMP, "syscall=N"). */
static void
note_end(int status)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		log_err("session: killed by SIGSYS: a system call outside its "
		    "seccomp allow-list (the kernel log has its number)");
}

static void
reap_session(void)
{
	int st = 0;

	while (waitpid(session_pid, &st, 0) < 0 && errno == EINTR)
		;
	note_end(st);
}

/* Wait for the session (and a mail server on a socketpair) to exit and
 * exit with the status of the mail server if there is one, else the
 * session's. */
static void
monitor_finish(void)
{
	int status = 0, mail_status = 0, st;
	pid_t pid;

	while ((pid = wait(&st)) > 0 || (pid < 0 && errno == EINTR)) {
		if (pid == session_pid) {
			status = st;
			note_end(st);
		}
		else if (pid == mail_pid)
			mail_status = st;
	}
	if (mail_pid > 0)
		status = mail_status;
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 111);
}

static const char *
mech_name(uint32_t mech)
{
	static const char *const names[] = { "?", "LOGIN", "PLAIN",
	    "AUTH-LOGIN", "CRAM-MD5", "OAUTHBEARER", "XOAUTH2", "EXTERNAL" };

	return mech < sizeof(names) / sizeof(names[0]) ? names[mech] : "?";
}

/* Sleep until the login was asked + d seconds, so that every failure
 * takes the time policy says whatever the check cost (unknown user, wrong
 * password, a slow hash or auth server). */
static void
delay_failure(const struct monitor *m, double d)
{
	struct timespec until;
	struct pollfd p;
	long left;

	deadline_after(&until, &m->asked, d);
	/*
	 * Watching the client meanwhile: one that has gone (or shut down
	 * its side: it sends nothing more) is owed no answer, and its
	 * process pair is a slot someone else may need.  The penalty was
	 * counted before this wait: leaving early saves the client nothing.
	 */
	p.fd = m->conn.in;
	p.events = POLLRDHUP;
	while ((left = ms_left(&until)) > 0) {
		p.revents = 0;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
			log_info("client left during the failure delay: ip=%s",
			    m->conn.peer_ip);
			kill(session_pid, SIGKILL);
			reap_session();
			_exit(1);
		}
		/* Nothing to watch (not a socket here): just wait. */
		break;
	}
	/* To the deadline exactly (poll counts whole milliseconds). */
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) ==
	    EINTR)
		;
}

static void
send_result(struct monitor *m, enum auth_result r, int close_after,
    const char *text)
{
	static struct msg_auth_result res;

	memset(&res, 0, sizeof(res));
	res.type = MSG_AUTH_RESULT;
	res.result = r;
	res.close = (uint32_t)close_after;
	snprintf(res.text, sizeof(res.text), "%s", text);
	if (msg_send(m->fd, &res, sizeof(res)) < 0)
		monitor_finish();
}

/*
 * A login failed, whatever failed: log, wait, count, answer.  A guess
 * (wrong password, refused by the backend) also costs the client's
 * address: its shared penalty doubles.  auth_http's Auth-Wait, when it
 * gives one, is the wait and keeps the connection; its NO without one
 * closes it, as in nginx.
 */
static void
login_failed(struct monitor *m, enum auth_result r, const char *why)
{
	const struct config *c = m->cfg;
	double delay = c->failure_delay;
	int guess = r == AUTH_NO || r == AUTH_AUTHZ || r == AUTH_BACKEND_NO;
	int close_after;

	m->failures++;
	log_info("login failed: user=\"%s\" method=%s ip=%s reason=%s "
	    "attempt=%d", m->logname, mech_name(m->mech), m->conn.peer_ip, why,
	    m->failures);
	if (r == AUTH_TEMPFAIL)
		log_err("auth: %s (user \"%s\")", why, m->logname);
	/* failure_delay is the least a guess waits, max_penalty the most it
	 * grows to (if that is less, there is no growth). */
	if (guess && (delay = penalty_fail(c->penalty_file, m->conn.peer_ip,
	    c->failure_delay, c->max_penalty)) < c->failure_delay)
		delay = c->failure_delay;
	if (m->reply.wait >= 0)
		delay = m->reply.wait;
	/* Every failure waits, a temporary one too: an instant answer
	 * would tell that the user exists (a bad hash, say). */
	delay_failure(m, delay);
	close_after = m->failures >= c->max_attempts ? CLOSE_ATTEMPTS :
	    m->reply.text[0] != '\0' && m->reply.wait < 0 ? CLOSE_REFUSED : 0;
	m->state = ST_AUTH;
	send_result(m, r, close_after, m->reply.text);
}

static void
login_ok(struct monitor *m)
{
	/* Not pre-auth any more: listener mode's limits let it be. */
	listener_logged_in();
	log_info("login: user=\"%s\" method=%s ip=%s port=%s%s%s", m->logname,
	    mech_name(m->mech), m->conn.peer_ip, m->conn.peer_port,
	    m->backend[0] ? " backend=" : "", m->backend);
}

/* The credentials the backend login uses: the master's, the auth
 * server's Auth-User/Auth-Pass, or the client's. */
static void
backend_credentials(const struct monitor *m, const struct msg_auth *a,
    struct msg_connect *c)
{
	const struct auth_reply *r = &m->reply;
	const char *user = r->login_user[0] ? r->login_user : a->user;

	if (m->cfg->master_user != NULL) {
		snprintf(c->user, sizeof(c->user), "%s", m->cfg->master_user);
		snprintf(c->pass, sizeof(c->pass), "%s", m->cfg->master_password);
		snprintf(c->authzid, sizeof(c->authzid), "%s", user);
		return;
	}
	snprintf(c->user, sizeof(c->user), "%s", user);
	snprintf(c->pass, sizeof(c->pass), "%s", r->login_pass[0] ?
	    r->login_pass : a->pass);
}

/* Connect mode: reach a backend and hand it to the session with the
 * credentials to log in there. */
static void
connect_backend(struct monitor *m, const struct msg_auth *a)
{
	static struct msg_connect c;
	const struct backend_addr *t = m->cfg->connect;
	int n = m->cfg->nconnect, fd, used = 0;

	if (m->reply.user.has_route) {
		t = &m->reply.user.route;
		n = 1;
	} else if (n == 0) {
		/* auth.http without backend.connect: as in nginx, an OK must
		 * name the backend; one that does not is the server's fault,
		 * not the client's guess. */
		login_failed(m, AUTH_TEMPFAIL,
		    "auth_http gave no Auth-Server/Auth-Port");
		return;
	}
	if ((fd = backend_connect(m->cfg, t, n, m->backend,
	    sizeof(m->backend), &used)) < 0) {
		login_failed(m, AUTH_UNAVAILABLE, "no backend answered");
		return;
	}
	memset(&c, 0, sizeof(c));
	c.type = MSG_CONNECT;
	backend_credentials(m, a, &c);
	snprintf(c.backend, sizeof(c.backend), "%s", m->backend);
	snprintf(c.tls_name, sizeof(c.tls_name), "%s",
	    m->cfg->backend_ssl_name != NULL ? m->cfg->backend_ssl_name :
	    t[used].host);
	if (msg_send_fd(m->fd, &c, sizeof(c), fd) < 0)
		monitor_finish();
	explicit_bzero(&c, sizeof(c));
	explicit_bzero(m->reply.login_pass, sizeof(m->reply.login_pass));
	close(fd);
	m->state = ST_VERDICT;
}

/* Is this mechanism one the configuration accepts? */
static int
mech_allowed(const struct config *c, uint32_t mech)
{
	switch (mech) {
	case MECH_CRAM_MD5:
		return (c->auth_methods & AUTHM_CRAM_MD5) != 0;
	case MECH_OAUTHBEARER:
		return (c->auth_methods & AUTHM_OAUTHBEARER) != 0;
	case MECH_XOAUTH2:
		return (c->auth_methods & AUTHM_XOAUTH2) != 0;
	case MECH_EXTERNAL:
		return (c->auth_methods & AUTHM_EXTERNAL) != 0;
	default:
		return mech >= MECH_LOGIN && mech <= MECH_SASL_LOGIN;
	}
}

/*
 * How long the session may take from here: its own deadline, one backend
 * login, and slack.  The alarm is off while the monitor itself works on a
 * login (the auth source and the penalty have their own deadlines; an
 * auth_http WAIT lasts as long as the client stays) and re-armed after.
 */
static unsigned
session_budget(const struct config *c)
{
	return (unsigned)(c->timeout * TIMEOUT_TOTAL_FACTOR) +
	    2 * (unsigned)c->ssl_handshake_timeout +
	    (unsigned)(c->connect_timeout * (c->nconnect + 1)) +
	    BACKEND_LOGIN_TIMEOUT + MONITOR_SLACK;
}

/* A field the session filled: 1 to size - 1 bytes, all from set,
 * NUL-terminated.  Anything else could end a header or a log line. */
static int
field_ok(const char *s, size_t size, const char *set)
{
	size_t n;

	if (!msg_string_ok(s, size))
		return 0;
	n = strlen(s);
	return n > 0 && strspn(s, set) == n;
}

/* A name as GnuTLS gives them ("TLS1.3", "AES-256-GCM"). */
static int
tls_name_ok(const char *s, size_t size)
{
	return field_ok(s, size, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
	    "tuvwxyz0123456789._-");
}

/*
 * Are the TLS facts the session sent well-formed?  The protocol and the
 * cipher are its word (the monitor has no handshake to ask), so they must
 * look like GnuTLS's names; the rest -- whether there is a certificate,
 * whether it verified, its names -- tls_client_facts() then computes
 * from the chain, whatever the session said.
 */
static int
tls_facts_ok(const struct tls_facts *t)
{
	if (!t->active)
		return 1;
	return tls_name_ok(t->protocol, sizeof(t->protocol)) &&
	    tls_name_ok(t->cipher, sizeof(t->cipher)) &&
	    t->ncerts <= TLS_CHAIN_CERTS;
}

/*
 * EXTERNAL: the identity is the CN of the client's certificate, which
 * the monitor verifies itself (the session may be lying); the
 * authorization identity the client asked for (in a->user) replaces it
 * only where the auth source judges it (auth_http).  0, AUTH_AUTHZ when
 * the passwd-file must refuse a different one, or AUTH_NO.
 */
static int
external_identity(const struct monitor *m, struct msg_auth *a,
    const char **why)
{
	char cn[USER_MAX + 1];

	/* The configuration refuses EXTERNAL without the operator's trust;
	 * refused here too, whatever the session asks. */
	if (!m->cfg->ssl_external_trust_session) {
		*why = "EXTERNAL without ssl_external_trust_session";
		return AUTH_NO;
	}
	if (!a->tls.active || tls_verify_client(&a->tls, cn, sizeof(cn)) < 0) {
		*why = "client certificate does not verify";
		return AUTH_NO;
	}
	if (m->cfg->auth_http != NULL && a->user[0] != '\0')
		return 0;
	if (a->user[0] != '\0' && strcmp(a->user, cn) != 0) {
		*why = "authorization identity differs from the certificate";
		return AUTH_AUTHZ;
	}
	snprintf(a->user, sizeof(a->user), "%s", cn);
	return 0;
}

static void
serve_auth(struct monitor *m, struct msg_auth *a, ssize_t n)
{
	struct auth_request req;
	enum auth_result r;
	const char *why = "";

	/* Exactly the header and the DER bytes it announces. */
	if (n < (ssize_t)MSG_AUTH_HDR || msg_auth_der(a) == SIZE_MAX ||
	    (size_t)n != MSG_AUTH_HDR + msg_auth_der(a) ||
	    !tls_facts_ok(&a->tls) ||
	    m->failures >= m->cfg->max_attempts ||
	    !mech_allowed(m->cfg, a->mech) ||
	    (a->mech == MECH_CRAM_MD5 && m->challenge[0] == '\0') ||
	    !msg_string_ok(a->tag, sizeof(a->tag)) ||
	    !msg_string_ok(a->user, sizeof(a->user)) ||
	    !msg_string_ok(a->pass, sizeof(a->pass)))
		log_fatal("monitor: malformed AUTH message");
	alarm(0);
	clock_gettime(CLOCK_MONOTONIC, &m->asked);
	tls_client_facts(&a->tls);
	r = a->mech == MECH_EXTERNAL ? external_identity(m, a, &why) : 0;
	log_escape(m->logname, sizeof(m->logname), a->user, strlen(a->user));
	memcpy(m->tag, a->tag, sizeof(m->tag));
	m->mech = a->mech;
	m->backend[0] = '\0';
	memset(&req, 0, sizeof(req));
	req.user = a->user;
	req.pass = a->pass;
	req.mech = a->mech;
	req.salt = a->mech == MECH_CRAM_MD5 ? m->challenge : NULL;
	req.attempt = ++m->attempts;
	req.conn = &m->conn;
	req.tls = &a->tls;
	if (r != 0 || a->authz_mismatch) {
		memset(&m->reply, 0, sizeof(m->reply));
		m->reply.wait = -1;
		if (r == 0) {
			why = "authorization identity differs from user";
			r = AUTH_AUTHZ;
		}
	} else
		r = auth_check(m->cfg, &req, &m->reply, &why);
	/* A challenge answers one response only. */
	explicit_bzero(m->challenge, sizeof(m->challenge));
	/*
	 * An account exec mode never runs (uid 0, no uid:gid) is answered
	 * as a wrong password, whatever the password was: same reply, same
	 * wait, a guess in the penalty.  A different answer for the right
	 * password would make a password oracle (root's, behind a
	 * checkpassword that accepts root).  Only the log says why.
	 */
	if (r == AUTH_OK && m->cfg->exec_argc > 0 &&
	    (why = exec_refusal(&m->reply.user)) != NULL) {
		log_notice("login refused: user=\"%s\" ip=%s: %s", m->logname,
		    m->conn.peer_ip, why);
		r = AUTH_NO;
	}
	if (r != AUTH_OK)
		login_failed(m, r, why);
	else if (m->cfg->exec_argc > 0) {
		penalty_clear(m->cfg->penalty_file, m->conn.peer_ip);
		login_ok(m);
		m->state = ST_HANDOFF;
		send_result(m, AUTH_OK, 0, "");
	} else
		connect_backend(m, a);
	explicit_bzero(a->pass, sizeof(a->pass));
	alarm(session_budget(m->cfg));
}

/* CRAM-MD5: the monitor makes the challenge, so that a session cannot
 * choose one to replay an old answer. */
static void
serve_challenge(struct monitor *m, ssize_t n)
{
	static struct msg_challenge c;
	char host[SERVER_NAME_MAX + 1];
	const char *name = m->cfg->server_name;

	if (n != (ssize_t)sizeof(c) || !(m->cfg->auth_methods & AUTHM_CRAM_MD5))
		log_fatal("monitor: malformed CHALLENGE message");
	if (name == NULL) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		name = host;
	}
	memset(&c, 0, sizeof(c));
	c.type = MSG_CHALLENGE;
	if (cram_md5_challenge(name, m->challenge, sizeof(m->challenge)) < 0)
		log_fatal("monitor: cannot make a challenge");
	memcpy(c.text, m->challenge, sizeof(c.text));
	if (msg_send(m->fd, &c, sizeof(c)) < 0)
		monitor_finish();
}

/* Connect mode: what the backend said to the login. */
static void
serve_verdict(struct monitor *m, const struct msg_verdict *v, ssize_t n)
{
	if (n != (ssize_t)sizeof(*v))
		log_fatal("monitor: malformed VERDICT message");
	if (v->verdict == VERDICT_OK) {
		penalty_clear(m->cfg->penalty_file, m->conn.peer_ip);
		login_ok(m);
		m->state = ST_RELAY;
		send_result(m, AUTH_OK, 0, "");
	} else if (v->verdict == VERDICT_NO)
		login_failed(m, AUTH_BACKEND_NO, "backend refused the login");
	else
		login_failed(m, AUTH_UNAVAILABLE, "backend dialogue failed");
}

/*
 * Start the mail server as the user on one end of a socketpair; the
 * other end is returned to whoever relays between it and the client.
 */
static int
mail_on_socketpair(struct monitor *m)
{
	struct stat c, e;
	struct conn mc;
	int sp[2], null;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		log_fatal("socketpair: %s", strerror(errno));
	if ((mail_pid = fork()) < 0)
		log_fatal("fork: %s", strerror(errno));
	if (mail_pid == 0) {
		/* Its stderr must not be the client socket: it is no longer
		 * its stdin, and it would write its log to the client. */
		if (fstat(m->conn.in, &c) == 0 && fstat(2, &e) == 0 &&
		    c.st_dev == e.st_dev && c.st_ino == e.st_ino &&
		    (null = open("/dev/null", O_WRONLY)) >= 0)
			dup2(null, 2);
		mc = m->conn;
		mc.in = mc.out = sp[1];
		exec_handoff(m->cfg, &mc, &m->reply.user, m->tag,
		    (const unsigned char *)"", 0);
	}
	close(sp[1]);
	return sp[0];
}

/*
 * Exec handoff with TLS up: the mail server runs as the user on one end
 * of a socketpair, the session gets the other and relays.  This process
 * stays to reap both.
 */
static void
handoff_pipe(struct monitor *m)
{
	struct msg_type_only p = { MSG_PIPE };
	int fd = mail_on_socketpair(m);

	if (msg_send_fd(m->fd, &p, sizeof(p), fd) < 0)
		monitor_finish();
	close(fd);
	m->state = ST_KEEP;
}

/*
 * Does the mail server take the bytes read past the login from Dovecot's
 * CLIENT_INPUT?  Only Dovecot's imap reads it; any other server (Courier's
 * imapd, a wrapper) would lose them, so for it they are relayed.
 */
static int
exec_reads_client_input(const struct config *c)
{
	const char *base = strrchr(c->exec_argv[0], '/');

	switch (c->client_input) {
	case CI_ENV:
		return 1;
	case CI_RELAY:
		return 0;
	default:
		return strcmp(base != NULL ? base + 1 : c->exec_argv[0],
		    "imap") == 0;
	}
}

static void drop_privileges(struct monitor *m);

/* The session line, one per connection that logged in: what the relay
 * moved each way (in: from the client), how long, how it ended, and how
 * it was carried (" relay=yes", " tls=yes" or ""). */
static void
log_session_end(const struct monitor *m, unsigned long long in,
    unsigned long long out, const char *end, const char *how)
{
	log_info("session: user=\"%s\" ip=%s backend=%s in=%llu out=%llu "
	    "duration=%.3f end=%s%s", m->logname, m->conn.peer_ip,
	    m->backend[0] ? m->backend : "exec", in, out,
	    seconds_since(&m->born), end, how);
}

/* relay_run() takes the pending bytes into its own buffer. */
_Static_assert(RELAY_BUFFER >= CLIENT_BUFFER_MAX,
    "the relay buffer holds what the session read past the login");

/*
 * Plaintext exec with client bytes pending that the mail server would not
 * read: it runs on a socketpair and this process, unprivileged and
 * sandboxed like the connect-mode relay, hands it those bytes first and
 * then relays.  The session is gone by then.  Does not return.
 */
static void
handoff_relay(struct monitor *m, const struct msg_handoff *h)
{
	struct relay_stats st;
	int fd;

	close(m->fd);
	reap_session();
	fd = mail_on_socketpair(m);
	drop_privileges(m);
	relay_run(m->conn.in, m->conn.out, fd, h->data, h->len,
	    (const unsigned char *)"", 0, m->cfg->proxy_timeout, &st);
	close(fd);
	log_session_end(m, st.c2b, st.b2c, st.end, " relay=yes");
	monitor_finish();
}

static void
serve_handoff(struct monitor *m, struct msg_handoff *h, ssize_t n)
{
	if (n < (ssize_t)MSG_HANDOFF_HDR || h->len > m->cfg->client_buffer ||
	    (size_t)n != MSG_HANDOFF_HDR + h->len || (h->tls && h->len != 0))
		log_fatal("monitor: malformed HANDOFF message");
	if (h->tls) {
		handoff_pipe(m);
		return;
	}
	/* Nothing pending, or a server that reads CLIENT_INPUT: a plain
	 * exec, with no relay process left behind. */
	if (h->len > 0 && !exec_reads_client_input(m->cfg)) {
		handoff_relay(m, h);
		return;
	}
	/* The session must be gone before anyone else reads the socket. */
	close(m->fd);
	reap_session();
	exec_handoff(m->cfg, &m->conn, &m->reply.user, m->tag, h->data, h->len);
}


/* Logged in, for good: no deadline, no master password, and the
 * session's sandbox for this process too. */
static void
drop_privileges(struct monitor *m)
{
	char err[CONFIG_ERR_MAX];

	alarm(0);
	if (m->cfg->master_password != NULL)
		explicit_bzero(m->cfg->master_password,
		    strlen(m->cfg->master_password));
	if (sandbox_enter(m->cfg, m->sb, err, sizeof(err)) < 0)
		log_fatal("relay: %s", err);
}

/* Connect mode, logged in: this process, unprivileged from here on,
 * carries the relay; the session is gone. */
static void
serve_relay(struct monitor *m, struct msg_relay *r, ssize_t n, int bfd)
{
	struct relay_stats st;

	if (bfd < 0 || n < (ssize_t)MSG_RELAY_HDR ||
	    r->client_len > m->cfg->client_buffer ||
	    r->backend_len > BACKEND_BUFFER ||
	    (size_t)n != MSG_RELAY_HDR + r->client_len + r->backend_len)
		log_fatal("monitor: malformed RELAY message");
	close(m->fd);
	reap_session();
	drop_privileges(m);
	relay_run(m->conn.in, m->conn.out, bfd, r->data, r->client_len,
	    r->data + r->client_len, r->backend_len, m->cfg->proxy_timeout,
	    &st);
	log_session_end(m, st.c2b, st.b2c, st.end, "");
	_exit(0);
}

/* TLS: the session carries the relay; this process needs no privilege
 * from here on, only to log the end and reap. */
static void
serve_relay_keep(struct monitor *m, ssize_t n)
{
	if (n != (ssize_t)sizeof(struct msg_type_only))
		log_fatal("monitor: malformed RELAY_KEEP message");
	drop_privileges(m);
	m->state = ST_END;
}

static void
serve_relay_end(struct monitor *m, struct msg_relay_end *e, ssize_t n)
{
	char end[4 * sizeof(e->end) + 1];

	if (n != (ssize_t)sizeof(*e) || !msg_string_ok(e->end, sizeof(e->end)))
		log_fatal("monitor: malformed RELAY_END message");
	/* The session's word: escaped for the log like client bytes. */
	log_escape(end, sizeof(end), e->end, strlen(e->end));
	log_session_end(m, e->c2b, e->b2c, end, " tls=yes");
	close(m->fd);
	monitor_finish();
}

/* A TLS handshake's signature, with a key only this process holds. */
static void
serve_sign(struct monitor *m, struct msg_sign *s, ssize_t n)
{
	static struct msg_signature r;

	if (n != (ssize_t)sizeof(*s) || tls_sign(s, &r) < 0)
		log_fatal("monitor: malformed or one too many SIGN messages");
	if (msg_send(m->fd, &r, sizeof(r)) < 0)
		monitor_finish();
}

/* An IPv4 or IPv6 address in text form. */
static int
ip_ok(const char *ip, size_t size)
{
	unsigned char bin[16];

	return msg_string_ok(ip, size) && (inet_pton(AF_INET, ip, bin) == 1 ||
	    inet_pton(AF_INET6, ip, bin) == 1);
}

/* A port number: 1 to 5 digits, at most 65535. */
static int
port_ok(const char *port, size_t size)
{
	return field_ok(port, size, "0123456789") && strlen(port) <= 5 &&
	    atoi(port) <= 65535;
}

/*
 * The client's address from a PROXY header the session read.  Believed
 * only as set_real_ip_from allows: the peer this process accepted (not
 * the session's word) must be a trusted one, and every field must be an
 * address or a port, nothing that could end a header or a log line.
 */
static void
serve_client_addr(struct monitor *m, struct msg_client_addr *a, ssize_t n)
{
	const char *bye;

	if (n != (ssize_t)sizeof(*a) || !m->cfg->proxy_protocol ||
	    m->addr_set || m->attempts != 0 ||
	    !cidr_match(m->cfg->real_ip_from, m->cfg->nreal_ip_from,
	    m->conn.peer_ip) ||
	    !ip_ok(a->ip, sizeof(a->ip)) || !port_ok(a->port, sizeof(a->port)) ||
	    !ip_ok(a->dst_ip, sizeof(a->dst_ip)) ||
	    !port_ok(a->dst_port, sizeof(a->dst_port)))
		log_fatal("monitor: malformed CLIENT_ADDR message");
	m->addr_set = 1;
	m->conn.proxied = 1;
	/* Listener mode's per-source limit, for the client's own address. */
	if ((bye = listener_readdress(m->cfg, a->ip)) != NULL) {
		kill(session_pid, SIGKILL);
		reap_session();
		/* A TLS client could not read it: no plain text there. */
		if (!m->cfg->ssl)
			(void)!write(m->conn.out, bye, strlen(bye));
		_exit(1);
	}
	memcpy(m->conn.peer_ip, a->ip, sizeof(a->ip));
	memcpy(m->conn.peer_port, a->port, sizeof(m->conn.peer_port));
	memcpy(m->conn.proxy_dst_ip, a->dst_ip, sizeof(a->dst_ip));
	memcpy(m->conn.proxy_dst_port, a->dst_port,
	    sizeof(m->conn.proxy_dst_port));
}

/*
 * Listener mode, before the login: wait for the session's next message
 * and for the listener's stop (its pipe hangs up), which the session is
 * told of: it says BYE to its client and ends.  By SIGCONT, the one
 * signal the kernel lets a process send another user's process in its
 * own session without CAP_KILL, which the units do not keep.  Once only.
 */
static void
await_session(int fd, int *told)
{
	struct pollfd p[2];

	if (*told || (p[1].fd = listener_stop_fd()) < 0)
		return;
	p[0].fd = fd;
	p[0].events = p[1].events = POLLIN;
	p[0].revents = p[1].revents = 0;
	while (poll(p, 2, -1) < 0 && errno == EINTR)
		;
	if (p[1].revents != 0) {
		*told = 1;
		kill(session_pid, SIGCONT);
	}
}

void
monitor_run(const struct config *cfg, const struct conn *conn,
    const struct sandbox *sb, int fd, pid_t session)
{
	static union msg_any msg;
	static struct monitor m;
	ssize_t n;
	int got, told = 0;

	m.cfg = cfg;
	m.conn = *conn;
	m.sb = sb;
	m.fd = fd;
	m.state = ST_AUTH;
	clock_gettime(CLOCK_MONOTONIC, &m.born);
	session_pid = session;
	signal(SIGALRM, on_alarm);
	alarm(session_budget(cfg));
	for (;;) {
		if (m.state == ST_AUTH)
			await_session(fd, &told);
		n = msg_recv_fd(fd, &msg, sizeof(msg), &got);
		if (n == 0)
			monitor_finish();
		if (n < (ssize_t)sizeof(uint32_t))
			log_fatal("monitor: bad message from session (truncated, "
			    "or more than one descriptor)");
		/* A descriptor only where the protocol has one: any other is
		 * closed, and the session that sent it is done. */
		if (got >= 0 && (msg.type != MSG_RELAY || m.state != ST_RELAY)) {
			close(got);
			log_fatal("monitor: unexpected descriptor");
		}
		if (msg.type == MSG_AUTH && m.state == ST_AUTH)
			serve_auth(&m, &msg.auth, n);
		else if (msg.type == MSG_SIGN && m.state == ST_AUTH)
			serve_sign(&m, &msg.sign, n);
		else if (msg.type == MSG_CHALLENGE && m.state == ST_AUTH)
			serve_challenge(&m, n);
		else if (msg.type == MSG_CLIENT_ADDR && m.state == ST_AUTH)
			serve_client_addr(&m, &msg.addr, n);
		else if (msg.type == MSG_VERDICT && m.state == ST_VERDICT)
			serve_verdict(&m, &msg.verdict, n);
		else if (msg.type == MSG_HANDOFF && m.state == ST_HANDOFF)
			serve_handoff(&m, &msg.handoff, n);
		else if (msg.type == MSG_RELAY && m.state == ST_RELAY)
			serve_relay(&m, &msg.relay, n, got);
		else if (msg.type == MSG_RELAY_KEEP && (m.state == ST_RELAY ||
		    m.state == ST_KEEP))
			serve_relay_keep(&m, n);
		else if (msg.type == MSG_RELAY_END && m.state == ST_END)
			serve_relay_end(&m, &msg.end, n);
		else
			log_fatal("monitor: message %u out of place", msg.type);
	}
}
