/*
 * Address ranges for set_real_ip_from.  Pure.
 */
#ifndef IMAPGATE_CIDR_H
#define IMAPGATE_CIDR_H

struct cidr {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	addr[16];
	int		bits;
};

/* "192.0.2.0/24", "2001:db8::/32", or a bare address.  0 or -1. */
int cidr_parse(const char *s, struct cidr *c);
/* Is the numeric address ip inside one of the n ranges? */
int cidr_match(const struct cidr *c, int n, const char *ip);
/* The 16-byte key of ip's source: IPv4 whole, IPv6 per /64.  0 or -1. */
int cidr_source_key(const char *ip, unsigned char key[16]);

#endif
