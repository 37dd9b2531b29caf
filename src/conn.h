/*
 * Where the client is: fd 0/1 (inetd, xinetd, tcpserver, systemd
 * StandardInput=socket) or fd 3 (systemd Accept=yes, sd_listen_fds()),
 * and the addresses of both ends.
 */
#ifndef IMAPGATE_CONN_H
#define IMAPGATE_CONN_H

#include <stddef.h>

#include "bounds.h"

struct conn {
	int	in, out;
	char	peer_ip[ADDR_MAX], peer_port[8];
	char	local_ip[ADDR_MAX], local_port[8];
	/* A PROXY header gave peer_ip/port and these (its destination). */
	int	proxied;
	char	proxy_dst_ip[ADDR_MAX], proxy_dst_port[8];
};

/* Returns 1 with the connection in c; 0 if the socket found is a
 * listening one (systemd Accept=no, inetd wait), its fd in c->in and in
 * *nlisten how many listening ones there are from it (systemd Accept=no
 * with several ListenStream=); -1 with a reason in err. */
int conn_find(struct conn *c, int *nlisten, char *err, size_t errsize);
/* The local port of socket fd (a listening one), or 0. */
int conn_local_port(int fd);
/* A connection accepted on fd (listener mode). */
void conn_accepted(struct conn *c, int fd);
/* Close every descriptor this process inherited but the connection c
 * (lfd < 0) or the listening sockets *lfd .. *lfd + nlfd - 1; a single
 * one moves above fd 2 when it was fd 0 or 1 (inetd "wait"), several
 * are systemd's, from fd 3.  Any other listening socket on fd 0-2
 * becomes /dev/null.  Before anything else is opened.  0, or -1 with
 * err. */
int conn_keep_only(const struct conn *c, int *lfd, int nlfd, char *err,
    size_t errsize);

#endif
