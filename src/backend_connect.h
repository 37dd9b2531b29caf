/*
 * Connect handoff, monitor side: reach a backend IMAP server, trying each
 * address in order.  (The session logs in there: backend_imap.c.)
 */
#ifndef IMAPGATE_BACKEND_CONNECT_H
#define IMAPGATE_BACKEND_CONNECT_H

#include <stddef.h>

#include "config.h"

/* Connect to one target (every address of a host name, in order), ms
 * each.  The socket, or -1 after logging why (what: for the log). */
int net_connect(const char *what, const struct backend_addr *t, int ms,
    char *name, size_t namesize);

/* Connect to the first of n targets that answers within the configured
 * timeout per address.  Returns the socket (blocking, TCP_NODELAY), names
 * it in name and its index in *used, or -1. */
int backend_connect(const struct config *c, const struct backend_addr *t,
    int n, char *name, size_t namesize, int *used);

#endif
