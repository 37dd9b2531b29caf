/*
 * Logging: stderr when fd 2 is a log (a file, the journal, a terminal),
 * syslog facility mail when fd 2 is the client socket or closed.  Client
 * bytes go through log_escape() before they reach either.
 */
#ifndef IMAPGATE_LOG_H
#define IMAPGATE_LOG_H

#include <stddef.h>

/* client_fd: the connection, so that its socket is never used as a log. */
void log_init(int client_fd);
/* Does the log go to fd 2 (so a helper program may write there too)? */
int log_uses_stderr(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Worth the operator's attention, but the client can cause it at will. */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A broken invariant or a start-up failure: log and exit 111. */
void log_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Printable ASCII passes, anything else (CR, LF, NUL, 8-bit, backslash,
 * double quote) becomes \xNN.  Always NUL-terminates; truncates. */
const char *log_escape(char *dst, size_t dstsize, const char *src, size_t len);

#endif
