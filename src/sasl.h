/*
 * SASL message decoding for the pre-auth dialogue.  Pure: no I/O, no
 * allocation.  Base64 is our own here rather than GnuTLS's so that a
 * plaintext connection never loads GnuTLS (DESIGN.md section 4).
 */
#ifndef IMAPGATE_SASL_H
#define IMAPGATE_SASL_H

#include <stddef.h>

/* Decode RFC 4648 base64 (padding required, no whitespace).
 * Returns the decoded length, or -1 if invalid or larger than outsize. */
long b64_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outsize);
/* Encode; returns the length written (NUL-terminated), or -1. */
long b64_encode(const unsigned char *in, size_t inlen, char *out,
    size_t outsize);

enum sasl_result {
	SASL_OK,
	SASL_MALFORMED,	/* answer BAD */
	SASL_AUTHZ,	/* authzid names another user: answer NO */
};

/*
 * RFC 4616 PLAIN: authzid NUL authcid NUL passwd.  user gets the authcid,
 * pass the password; each buffer is NUL-terminated.  The authzid must be
 * empty or equal to the authcid (we have no proxy authorization).
 */
enum sasl_result sasl_plain(const unsigned char *msg, size_t len,
    char *user, size_t usersize, char *pass, size_t passsize);

/* One field of the LOGIN mechanism (user name or password): no NUL. */
enum sasl_result sasl_login_field(const unsigned char *msg, size_t len,
    char *out, size_t outsize);

#endif
