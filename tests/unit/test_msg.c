/*
 * msg.c: the privsep transport keeps nothing it did not ask for (issue
 * 10 item 7).  Over a real SOCK_SEQPACKET socketpair: one descriptor
 * arrives; two in one control message, or a message too long for the
 * buffer, are refused and every descriptor that came with them closed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "unit.h"

/* How many descriptors this process has open. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;		/* the directory's own */
}

/* Send len bytes of m with nfds descriptors (dups of /dev/null) in one
 * SCM_RIGHTS control message. */
static int
send_with(int fd, const void *m, size_t len, int nfds)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 64)];
	} cm;
	struct iovec iov = { (void *)m, len };
	struct msghdr mh;
	int fds[64], i, r;

	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	for (i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDONLY);
	if (nfds > 0) {
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&mh)->cmsg_len =
		    CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), fds,
		    sizeof(int) * (size_t)nfds);
	}
	r = sendmsg(fd, &mh, 0) == (ssize_t)len ? 0 : -1;
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	return r;
}

static void
msg_one_descriptor_or_none(void)
{
	uint32_t m = MSG_RELAY, in[4];
	int sp[2], got, before;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
	before = open_fds();
	/* None. */
	CHECK_EQ(send_with(sp[0], &m, sizeof(m), 0), 0);
	CHECK_EQ(msg_recv_fd(sp[1], in, sizeof(in), &got), (long)sizeof(m));
	CHECK_EQ(got, -1);
	/* One: received, close-on-exec. */
	CHECK_EQ(send_with(sp[0], &m, sizeof(m), 1), 0);
	CHECK_EQ(msg_recv_fd(sp[1], in, sizeof(in), &got), (long)sizeof(m));
	CHECK(got >= 0);
	CHECK(got >= 0 && (fcntl(got, F_GETFD) & FD_CLOEXEC));
	if (got >= 0)
		close(got);
	/* msg_recv closes one nobody asked for. */
	CHECK_EQ(send_with(sp[0], &m, sizeof(m), 1), 0);
	CHECK_EQ(msg_recv(sp[1], in, sizeof(in)), (long)sizeof(m));
	CHECK_EQ(open_fds(), before);
	close(sp[0]);
	close(sp[1]);
}

static void
msg_extra_descriptors_closed_and_refused(void)
{
	static const int counts[] = { 2, 3, MSG_FDS_ROOM, MSG_FDS_ROOM + 1, 60 };
	uint32_t m = MSG_SIGN, in[4];
	size_t i;
	int sp[2], got, before;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
	before = open_fds();
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		CHECK_EQ(send_with(sp[0], &m, sizeof(m), counts[i]), 0);
		CHECK_EQ(msg_recv_fd(sp[1], in, sizeof(in), &got), -1);
		CHECK_EQ(got, -1);
		CHECK_EQ(open_fds(), before);
	}
	/* A message longer than the buffer, with a descriptor. */
	{
		unsigned char big[64];

		memset(big, 0, sizeof(big));
		CHECK_EQ(send_with(sp[0], big, sizeof(big), 1), 0);
		CHECK_EQ(msg_recv_fd(sp[1], in, sizeof(in), &got), -1);
		CHECK_EQ(got, -1);
		CHECK_EQ(open_fds(), before);
	}
	/* The transport still works after each refusal. */
	CHECK_EQ(msg_send(sp[0], &m, sizeof(m)), 0);
	CHECK_EQ(msg_recv(sp[1], in, sizeof(in)), (long)sizeof(m));
	close(sp[0]);
	close(sp[1]);
}

void
suite_msg(void)
{
	RUN(msg_one_descriptor_or_none);
	RUN(msg_extra_descriptors_closed_and_refused);
}
