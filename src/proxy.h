/*
 * The PROXY protocol (HAProxy's, versions 1 and 2): reading the header a
 * load balancer puts before the client's bytes, and writing one for a
 * backend.  Pure.
 */
#ifndef IMAPGATE_PROXY_H
#define IMAPGATE_PROXY_H

#include <stddef.h>

#include "bounds.h"

struct proxy_addr {
	int	local;		/* no addresses: v2 LOCAL, v1 UNKNOWN */
	char	src_ip[ADDR_MAX], src_port[PORT_MAX];
	char	dst_ip[ADDR_MAX], dst_port[PORT_MAX];
};

enum proxy_status { PROXY_MORE, PROXY_DONE, PROXY_BAD };

/* A v1 or v2 header at p[0..len); *used is its length when DONE. */
enum proxy_status proxy_parse(const unsigned char *p, size_t len,
    struct proxy_addr *a, size_t *used);

/* Build a header for a->src -> a->dst.  Returns its length, or 0 if it
 * does not fit.  Addresses that are not IPv4/IPv6 give v1 UNKNOWN or v2
 * LOCAL. */
size_t proxy_build_v1(const struct proxy_addr *a, unsigned char *out,
    size_t outsize);
size_t proxy_build_v2(const struct proxy_addr *a, unsigned char *out,
    size_t outsize);

#endif
