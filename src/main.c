/*
 * imapgate: a per-connection IMAP gatekeeper.
 *
 * Exit status: 0 the client logged out (or -t found the config valid, or
 * -V, -h); 1 usage or configuration error, or the client left without
 * LOGOUT (closed, timed out, too many errors or failed logins); 111
 * temporary or internal failure.  After a successful login this process
 * becomes the mail server, whose status it then is.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "bounds.h"
#include "listener.h"
#include "log.h"
#include "monitor.h"
#include "msg.h"
#include "sandbox.h"
#include "session.h"
#include "supervise.h"
#include "tls.h"

#define BYE_UNAVAILABLE	"* BYE [UNAVAILABLE] Server misconfigured\r\n"

#ifndef CONFIG_PATH
#define CONFIG_PATH	"/usr/local/etc/imapgate/imapgate.conf"
#endif

static void
usage(FILE *f)
{
	fprintf(f, "usage: imapgate [-c FILE] [-L ADDR:PORT ...] [-t] [-V] [-h]\n"
	    "  -c FILE  configuration file (default %s)\n"
	    "  -L ADDR:PORT  listen and fork per connection (no super-server);\n"
	    "           several: a listener each\n"
	    "  -t       check the configuration and exit\n"
	    "  -V       print the version and exit\n"
	    "  -h       this help\n", CONFIG_PATH);
}

/* -t for one port's view of the file (0: the top level): 0 or -1. */
static int
check_port(struct config *cfg, const char *path, int port)
{
	static char last[CONFIG_ERR_MAX];
	char err[CONFIG_ERR_MAX];

	config_free(cfg);
	if (config_load_port(cfg, path, port, err, sizeof(err)) < 0) {
		fprintf(stderr, "imapgate: %s%s\n", err, port == 0 ? "" :
		    " (in the listen group)");
		return -1;
	}
	/* Certificates and keys are checked by loading them, as a
	 * connection will; a warning, like the missing files below. */
	if (tls_wanted(cfg) && tls_init(cfg, 1, err, sizeof(err)) < 0 &&
	    strcmp(err, last) != 0) {
		fprintf(stderr, "imapgate: warning: %s\n", err);
		/* The same files in every listen group: say it once. */
		memcpy(last, err, sizeof(last));
	}
	return 0;
}

/* -t: the verdict goes to the operator's terminal, not to a log. */
static int
check_config(const char *path)
{
	static struct config cfg, view;
	char err[CONFIG_ERR_MAX];
	int i;

	struct sandbox sb;

	if (check_port(&cfg, path, 0) < 0)
		return 1;
	/* Each listen group's view of the file, in a config of its own. */
	for (i = 0; i < cfg.nlisten; i++)
		if (check_port(&view, path, cfg.listen_port[i]) < 0)
			return 1;
	/*
	 * What a connection would find missing on this machine: warn now
	 * rather than fail then.  Warnings only, so that a file can be
	 * checked before it is deployed where these exist.
	 */
	if (sandbox_prepare(&cfg, &sb, err, sizeof(err)) < 0)
		fprintf(stderr, "imapgate: warning: %s: %s\n", path, err);
	if (cfg.passwd_file != NULL && access(cfg.passwd_file, R_OK) < 0)
		fprintf(stderr, "imapgate: warning: %s: auth.passwd_file %s: "
		    "%s\n", path, cfg.passwd_file, strerror(errno));
	if (cfg.exec_argc > 0 && access(cfg.exec_argv[0], X_OK) < 0)
		fprintf(stderr, "imapgate: warning: %s: backend.exec %s: %s\n",
		    path, cfg.exec_argv[0], strerror(errno));
	printf("imapgate: %s: configuration is valid\n", path);
	return 0;
}

/* The session process, before it reads a client byte: no master
 * password, chrooted, unprivileged.  0, or -1 with err. */
static int
session_prepare(struct config *cfg, const struct sandbox *sb, char *err,
    size_t errsize)
{
	/* The session parses the network: it must not hold the one secret
	 * that logs in as anybody.  The monitor sends it for the backend
	 * login only. */
	if (cfg->master_password != NULL)
		explicit_bzero(cfg->master_password,
		    strlen(cfg->master_password));
	return sandbox_enter(cfg, sb, err, errsize);
}

/* The configuration, loaded without its secrets before any fork (see
 * config_load_public()); each monitor loads them after its session's. */
static struct config *secrets_for;

/*
 * Listener mode: the configuration in use and the one a reload loads,
 * in turn; the path and the listen group's port they are loaded for.
 */
static struct config cfgs[2];
static struct sandbox sbs[2];
static int cur;
static const char *conf_path;
static int conf_port;

/*
 * SIGHUP, in a child of the listener: what -t checks for this port, and
 * what the start would refuse (the sandbox's user, certificates that do
 * not load, a key that does not match its certificate).  In a child
 * because it reads the private keys and the secrets, which the listener
 * must not hold: its spares' sessions inherit its memory.  0, or -1 with
 * the reason in err.
 */
static int
reload_check(char *err, size_t errsize)
{
	static struct config c;
	struct sandbox sb;
	ssize_t n;
	pid_t pid;
	int p[2], st = 0;

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == 0) {
		close(p[0]);
		err[0] = '\0';
		if (config_load_port(&c, conf_path, conf_port, err,
		    errsize) < 0 || sandbox_prepare(&c, &sb, err, errsize) < 0 ||
		    (tls_wanted(&c) && tls_init(&c, 1, err, errsize) < 0)) {
			(void)!write(p[1], err, strnlen(err, errsize - 1));
			_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		snprintf(err, errsize, "fork: %s", strerror(errno));
		return -1;
	}
	do
		n = read(p[0], err, errsize - 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	err[n > 0 ? n : 0] = '\0';
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (err[0] == '\0')
		snprintf(err, errsize, "%s: the check failed (status %d)",
		    conf_path, st);
	return -1;
}

/*
 * SIGHUP in the listener: the configuration, certificates and ticket key
 * again, into the other struct config; the one in use stays untouched
 * until the new one is whole.  Secrets stay placeholders here, as at the
 * start.  0 with *cfgp the new configuration, or -1 (one log line).
 */
static int
reload(const struct config **cfgp)
{
	char err[CONFIG_ERR_MAX], err2[CONFIG_ERR_MAX];
	int next = !cur, snap, old;

	/* One copy of the file for the check, this load and every monitor's
	 * secrets: an edit meanwhile is the next reload's. */
	if ((snap = config_snapshot(conf_path, err, sizeof(err))) < 0) {
		log_err("reload failed, the configuration in use stays: %s",
		    err);
		return -1;
	}
	old = config_snapshot_use(snap);
	if (reload_check(err, sizeof(err)) < 0)
		goto failed;
	config_free(&cfgs[next]);
	if (config_load_public(&cfgs[next], conf_path, conf_port, err,
	    sizeof(err)) < 0 ||
	    sandbox_prepare(&cfgs[next], &sbs[next], err, sizeof(err)) < 0) {
		config_free(&cfgs[next]);
		goto failed;
	}
	if (tls_wanted(&cfgs[next]) &&
	    tls_init(&cfgs[next], 0, err, sizeof(err)) < 0) {
		/* Changed since the check: back to the files in use. */
		if (tls_wanted(&cfgs[cur]) &&
		    tls_init(&cfgs[cur], 0, err2, sizeof(err2)) < 0)
			log_err("reload: the old TLS files fail too: %s", err2);
		config_free(&cfgs[next]);
		goto failed;
	}
	cur = next;
	secrets_for = &cfgs[cur];
	*cfgp = &cfgs[cur];
	if (old >= 0)
		close(old);
	log_info("reloaded %s: new connections use it", conf_path);
	return 0;
failed:
	config_snapshot_use(old);
	close(snap);
	log_err("reload failed, the configuration in use stays: %s", err);
	return -1;
}

/*
 * -L given n times: the listening sockets, in a row from the one
 * returned (as systemd passes several), or -1 with err.  Moved above
 * every descriptor open now; what they land on was inherited, and would
 * be closed anyway (conn_keep_only()).
 */
static int
listen_all(const char *const *spec, int n, char *err, size_t errsize)
{
	int fd[LISTEN_SOCKETS_MAX], i, base = 0;

	for (i = 0; i < n; i++) {
		if ((fd[i] = listener_open(spec[i], err, errsize)) < 0) {
			while (i-- > 0)
				close(fd[i]);
			return -1;
		}
		if (fd[i] >= base)
			base = fd[i] + 1;
	}
	if (n == 1)
		return fd[0];
	for (i = 0; i < n; i++) {
		if (dup3(fd[i], base + i, O_CLOEXEC) < 0) {
			snprintf(err, errsize, "-L %s: dup3: %s", spec[i],
			    strerror(errno));
			return -1;
		}
		close(fd[i]);
	}
	return base;
}

/* The monitor-session socketpair and the fork: the session gets sp[1],
 * the monitor sp[0] (each end closed where it is not used). */
static pid_t
fork_session(int sp[2])
{
	char err[CONFIG_ERR_MAX];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		log_fatal("socketpair: %s", strerror(errno));
	if ((pid = fork()) < 0)
		log_fatal("fork: %s", strerror(errno));
	close(sp[pid == 0 ? 0 : 1]);
	if (pid > 0 && config_load_secrets(secrets_for, err,
	    sizeof(err)) < 0) {
		kill(pid, SIGKILL);
		log_fatal("%s", err);
	}
	/* Listener mode: the file's text, secrets and all, is no business
	 * of a session, nor of a monitor that has its secrets. */
	config_snapshot_close();
	return pid;
}

/* One connection: fork the session, become its monitor.  No return. */
static void
serve(struct config *cfg, const struct conn *conn, const struct sandbox *sb)
{
	char err[CONFIG_ERR_MAX];
	int sp[2];
	pid_t pid;

	if ((pid = fork_session(sp)) == 0) {
		if (session_prepare(cfg, sb, err, sizeof(err)) < 0) {
			log_err("session: %s", err);
			(void)!write(conn->out, BYE_UNAVAILABLE,
			    sizeof(BYE_UNAVAILABLE) - 1);
			_exit(111);
		}
		session_run(cfg, conn, sp[1]);
	}
	/* Only now, in the monitor: the session never holds the keys. */
	if (tls_load_keys(cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		kill(pid, SIGKILL);
		(void)!write(conn->out, BYE_UNAVAILABLE,
		    sizeof(BYE_UNAVAILABLE) - 1);
		_exit(111);
	}
	monitor_run(cfg, conn, sb, sp[0], pid);
}

/*
 * Listener mode, in a spare: the session is forked and sandboxed before
 * there is a client; the monitor accepts one and passes it on.  No
 * return.
 */
static void
serve_spare(struct config *cfg, const struct sandbox *sb, int lfd, int taken)
{
	static struct msg_client mc;
	char err[CONFIG_ERR_MAX];
	struct conn conn;
	const char *bye;
	sigset_t cont, old;
	int sp[2], fd;
	pid_t pid;

	/* The listener's stop reaches the session as SIGCONT from its
	 * monitor: blocked from its first instruction until it waits for its
	 * client (session.c), so none is lost or taken for nothing. */
	sigemptyset(&cont);
	sigaddset(&cont, SIGCONT);
	sigprocmask(SIG_BLOCK, &cont, &old);
	if ((pid = fork_session(sp)) == 0) {
		close(lfd);
		close(taken);
		/* The limits' table is the monitors': not this process's. */
		listener_forget();
		if (session_prepare(cfg, sb, err, sizeof(err)) < 0) {
			log_err("session: %s", err);
			_exit(111);
		}
		if (msg_recv_fd(sp[1], &mc, sizeof(mc), &fd) !=
		    (ssize_t)sizeof(mc) || mc.type != MSG_CLIENT || fd < 0)
			_exit(0);
		mc.conn.in = mc.conn.out = fd;
		session_run(cfg, &mc.conn, sp[1]);
	}
	/* Not the monitor's, nor a mail server's it execs. */
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (tls_load_keys(cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		/* Not a fork a second for ever from the listener. */
		sleep(1);
		_exit(111);
	}
	/* A spare whose session died takes no client: the listener forks
	 * a whole one instead.  One retired (reload, stop) just leaves; its
	 * session ends when this socket closes. */
	if ((fd = listener_accept(lfd, sp[0])) < 0) {
		if (fd == -2)
			_exit(0);
		listener_taken(taken);
		_exit(111);
	}
	conn_accepted(&conn, fd);
	if ((bye = listener_admit(cfg, &conn)) != NULL) {
		/* At once, before this spare is replaced: the others wait. */
		(void)!write(conn.out, bye, strlen(bye));
		listener_taken(taken);
		_exit(1);
	}
	mc.type = MSG_CLIENT;
	mc.conn = conn;
	if (msg_send_fd(sp[0], &mc, sizeof(mc), conn.in) < 0) {
		(void)!write(conn.out, BYE_UNAVAILABLE,
		    sizeof(BYE_UNAVAILABLE) - 1);
		log_fatal("session gone before its client came");
	}
	/* Only now: the listener's fork of a new spare would compete with
	 * this client's greeting for the CPU. */
	listener_taken(taken);
	monitor_run(cfg, &conn, sb, sp[0], pid);
}

int
main(int argc, char *argv[])
{
	static struct conn conn;
	struct config *cfg = &cfgs[0];
	struct sandbox *sb = &sbs[0];
	const struct config *serving;
	char err[CONFIG_ERR_MAX];
	const char *path = CONFIG_PATH, *listen_on[LISTEN_SOCKETS_MAX];
	int opt, test = 0, lfd = -1, taken = -1, snap, nlisten = 1, nl = 0;

	while ((opt = getopt(argc, argv, "c:L:tVh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'L':
			if (nl == LISTEN_SOCKETS_MAX) {
				fprintf(stderr, "imapgate: -L: at most %d\n",
				    LISTEN_SOCKETS_MAX);
				return 1;
			}
			listen_on[nl++] = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("imapgate %s\n", IMAPGATE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	if (test)
		return check_config(path);

	if (nl > 0) {
		lfd = listen_all(listen_on, nl, err, sizeof(err));
		nlisten = nl;
	} else
		switch (conn_find(&conn, &nlisten, err, sizeof(err))) {
		case 0:
			lfd = conn.in;
			break;
		case -1:
			lfd = -2;
			break;
		}
	if (lfd == -2 || (nl > 0 && lfd < 0)) {
		log_init(lfd == -1 ? conn.in : -1);
		log_err("%s", err);
		return 111;
	}
	/* Before anything is opened (the syslog socket, the config): what
	 * the process inherited besides its connection is closed. */
	if (conn_keep_only(&conn, &lfd, nlisten, err, sizeof(err)) < 0) {
		log_init(lfd == -1 ? conn.in : -1);
		log_err("%s", err);
		return 111;
	}
	log_init(lfd == -1 ? conn.in : -1);
	/* Several listening sockets: a listener each, forked before the
	 * configuration is read (this process never reads it); the rest of
	 * main() is each listener's, for its socket alone. */
	if (nlisten > 1)
		lfd = supervise(lfd, nlisten);
	/* The listen group for this port: the connection's, or the
	 * listening socket's, which is every connection's. */
	conf_path = path;
	conf_port = lfd == -1 ? atoi(conn.local_port) : conn_local_port(lfd);
	/* A listener keeps the text it loaded, for its monitors' secrets. */
	if (lfd >= 0) {
		if ((snap = config_snapshot(path, err, sizeof(err))) < 0) {
			log_err("%s", err);
			return 1;
		}
		config_snapshot_use(snap);
	}
	if (config_load_public(cfg, path, conf_port, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return 1;
	}
	secrets_for = cfg;
	if (sandbox_prepare(cfg, sb, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (!sb->root)
		log_warn("not started as root: the session runs without chroot "
		    "or a uid change");
	signal(SIGPIPE, SIG_IGN);
	/* Before the fork: the session cannot read files once chrooted.
	 * A listener loads it once for every connection. */
	if (tls_wanted(cfg) && tls_init(cfg, 0, err, sizeof(err)) < 0) {
		log_err("%s", err);
		if (lfd < 0)
			(void)!write(conn.out, BYE_UNAVAILABLE,
			    sizeof(BYE_UNAVAILABLE) - 1);
		return 111;
	}
	if (lfd >= 0) {
		log_info("listening on port %d (config %s)",
		    conn_local_port(lfd), path);
		serving = cfg;
		listener_run(&serving, lfd, reload, &taken);
		/* A spare: the configuration the listener had when it forked
		 * it, which stays this connection's. */
		serve_spare(&cfgs[cur], &sbs[cur], lfd, taken);
	}
	serve(cfg, &conn, sb);
}
