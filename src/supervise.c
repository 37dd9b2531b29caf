/*
 * The supervisor of several listeners.  Each listener is the single-socket
 * one (listener.c), forked before anything is read: it loads the listen
 * group of its own port, its own configuration snapshot and TLS files,
 * and has its own limits' table, so the limits (max_connections,
 * max_preauth, max_preauth_per_source) count per listening socket.  This
 * process never reads the configuration: it holds no secret, no key and
 * no text of the file, and nothing a reload could break.
 *
 * Signals: SIGHUP, SIGTERM and SIGINT are passed on to every listener
 * (`systemctl reload` and `stop` reach this one, the unit's main
 * process; KillMode=process reaches only it).  A listener that ends
 * without a stop having been asked for is a failure: the others are
 * stopped, and this process exits with the worst status, so that
 * Restart=on-failure starts the whole unit again.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bounds.h"
#include "conn.h"
#include "log.h"
#include "supervise.h"

static volatile sig_atomic_t got_sig[NSIG];

static void
on_signal(int sig)
{
	got_sig[sig] = 1;
}

/* A status as an exit code: a signal's death counts as 128 + signal. */
static int
code_of(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 111;
}

/* In the child for socket fd: the other listening sockets closed (the
 * session holds only its client, the listener only its socket), the
 * signals still blocked until listener_run() waits for them. */
static int
become_listener(int first, int n, int fd, pid_t parent)
{
	sigset_t chld;
	int i;

	for (i = first; i < first + n; i++)
		if (i != fd)
			close(i);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	/* SIGHUP, SIGTERM and SIGINT stay blocked: one the supervisor
	 * passes on before the listener waits is seen then (listener.c
	 * unblocks them in its wait), not taken for the default, death. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &chld, NULL);
	/* The supervisor killed (SIGKILL at a stop's timeout): a stop for
	 * this listener too, not a socket served with nobody to reload it. */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		raise(SIGTERM);
	return fd;
}

int
supervise(int first, int n)
{
	static const int fwd[] = { SIGHUP, SIGTERM, SIGINT };
	pid_t pid[LISTEN_SOCKETS_MAX] = { 0 }, me = getpid(), p;
	int port[LISTEN_SOCKETS_MAX], live = 0, worst = 0, stopping = 0;
	int i, j, st;
	struct sigaction sa;
	sigset_t block, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&block);
	for (j = 0; j < 3; j++)
		sigaddset(&block, fwd[j]);
	sigaddset(&block, SIGCHLD);
	/* Blocked from before the first fork: a signal is seen in
	 * sigsuspend() only, with every listener's pid known. */
	sigprocmask(SIG_BLOCK, &block, &old);
	for (j = 0; j < 3; j++)
		sigaction(fwd[j], &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	for (i = 0; i < n; i++) {
		port[i] = conn_local_port(first + i);
		if ((pid[i] = fork()) == 0)
			return become_listener(first, n, first + i, me);
		if (pid[i] < 0) {
			log_err("fork: %s", strerror(errno));
			pid[i] = 0;
			worst = 111;
			stopping = 1;
			break;
		}
		live++;
	}
	/* The sockets are the listeners' now: a stopped one closes. */
	for (i = 0; i < n; i++)
		close(first + i);
	log_info("supervising %d listeners (one per socket)", live);
	if (stopping)
		for (i = 0; i < n; i++)
			if (pid[i] > 0)
				kill(pid[i], SIGTERM);
	while (live > 0) {
		for (j = 0; j < 3; j++) {
			if (!got_sig[fwd[j]])
				continue;
			got_sig[fwd[j]] = 0;
			if (fwd[j] != SIGHUP)
				stopping = 1;
			for (i = 0; i < n; i++)
				if (pid[i] > 0)
					kill(pid[i], fwd[j]);
		}
		got_sig[SIGCHLD] = 0;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			for (i = 0; i < n && pid[i] != p; i++)
				;
			if (i == n)
				continue;
			pid[i] = 0;
			live--;
			if (code_of(st) > worst)
				worst = code_of(st);
			if (stopping)
				continue;
			log_err("the listener on port %d ended (status %d) "
			    "with no stop asked for: stopping the others",
			    port[i], code_of(st));
			/* At least a failure, for Restart=on-failure. */
			if (worst == 0)
				worst = 111;
			stopping = 1;
			for (i = 0; i < n; i++)
				if (pid[i] > 0)
					kill(pid[i], SIGTERM);
		}
		if (live > 0)
			sigsuspend(&old);
	}
	log_info("supervisor: every listener has ended (status %d)", worst);
	exit(worst);
}
