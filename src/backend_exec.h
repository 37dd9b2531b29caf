/*
 * Exec handoff: become the user and exec the mail server (Dovecot's or
 * Courier's imap) on the client socket.  Nothing of imapgate stays.
 */
#ifndef IMAPGATE_BACKEND_EXEC_H
#define IMAPGATE_BACKEND_EXEC_H

#include <stddef.h>

#include "auth_passwd.h"
#include "config.h"
#include "conn.h"

/* Can exec_handoff() switch to this user?  NULL, or the reason not. */
const char *exec_refusal(const struct auth_user *u);

/* tag: the LOGIN's tag; input: client bytes read past the login line. */
void exec_handoff(const struct config *c, const struct conn *conn,
    const struct auth_user *u, const char *tag, const unsigned char *input,
    size_t inlen) __attribute__((noreturn));

#endif
