/*
 * CRAM-MD5 (RFC 2195): the challenge, and HMAC-MD5 through GnuTLS,
 * loaded with dlopen() on first use.  Only the types come from the
 * GnuTLS headers: no GnuTLS symbol is referenced, so the binary does
 * not link it and a connection that never uses CRAM-MD5 never loads it.
 */

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "cram.h"
#include "dl.h"
#include "log.h"

#define LIBGNUTLS	"libgnutls.so.30"
#define MD5_LEN		16
#define MD5_HEX		(2 * MD5_LEN)

typedef int (*hmac_fast_fn)(gnutls_mac_algorithm_t, const void *, size_t,
    const void *, size_t, void *);

/* The library once loaded stays: the monitor may verify again. */
static hmac_fast_fn
load_hmac_fast(void)
{
	static hmac_fast_fn fn;

	if (fn == NULL)
		*(void **)&fn = dl_symbol(LIBGNUTLS, "gnutls_hmac_fast");
	return fn;
}

/* Lower-case hex, as RFC 2195 sends the digest. */
static void
hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

int
cram_md5_verify(const char *secret, const char *challenge, const char *hex)
{
	unsigned char mac[MD5_LEN];
	char want[MD5_HEX + 1];
	unsigned char diff = 0;
	hmac_fast_fn hmac;
	size_t i;

	if ((hmac = load_hmac_fast()) == NULL)
		return -1;
	if (hmac(GNUTLS_MAC_MD5, secret, strlen(secret), challenge,
	    strlen(challenge), mac) < 0) {
		log_err("%s: HMAC-MD5 failed", LIBGNUTLS);
		return -1;
	}
	hex_encode(mac, sizeof(mac), want);
	/* The length is no secret; the digits are compared without an
	 * early exit. */
	if (strlen(hex) != MD5_HEX)
		diff = 1;
	else
		for (i = 0; i < MD5_HEX; i++)
			diff |= (unsigned char)(want[i] ^ hex[i]);
	explicit_bzero(mac, sizeof(mac));
	explicit_bzero(want, sizeof(want));
	return diff == 0;
}

/* The name goes into a msg-id "<...>": printable, no space, no angle
 * brackets, so that the challenge parses back the same everywhere. */
static int
name_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || *s == '<' || *s == '>')
			return 0;
	return 1;
}

int
cram_md5_challenge(const char *server_name, char *out, size_t outsize)
{
	unsigned int r;
	int n;

	if (outsize > 0)
		out[0] = '\0';
	if (!name_ok(server_name) ||
	    getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	n = snprintf(out, outsize, "<%u.%ld@%s>", r, (long)time(NULL),
	    server_name);
	if (n < 0 || (size_t)n >= outsize) {
		if (outsize > 0)
			out[0] = '\0';
		return -1;
	}
	return 0;
}
