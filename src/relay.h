/*
 * The relay after login: client <-> backend with poll(), splice() between
 * the two sockets (no copy through user space), half-close both ways.
 */
#ifndef IMAPGATE_RELAY_H
#define IMAPGATE_RELAY_H

#include <stddef.h>

#include "tls.h"

struct relay_stats {
	unsigned long long	 c2b, b2c;	/* bytes client->backend, back */
	const char		*end;		/* why it ended, for the log */
};

/* Relay until the backend has closed and everything is delivered, or an
 * error, or idle_s seconds without a byte.  c2b/b2c: bytes already read
 * that go first. */
void relay_run(int cin, int cout, int bfd, const unsigned char *c2b,
    size_t c2blen, const unsigned char *b2c, size_t b2clen, int idle_s,
    struct relay_stats *st);

/* The same between two channels, either with TLS up: through two fixed
 * buffers, in the process that holds the TLS state. */
void relay_chan(struct chan *c, struct chan *b, const unsigned char *c2b,
    size_t c2blen, const unsigned char *b2c, size_t b2clen, int idle_s,
    struct relay_stats *st);

#endif
