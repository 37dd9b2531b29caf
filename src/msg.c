/*
 * Privsep message transport.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"

int
msg_send_fd(int fd, const void *m, size_t len, int pass)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { (void *)m, len };
	struct msghdr mh;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (pass >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &pass, sizeof(int));
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

int
msg_send(int fd, const void *m, size_t len)
{
	return msg_send_fd(fd, m, len, -1);
}

/*
 * At most one descriptor, and only a whole message: the control buffer
 * has room for MSG_FDS_ROOM of them so that every one a peer attaches
 * arrives and can be closed (one that does not fit, the kernel drops and
 * flags MSG_CTRUNC).  A second descriptor, a truncated message or
 * truncated control data: all of them closed, the message refused.
 */
ssize_t
msg_recv_fd(int fd, void *m, size_t max, int *got)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * MSG_FDS_ROOM)];
	} cm;
	struct iovec iov = { m, max };
	struct cmsghdr *c;
	struct msghdr mh;
	ssize_t n;
	size_t i, nfds;
	int fds, one = -1, v;

	*got = -1;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	fds = 0;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfds; i++) {
			memcpy(&v, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fds++ == 0)
				one = v;
			else
				close(v);
		}
	}
	if (fds > 1 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		if (one >= 0)
			close(one);
		return -1;
	}
	*got = one;
	return n;
}

ssize_t
msg_recv(int fd, void *m, size_t max)
{
	ssize_t n;
	int got;

	/* A descriptor nobody asked for is closed, not leaked. */
	if ((n = msg_recv_fd(fd, m, max, &got)) >= 0 && got >= 0)
		close(got);
	return n;
}

int
msg_string_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}
