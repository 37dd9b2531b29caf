/*
 * The MONITOR: the privileged parent.  Checks credentials for the session,
 * applies delays and limits, and performs the handoff.  It never parses
 * client bytes.
 */
#ifndef IMAPGATE_MONITOR_H
#define IMAPGATE_MONITOR_H

#include <sys/types.h>

#include "config.h"
#include "conn.h"
#include "sandbox.h"

/* sb: how to drop privileges when this process goes on as the relay. */
void monitor_run(const struct config *cfg, const struct conn *conn,
    const struct sandbox *sb, int fd, pid_t session)
    __attribute__((noreturn));

#endif
