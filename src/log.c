/*
 * Logging.  One write() per line so that lines from the monitor and the
 * session never interleave inside a line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "log.h"

static int log_to_stderr = 1;

/* Is fd 2 usable as a log?  Not if it is closed, or the client socket. */
static int
stderr_is_log(int client_fd)
{
	struct stat e, c;

	if (fstat(STDERR_FILENO, &e) < 0)
		return 0;
	if (client_fd >= 0 && fstat(client_fd, &c) == 0 &&
	    e.st_dev == c.st_dev && e.st_ino == c.st_ino)
		return 0;
	return 1;
}

/* The syslog socket, connected once in log_init(); -1: lines dropped. */
static int syslog_fd = -1;

/*
 * Our own syslog client rather than syslog(3): glibc's reconnects when
 * /dev/log was missing or the daemon restarted, and reads the time zone
 * file at its first line -- a socket() or open() that the session's
 * seccomp allow-list answers by killing it.  Here the socket is
 * connected (and the zone read) once, before the sandbox; a line that
 * cannot be sent is lost.
 */
static void
syslog_open(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	tzset();
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", _PATH_LOG);
	if ((syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	if (connect(syslog_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(syslog_fd);
		syslog_fd = -1;
	}
}

void
log_init(int client_fd)
{
	log_to_stderr = stderr_is_log(client_fd);
	if (!log_to_stderr)
		/* Now, before the session is chrooted away from /dev/log. */
		syslog_open();
}

int
log_uses_stderr(void)
{
	return log_to_stderr;
}

static void
log_emit(int prio, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	int n, saved = errno;

	if (!log_to_stderr) {
		char stamp[32] = "";
		struct tm tm;
		time_t now = time(NULL);

		if (syslog_fd < 0) {
			errno = saved;
			return;
		}
		/* RFC 3164, as syslog(3) writes it: <PRI>Mmm dd hh:mm:ss */
		if (localtime_r(&now, &tm) != NULL)
			strftime(stamp, sizeof(stamp), "%b %e %T ", &tm);
		n = snprintf(line, sizeof(line), "<%d>%simapgate[%ld]: ",
		    LOG_MAIL | prio, stamp, (long)getpid());
	} else
		n = snprintf(line, sizeof(line), "imapgate[%ld]: %s",
		    (long)getpid(), prio == LOG_ERR ? "error: " :
		    prio == LOG_WARNING ? "warning: " :
		    prio == LOG_NOTICE ? "notice: " : "");
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	if (!log_to_stderr)
		(void)!send(syslog_fd, line, (size_t)n, MSG_DONTWAIT |
		    MSG_NOSIGNAL);
	else {
		line[n++] = '\n';
		(void)!write(STDERR_FILENO, line, (size_t)n);
	}
	errno = saved;
}

#define LOG_FN(name, prio)				\
void							\
name(const char *fmt, ...)				\
{							\
	va_list ap;					\
							\
	va_start(ap, fmt);				\
	log_emit(prio, fmt, ap);			\
	va_end(ap);					\
}

LOG_FN(log_info, LOG_INFO)
LOG_FN(log_notice, LOG_NOTICE)
LOG_FN(log_warn, LOG_WARNING)
LOG_FN(log_err, LOG_ERR)

void
log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_ERR, fmt, ap);
	va_end(ap);
	_exit(111);
}

const char *
log_escape(char *dst, size_t dstsize, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = 0;

	for (i = 0; i < len && n + 5 < dstsize; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
			dst[n++] = (char)c;
			continue;
		}
		dst[n++] = '\\';
		dst[n++] = 'x';
		dst[n++] = hex[c >> 4];
		dst[n++] = hex[c & 15];
	}
	if (dstsize > 0)
		dst[n < dstsize ? n : dstsize - 1] = '\0';
	return dst;
}
