/*
 * The SESSION: the unprivileged process that speaks pre-auth IMAP to the
 * client in one fixed buffer and asks the monitor to check credentials.
 */
#ifndef IMAPGATE_SESSION_H
#define IMAPGATE_SESSION_H

#include "config.h"
#include "conn.h"

/* Runs the dialogue; never returns.  Exit status: 0 when the client
 * logged in (the monitor takes over) or logged out, 1 otherwise. */
void session_run(const struct config *cfg, const struct conn *conn,
    int monitor_fd) __attribute__((noreturn));

#endif
