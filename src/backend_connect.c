/*
 * Connecting to backends, with failover: every address of every entry,
 * in order, each within backend.connect_timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend_connect.h"
#include "log.h"

/* Non-blocking connect, then wait; returns the socket or -1 (errno). */
static int
connect_one(int family, const struct sockaddr *sa, socklen_t len, int ms)
{
	struct pollfd pfd;
	socklen_t elen = sizeof(int);
	int fd, err = 0, one = 1, r;

	if ((fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		return -1;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			r = poll(&pfd, 1, ms);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
		    &elen) < 0)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		goto fail;
	if (family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

static int
connect_unix(const struct backend_addr *t, int ms)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(t->host) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, t->host, strlen(t->host) + 1);
	return connect_one(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun), ms);
}

/* Every address the name resolves to, in the resolver's order. */
static int
connect_inet(const char *what, const struct backend_addr *t, int ms,
    char *name, size_t namesize)
{
	struct addrinfo hints, *res, *ai;
	char ip[64];
	int fd = -1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((r = getaddrinfo(t->host, t->port, &hints, &res)) != 0) {
		log_warn("%s %s: %s", what, t->host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof(ip),
		    NULL, 0, NI_NUMERICHOST) != 0)
			snprintf(ip, sizeof(ip), "?");
		fd = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, ms);
		if (fd < 0)
			log_warn("%s %s [%s]:%s: %s", what, t->host, ip,
			    t->port, strerror(errno));
		else
			snprintf(name, namesize, "%s:%s", ip, t->port);
	}
	freeaddrinfo(res);
	return fd;
}

int
net_connect(const char *what, const struct backend_addr *t, int ms,
    char *name, size_t namesize)
{
	int fd;

	if (!t->is_unix)
		return connect_inet(what, t, ms, name, namesize);
	if ((fd = connect_unix(t, ms)) < 0)
		log_warn("%s unix:%s: %s", what, t->host, strerror(errno));
	else
		snprintf(name, namesize, "unix:%s", t->host);
	return fd;
}

int
backend_connect(const struct config *c, const struct backend_addr *t, int n,
    char *name, size_t namesize, int *used)
{
	int ms = (int)(c->connect_timeout * 1000), fd = -1, i;

	for (i = 0; i < n && fd < 0; i++)
		if ((fd = net_connect("backend", &t[i], ms, name, namesize)) >= 0)
			*used = i;
	return fd;
}
