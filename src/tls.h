/*
 * TLS with GnuTLS on descriptors we already hold, and the one I/O
 * interface (a "channel") the session and the TLS relay read and write
 * through, whether TLS is up on it or not.
 *
 * GnuTLS is dlopen()ed by tls_init(), before the session is forked and
 * chrooted, and only when the configuration uses TLS: linking it would
 * cost every connection 3.5 M instructions (bench/library-startup).
 */
#ifndef IMAPGATE_TLS_H
#define IMAPGATE_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "bounds.h"
#include "config.h"
#include "msg.h"

struct chan {
	int	 in, out;	/* fd 0 and 1, or one socket twice */
	void	*tls;		/* gnutls_session_t; NULL: plaintext */
};

#define CHAN_AGAIN	(-2)	/* nothing now: poll and come back */


/* Does this configuration use TLS anywhere (client or backend side)? */
int tls_wanted(const struct config *c);

/* Load GnuTLS, the certificates, the keys, the CAs and the ticket key
 * this configuration names.  Before the session is forked: it needs the
 * file system.  thorough (-t): also test that each key matches its
 * certificate.  0, or -1 with a reason naming the key in err. */
int tls_init(const struct config *c, int thorough, char *err,
    size_t errsize);

/* Server handshake on ch (its descriptors become non-blocking) within
 * ssl_handshake_timeout.  0, or -1 with a reason in err. */
int tls_accept(struct chan *ch, const struct config *c, struct tls_facts *f,
    char *err, size_t errsize);

/* Client handshake to a backend on ch, verifying its certificate for
 * name.  0, or -1 with a reason in err. */
int tls_connect(struct chan *ch, const struct config *c, const char *name,
    char *err, size_t errsize);

/* The session: ask for signatures on this descriptor (the monitor). */
void tls_sign_via(int fd);
/* The monitor, after the fork: read the private keys.  0, or -1. */
int tls_load_keys(const struct config *c, char *err, size_t errsize);
/* The monitor: make the signature m asks for into r (r->len 0 if it
 * failed).  -1 if m is not one to answer at all. */
int tls_sign(const struct msg_sign *m, struct msg_signature *r);

/* The monitor's own check of a client chain the session passed on:
 * against ssl_client_certificate, for client authentication.  0 with
 * the subject CN in cn, or -1. */
int tls_verify_client(const struct tls_facts *f, char *cn, size_t cnsize);

/* The monitor: whatever the session said about the client's
 * certificate (present, verified, CN, subject, issuer, serial,
 * fingerprint) replaced by what the chain it passed says, checked here
 * against ssl_client_certificate.  Without TLS configured, or not
 * active: all cleared. */
void tls_client_facts(struct tls_facts *f);

/* Make ch's descriptors non-blocking. */
void chan_nonblock(const struct chan *ch);
/* >0 bytes, 0 end of stream, CHAN_AGAIN, or -1 on error. */
ssize_t chan_read(struct chan *ch, void *buf, size_t size);
/* >0 bytes written, CHAN_AGAIN (call again with the same bytes), -1. */
ssize_t chan_write(struct chan *ch, const void *buf, size_t len);
/* All of buf within ms milliseconds; 0 or -1. */
int chan_write_all(struct chan *ch, const void *buf, size_t len, long ms);
/* Bytes decrypted and waiting: read them before poll() says more. */
size_t chan_pending(const struct chan *ch);
/* No more from us: close_notify, then shut the write side. */
void chan_shutdown(struct chan *ch);
/* Wait until ch can be read (or has pending bytes); 1, 0 timeout, -1. */
int chan_wait(const struct chan *ch, long ms);

#endif
