/*
 * The compromised-session harness (issue 10): the interface an extra
 * action file (e.g. tests/harness/evil_h4.c) links against.  See
 * tests/harness/README.md.
 *
 * An action runs in the sandboxed session (or the post-login relay) when
 * the client sends "EVIL NAME ARG...\r\n" on a plain connection; it
 * answers with exactly one of evil_ok() / evil_err().
 */
#ifndef IMAPGATE_EVIL_H
#define IMAPGATE_EVIL_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define EVIL_ARGS_MAX	16

struct evil_ctx {
	int	 client;	/* the fd the EVIL line was read from */
	int	 argc;		/* argv[0] is the action's name */
	char	*argv[EVIL_ARGS_MAX];
	int	 answered;
};

struct evil_action {
	const char *name;	/* matched case-sensitively: "PID" */
	void	  (*run)(struct evil_ctx *);
};

/* Add actions (a NULL-name-terminated array), from a constructor. */
void evil_register(const struct evil_action *actions);

/* The one reply line: "* EVIL OK <text>" / "* EVIL ERR <text>". */
void evil_ok(struct evil_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void evil_err(struct evil_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The session's end of the monitor socketpair (the one AF_UNIX
 * SOCK_SEQPACKET fd), or -1. */
int evil_monitor_fd(void);
/* Hex of len bytes into out (2 * len + 1 bytes). */
void evil_hex(const void *p, size_t len, char *out);
/* Decode hex; the length, or -1. */
ssize_t evil_unhex(const char *hex, void *out, size_t max);
/* Decode \r \n \t \\ \xHH escapes in place; the new length. */
size_t evil_unescape(char *s);
/* A file named in EVIL_FILES, read by the constructor before the
 * sandbox: its bytes (PEM certificates decoded to DER), or NULL. */
const unsigned char *evil_file(const char *path, size_t *len);
/* Set one field of a msg_auth ("mech", "user", "pass", "tag",
 * "authz_mismatch", "tls.active", "tls.subject", "tls.der", ...) from a
 * value (escapes decoded; "@FILE[,@FILE...]" for tls.der).  0 or -1. */
int evil_auth_field(struct msg_auth *a, const char *name, const char *value);
/* Send one message with nfds extra descriptors (dups of the client fd)
 * and wait for an answer up to max bytes; its length, 0 when the
 * monitor closed, -2 when none came within timeout_ms, -1 on error. */
ssize_t evil_transact(const void *m, size_t len, int nfds, void *reply,
    size_t max, int timeout_ms);
/* Is this the sandboxed session / relay (where the harness acts)? */
int evil_sandboxed(void);

#endif
