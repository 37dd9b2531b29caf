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

struct config;
struct conn;

/* Keep spare connection processes forever, within *cfg's limits.  Returns
 * only in a spare, with *taken the descriptor listener_taken() reports on,
 * and *cfg the configuration to serve.  SIGHUP calls reload(cfg): 0 with
 * *cfg the new configuration (the waiting spares are then replaced), or
 * -1, logged, *cfg unchanged.  SIGTERM or SIGINT: lfd is closed, the
 * spares leave, and this process exits 0 (connections run on). */
int listener_run(const struct config **cfg, int lfd,
    int (*reload)(const struct config **), int *taken);
/* In a spare: wait for a client on lfd, close lfd; the accepted socket,
 * -1 when the spare's session (on fd session) has ended first, or -2
 * when the listener reloads or stops (no client taken). */
int listener_accept(int lfd, int session);
/* In a monitor before its client's login: a descriptor that turns
 * readable (hang-up) when the listener stops.  -1 outside listener mode
 * and after the login. */
int listener_stop_fd(void);
/* In a spare with a client: its "* BYE" line when a limit refuses it
 * (max_preauth_per_source, max_preauth, max_connections), else NULL.
 * NULL too outside listener mode. */
const char *listener_admit(const struct config *cfg, const struct conn *c);
/* The same for the address a trusted PROXY header gave. */
const char *listener_readdress(const struct config *cfg, const char *ip);
/* The client has logged in: no longer counted as pre-auth. */
void listener_logged_in(void);
/* Drop the limits' table (the session, before its sandbox). */
void listener_forget(void);
/* In a spare with a client: tell the listener (which forks another). */
void listener_taken(int taken);

#endif
