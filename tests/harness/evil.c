/*
 * The compromised-session harness (issue 10 item 1): LD_PRELOADed into
 * imapgate by the test fixtures (start_gate(..., evil=True)), it plays an
 * attacker who runs code in the sandboxed session -- and only there: it
 * acts when the process is unprivileged with no_new_privs set (the session
 * after sandbox_enter, the connect relay after drop_privileges), never in
 * the root monitor.  See tests/harness/README.md for the actions.
 *
 * Test code, not part of imapgate: it may allocate, and uses stdio.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "evil.h"

#define EVIL_TABLES	8
#define EVIL_FILES_MAX	8
#define EVIL_LINE_MAX	16384
#define EVIL_REPLY_MAX	(2 * 65536 + 64)

extern char **environ;

static const struct evil_action *tables[EVIL_TABLES];
static int ntables;
static int is_imapgate;
static int started_root;

static struct {
	char		*path;
	unsigned char	*data;
	size_t		 len;
} files[EVIL_FILES_MAX];
static int nfiles;

static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);

static void
resolve(void)
{
	if (real_read == NULL)
		*(void **)&real_read = dlsym(RTLD_NEXT, "read");
	if (real_sendmsg == NULL)
		*(void **)&real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
}

void
evil_register(const struct evil_action *actions)
{
	if (ntables < EVIL_TABLES)
		tables[ntables++] = actions;
}

/* Started as root (the tests run so), and no longer root: the session
 * after sandbox_enter(), the relay after drop_privileges().  (Not
 * prctl(PR_GET_NO_NEW_PRIVS): the seccomp allow-list would end the
 * process; sandbox_enter() sets no_new_privs before the uid check could
 * see a dropped uid anyway.) */
int
evil_sandboxed(void)
{
	return is_imapgate && started_root && getuid() != 0 && geteuid() != 0;
}

/* -- replies ------------------------------------------------------------- */

static void
reply(struct evil_ctx *x, const char *word, const char *fmt, va_list ap)
{
	static char line[EVIL_REPLY_MAX];
	size_t off, len;
	int n;

	if (x->answered)
		return;
	x->answered = 1;
	n = snprintf(line, sizeof(line), "* EVIL %s ", word);
	n += vsnprintf(line + n, sizeof(line) - n - 2, fmt, ap);
	if ((size_t)n > sizeof(line) - 3)
		n = sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	len = n + 2;
	for (off = 0; off < len; ) {
		ssize_t w = write(x->client, line + off, len - off);

		if (w <= 0 && errno != EINTR && errno != EAGAIN)
			return;
		if (w > 0)
			off += w;
		else if (errno == EAGAIN)
			(void)poll(&(struct pollfd){ x->client, POLLOUT, 0 }, 1,
			    1000);
	}
}

void
evil_ok(struct evil_ctx *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply(x, "OK", fmt, ap);
	va_end(ap);
}

void
evil_err(struct evil_ctx *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply(x, "ERR", fmt, ap);
	va_end(ap);
}

/* -- helpers ------------------------------------------------------------- */

void
evil_hex(const void *p, size_t len, char *out)
{
	static const char d[] = "0123456789abcdef";
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

ssize_t
evil_unhex(const char *hex, void *out, size_t max)
{
	unsigned char *o = out;
	size_t n = strlen(hex), i;

	if (n % 2 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int h = nibble(hex[2 * i]), l = nibble(hex[2 * i + 1]);

		if (h < 0 || l < 0)
			return -1;
		o[i] = (unsigned char)(h << 4 | l);
	}
	return (ssize_t)(n / 2);
}

size_t
evil_unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '\\' && r[1]) {
			r++;
			switch (*r) {
			case 'r': *w++ = '\r'; r++; continue;
			case 'n': *w++ = '\n'; r++; continue;
			case 't': *w++ = '\t'; r++; continue;
			case 's': *w++ = ' '; r++; continue;
			case 'x':
				if (nibble(r[1]) >= 0 && nibble(r[2]) >= 0) {
					*w++ = (char)(nibble(r[1]) << 4 |
					    nibble(r[2]));
					r += 3;
					continue;
				}
				break;
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* PEM -> DER (the first block), in place; the new length. */
static size_t
pem_decode(unsigned char *p, size_t len)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char *s, *e, *w = p;
	unsigned v = 0;
	int bits = 0;

	s = memmem(p, len, "-----BEGIN", 10);
	if (s == NULL || (s = memchr(s, '\n', len - (s - p))) == NULL)
		return len;
	e = memmem(s, len - (s - p), "-----END", 8);
	if (e == NULL)
		return len;
	for (; s < e; s++) {
		const char *c = *s ? strchr(b64, *s) : NULL;

		if (c == NULL)
			continue;
		v = v << 6 | (unsigned)(c - b64);
		if ((bits += 6) >= 8) {
			bits -= 8;
			*w++ = (unsigned char)(v >> bits);
		}
	}
	return (size_t)(w - p);
}

const unsigned char *
evil_file(const char *path, size_t *len)
{
	int i;

	for (i = 0; i < nfiles; i++)
		if (strcmp(files[i].path, path) == 0) {
			*len = files[i].len;
			return files[i].data;
		}
	return NULL;
}

int
evil_monitor_fd(void)
{
	int fd, v;
	socklen_t l;

	for (fd = 0; fd < 1024; fd++) {
		l = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) == 0 &&
		    v == SOCK_SEQPACKET)
			return fd;
	}
	return -1;
}

ssize_t
evil_transact(const void *m, size_t len, int nfds, void *out, size_t max,
    int timeout_ms)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 16)];
	} cm;
	struct iovec iov = { (void *)m, len };
	struct msghdr mh;
	struct pollfd pfd;
	int fd = evil_monitor_fd(), fds[16], i;
	ssize_t n;

	if (fd < 0 || nfds < 0 || nfds > 16)
		return -1;
	resolve();
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		memset(&cm, 0, sizeof(cm));
		/* Descriptors the session holds anyway: no socket() or
		 * open() needed (seccomp would refuse them). */
		for (i = 0; i < nfds; i++)
			fds[i] = 0;
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), fds, sizeof(int) * nfds);
	}
	if (real_sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return errno == EPIPE || errno == ECONNRESET ? 0 : -1;
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) == 0)
		return -2;
	n = recv(fd, out, max, 0);
	if (n < 0 && errno == ECONNRESET)
		return 0;
	return n;
}

/* -- msg_auth fields ----------------------------------------------------- */

#define STR(name, field)  { name, offsetof(struct msg_auth, field), \
	sizeof(((struct msg_auth *)0)->field), 1 }
#define U32(name, field)  { name, offsetof(struct msg_auth, field), 4, 0 }

static const struct {
	const char *name;
	size_t off, size;
	int str;
} auth_fields[] = {
	U32("type", type), U32("mech", mech),
	U32("authz_mismatch", authz_mismatch),
	STR("tag", tag), STR("user", user), STR("pass", pass),
	U32("tls.active", tls.active), U32("tls.resumed", tls.resumed),
	U32("tls.cert", tls.cert), U32("tls.verified", tls.verified),
	STR("tls.protocol", tls.protocol), STR("tls.cipher", tls.cipher),
	STR("tls.cn", tls.cn), STR("tls.subject", tls.subject),
	STR("tls.issuer", tls.issuer), STR("tls.serial", tls.serial),
	STR("tls.fingerprint", tls.fingerprint),
	U32("tls.ncerts", tls.ncerts),
};

/* A string field: the value as given, cut to fit (NUL-terminated);
 * "!" first fills the whole field with no NUL (the monitor must notice). */
static void
set_str(char *dst, size_t size, const char *v)
{
	int fill = v[0] == '!';

	if (fill) {
		memset(dst, v[1] ? v[1] : 'A', size);
		return;
	}
	memset(dst, 0, size);
	memcpy(dst, v, strlen(v) < size ? strlen(v) : size - 1);
}

int
evil_auth_field(struct msg_auth *a, const char *name, const char *value)
{
	static char v[EVIL_LINE_MAX];
	size_t i, len, off = 0;
	char *f, *save;

	snprintf(v, sizeof(v), "%s", value);
	evil_unescape(v);
	if (strcmp(name, "tls.der") == 0) {
		a->tls.ncerts = 0;
		memset(a->tls.der_len, 0, sizeof(a->tls.der_len));
		for (f = strtok_r(v, ",", &save); f != NULL;
		    f = strtok_r(NULL, ",", &save)) {
			const unsigned char *d = evil_file(f + (*f == '@'),
			    &len);

			if (d == NULL || a->tls.ncerts >= TLS_CHAIN_CERTS ||
			    off + len > sizeof(a->tls.der))
				return -1;
			memcpy(a->tls.der + off, d, len);
			a->tls.der_len[a->tls.ncerts++] = (uint32_t)len;
			off += len;
		}
		return 0;
	}
	for (i = 0; i < sizeof(auth_fields) / sizeof(auth_fields[0]); i++) {
		if (strcmp(name, auth_fields[i].name) != 0)
			continue;
		if (auth_fields[i].str)
			set_str((char *)a + auth_fields[i].off,
			    auth_fields[i].size, v);
		else {
			uint32_t u = (uint32_t)strtoul(v, NULL, 0);

			memcpy((char *)a + auth_fields[i].off, &u, 4);
		}
		return 0;
	}
	return -1;
}

/* -- EVIL_REWRITE: the session's own messages, changed on the way -------- */

static char *rewrite;		/* EVIL_REWRITE, read at start */

static int
rewrite_one(void *m, size_t len, const char *name, const char *value)
{
	static char v[EVIL_LINE_MAX];
	uint32_t type;

	memcpy(&type, m, sizeof(type));
	if (strncmp(name, "auth.", 5) == 0) {
		if (type != MSG_AUTH || len < MSG_AUTH_HDR)
			return 0;
		return evil_auth_field(m, name + 5, value) == 0;
	}
	snprintf(v, sizeof(v), "%s", value);
	evil_unescape(v);
	if (strncmp(name, "addr.", 5) == 0) {
		struct msg_client_addr *a = m;

		if (type != MSG_CLIENT_ADDR || len != sizeof(*a))
			return 0;
		if (strcmp(name, "addr.ip") == 0)
			set_str(a->ip, sizeof(a->ip), v);
		else if (strcmp(name, "addr.port") == 0)
			set_str(a->port, sizeof(a->port), v);
		else if (strcmp(name, "addr.dst_ip") == 0)
			set_str(a->dst_ip, sizeof(a->dst_ip), v);
		else if (strcmp(name, "addr.dst_port") == 0)
			set_str(a->dst_port, sizeof(a->dst_port), v);
		else
			return 0;
		return 1;
	}
	if (strncmp(name, "sign.", 5) == 0) {
		struct msg_sign *s = m;
		uint32_t u = (uint32_t)strtoul(v, NULL, 0);

		if (type != MSG_SIGN || len != sizeof(*s))
			return 0;
		if (strcmp(name, "sign.key") == 0)
			s->key = u;
		else if (strcmp(name, "sign.hashed") == 0)
			s->hashed = u;
		else if (strcmp(name, "sign.algo") == 0)
			s->algo = u;
		else if (strcmp(name, "sign.flags") == 0)
			s->flags = u;
		else if (strcmp(name, "sign.data") == 0) {
			ssize_t n = evil_unhex(v, s->data, sizeof(s->data));

			if (n < 0)
				return 0;
			s->len = (uint32_t)n;
		} else
			return 0;
		return 1;
	}
	return 0;
}

ssize_t
sendmsg(int fd, const struct msghdr *mh, int flags)
{
	static unsigned char copy[sizeof(struct msg_auth) + 64];
	static char spec[EVIL_LINE_MAX], note[EVIL_LINE_MAX + 64];
	struct msghdr m2;
	struct iovec iov;
	char *line, *save, *eq;
	int v, n, changed = 0;
	socklen_t l = sizeof(v);

	resolve();
	if (rewrite == NULL || mh->msg_iovlen != 1 ||
	    mh->msg_iov[0].iov_len < sizeof(uint32_t) ||
	    mh->msg_iov[0].iov_len > sizeof(copy) || !evil_sandboxed() ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) < 0 ||
	    v != SOCK_SEQPACKET)
		return real_sendmsg(fd, mh, flags);
	memset(copy, 0, sizeof(copy));
	memcpy(copy, mh->msg_iov[0].iov_base, mh->msg_iov[0].iov_len);
	snprintf(spec, sizeof(spec), "%s", rewrite);
	for (line = strtok_r(spec, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		if (rewrite_one(copy, mh->msg_iov[0].iov_len, line, eq + 1)) {
			changed = 1;
			/* snprintf + write: dprintf() would lseek(), which
			 * the seccomp allow-list answers with SIGSYS. */
			n = snprintf(note, sizeof(note),
			    "imapgate-evil: rewrote %s\n", line);
			if (n > 0 && (size_t)n < sizeof(note))
				(void)!write(2, note, (size_t)n);
		}
	}
	if (!changed)
		return real_sendmsg(fd, mh, flags);
	m2 = *mh;
	iov.iov_base = copy;
	iov.iov_len = mh->msg_iov[0].iov_len;
	/* A rewritten MSG_AUTH is as long as its chain now says, as the
	 * session would send it (a chain that does not fit: all of it). */
	if (iov.iov_len >= MSG_AUTH_HDR && *(uint32_t *)(void *)copy ==
	    MSG_AUTH) {
		size_t der = msg_auth_der((struct msg_auth *)(void *)copy);

		iov.iov_len = der == SIZE_MAX ? sizeof(struct msg_auth) :
		    MSG_AUTH_HDR + der;
	}
	m2.msg_iov = &iov;
	/* The session is told it sent what it meant to. */
	if (real_sendmsg(fd, &m2, flags) < 0)
		return -1;
	return (ssize_t)mh->msg_iov[0].iov_len;
}

/* -- the actions --------------------------------------------------------- */

static void
act_pid(struct evil_ctx *x)
{
	evil_ok(x, "%ld", (long)getpid());
}

static void
act_uid(struct evil_ctx *x)
{
	evil_ok(x, "%ld %ld", (long)getuid(), (long)geteuid());
}

static void
act_fds(struct evil_ctx *x)
{
	static char out[16384];
	size_t o = 0;
	struct stat st;
	int fd, v, dom;
	socklen_t l;

	out[0] = '\0';
	for (fd = 0; fd < 1024; fd++) {
		const char *kind = "other";
		char extra[64] = "";

		if (fcntl(fd, F_GETFD) < 0 || fstat(fd, &st) < 0)
			continue;
		if (S_ISSOCK(st.st_mode)) {
			l = sizeof(dom);
			if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0)
				dom = -1;
			l = sizeof(v);
			if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) < 0)
				v = -1;
			snprintf(extra, sizeof(extra), ":%s:%s",
			    dom == AF_UNIX ? "unix" : dom == AF_INET ? "inet" :
			    dom == AF_INET6 ? "inet6" : "other",
			    v == SOCK_STREAM ? "stream" : v == SOCK_SEQPACKET ?
			    "seqpacket" : v == SOCK_DGRAM ? "dgram" : "other");
			l = sizeof(v);
			if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) ==
			    0 && v)
				strcat(extra, ":listening");
			kind = "sock";
		} else if (S_ISREG(st.st_mode))
			kind = "file";
		else if (S_ISFIFO(st.st_mode))
			kind = "pipe";
		else if (S_ISDIR(st.st_mode))
			kind = "dir";
		else if (S_ISCHR(st.st_mode)) {
			kind = "chr";
			snprintf(extra, sizeof(extra), ":%u:%u",
			    major(st.st_rdev), minor(st.st_rdev));
		}
		o += snprintf(out + o, sizeof(out) - o, "%s%d:%s%s",
		    o ? " " : "", fd, kind, extra);
		if (o >= sizeof(out))
			break;
	}
	evil_ok(x, "%s", out);
}

static void
act_accept(struct evil_ctx *x)
{
	static char out[4096];
	size_t o = 0;
	struct pollfd pfd;
	int fd, v, c;
	socklen_t l;

	out[0] = '\0';
	for (fd = 0; fd < 1024; fd++) {
		l = sizeof(v);
		/* accept() is tried on every socket that listens; on any
		 * other descriptor it fails (ENOTSOCK, EINVAL) without
		 * asking, and under seccomp asking would end the test. */
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) < 0 ||
		    !v)
			continue;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 500) == 1 &&
		    (c = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
			o += snprintf(out + o, sizeof(out) - o,
			    "%s%d:accepted", o ? " " : "", fd);
			close(c);
		} else
			o += snprintf(out + o, sizeof(out) - o,
			    "%s%d:listening", o ? " " : "", fd);
		if (o >= sizeof(out))
			break;
	}
	evil_ok(x, "%s", o ? out : "none");
}

static void
act_connect(struct evil_ctx *x)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	int fd, r;

	if (x->argc != 3) {
		evil_err(x, "usage: CONNECT ip port");
		return;
	}
	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, x->argv[1], &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		s4.sin_port = htons((uint16_t)atoi(x->argv[2]));
		fd = socket(AF_INET, SOCK_STREAM, 0);
		r = fd < 0 ? -1 : connect(fd, (void *)&s4, sizeof(s4));
	} else {
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons((uint16_t)atoi(x->argv[2]));
		if (inet_pton(AF_INET6, x->argv[1], &s6.sin6_addr) != 1) {
			evil_err(x, "bad address");
			return;
		}
		fd = socket(AF_INET6, SOCK_STREAM, 0);
		r = fd < 0 ? -1 : connect(fd, (void *)&s6, sizeof(s6));
	}
	if (r < 0)
		evil_err(x, "%s: %s", fd < 0 ? "socket" : "connect",
		    strerror(errno));
	else
		evil_ok(x, "connected fd=%d", fd);
}

static void
act_open(struct evil_ctx *x)
{
	char buf[32], hex[65];
	ssize_t n;
	int fd;

	if (x->argc != 2) {
		evil_err(x, "usage: OPEN path");
		return;
	}
	if ((fd = open(x->argv[1], O_RDONLY)) < 0) {
		evil_err(x, "open: %s", strerror(errno));
		return;
	}
	n = real_read(fd, buf, sizeof(buf));
	evil_hex(buf, n > 0 ? (size_t)n : 0, hex);
	evil_ok(x, "fd=%d %s", fd, hex);
}

static void
act_kill(struct evil_ctx *x)
{
	if (x->argc != 3) {
		evil_err(x, "usage: KILL pid sig");
		return;
	}
	if (kill((pid_t)atol(x->argv[1]), atoi(x->argv[2])) < 0)
		evil_err(x, "kill: %s", strerror(errno));
	else
		evil_ok(x, "sent");
}

/* Signal another process without kill(): the kernel sends sig to pid
 * when the client socket becomes readable (F_SETOWN, F_SETSIG, O_ASYNC). */
static void
act_sigio(struct evil_ctx *x)
{
	if (x->argc != 3) {
		evil_err(x, "usage: SIGIO pid sig");
		return;
	}
	if (fcntl(x->client, F_SETOWN, atoi(x->argv[1])) < 0 ||
	    fcntl(x->client, F_SETSIG, atoi(x->argv[2])) < 0 ||
	    fcntl(x->client, F_SETFL, fcntl(x->client, F_GETFL) |
	    O_ASYNC) < 0)
		evil_err(x, "fcntl: %s", strerror(errno));
	else
		evil_ok(x, "armed");
}

static void
act_exec(struct evil_ctx *x)
{
	char *argv[2];

	if (x->argc != 2) {
		evil_err(x, "usage: EXEC path");
		return;
	}
	argv[0] = x->argv[1];
	argv[1] = NULL;
	execve(argv[0], argv, environ);
	evil_err(x, "execve: %s", strerror(errno));
}

static void
act_rlimit(struct evil_ctx *x)
{
	struct rlimit rl, want;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		evil_err(x, "getrlimit: %s", strerror(errno));
		return;
	}
	want.rlim_cur = want.rlim_max = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &want) < 0)
		evil_err(x, "cur=%llu max=%llu setrlimit: %s",
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_max, strerror(errno));
	else
		evil_ok(x, "cur=%llu max=%llu raised=%llu",
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_max,
		    (unsigned long long)want.rlim_cur);
}

/* An answer from the monitor, as the reply line. */
static void
answer(struct evil_ctx *x, ssize_t n, const void *r)
{
	static char hex[2 * 65536 + 1];

	if (n == 0)
		evil_ok(x, "closed");
	else if (n == -2)
		evil_ok(x, "none");
	else if (n < 0)
		evil_err(x, "%s", strerror(errno));
	else {
		evil_hex(r, (size_t)n, hex);
		evil_ok(x, "%s", hex);
	}
}

static void
act_sign(struct evil_ctx *x)
{
	static struct msg_sign s;
	static struct msg_signature r;
	static char hex[2 * TLS_SIG_MAX + 1];
	ssize_t n;

	if (x->argc != 6) {
		evil_err(x, "usage: SIGN key hashed algo flags hexdata");
		return;
	}
	memset(&s, 0, sizeof(s));
	s.type = MSG_SIGN;
	s.key = (uint32_t)strtoul(x->argv[1], NULL, 0);
	s.hashed = (uint32_t)strtoul(x->argv[2], NULL, 0);
	s.algo = (uint32_t)strtoul(x->argv[3], NULL, 0);
	s.flags = (uint32_t)strtoul(x->argv[4], NULL, 0);
	if ((n = evil_unhex(x->argv[5], s.data, sizeof(s.data))) < 0) {
		evil_err(x, "bad hex");
		return;
	}
	s.len = (uint32_t)n;
	n = evil_transact(&s, sizeof(s), 0, &r, sizeof(r), 3000);
	if (n == 0)
		evil_ok(x, "closed");
	else if (n != (ssize_t)sizeof(r))
		answer(x, n, &r);
	else if (r.len == 0 || r.len > sizeof(r.sig))
		evil_ok(x, "refused");
	else {
		evil_hex(r.sig, r.len, hex);
		evil_ok(x, "%s", hex);
	}
}

static const struct { const char *name; uint32_t type; } types[] = {
	{ "AUTH", MSG_AUTH }, { "HANDOFF", MSG_HANDOFF },
	{ "VERDICT", MSG_VERDICT }, { "RELAY", MSG_RELAY },
	{ "CLIENT_ADDR", MSG_CLIENT_ADDR }, { "CHALLENGE", MSG_CHALLENGE },
	{ "RELAY_KEEP", MSG_RELAY_KEEP }, { "RELAY_END", MSG_RELAY_END },
	{ "SIGN", MSG_SIGN },
};

static void
act_msg(struct evil_ctx *x)
{
	static unsigned char m[sizeof(struct msg_relay) + 64];
	static unsigned char r[sizeof(struct msg_relay) + 64];
	uint32_t type;
	size_t i;
	ssize_t n;
	int nfds = 0;

	if (x->argc < 3 || x->argc > 4 || (x->argc == 4 &&
	    strncmp(x->argv[3], "fds=", 4) != 0)) {
		evil_err(x, "usage: MSG type hexbody [fds=N]");
		return;
	}
	type = (uint32_t)strtoul(x->argv[1], NULL, 0);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(x->argv[1], types[i].name) == 0)
			type = types[i].type;
	memcpy(m, &type, sizeof(type));
	n = strcmp(x->argv[2], "-") == 0 ? 0 :
	    evil_unhex(x->argv[2], m + 4, sizeof(m) - 4);
	if (n < 0) {
		evil_err(x, "bad hex");
		return;
	}
	if (x->argc == 4)
		nfds = atoi(x->argv[3] + 4);
	n = evil_transact(m, (size_t)n + 4, nfds, r, sizeof(r), 1000);
	answer(x, n, r);
}

static void
act_addr(struct evil_ctx *x)
{
	static struct msg_client_addr a;
	static char r[64];
	int i;

	if (x->argc != 5) {
		evil_err(x, "usage: ADDR ip port dst_ip dst_port");
		return;
	}
	for (i = 1; i < 5; i++)
		evil_unescape(x->argv[i]);
	memset(&a, 0, sizeof(a));
	a.type = MSG_CLIENT_ADDR;
	set_str(a.ip, sizeof(a.ip), x->argv[1]);
	set_str(a.port, sizeof(a.port), x->argv[2]);
	set_str(a.dst_ip, sizeof(a.dst_ip), x->argv[3]);
	set_str(a.dst_port, sizeof(a.dst_port), x->argv[4]);
	/* No answer is due: "none" means the monitor took it. */
	answer(x, evil_transact(&a, sizeof(a), 0, r, sizeof(r), 300), r);
}

static void
act_auth(struct evil_ctx *x)
{
	static struct msg_auth a;
	static struct msg_auth_result r;
	ssize_t n;
	long pad = 0;
	size_t len;
	char *eq;
	int i;

	if (x->argc < 3) {
		evil_err(x, "usage: AUTH user pass [field=value ...]");
		return;
	}
	memset(&a, 0, sizeof(a));
	a.type = MSG_AUTH;
	a.mech = MECH_PLAIN;
	snprintf(a.tag, sizeof(a.tag), "evil");
	evil_auth_field(&a, "user", x->argv[1]);
	evil_auth_field(&a, "pass", x->argv[2]);
	for (i = 3; i < x->argc; i++) {
		if ((eq = strchr(x->argv[i], '=')) == NULL) {
			evil_err(x, "not field=value: %s", x->argv[i]);
			return;
		}
		*eq = '\0';
		/* pad=N: N bytes more (or fewer) than the exact length. */
		if (strcmp(x->argv[i], "pad") == 0) {
			pad = strtol(eq + 1, NULL, 0);
			continue;
		}
		if (evil_auth_field(&a, x->argv[i], eq + 1) < 0) {
			evil_err(x, "unknown field or file: %s", x->argv[i]);
			return;
		}
	}
	len = msg_auth_der(&a) == SIZE_MAX ? sizeof(a) :
	    MSG_AUTH_HDR + msg_auth_der(&a);
	if (pad < -(long)len || pad > (long)(sizeof(a) - len)) {
		evil_err(x, "pad out of range");
		return;
	}
	n = evil_transact(&a, (size_t)((long)len + pad), 0, &r, sizeof(r),
	    10000);
	if (n == (ssize_t)sizeof(r)) {
		r.text[sizeof(r.text) - 1] = '\0';
		evil_ok(x, "result=%u close=%u text=%s", r.result, r.close,
		    r.text);
	} else
		answer(x, n, &r);
}

static const struct evil_action builtin[] = {
	{ "PID", act_pid }, { "UID", act_uid }, { "FDS", act_fds },
	{ "ACCEPT", act_accept }, { "CONNECT", act_connect },
	{ "OPEN", act_open }, { "KILL", act_kill }, { "EXEC", act_exec },
	{ "SIGIO", act_sigio },
	{ "RLIMIT", act_rlimit }, { "SIGN", act_sign }, { "MSG", act_msg },
	{ "ADDR", act_addr }, { "AUTH", act_auth },
	{ NULL, NULL }
};

/* -- the trigger: a client line "EVIL ..." read by the session ----------- */

static void
run_line(int fd, char *line)
{
	struct evil_ctx x;
	char *save, *w;
	int t, i;

	memset(&x, 0, sizeof(x));
	x.client = fd;
	for (w = strtok_r(line, " ", &save); w != NULL &&
	    x.argc < EVIL_ARGS_MAX; w = strtok_r(NULL, " ", &save))
		x.argv[x.argc++] = w;
	if (x.argc < 2) {
		evil_err(&x, "no action");
		return;
	}
	x.argc--;
	memmove(x.argv, x.argv + 1, sizeof(x.argv[0]) * x.argc);
	for (t = ntables - 1; t >= 0; t--)
		for (i = 0; tables[t][i].name != NULL; i++)
			if (strcmp(tables[t][i].name, x.argv[0]) == 0) {
				tables[t][i].run(&x);
				if (!x.answered)
					evil_ok(&x, "done");
				return;
			}
	evil_err(&x, "unknown action %s", x.argv[0]);
}

ssize_t
read(int fd, void *buf, size_t size)
{
	static char line[EVIL_LINE_MAX];
	unsigned char *b = buf;
	unsigned char *eol;
	ssize_t n;
	size_t len;

	resolve();
	for (;;) {
		int swallowed = 0;

		n = real_read(fd, buf, size);
		while (n >= 5 && memcmp(b, "EVIL ", 5) == 0 &&
		    (eol = memchr(b, '\n', (size_t)n)) != NULL &&
		    evil_sandboxed()) {
			len = (size_t)(eol - b) + 1;
			if (len < sizeof(line)) {
				memcpy(line, b, len);
				line[len - 1] = '\0';
				if (len >= 2 && line[len - 2] == '\r')
					line[len - 2] = '\0';
				run_line(fd, line);
			}
			memmove(b, b + len, (size_t)n - len);
			n -= (ssize_t)len;
			swallowed = 1;
		}
		if (n != 0 || !swallowed)
			return n;
		/* Everything read was ours: read again (a non-blocking
		 * descriptor answers EAGAIN, as it would have).  A real EOF
		 * returned 0 above. */
	}
}

/* The connect-mode relay moves client bytes with splice(): an EVIL line
 * waiting at the head of the socket is taken out (peeked, then read) and
 * run before the splice. */
ssize_t
splice(int in, loff_t *inoff, int out, loff_t *outoff, size_t len,
    unsigned int flags)
{
	static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t,
	    unsigned int);
	static char line[EVIL_LINE_MAX];
	char *eol;
	ssize_t n;
	size_t l;

	if (real_splice == NULL)
		*(void **)&real_splice = dlsym(RTLD_NEXT, "splice");
	resolve();
	while ((n = recv(in, line, sizeof(line) - 1, MSG_PEEK |
	    MSG_DONTWAIT)) >= 5 && memcmp(line, "EVIL ", 5) == 0 &&
	    (eol = memchr(line, '\n', (size_t)n)) != NULL && evil_sandboxed()) {
		l = (size_t)(eol - line) + 1;
		if (real_read(in, line, l) != (ssize_t)l)
			break;
		line[l - 1] = '\0';
		if (l >= 2 && line[l - 2] == '\r')
			line[l - 2] = '\0';
		run_line(in, line);
	}
	return real_splice(in, inoff, out, outoff, len, flags);
}

ssize_t
__read_chk(int fd, void *buf, size_t size, size_t bufsize)
{
	if (size > bufsize)
		abort();
	return read(fd, buf, size);
}

/* -- start-up: before anything is sandboxed ----------------------------- */

static void
load_files(const char *list)
{
	static char copy[EVIL_LINE_MAX];
	char *p, *save;
	FILE *f;
	long len;

	snprintf(copy, sizeof(copy), "%s", list);
	for (p = strtok_r(copy, ":", &save); p != NULL && nfiles <
	    EVIL_FILES_MAX; p = strtok_r(NULL, ":", &save)) {
		if ((f = fopen(p, "rb")) == NULL)
			continue;
		if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
		    fseek(f, 0, SEEK_SET) == 0) {
			files[nfiles].data = malloc((size_t)len + 1);
			if (files[nfiles].data != NULL && fread(files[nfiles].data,
			    1, (size_t)len, f) == (size_t)len) {
				files[nfiles].len = pem_decode(
				    files[nfiles].data, (size_t)len);
				files[nfiles].path = strdup(p);
				nfiles++;
			}
		}
		fclose(f);
	}
}

__attribute__((constructor)) static void
evil_init(void)
{
	const char *v;

	/* Only imapgate itself: not the super-server (tcpserver passes its
	 * environment on) nor the mail server imapgate execs. */
	is_imapgate = strcmp(program_invocation_short_name, "imapgate") == 0;
	if (!is_imapgate)
		return;
	started_root = getuid() == 0;
	resolve();
	evil_register(builtin);
	if ((v = getenv("EVIL_FILES")) != NULL)
		load_files(v);
	if ((v = getenv("EVIL_REWRITE")) != NULL && *v)
		rewrite = strdup(v);
}
