/*
 * Privsep message transport.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "msg.h"

int
msg_send(int fd, const void *m, size_t len)
{
	ssize_t n;

	do
		n = send(fd, m, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

ssize_t
msg_recv(int fd, void *m, size_t max)
{
	struct iovec iov = { m, max };
	struct msghdr mh;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	do
		n = recvmsg(fd, &mh, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0 && (mh.msg_flags & MSG_TRUNC))
		return -1;
	return n;
}

int
msg_string_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}
