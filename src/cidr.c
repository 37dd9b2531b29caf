/*
 * CIDR ranges.  An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches the
 * IPv4 ranges, since that is what a dual-stack socket reports.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"

int
cidr_parse(const char *s, struct cidr *c)
{
	char host[64], *slash, *end;
	long bits;

	if (strlen(s) >= sizeof(host))
		return -1;
	memcpy(host, s, strlen(s) + 1);
	memset(c, 0, sizeof(*c));
	if ((slash = strchr(host, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
		c->bits = 32;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
		c->bits = 128;
	} else
		return -1;
	if (slash != NULL) {
		bits = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || bits < 0 || bits > c->bits)
			return -1;
		c->bits = (int)bits;
	}
	return 0;
}

static int
prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0;
}

int
cidr_match(const struct cidr *c, int n, const char *ip)
{
	static const unsigned char mapped[12] =
	    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	unsigned char a[16];
	int family, i;

	if (inet_pton(AF_INET, ip, a) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, ip, a) == 1) {
		family = AF_INET6;
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memmove(a, a + 12, 4);
			family = AF_INET;
		}
	} else
		return 0;
	for (i = 0; i < n; i++)
		if (c[i].family == family && prefix_equal(c[i].addr, a, c[i].bits))
			return 1;
	return 0;
}

/*
 * The source a connection counts against (listener mode's
 * max_preauth_per_source): an IPv4 address whole, an IPv6 one by its /64,
 * since one host or site is given a whole /64 and picks addresses from it
 * at will.  An IPv4-mapped address is the IPv4 one; a zone ("%eth0") is
 * not part of it.  key: the 16-byte key; 0, or -1 when ip is no address.
 */
int
cidr_source_key(const char *ip, unsigned char key[16])
{
	static const unsigned char mapped[12] =
	    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char host[64];
	size_t n = strcspn(ip, "%");

	if (n >= sizeof(host))
		return -1;
	memcpy(host, ip, n);
	host[n] = '\0';
	memset(key, 0, 16);
	if (inet_pton(AF_INET, host, key + 12) == 1) {
		memcpy(key, mapped, sizeof(mapped));
		return 0;
	}
	if (inet_pton(AF_INET6, host, key) != 1)
		return -1;
	if (memcmp(key, mapped, sizeof(mapped)) != 0)
		memset(key + 8, 0, 8);
	return 0;
}
