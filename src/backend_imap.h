/*
 * Connect handoff, session side: the IMAP dialogue with the backend, from
 * its greeting to the tagged answer to our login.
 */
#ifndef IMAPGATE_BACKEND_IMAP_H
#define IMAPGATE_BACKEND_IMAP_H

#include <stddef.h>

#include "config.h"
#include "conn.h"
#include "msg.h"
#include "tls.h"

struct backend_io {
	struct chan	 ch;		/* TLS on it once started */
	unsigned char	*buf;		/* backend bytes not yet used */
	size_t		 size, len;
	/* The answer for the client, after its tag: the backend's tagged
	 * OK (with a CAPABILITY code) or NO line. */
	char		 reply[BACKEND_BUFFER];
};

/* Log in on b->fd as m says.  On return b->buf holds the backend bytes
 * that followed its tagged answer. */
enum verdict backend_login(struct backend_io *b, const struct config *cfg,
    const struct conn *conn, const struct msg_connect *m);

#endif
