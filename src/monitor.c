/*
 * The monitor process.  Its loop serves one session: AUTH requests until
 * one succeeds or attempts run out, then the HANDOFF, then exec.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth_passwd.h"
#include "backend_exec.h"
#include "log.h"
#include "monitor.h"
#include "msg.h"


static pid_t session_pid;

union msg_any {
	uint32_t		type;
	struct msg_auth		auth;
	struct msg_handoff	handoff;
};

struct monitor {
	const struct config *cfg;
	const struct conn *conn;
	int		 fd;
	int		 failures;
	int		 authenticated;
	struct auth_user user;
	char		 tag[TAG_MAX + 1];
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

/* Wait for the session to exit and exit with its status. */
static void
monitor_finish(void)
{
	int status;

	while (waitpid(session_pid, &status, 0) < 0 && errno == EINTR)
		;
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 111);
}

static const char *
mech_name(uint32_t mech)
{
	return mech == MECH_PLAIN ? "PLAIN" : mech == MECH_SASL_LOGIN ?
	    "AUTH-LOGIN" : "LOGIN";
}

/* Sleep until start + failure_delay, so that every failure takes the same
 * time whatever the check cost (unknown user, wrong password, bad hash). */
static void
delay_failure(const struct monitor *m, const struct timespec *start)
{
	struct timespec until = *start;
	double d = m->cfg->failure_delay;

	until.tv_sec += (time_t)d;
	until.tv_nsec += (long)((d - (double)(time_t)d) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) ==
	    EINTR)
		;
}

static enum auth_result
check(struct monitor *m, const struct msg_auth *a, const char **why)
{
	enum auth_result r;
	const char *refusal;

	if (a->authz_mismatch) {
		*why = "authorization identity differs from user";
		return AUTH_AUTHZ;
	}
	r = passwd_check(m->cfg->passwd_file, a->user, a->pass, &m->user, why);
	if (r == AUTH_OK && (refusal = exec_refusal(&m->user)) != NULL) {
		*why = refusal;
		return AUTH_TEMPFAIL;
	}
	return r;
}

static void
serve_auth(struct monitor *m, struct msg_auth *a, ssize_t n)
{
	struct msg_auth_result res = { MSG_AUTH_RESULT, 0, 0 };
	char user[USER_MAX * 4 + 1];
	const char *why = "";
	struct timespec start;

	if (n != (ssize_t)sizeof(*a) || m->authenticated ||
	    m->failures >= m->cfg->max_attempts ||
	    !msg_string_ok(a->tag, sizeof(a->tag)) ||
	    !msg_string_ok(a->user, sizeof(a->user)) ||
	    !msg_string_ok(a->pass, sizeof(a->pass)))
		log_fatal("monitor: malformed AUTH message");
	clock_gettime(CLOCK_MONOTONIC, &start);
	res.result = check(m, a, &why);
	log_escape(user, sizeof(user), a->user, strlen(a->user));
	explicit_bzero(a->pass, sizeof(a->pass));
	if (res.result == AUTH_OK) {
		m->authenticated = 1;
		memcpy(m->tag, a->tag, sizeof(m->tag));
		log_info("login: user=\"%s\" method=%s ip=%s port=%s", user,
		    mech_name(a->mech), m->conn->peer_ip, m->conn->peer_port);
	} else {
		m->failures++;
		res.close = m->failures >= m->cfg->max_attempts;
		log_info("login failed: user=\"%s\" method=%s ip=%s reason=%s "
		    "attempt=%d", user, mech_name(a->mech), m->conn->peer_ip,
		    why, m->failures);
		if (res.result == AUTH_TEMPFAIL)
			log_err("auth: %s (user \"%s\")", why, user);
		/* Every failure waits, a temporary one too: an instant answer
		 * would tell that the user exists (a bad hash, say). */
		delay_failure(m, &start);
	}
	if (msg_send(m->fd, &res, sizeof(res)) < 0)
		monitor_finish();
}

static void
serve_handoff(struct monitor *m, struct msg_handoff *h, ssize_t n)
{
	if (!m->authenticated || n < (ssize_t)MSG_HANDOFF_HDR ||
	    h->len > m->cfg->client_buffer ||
	    (size_t)n != MSG_HANDOFF_HDR + h->len)
		log_fatal("monitor: malformed HANDOFF message");
	/* The session must be gone before anyone else reads the socket. */
	close(m->fd);
	while (waitpid(session_pid, NULL, 0) < 0 && errno == EINTR)
		;
	exec_handoff(m->cfg, m->conn, &m->user, m->tag, h->data, h->len);
}

void
monitor_run(const struct config *cfg, const struct conn *conn, int fd,
    pid_t session)
{
	static union msg_any msg;
	static struct monitor m;
	ssize_t n;

	m.cfg = cfg;
	m.conn = conn;
	m.fd = fd;
	session_pid = session;
	signal(SIGALRM, on_alarm);
	alarm((unsigned)(cfg->timeout * TIMEOUT_TOTAL_FACTOR) +
	    (unsigned)(cfg->max_attempts * (cfg->failure_delay + 1)) +
	    MONITOR_SLACK);
	for (;;) {
		n = msg_recv(fd, &msg, sizeof(msg));
		if (n == 0)
			monitor_finish();
		if (n < (ssize_t)sizeof(uint32_t))
			log_fatal("monitor: bad message from session");
		if (msg.type == MSG_AUTH)
			serve_auth(&m, &msg.auth, n);
		else if (msg.type == MSG_HANDOFF)
			serve_handoff(&m, &msg.handoff, n);
		else
			log_fatal("monitor: unknown message type %u", msg.type);
	}
}
