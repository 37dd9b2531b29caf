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

/*
 * RFC 7628 OAUTHBEARER client response:
 *   gs2-header ("n,a=user," or "n,,") ^A "auth=Bearer " token ^A [kv ^A] ^A
 * user gets the a= value (may be empty; "=2C" and "=3D" decoded), token
 * the bearer token.
 */
enum sasl_result sasl_oauthbearer(const unsigned char *msg, size_t len,
    char *user, size_t usersize, char *token, size_t tokensize);

/* XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A */
enum sasl_result sasl_xoauth2(const unsigned char *msg, size_t len,
    char *user, size_t usersize, char *token, size_t tokensize);

/* RFC 2195 CRAM-MD5 response "user SP digest": split at the last space;
 * the digest must be 32 lower- or upper-case hex digits (returned in
 * lower case). */
enum sasl_result sasl_cram_md5(const unsigned char *msg, size_t len,
    char *user, size_t usersize, char *hex, size_t hexsize);

/* One field of the LOGIN mechanism (user name or password): no NUL. */
enum sasl_result sasl_login_field(const unsigned char *msg, size_t len,
    char *out, size_t outsize);

#endif
