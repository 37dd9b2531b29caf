/*
 * CRAM-MD5 verification (RFC 2195) in the monitor: HMAC-MD5 through
 * GnuTLS, which is loaded with dlopen() the first time it is needed, so
 * that no connection pays for linking GnuTLS at start-up.
 */
#ifndef IMAPGATE_CRAM_H
#define IMAPGATE_CRAM_H

#include <stddef.h>

/* Does hex (32 lower-case hex digits) equal HMAC-MD5(secret, challenge)?
 * 1 yes, 0 no (compared in constant time), -1 GnuTLS unavailable. */
int cram_md5_verify(const char *secret, const char *challenge,
    const char *hex);

/* Make a challenge "<random.time@server_name>" in out.  0, or -1. */
int cram_md5_challenge(const char *server_name, char *out, size_t outsize);

#endif
