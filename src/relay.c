/*
 * The relay.  Each direction moves bytes from a source socket to a
 * destination socket through a pipe with splice(), so the data is never
 * copied into this process; bytes read before the relay began (and any
 * direction where splice() is refused) go through a fixed buffer instead.
 *
 * Ending: when one side stops sending (EOF) and all it sent is delivered,
 * the other side's write half is shut down and the other direction goes
 * on: a client that half-closes gets every answer, and so does a backend.
 * The relay ends when both directions are done, on an error, or after
 * idle_s seconds without a byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bounds.h"
#include "relay.h"
#include "tls.h"

struct dir {
	int		 from, to;
	int		 pipe[2];	/* -1: copy through buf */
	size_t		 inpipe;	/* bytes waiting in the pipe */
	size_t		 pipesize;
	unsigned char	*buf;
	size_t		 off, len;	/* bytes waiting in buf */
	int		 eof;		/* from has no more */
	unsigned long long bytes;
};

static unsigned char c2b_buf[RELAY_BUFFER], b2c_buf[RELAY_BUFFER];

static size_t
waiting(const struct dir *d)
{
	return d->len - d->off + d->inpipe;
}

static void
dir_init(struct dir *d, int from, int to, unsigned char *buf,
    const unsigned char *first, size_t firstlen)
{
	memset(d, 0, sizeof(*d));
	d->from = from;
	d->to = to;
	d->buf = buf;
	memcpy(buf, first, firstlen);
	d->len = firstlen;
	if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		d->pipe[0] = d->pipe[1] = -1;
	/* A larger pipe means fewer trips through poll() for a big FETCH;
	 * if the kernel refuses, the default size still works. */
	else
		d->pipesize = fcntl(d->pipe[1], F_SETPIPE_SZ, RELAY_PIPE) > 0 ?
		    RELAY_PIPE : RELAY_BUFFER;
}

static int
again(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Room to read more: the buffer drained, or the pipe not full. */
static int
dir_room(const struct dir *d)
{
	if (d->eof)
		return 0;
	if (d->pipe[0] >= 0)
		return d->len == d->off && d->inpipe < d->pipesize;
	return d->len < RELAY_BUFFER;
}

/* Take what the source has, if there is room.  -1 on error. */
static int
dir_read(struct dir *d)
{
	ssize_t n;

	if (!dir_room(d))
		return 0;

	if (d->pipe[0] >= 0 && d->len == d->off) {
		n = splice(d->from, NULL, d->pipe[1], NULL,
		    d->pipesize - d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINVAL) {
			/* This kind of socket does not splice: copy. */
			close(d->pipe[0]);
			close(d->pipe[1]);
			d->pipe[0] = d->pipe[1] = -1;
			return dir_read(d);
		}
		if (n > 0)
			d->inpipe += (size_t)n;
	} else {
		if (d->off == d->len)
			d->off = d->len = 0;
		n = read(d->from, d->buf + d->len, RELAY_BUFFER - d->len);
		if (n > 0)
			d->len += (size_t)n;
	}
	if (n == 0)
		d->eof = 1;
	if (n < 0 && !again())
		return -1;
	if (n > 0)
		d->bytes += (unsigned long long)n;
	return 0;
}

/* Give the destination what it takes.  -1 on error. */
static int
dir_write(struct dir *d)
{
	ssize_t n;

	if (d->off < d->len) {
		n = write(d->to, d->buf + d->off, d->len - d->off);
		if (n > 0)
			d->off += (size_t)n;
	} else {
		n = splice(d->pipe[0], NULL, d->to, NULL, d->inpipe,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			d->inpipe -= (size_t)n;
	}
	return n < 0 && !again() ? -1 : 0;
}


static void
watch(struct pollfd *p, int fd, short events)
{
	p->fd = events ? fd : -1;
	p->events = events;
	p->revents = 0;
}

void
relay_run(int cin, int cout, int bfd, const unsigned char *c2b,
    size_t c2blen, const unsigned char *b2c, size_t b2clen, int idle_s,
    struct relay_stats *st)
{
	struct dir up, down;	/* client->backend, backend->client */
	struct pollfd p[4];
	int shut_backend = 0, shut_client = 0, r;

	dir_init(&up, cin, bfd, c2b_buf, c2b, c2blen);
	dir_init(&down, bfd, cout, b2c_buf, b2c, b2clen);
	fcntl(cin, F_SETFL, fcntl(cin, F_GETFL) | O_NONBLOCK);
	fcntl(cout, F_SETFL, fcntl(cout, F_GETFL) | O_NONBLOCK);
	fcntl(bfd, F_SETFL, fcntl(bfd, F_GETFL) | O_NONBLOCK);
	st->end = "closed";
	for (;;) {
		if (up.eof && waiting(&up) == 0 && !shut_backend) {
			shutdown(bfd, SHUT_WR);
			shut_backend = 1;
		}
		if (down.eof && waiting(&down) == 0 && !shut_client) {
			shutdown(cout, SHUT_WR);
			shut_client = 1;
		}
		if (shut_backend && shut_client)
			break;
		/* An fd of -1 is skipped: POLLHUP on a socket we have nothing
		 * to do with now would otherwise wake us in a loop. */
		watch(&p[0], cin, dir_room(&up) ? POLLIN : 0);
		watch(&p[1], bfd, waiting(&up) ? POLLOUT : 0);
		watch(&p[2], bfd, dir_room(&down) ? POLLIN : 0);
		watch(&p[3], cout, waiting(&down) ? POLLOUT : 0);
		if ((r = poll(p, 4, idle_s * 1000)) < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			st->end = r == 0 ? "idle timeout" : "poll error";
			break;
		}
		if (((p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    dir_read(&up) < 0) ||
		    ((p[2].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    dir_read(&down) < 0)) {
			st->end = "read error";
			break;
		}
		if (((p[1].revents & (POLLOUT | POLLERR)) &&
		    dir_write(&up) < 0) ||
		    ((p[3].revents & (POLLOUT | POLLERR)) &&
		    dir_write(&down) < 0)) {
			st->end = "write error";
			break;
		}
	}
	st->c2b = up.bytes + c2blen;
	st->b2c = down.bytes + b2clen;
}

/*
 * The relay when TLS is up on either side: records cannot be spliced, so
 * each direction goes through one fixed buffer, and bytes GnuTLS has
 * already decrypted are taken before poll() is asked about more.  The
 * ending rules are relay_run()'s.
 */
struct cdir {
	struct chan	*from, *to;
	unsigned char	*buf;
	size_t		 off, len;
	int		 eof;
	unsigned long long bytes;
};

static int
cdir_room(const struct cdir *d)
{
	return !d->eof && d->len == 0;
}

/* Read if there is room and something to read; then write what waits.
 * -1 on error. */
static int
cdir_step(struct cdir *d, int readable, int writable)
{
	ssize_t n;

	if (cdir_room(d) && (readable || chan_pending(d->from) > 0)) {
		if ((n = chan_read(d->from, d->buf, RELAY_BUFFER)) == 0)
			d->eof = 1;
		else if (n > 0) {
			d->off = 0;
			d->len = (size_t)n;
			d->bytes += (unsigned long long)n;
			writable = 1;	/* try at once: usually it goes */
		} else if (n != CHAN_AGAIN)
			return -1;
	}
	if (d->len > 0 && writable) {
		if ((n = chan_write(d->to, d->buf + d->off, d->len - d->off)) > 0 &&
		    (d->off += (size_t)n) == d->len)
			d->off = d->len = 0;
		else if (n < 0 && n != CHAN_AGAIN)
			return -1;
	}
	return 0;
}

static void
cdir_init(struct cdir *d, struct chan *from, struct chan *to,
    unsigned char *buf, const unsigned char *first, size_t firstlen)
{
	memset(d, 0, sizeof(*d));
	d->from = from;
	d->to = to;
	d->buf = buf;
	if (firstlen > 0)
		memcpy(buf, first, firstlen);
	d->len = firstlen;
}

void
relay_chan(struct chan *c, struct chan *b, const unsigned char *c2b,
    size_t c2blen, const unsigned char *b2c, size_t b2clen, int idle_s,
    struct relay_stats *st)
{
	struct cdir up, down;
	struct pollfd p[4];
	int shut_backend = 0, shut_client = 0, r, wait;

	cdir_init(&up, c, b, c2b_buf, c2b, c2blen);
	cdir_init(&down, b, c, b2c_buf, b2c, b2clen);
	chan_nonblock(c);
	chan_nonblock(b);
	st->end = "closed";
	for (;;) {
		if (up.eof && up.len == 0 && !shut_backend) {
			chan_shutdown(b);
			shut_backend = 1;
		}
		if (down.eof && down.len == 0 && !shut_client) {
			chan_shutdown(c);
			shut_client = 1;
		}
		if (shut_backend && shut_client)
			break;
		watch(&p[0], c->in, cdir_room(&up) ? POLLIN : 0);
		watch(&p[1], b->out, up.len > 0 ? POLLOUT : 0);
		watch(&p[2], b->in, cdir_room(&down) ? POLLIN : 0);
		watch(&p[3], c->out, down.len > 0 ? POLLOUT : 0);
		/* Decrypted bytes wait in GnuTLS, not in the socket. */
		wait = (cdir_room(&up) && chan_pending(c) > 0) ||
		    (cdir_room(&down) && chan_pending(b) > 0) ? 0 : idle_s * 1000;
		if ((r = poll(p, 4, wait)) < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r == 0 && wait > 0)) {
			st->end = r == 0 ? "idle timeout" : "poll error";
			break;
		}
		if (cdir_step(&up, p[0].revents & (POLLIN | POLLHUP | POLLERR),
		    p[1].revents & (POLLOUT | POLLERR)) < 0 ||
		    cdir_step(&down, p[2].revents & (POLLIN | POLLHUP | POLLERR),
		    p[3].revents & (POLLOUT | POLLERR)) < 0) {
			st->end = "error";
			break;
		}
	}
	st->c2b = up.bytes + c2blen;
	st->b2c = down.bytes + b2clen;
}
