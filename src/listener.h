/*
 * Listener mode (-L ADDR:PORT, systemd Accept=no, inetd wait): one
 * long-lived process that loads the configuration (and TLS) once and
 * forks connection processes ahead of their clients, instead of a
 * super-server exec'ing imapgate each time.  Each connection process is
 * then what a super-server would have started: monitor and session.
 */
#ifndef IMAPGATE_LISTENER_H
#define IMAPGATE_LISTENER_H

#include <stddef.h>

/* Listen on "host:port" or "[v6]:port".  The socket, or -1 with err. */
int listener_open(const char *spec, char *err, size_t errsize);

/* Keep spare connection processes forever.  Returns only in a spare,
 * with *taken the descriptor listener_taken() reports on. */
int listener_run(int *taken);
/* In a spare: wait for a client on lfd, close lfd; the accepted socket. */
int listener_accept(int lfd);
/* In a spare with a client: tell the listener (which forks another). */
void listener_taken(int taken);

#endif
