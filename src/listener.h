/*
 * Listener mode (-L ADDR:PORT, systemd Accept=no, inetd wait): one
 * long-lived process that loads the configuration once and forks a
 * connection process per client, instead of a super-server exec'ing
 * imapgate each time.  Each connection process is then exactly what a
 * super-server would have started: monitor and session.
 */
#ifndef IMAPGATE_LISTENER_H
#define IMAPGATE_LISTENER_H

#include <stddef.h>

/* Listen on "host:port" or "[v6]:port".  The socket, or -1 with err. */
int listener_open(const char *spec, char *err, size_t errsize);

/* Accept on lfd forever.  Returns only in a connection's child process,
 * with the accepted socket. */
int listener_run(int lfd);

#endif
