/*
 * The one place that computes the CAPABILITY list, as nginx does: the
 * operator's tokens, our pre-auth extensions, AUTH= per imap_auth, and
 * STARTTLS / LOGINDISABLED per the TLS policy.  Pure.
 */
#ifndef IMAPGATE_CAPABILITY_H
#define IMAPGATE_CAPABILITY_H

#include <stddef.h>

/* imap_auth methods, as bits. */
#define AUTHM_PLAIN		0x01
#define AUTHM_LOGIN		0x02
#define AUTHM_CRAM_MD5		0x04
#define AUTHM_OAUTHBEARER	0x08
#define AUTHM_XOAUTH2		0x10
#define AUTHM_EXTERNAL		0x20	/* with a verified client certificate */

enum starttls_mode { STARTTLS_OFF, STARTTLS_ON, STARTTLS_ONLY };

struct capa_policy {
	char *const	*tokens;	/* imap_capabilities */
	size_t		 ntokens;
	unsigned	 auth_methods;	/* AUTHM_* */
	enum starttls_mode starttls;
	int		 tls_active;
	int		 external;	/* a verified client certificate */
};

/* Write the space-separated list into out.  Returns its length, or -1 if
 * it does not fit. */
int capability_build(const struct capa_policy *p, char *out, size_t outsize);

/* Is the capability token valid for IMAP (an atom)? */
int capability_token_ok(const char *tok);

#endif
