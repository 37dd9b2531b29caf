/*
 * The listener: accept, fork, repeat; at most LISTEN_CHILDREN_MAX
 * connection processes at once (beyond that, new connections wait in the
 * kernel's backlog).
 */
#include <errno.h>
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

int
listener_run(int lfd)
{
	struct pollfd pfd = { lfd, POLLIN, 0 };
	int children = 0, fd;
	pid_t pid;

	for (;;) {
		while (children > 0 && waitpid(-1, NULL, WNOHANG) > 0)
			children--;
		if (children >= LISTEN_CHILDREN_MAX) {
			(void)poll(NULL, 0, LISTEN_REAP_MS);
			continue;
		}
		/* Wake now and then to reap even when nobody connects. */
		if (poll(&pfd, 1, LISTEN_REAP_MS) <= 0)
			continue;
		/* No SOCK_CLOEXEC: in exec mode the mail server inherits it. */
		if ((fd = accept4(lfd, NULL, NULL, 0)) < 0) {
			if (errno == EMFILE || errno == ENFILE)
				(void)poll(NULL, 0, LISTEN_REAP_MS);
			continue;
		}
		if ((pid = fork()) == 0) {
			close(lfd);
			return fd;
		}
		if (pid < 0)
			log_warn("fork: %s", strerror(errno));
		else
			children++;
		close(fd);
	}
}
