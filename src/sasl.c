/*
 * SASL decoding: base64 (RFC 4648), PLAIN (RFC 4616), LOGIN.
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
