/*
 * The listener keeps LISTEN_SPARES connection processes ready: each is a
 * monitor with its session already forked and sandboxed, waiting in
 * accept().  The one that gets a client tells the listener, which forks
 * a replacement, so no fork() lies between a client's connect and its
 * greeting.  At most LISTEN_CHILDREN_MAX connection processes at once
 * (beyond that, new connections wait in the kernel's backlog).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "log.h"

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

int
listener_run(int *taken)
{
	pid_t spare[LISTEN_SPARES] = { 0 }, pid;
	struct pollfd pfd;
	int children = 0, spares = 0, pp[2], i;

	if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) < 0)
		log_fatal("pipe: %s", strerror(errno));
	pfd.fd = pp[0];
	pfd.events = POLLIN;
	for (;;) {
		while (children > 0 && (pid = waitpid(-1, NULL, WNOHANG)) > 0) {
			children--;
			spares -= spare_gone(spare, LISTEN_SPARES, pid);
		}
		/* A spare that took a client says so with its pid. */
		while (read(pp[0], &pid, sizeof(pid)) == (ssize_t)sizeof(pid))
			spares -= spare_gone(spare, LISTEN_SPARES, pid);
		while (spares < LISTEN_SPARES && children < LISTEN_CHILDREN_MAX) {
			if ((pid = fork()) == 0) {
				close(pp[0]);
				*taken = pp[1];
				return 0;
			}
			if (pid < 0) {
				log_warn("fork: %s", strerror(errno));
				break;
			}
			for (i = 0; spare[i] != 0; i++)
				;
			spare[i] = pid;
			spares++;
			children++;
		}
		/* Wake now and then to reap. */
		(void)poll(&pfd, 1, LISTEN_REAP_MS);
	}
}

int
listener_accept(int lfd)
{
	int fd;

	/* No SOCK_CLOEXEC: in exec mode the mail server inherits it. */
	while ((fd = accept4(lfd, NULL, NULL, 0)) < 0)
		if (errno != EINTR && errno != ECONNABORTED)
			(void)poll(NULL, 0, LISTEN_REAP_MS);
	close(lfd);
	return fd;
}

void
listener_taken(int taken)
{
	pid_t me = getpid();

	(void)!write(taken, &me, sizeof(me));
	close(taken);
}

