/*
 * SASL decoding: base64 (RFC 4648), PLAIN (RFC 4616), LOGIN, and at the
 * end OAUTHBEARER (RFC 7628), XOAUTH2 and CRAM-MD5 (RFC 2195).
 */
#include <string.h>

#include "sasl.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsize)
{
	size_t i, n = 0;

	if (inlen % 4 != 0)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		int v[4], k, pad = 0;
		unsigned long q = 0;

		for (k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			/* '=' only at the very end, in the last two places */
			if (c == '=' && i + 4 == inlen && k >= 2 &&
			    (k == 3 || in[i + 3] == '=')) {
				v[k] = 0;
				pad++;
				continue;
			}
			if ((v[k] = b64_value(c)) < 0)
				return -1;
		}
		for (k = 0; k < 4; k++)
			q = q << 6 | (unsigned long)v[k];
		if (n + 3 - (size_t)pad > outsize)
			return -1;
		out[n++] = (unsigned char)(q >> 16);
		if (pad < 2)
			out[n++] = (unsigned char)(q >> 8);
		if (pad < 1)
			out[n++] = (unsigned char)q;
	}
	return (long)n;
}

long
b64_encode(const unsigned char *in, size_t inlen, char *out, size_t outsize)
{
	size_t i, n = 0;

	if ((inlen + 2) / 3 * 4 + 1 > outsize)
		return -1;
	for (i = 0; i < inlen; i += 3) {
		unsigned long q = (unsigned long)in[i] << 16;
		size_t left = inlen - i;

		if (left > 1)
			q |= (unsigned long)in[i + 1] << 8;
		if (left > 2)
			q |= in[i + 2];
		out[n++] = b64_alphabet[q >> 18 & 63];
		out[n++] = b64_alphabet[q >> 12 & 63];
		out[n++] = left > 1 ? b64_alphabet[q >> 6 & 63] : '=';
		out[n++] = left > 2 ? b64_alphabet[q & 63] : '=';
	}
	out[n] = '\0';
	return (long)n;
}

/* Copy a NUL-free field into a NUL-terminated buffer. */
static int
copy_field(const unsigned char *p, size_t len, char *out, size_t outsize)
{
	if (len >= outsize || memchr(p, '\0', len) != NULL)
		return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

enum sasl_result
sasl_plain(const unsigned char *msg, size_t len, char *user, size_t usersize,
    char *pass, size_t passsize)
{
	const unsigned char *nul1, *nul2, *end = msg + len;
	size_t zlen, clen;

	if ((nul1 = memchr(msg, '\0', len)) == NULL)
		return SASL_MALFORMED;
	if ((nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1))) == NULL)
		return SASL_MALFORMED;
	zlen = (size_t)(nul1 - msg);
	clen = (size_t)(nul2 - nul1 - 1);
	if (clen == 0 ||
	    copy_field(nul1 + 1, clen, user, usersize) < 0 ||
	    copy_field(nul2 + 1, (size_t)(end - nul2 - 1), pass, passsize) < 0)
		return SASL_MALFORMED;
	if (zlen != 0 && (zlen != clen || memcmp(msg, nul1 + 1, clen) != 0))
		return SASL_AUTHZ;
	return SASL_OK;
}

enum sasl_result
sasl_login_field(const unsigned char *msg, size_t len, char *out,
    size_t outsize)
{
	return copy_field(msg, len, out, outsize) < 0 ? SASL_MALFORMED : SASL_OK;
}

#define KVSEP		0x01	/* RFC 7628 kvsep, ^A */
#define CRAM_HEX	32	/* an HMAC-MD5 digest in hex */

/* ASCII only, whatever the locale: RFC 7628 keys are ALPHA. */
static int
is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* RFC 6750 b64token: 1*(ALPHA / DIGIT / "-._~+/") *"=".  Checked because
 * the token travels on in an HTTP header (Auth-Pass): no CR, LF, SP. */
static int
b64token_ok(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len && (is_alpha(p[i]) || (p[i] >= '0' && p[i] <= '9') ||
	    memchr("-._~+/", p[i], 6) != NULL))
		i++;
	if (i == 0)
		return 0;
	while (i < len && p[i] == '=')
		i++;
	return i == len;
}

/* An auth= value: "Bearer" in any case, 1*SP, a b64token. */
static int
bearer_token(const unsigned char *p, size_t len, char *token,
    size_t tokensize)
{
	static const char scheme[] = "bearer";
	size_t i;

	if (len < sizeof(scheme) - 1)
		return -1;
	for (i = 0; i < sizeof(scheme) - 1; i++)
		if ((p[i] | 0x20) != scheme[i])
			return -1;
	while (i < len && p[i] == ' ')
		i++;
	if (i == sizeof(scheme) - 1 || !b64token_ok(p + i, len - i))
		return -1;
	return copy_field(p + i, len - i, token, tokensize);
}

/* RFC 5801 saslname: 1*(safe / "=2C" / "=3D"); any other "=" (and NUL)
 * is malformed.  The caller has cut it at its ",". */
static int
saslname(const unsigned char *p, size_t len, char *out, size_t outsize)
{
	size_t i, n = 0;
	unsigned char c;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if ((c = p[i]) == '\0')
			return -1;
		if (c == '=') {
			if (len - i < 3)
				return -1;
			if (p[i + 1] == '2' && (p[i + 2] | 0x20) == 'c')
				c = ',';
			else if (p[i + 1] == '3' && (p[i + 2] | 0x20) == 'd')
				c = '=';
			else
				return -1;
			i += 2;
		}
		if (n + 1 >= outsize)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* The gs2-header: "n," or "y," (we offer no channel binding, so "p="
 * is malformed), an optional "a=" saslname, ",".  Its length, or 0. */
static size_t
gs2_header(const unsigned char *msg, size_t len, char *user,
    size_t usersize)
{
	const unsigned char *comma;
	size_t n;

	if (len < 3 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',' ||
	    usersize == 0)
		return 0;
	if ((comma = memchr(msg + 2, ',', len - 2)) == NULL)
		return 0;
	n = (size_t)(comma - msg) - 2;
	user[0] = '\0';
	if (n != 0 && (n < 2 || memcmp(msg + 2, "a=", 2) != 0 ||
	    saslname(msg + 4, n - 2, user, usersize) < 0))
		return 0;
	return (size_t)(comma - msg) + 1;
}

/* One kvpair of RFC 7628 (key 1*ALPHA "=" value, without its ^A): the
 * value is *(VCHAR / SP / HTAB / CR / LF); auth= must come once. */
static int
oauth_kvpair(const unsigned char *p, size_t len, int *have_auth,
    char *token, size_t tokensize)
{
	size_t k = 0, i;

	while (k < len && is_alpha(p[k]))
		k++;
	if (k == 0 || k == len || p[k] != '=')
		return -1;
	for (i = k + 1; i < len; i++)
		if ((p[i] < 0x20 || p[i] > 0x7e) && p[i] != '\t' &&
		    p[i] != '\r' && p[i] != '\n')
			return -1;
	if (k != 4 || memcmp(p, "auth", 4) != 0)
		return 0;
	if (*have_auth)
		return -1;
	*have_auth = 1;
	return bearer_token(p + 5, len - 5, token, tokensize);
}

enum sasl_result
sasl_oauthbearer(const unsigned char *msg, size_t len, char *user,
    size_t usersize, char *token, size_t tokensize)
{
	const unsigned char *p, *sep, *end = msg + len;
	size_t h;
	int have_auth = 0;

	if ((h = gs2_header(msg, len, user, usersize)) == 0)
		return SASL_MALFORMED;
	p = msg + h;
	if (p == end || *p++ != KVSEP)
		return SASL_MALFORMED;
	/* kvpairs, each ended by ^A, then the closing ^A, then nothing */
	while (p < end && *p != KVSEP) {
		if ((sep = memchr(p, KVSEP, (size_t)(end - p))) == NULL ||
		    oauth_kvpair(p, (size_t)(sep - p), &have_auth, token,
		    tokensize) < 0)
			return SASL_MALFORMED;
		p = sep + 1;
	}
	if (p + 1 != end || !have_auth)
		return SASL_MALFORMED;
	return SASL_OK;
}

enum sasl_result
sasl_xoauth2(const unsigned char *msg, size_t len, char *user,
    size_t usersize, char *token, size_t tokensize)
{
	const unsigned char *sep, *auth, *end = msg + len;

	if (len < 5 || memcmp(msg, "user=", 5) != 0 ||
	    (sep = memchr(msg + 5, KVSEP, len - 5)) == NULL ||
	    sep == msg + 5 ||
	    copy_field(msg + 5, (size_t)(sep - msg) - 5, user, usersize) < 0)
		return SASL_MALFORMED;
	/* "auth=Bearer " token ^A ^A, and nothing after */
	auth = sep + 1;
	if (end - auth < 7 || memcmp(auth, "auth=", 5) != 0 ||
	    end[-1] != KVSEP || end[-2] != KVSEP ||
	    memchr(auth, KVSEP, (size_t)(end - auth) - 2) != NULL ||
	    bearer_token(auth + 5, (size_t)(end - auth) - 7, token,
	    tokensize) < 0)
		return SASL_MALFORMED;
	return SASL_OK;
}

enum sasl_result
sasl_cram_md5(const unsigned char *msg, size_t len, char *user,
    size_t usersize, char *hex, size_t hexsize)
{
	size_t sp = len, i;
	unsigned char c;

	while (sp > 0 && msg[sp - 1] != ' ')
		sp--;
	/* msg[sp - 1] is the last space: the user before it, the digest
	 * after; the user may hold spaces itself. */
	if (sp < 2 || len - sp != CRAM_HEX || hexsize <= CRAM_HEX ||
	    copy_field(msg, sp - 1, user, usersize) < 0)
		return SASL_MALFORMED;
	for (i = 0; i < CRAM_HEX; i++) {
		c = msg[sp + i];
		if (c >= 'A' && c <= 'F')
			c |= 0x20;
		if ((c < '0' || c > '9') && (c < 'a' || c > 'f'))
			return SASL_MALFORMED;
		hex[i] = (char)c;
	}
	hex[CRAM_HEX] = '\0';
	return SASL_OK;
}
