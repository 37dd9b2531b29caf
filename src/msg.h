/*
 * Messages between the session (unprivileged) and the monitor, over a
 * SOCK_SEQPACKET socketpair.  Each type has one exact size (or, for
 * HANDOFF, a header and a bounded tail); anything else is fatal.
 */
#ifndef IMAPGATE_MSG_H
#define IMAPGATE_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bounds.h"
#include "conn.h"

enum msg_type {
	MSG_AUTH = 1,		/* session -> monitor: check these credentials */
	MSG_AUTH_RESULT,	/* monitor -> session */
	MSG_HANDOFF,		/* session -> monitor: bytes read past login */
	MSG_CONNECT,		/* monitor -> session: backend socket, login */
	MSG_VERDICT,		/* session -> monitor: the backend's answer */
	MSG_RELAY,		/* session -> monitor: backend socket, bytes */
	MSG_CLIENT_ADDR,	/* session -> monitor: from a PROXY header */
	MSG_CHALLENGE,		/* both ways: a CRAM-MD5 challenge */
	MSG_PIPE,		/* monitor -> session: the mail server's end */
	MSG_RELAY_KEEP,		/* session -> monitor: TLS, I carry the relay */
	MSG_RELAY_END,		/* session -> monitor: what the relay moved */
	MSG_CLIENT,		/* monitor -> spare session: the client's fd */
	MSG_SIGN,		/* session -> monitor: sign with the TLS key */
	MSG_SIGNATURE,		/* monitor -> session */
};

enum auth_mech {
	MECH_LOGIN = 1, MECH_PLAIN, MECH_SASL_LOGIN, MECH_CRAM_MD5,
	MECH_OAUTHBEARER, MECH_XOAUTH2, MECH_EXTERNAL
};

/* What a TLS handshake established, as the session tells it: for the
 * log, auth_http's Auth-SSL-* headers and EXTERNAL. */
struct tls_facts {
	uint32_t active;	/* TLS is up */
	uint32_t resumed;
	uint32_t cert;		/* the client sent a certificate */
	uint32_t verified;	/* ... and it verified against the CA */
	char	 protocol[TLS_NAME_MAX];	/* "TLS1.3" */
	char	 cipher[TLS_NAME_MAX];
	char	 cn[USER_MAX + 1];	/* its subject CN, if one fits */
	char	 subject[TLS_DN_MAX], issuer[TLS_DN_MAX];
	char	 serial[TLS_SERIAL_MAX];	/* hex */
	char	 fingerprint[2 * TLS_FINGERPRINT_LEN + 1];	/* hex */
	/* The client's chain, DER, for the monitor to verify itself. */
	uint32_t ncerts;
	uint32_t der_len[TLS_CHAIN_CERTS];
	unsigned char der[TLS_CHAIN_BYTES];
};

struct msg_auth {
	uint32_t type;
	uint32_t mech;		/* enum auth_mech, for the log */
	uint32_t authz_mismatch;	/* PLAIN authzid named another user */
	char	 tag[TAG_MAX + 1];
	char	 user[USER_MAX + 1];
	char	 pass[PASS_MAX + 1];	/* CRAM-MD5: the digest; OAuth: token */
	struct tls_facts tls;		/* EXTERNAL: user is the authzid */
};
/*
 * MSG_AUTH is this header and the chain's DER bytes, no more: the 16 KiB
 * of tls.der are neither zeroed, copied nor sent when unused (each page a
 * fresh session touches is a page fault; issue 14).  The monitor checks
 * n == MSG_AUTH_HDR + msg_auth_der(a) exactly.
 */
#define MSG_AUTH_HDR	offsetof(struct msg_auth, tls.der)

/* The DER bytes the header's ncerts and der_len[] announce, or
 * SIZE_MAX when they cannot fit: too many certificates, a length past
 * the buffer, or a length given beyond ncerts. */
static inline size_t
msg_auth_der(const struct msg_auth *a)
{
	size_t used = 0;
	uint32_t i;

	if (a->tls.ncerts > TLS_CHAIN_CERTS)
		return SIZE_MAX;
	for (i = 0; i < TLS_CHAIN_CERTS; i++) {
		if (i >= a->tls.ncerts ? a->tls.der_len[i] != 0 :
		    a->tls.der_len[i] > TLS_CHAIN_BYTES - used)
			return SIZE_MAX;
		used += a->tls.der_len[i];
	}
	return used;
}

enum auth_result {
	AUTH_OK = 1, AUTH_NO, AUTH_TEMPFAIL, AUTH_AUTHZ,
	AUTH_UNAVAILABLE,	/* no backend answered */
	AUTH_BACKEND_NO,	/* the backend refused: its text is passed */
};

struct msg_auth_result {
	uint32_t type;
	uint32_t result;	/* enum auth_result */
	uint32_t close;		/* 0, or close after answering: CLOSE_* */
	char	 text[AUTH_TEXT_MAX + 1];	/* auth_http's NO text, or "" */
};
#define CLOSE_ATTEMPTS	1	/* auth.max_attempts used up */
#define CLOSE_REFUSED	2	/* auth_http said no without Auth-Wait */

/* Session -> monitor: empty ask; monitor -> session: the challenge. */
struct msg_challenge {
	uint32_t type;
	char	 text[CHALLENGE_MAX + 1];
};

struct msg_handoff {
	uint32_t type;
	uint32_t tls;		/* the session relays: answer with MSG_PIPE */
	uint32_t len;
	unsigned char data[CLIENT_BUFFER_MAX];
};
#define MSG_HANDOFF_HDR	offsetof(struct msg_handoff, data)

/* With the backend socket attached: log in there with these. */
struct msg_connect {
	uint32_t type;
	char	 user[USER_MAX + 1];	/* authentication identity */
	char	 pass[PASS_MAX + 1];
	char	 authzid[USER_MAX + 1];	/* master user: the user; else "" */
	char	 backend[HOST_MAX + PORT_MAX + 2];	/* for the log */
	char	 tls_name[HOST_MAX + 1];	/* the name its certificate has */
};

enum verdict { VERDICT_OK = 1, VERDICT_NO, VERDICT_UNAVAILABLE };

struct msg_verdict {
	uint32_t type;
	uint32_t verdict;	/* enum verdict */
};

/* With the backend socket attached: the relay's first bytes. */
struct msg_relay {
	uint32_t type;
	uint32_t client_len;	/* client bytes still for the backend */
	uint32_t backend_len;	/* backend bytes still for the client */
	unsigned char data[CLIENT_BUFFER_MAX + BACKEND_BUFFER];
};
#define MSG_RELAY_HDR	offsetof(struct msg_relay, data)

/* MSG_PIPE, MSG_RELAY_KEEP: the type alone (MSG_PIPE with the fd). */
struct msg_type_only {
	uint32_t type;
};

/* A TLS handshake's signature, made by the monitor with a key the
 * session never holds. */
struct msg_sign {
	uint32_t type;
	uint32_t key;		/* which ssl_certificate_key */
	uint32_t hashed;	/* data is a hash (sign_hash) */
	uint32_t algo;		/* gnutls_sign_algorithm_t */
	uint32_t flags;
	uint32_t len;
	unsigned char data[TLS_SIGN_DATA_MAX];
};

struct msg_signature {
	uint32_t type;
	uint32_t len;		/* 0: it failed */
	unsigned char sig[TLS_SIG_MAX];
};

/* Listener mode: a session forked ahead of its client gets it. */
struct msg_client {
	uint32_t type;
	struct conn conn;	/* in and out: the descriptor passed */
};

struct msg_relay_end {
	uint32_t type;
	uint64_t c2b, b2c;
	char	 end[32];
};

struct msg_client_addr {
	uint32_t type;
	char	 ip[ADDR_MAX];
	char	 port[PORT_MAX];
	char	 dst_ip[ADDR_MAX];	/* the header's destination */
	char	 dst_port[PORT_MAX];
};

/* Send one message; 0 or -1. */
int msg_send(int fd, const void *m, size_t len);
/* Receive one message of at most max bytes; its size, 0 on EOF, -1 on
 * error or if it was longer than max. */
ssize_t msg_recv(int fd, void *m, size_t max);
/* The same, passing a file descriptor (SCM_RIGHTS). */
int msg_send_fd(int fd, const void *m, size_t len, int pass);
/* *got is the descriptor received, or -1 if none came.  More than one
 * descriptor, or a truncated message: every descriptor closed, -1. */
ssize_t msg_recv_fd(int fd, void *m, size_t max, int *got);
/* Is s[0..size) NUL-terminated? */
int msg_string_ok(const char *s, size_t size);

#endif
