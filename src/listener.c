/*
 * The listener keeps LISTEN_SPARES connection processes ready: each is a
 * monitor with its session already forked and sandboxed, waiting in
 * accept().  The one that gets a client tells the listener, which forks
 * a replacement, so no fork() lies between a client's connect and its
 * greeting.
 *
 * The limits (max_connections, max_preauth, max_preauth_per_source): the
 * listener maps one table, shared with its children, with a slot per
 * connection process.  A spare that has accepted a client writes the
 * client's source into its slot, marks it pre-auth, then counts the
 * slots; over a limit it says BYE and leaves.  Its monitor marks it
 * logged in on a login, and the listener frees it when it reaps the
 * process.  Publish, then count (sequentially consistent): two spares
 * accepting at once from one source each see the other, so a limit can
 * refuse one too many, never admit one.  The session never sees the table
 * (it is unmapped before the sandbox), nor does a mail server (exec).
 *
 * Reload (SIGHUP) and stop (SIGTERM, SIGINT) go through two pipes whose
 * write ends only the listener holds, so that a child learns of them by
 * a hang-up it polls for, with no signal to race against an accept():
 *   - the generation pipe, which the spares waiting in accept() watch: a
 *     reload closes it, they leave without a client, and new spares are
 *     forked from the new configuration;
 *   - the stop pipe, which every monitor has until its client logs in:
 *     the listener closes it (at SIGTERM, or when it dies), the spares
 *     leave, and a monitor whose client has not logged in tells its
 *     session (SIGCONT), which says BYE.  A logged-in connection never
 *     looks at it: it runs to its end.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cidr.h"
#include "clock.h"
#include "config.h"
#include "conn.h"
#include "listener.h"
#include "log.h"

#define BYE_SOURCE \
	"* BYE [UNAVAILABLE] Too many connections from your address\r\n"
#define BYE_BUSY	"* BYE [UNAVAILABLE] Too many connections\r\n"

enum slot_state {
	SLOT_FREE,		/* no process */
	SLOT_SPARE,		/* waiting for a client, or refused one */
	SLOT_PREAUTH,		/* a client that has not logged in */
	SLOT_LOGGED_IN
};

/* A source key nothing real has: a PROXY header's address is still to
 * come (it counts in all, not per source, until it does). */
#define KEY_PENDING	UINT64_MAX

struct slot {
	_Atomic uint32_t state;
	pid_t	pid;			/* the listener's alone */
	_Atomic uint64_t key[2];	/* cidr_source_key(), as two words */
};

/*
 * The shared mapping: the slots, and how many of them from the first
 * can be in use.  The listener takes the lowest free slot and raises
 * `used` before it forks the slot's process, so a count scans only
 * [0, used): a few slots, one page, not all max_connections of them
 * (issue 14: admit() was 2 % of a -L login, and the pages it faulted in).
 * A count that read `used` before a later slot was added missed a
 * process forked after its own publish, and that process's count, made
 * after its publish, sees this one: still no pair where neither sees
 * the other.
 */
struct shared {
	_Atomic uint32_t used;
	uint32_t pad;
	struct slot slot[];
};

static struct shared *shm;	/* MAP_SHARED */
static struct slot *table;	/* shm->slot, nslots */
static size_t nslots;
static struct slot *mine;	/* in a connection process */
static int max_connections;	/* the configuration's, or less */
static struct timespec born;	/* of this spare */
/* [0] the children's (read), [1] the listener's alone (write). */
static int gen_pipe[2] = { -1, -1 }, stop_pipe[2] = { -1, -1 };
static volatile sig_atomic_t got_hup, got_term;

static size_t
shared_size(void)
{
	return sizeof(struct shared) + nslots * sizeof(struct slot);
}

int
listener_open(const char *spec, char *err, size_t errsize)
{
	struct backend_addr a;
	struct addrinfo hints, *res;
	int fd, one = 1, r;

	if (backend_addr_parse(spec, &a) < 0 || a.is_unix) {
		snprintf(err, errsize, "-L %s: not address:port", spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((r = getaddrinfo(a.host, a.port, &hints, &res)) != 0) {
		snprintf(err, errsize, "-L %s: %s", spec, gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		snprintf(err, errsize, "-L %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Forget a spare that took a client or died; 1 if pid was one. */
static int
spare_gone(pid_t *spare, int n, pid_t pid)
{
	int i;

	for (i = 0; i < n; i++)
		if (spare[i] == pid) {
			spare[i] = 0;
			return 1;
		}
	return 0;
}

/* A connection process was reaped: its slot is free. */
static void
slot_free(pid_t pid)
{
	size_t i, used = atomic_load(&shm->used);

	for (i = 0; i < used; i++)
		if (table[i].pid == pid) {
			table[i].pid = 0;
			atomic_store(&table[i].state, SLOT_FREE);
			break;
		}
	/* Free slots count for nothing: the scans may stop before them.
	 * (A slot has a pid from its fork to its reaping, both here.) */
	while (used > 0 && table[used - 1].pid == 0)
		used--;
	atomic_store(&shm->used, (uint32_t)used);
}

static struct slot *
slot_take(void)
{
	size_t i;

	for (i = 0; i < nslots; i++)
		if (table[i].pid == 0 &&
		    atomic_load(&table[i].state) == SLOT_FREE) {
			atomic_store(&table[i].state, SLOT_SPARE);
			/* Before the fork: every later count scans it. */
			if (i >= atomic_load(&shm->used))
				atomic_store(&shm->used, (uint32_t)i + 1);
			return &table[i];
		}
	return NULL;
}

/*
 * max_connections as this machine allows: each connection is two
 * processes, and a finite RLIMIT_NPROC (which counts per user; sessions
 * share the privsep user) caps them.
 */
static int
connections_possible(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t most;

	if (getrlimit(RLIMIT_NPROC, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return cfg->max_connections;
	most = rl.rlim_cur / 2 > LISTEN_SPARES + 1 ?
	    rl.rlim_cur / 2 - LISTEN_SPARES - 1 : 1;
	if ((rlim_t)cfg->max_connections <= most)
		return cfg->max_connections;
	log_warn("max_connections %d lowered to %d by RLIMIT_NPROC %llu",
	    cfg->max_connections, (int)most,
	    (unsigned long long)rl.rlim_cur);
	return (int)most;
}

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
}

/* Forget the spares of the current generation: they leave by themselves
 * (the pipe they watch closes) and are reaped as any child. */
static int
retire_spares(pid_t *spare)
{
	int fresh[2], i, old = gen_pipe[1];

	if (pipe2(fresh, O_CLOEXEC) < 0) {
		log_warn("reload: pipe: %s; the waiting spares keep the old "
		    "configuration", strerror(errno));
		return -1;
	}
	/* Hung up: the waiting spares leave (listener_accept). */
	close(old);
	close(gen_pipe[0]);
	gen_pipe[0] = fresh[0];
	gen_pipe[1] = fresh[1];
	for (i = 0; i < LISTEN_SPARES; i++)
		spare[i] = 0;
	return 0;
}

/* max_connections for cfg, within the table mapped at the start. */
static void
set_max_connections(const struct config *cfg)
{
	max_connections = connections_possible(cfg);
	if ((size_t)max_connections + LISTEN_SPARES > nslots) {
		log_warn("max_connections %d: the listener's table holds %d "
		    "until a restart", max_connections,
		    (int)(nslots - LISTEN_SPARES));
		max_connections = (int)(nslots - LISTEN_SPARES);
	}
}

/*
 * SIGTERM: the listening socket closes now -- here, and in the spares,
 * which leave when the stop pipe closes (waited for, so that a connect
 * after this process is gone is refused, not queued).  Connection
 * processes are left alone: pre-auth sessions see the same pipe close
 * and say BYE, logged-in ones run to their end.  No return.
 */
static void
stop(int lfd, pid_t *spare, int spares)
{
	struct timespec until, tick = { 0, 10 * 1000000L };
	pid_t pid;

	close(lfd);
	close(stop_pipe[1]);
	close(gen_pipe[1]);
	deadline_after(&until, NULL, LISTEN_STOP_MS / 1000.0);
	while (spares > 0 && ms_left(&until) > 0) {
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
			spares -= spare_gone(spare, LISTEN_SPARES, pid);
		if (spares > 0)
			nanosleep(&tick, NULL);
	}
	log_info("stopped: no new connections; those running continue");
	_exit(0);
}

int
listener_run(const struct config **cfgp, int lfd,
    int (*reload)(const struct config **), int *taken)
{
	pid_t spare[LISTEN_SPARES] = { 0 }, pid;
	struct timespec reap = { 0, LISTEN_REAP_MS * 1000000L };
	struct sigaction sa;
	sigset_t block, old;
	struct pollfd pfd;
	struct slot *s;
	int children = 0, spares = 0, pp[2], i;

	max_connections = connections_possible(*cfgp);
	/* Spares are not connections: they wait on top of the limit. */
	nslots = (size_t)max_connections + LISTEN_SPARES;
	shm = mmap(NULL, shared_size(), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		log_fatal("mmap: %s", strerror(errno));
	table = shm->slot;
	if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    pipe2(gen_pipe, O_CLOEXEC) < 0 || pipe2(stop_pipe, O_CLOEXEC) < 0)
		log_fatal("pipe: %s", strerror(errno));
	/* Blocked but while this process waits (ppoll): a signal is seen
	 * at once, and never in the middle of a fork. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	/* Let through while waiting even if they came blocked: a listener
	 * under the supervisor (supervise.c) is forked with them blocked,
	 * so that one passed on early waits for these handlers. */
	sigdelset(&old, SIGHUP);
	sigdelset(&old, SIGTERM);
	sigdelset(&old, SIGINT);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	pfd.fd = pp[0];
	pfd.events = POLLIN;
	for (;;) {
		if (got_term)
			stop(lfd, spare, spares);
		if (got_hup) {
			got_hup = 0;
			if (reload(cfgp) == 0 && retire_spares(spare) == 0) {
				spares = 0;
				set_max_connections(*cfgp);
			}
		}
		while (children > 0 && (pid = waitpid(-1, NULL, WNOHANG)) > 0) {
			children--;
			slot_free(pid);
			spares -= spare_gone(spare, LISTEN_SPARES, pid);
		}
		/* A spare that took a client says so with its pid. */
		while (read(pp[0], &pid, sizeof(pid)) == (ssize_t)sizeof(pid))
			spares -= spare_gone(spare, LISTEN_SPARES, pid);
		while (spares < LISTEN_SPARES && (s = slot_take()) != NULL) {
			if ((pid = fork()) == 0) {
				close(pp[0]);
				close(gen_pipe[1]);
				close(stop_pipe[1]);
				gen_pipe[1] = stop_pipe[1] = -1;
				signal(SIGHUP, SIG_DFL);
				signal(SIGTERM, SIG_DFL);
				signal(SIGINT, SIG_DFL);
				sigprocmask(SIG_SETMASK, &old, NULL);
				*taken = pp[1];
				mine = s;
				clock_gettime(CLOCK_MONOTONIC, &born);
				return 0;
			}
			if (pid < 0) {
				atomic_store(&s->state, SLOT_FREE);
				log_warn("fork: %s", strerror(errno));
				break;
			}
			s->pid = pid;
			for (i = 0; spare[i] != 0; i++)
				;
			spare[i] = pid;
			spares++;
			children++;
		}
		/* Wake now and then to reap, and at a signal. */
		(void)ppoll(&pfd, 1, &reap, &old);
	}
}

int
listener_accept(int lfd, int session)
{
	struct pollfd p[4];
	long left;
	int fd, i;

	/* Every spare polls, one accept()s: the others must not block
	 * there, deaf to their session's end. */
	(void)fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
	p[0].fd = session;
	p[1].fd = lfd;
	/* A reload or a stop: the listener closed its end. */
	p[2].fd = gen_pipe[0];
	p[3].fd = stop_pipe[0];
	for (i = 0; i < 4; i++)
		p[i].events = POLLIN;
	for (;;) {
		for (i = 0; i < 4; i++)
			p[i].revents = 0;
		if (poll(p, 4, -1) < 0 && errno != EINTR)
			(void)poll(NULL, 0, LISTEN_REAP_MS);
		/* Before a waiting client: the new spares take it. */
		if (p[2].revents != 0 || p[3].revents != 0)
			return -2;
		/* The session says nothing before it has a client: this is
		 * its end (killed, out of memory).  Leave, so that the
		 * listener forks a whole spare, but not in a loop. */
		if (p[0].revents != 0) {
			log_warn("spare: its session is gone; replacing it");
			if ((left = LISTEN_RESPAWN_MS - (long)(1000 *
			    seconds_since(&born))) > 0)
				(void)poll(NULL, 0, (int)left);
			return -1;
		}
		if (p[1].revents == 0)
			continue;
		/* No SOCK_CLOEXEC: in exec mode the mail server inherits
		 * it.  (Not non-blocking either: Linux does not pass on
		 * the listening socket's flag.) */
		if ((fd = accept4(lfd, NULL, NULL, 0)) >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			(void)poll(NULL, 0, LISTEN_REAP_MS);
	}
	close(lfd);
	/* A connection now: a reload is none of its business. */
	close(gen_pipe[0]);
	gen_pipe[0] = -1;
	return fd;
}

/* Count the slots: pre-auth ones from key, pre-auth, connections. */
static void
count(const uint64_t key[2], int *source, int *preauth, int *conns)
{
	uint32_t st;
	size_t i, used = atomic_load(&shm->used);

	*source = *preauth = *conns = 0;
	for (i = 0; i < used && i < nslots; i++) {
		st = atomic_load(&table[i].state);
		if (st == SLOT_PREAUTH) {
			(*preauth)++;
			if (key[0] != KEY_PENDING &&
			    atomic_load(&table[i].key[0]) == key[0] &&
			    atomic_load(&table[i].key[1]) == key[1])
				(*source)++;
		}
		if (st == SLOT_PREAUTH || st == SLOT_LOGGED_IN)
			(*conns)++;
	}
}

/* Publish this process's client as pre-auth from key, then count: the
 * BYE line when over a limit (and the slot no longer counts), or NULL. */
static const char *
admit(const struct config *cfg, const uint64_t key[2], const char *ip)
{
	int source, preauth, conns;

	atomic_store(&mine->state, SLOT_SPARE);
	atomic_store(&mine->key[0], key[0]);
	atomic_store(&mine->key[1], key[1]);
	atomic_store(&mine->state, SLOT_PREAUTH);
	count(key, &source, &preauth, &conns);
	if (source > cfg->max_preauth_per_source) {
		atomic_store(&mine->state, SLOT_SPARE);
		log_info("refused: ip=%s reason=max_preauth_per_source (%d)",
		    ip, cfg->max_preauth_per_source);
		return BYE_SOURCE;
	}
	if (preauth > cfg->max_preauth || conns > max_connections) {
		atomic_store(&mine->state, SLOT_SPARE);
		log_info("refused: ip=%s reason=%s (%d)", ip,
		    conns > max_connections ? "max_connections" :
		    "max_preauth", conns > max_connections ? max_connections :
		    cfg->max_preauth);
		return BYE_BUSY;
	}
	return NULL;
}

static void
key_of(const char *ip, uint64_t key[2])
{
	unsigned char k[16];

	/* Not an address (a unix socket's peer): one source, "none". */
	if (cidr_source_key(ip, k) < 0)
		memset(k, 0, sizeof(k));
	memcpy(key, k, sizeof(k));
}

const char *
listener_admit(const struct config *cfg, const struct conn *c)
{
	uint64_t key[2];

	if (mine == NULL)
		return NULL;
	/* Behind a trusted load balancer every client has its address:
	 * the PROXY header's, which the session has still to read. */
	if (cfg->proxy_protocol && cidr_match(cfg->real_ip_from,
	    cfg->nreal_ip_from, c->peer_ip))
		key[0] = key[1] = KEY_PENDING;
	else
		key_of(c->peer_ip, key);
	return admit(cfg, key, c->peer_ip);
}

const char *
listener_readdress(const struct config *cfg, const char *ip)
{
	uint64_t key[2];

	if (mine == NULL)
		return NULL;
	key_of(ip, key);
	return admit(cfg, key, ip);
}

void
listener_logged_in(void)
{
	if (mine == NULL)
		return;
	atomic_store(&mine->state, SLOT_LOGGED_IN);
	/* Nothing else to say: the listener frees the slot at the end, and
	 * its stop is no concern of a logged-in connection. */
	listener_forget();
}

int
listener_stop_fd(void)
{
	return stop_pipe[0];
}

void
listener_forget(void)
{
	/* Reloads and the stop are the listener's and the monitor's: a
	 * session holds nothing but its client and its monitor. */
	if (gen_pipe[0] >= 0)
		close(gen_pipe[0]);
	if (stop_pipe[0] >= 0)
		close(stop_pipe[0]);
	gen_pipe[0] = stop_pipe[0] = -1;
	if (shm != NULL)
		(void)munmap(shm, shared_size());
	shm = NULL;
	table = NULL;
	mine = NULL;
}

void
listener_taken(int taken)
{
	pid_t me = getpid();

	(void)!write(taken, &me, sizeof(me));
	close(taken);
}
