/*
 * Finding the connection.  libsystemd is loaded only when LISTEN_FDS says
 * systemd passed the socket: linking it costs every inetd-started process
 * its start-up time (DESIGN.md section 4).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "conn.h"

#define LIBSYSTEMD	"libsystemd.so.0"

/* The first socket systemd passed, through libsystemd's own
 * sd_listen_fds(), and in *n how many there are (in a row from it). */
static int
systemd_fd(int *n, char *err, size_t errsize)
{
	int (*listen_fds)(int);
	void *lib;

	if ((lib = dlopen(LIBSYSTEMD, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errsize, "LISTEN_FDS is set but %s: %s",
		    LIBSYSTEMD, dlerror());
		return -1;
	}
	*(void **)&listen_fds = dlsym(lib, "sd_listen_fds");
	if (listen_fds == NULL) {
		snprintf(err, errsize, "%s has no sd_listen_fds", LIBSYSTEMD);
		return -1;
	}
	/* 1: unset LISTEN_* so the mail server we exec does not see them */
	*n = listen_fds(1);
	/* Accept=no with several ListenStream= passes several: each gets a
	 * listener of its own (supervise.c).  Accept=yes passes one. */
	if (*n < 1 || *n > LISTEN_SOCKETS_MAX) {
		snprintf(err, errsize, "systemd passed %d sockets, want 1 to "
		    "%d", *n, LISTEN_SOCKETS_MAX);
		return -1;
	}
	return SD_LISTEN_FDS_START;
}

/* 1 a connected socket, 0 not a socket, -1 a listening socket. */
static int
is_connection(int fd)
{
	int v;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0)
		return 0;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v)
		return -1;
	return 1;
}

static void
name_of(const struct sockaddr_storage *ss, socklen_t len, char *ip,
    size_t ipsize, char *port, size_t portsize)
{
	if (ss->ss_family == AF_UNIX ||
	    getnameinfo((const struct sockaddr *)ss, len, ip, (socklen_t)ipsize,
	    port, (socklen_t)portsize, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(ip, ipsize, "%s", ss->ss_family == AF_UNIX ?
		    "unix" : "unknown");
		snprintf(port, portsize, "0");
	}
}

/* A ucspi variable, if it is a plain address or port. */
static int
ucspi(const char *name, char *out, size_t outsize)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0' || strlen(v) >= outsize ||
	    strspn(v, "0123456789abcdefABCDEF.:") != strlen(v))
		return 0;
	memcpy(out, v, strlen(v) + 1);
	return 1;
}

static void
addresses(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len;

	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(c->in, (struct sockaddr *)&ss, &len) == 0)
		name_of(&ss, len, c->peer_ip, sizeof(c->peer_ip),
		    c->peer_port, sizeof(c->peer_port));
	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(c->in, (struct sockaddr *)&ss, &len) == 0)
		name_of(&ss, len, c->local_ip, sizeof(c->local_ip),
		    c->local_port, sizeof(c->local_port));
	/* tcpserver: its variables are the super-server's word. */
	if (getenv("PROTO") != NULL && strcmp(getenv("PROTO"), "TCP") == 0) {
		ucspi("TCPREMOTEIP", c->peer_ip, sizeof(c->peer_ip));
		ucspi("TCPREMOTEPORT", c->peer_port, sizeof(c->peer_port));
		ucspi("TCPLOCALIP", c->local_ip, sizeof(c->local_ip));
		ucspi("TCPLOCALPORT", c->local_port, sizeof(c->local_port));
	}
}

static void
conn_reset(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->peer_ip, sizeof(c->peer_ip), "unknown");
	snprintf(c->local_ip, sizeof(c->local_ip), "unknown");
	snprintf(c->peer_port, sizeof(c->peer_port), "0");
	snprintf(c->local_port, sizeof(c->local_port), "0");
}

int
conn_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

void
conn_accepted(struct conn *c, int fd)
{
	int one = 1;

	conn_reset(c);
	c->in = c->out = fd;
	/* Replies are whole lines written at once: do not hold them back. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	addresses(c);
}

int
conn_find(struct conn *c, int *nlisten, char *err, size_t errsize)
{
	int one = 1, fd;

	conn_reset(c);
	*nlisten = 1;
	if (getenv("LISTEN_FDS") != NULL) {
		if ((fd = systemd_fd(nlisten, err, errsize)) < 0)
			return -1;
		c->in = c->out = fd;
	} else {
		c->in = 0;
		c->out = 1;
	}
	/* Several: all listening ones, each served by a listener. */
	for (fd = c->in + 1; fd < c->in + *nlisten; fd++)
		if (is_connection(fd) != -1) {
			snprintf(err, errsize, "systemd passed %d sockets and "
			    "fd %d is not a listening one: several only with "
			    "Accept=no", *nlisten, fd);
			return -1;
		}
	switch (is_connection(c->in)) {
	case 0:
		snprintf(err, errsize, "fd %d is not a socket: imapgate is "
		    "started by a super-server (systemd, xinetd, inetd, "
		    "tcpserver), or with -L", c->in);
		return -1;
	case -1:
		/* systemd Accept=no, inetd "wait": we accept ourselves. */
		return 0;
	}
	if (*nlisten > 1) {
		snprintf(err, errsize, "systemd passed %d sockets, the first "
		    "a connection: several only with Accept=no", *nlisten);
		return -1;
	}
	/* Replies are whole lines written at once: do not hold them back. */
	(void)setsockopt(c->out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	addresses(c);
	return 1;
}

/* Is fd open and a listening socket? */
static int
is_listening(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v;
}

/* Close fds [from, to], both ends included, if from <= to. */
static void
close_between(int from, int to)
{
	if (from <= to)
		(void)close_range((unsigned)from, (unsigned)to, 0);
}

/*
 * A session taken over must find nothing but its own client: under inetd
 * "wait" or systemd Accept=no the listening socket arrives on fd 0 and 1
 * (and a super-server may leak anything else), and a session that could
 * accept() on it would read other clients' logins (issue 10).  So before
 * the first fork: the listening socket (which the monitor needs until it
 * has accepted) moves above fd 2 and closes on exec; fd 0-2, which must
 * stay open for stdio, become /dev/null where they were a listening
 * socket; everything else above fd 2 is closed, whatever its number.
 */
int
conn_keep_only(const struct conn *c, int *lfd, int nlfd, char *err,
    size_t errsize)
{
	int keep[2] = { -1, -1 }, n = 0, fd, null = -1, i, j, t;

	if (*lfd >= 0 && *lfd <= 2) {
		if ((fd = fcntl(*lfd, F_DUPFD_CLOEXEC, 3)) < 0) {
			snprintf(err, errsize, "dup of the listening socket: "
			    "%s", strerror(errno));
			return -1;
		}
		*lfd = fd;
	}
	for (fd = 0; fd <= 2; fd++) {
		if ((fd >= *lfd && fd < *lfd + nlfd) || !is_listening(fd))
			continue;
		if (null < 0 && (null = open("/dev/null", O_RDWR |
		    O_CLOEXEC)) < 0) {
			snprintf(err, errsize, "/dev/null: %s",
			    strerror(errno));
			return -1;
		}
		if (null != fd && dup2(null, fd) < 0) {
			snprintf(err, errsize, "dup2: %s", strerror(errno));
			return -1;
		}
	}
	if (null > 2)
		close(null);
	if (*lfd >= 0)
		keep[n++] = *lfd;
	else {
		keep[n++] = c->in;
		if (c->out != c->in)
			keep[n++] = c->out;
	}
	/* Sorted; ascending runs between the kept ones are closed. */
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (keep[j] < keep[i]) {
				t = keep[i];
				keep[i] = keep[j];
				keep[j] = t;
			}
	fd = 3;
	for (i = 0; i < n; i++) {
		if (keep[i] < fd)
			continue;
		close_between(fd, keep[i] - 1);
		fd = keep[i] + 1;
		/* Several listening sockets (systemd's from fd 3, -L's moved
		 * into a row): all kept here, each listener closes the
		 * others. */
		if (*lfd >= 0 && keep[i] == *lfd)
			fd = *lfd + nlfd;
	}
	close_between(fd, INT_MAX);
	return 0;
}
