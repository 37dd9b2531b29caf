/*
 * PROXY protocol v1 and v2 (haproxy.org/download/2.9/doc/proxy-protocol.txt).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define V2_HDR		16
#define V2_CMD_LOCAL	0x20
#define V2_CMD_PROXY	0x21
#define V2_INET_STREAM	0x11
#define V2_INET6_STREAM	0x21

/* A port: 1 to 5 digits, at most 65535, no leading zero. */
static int
port_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 5 || strspn(s, "0123456789") != n ||
	    (n > 1 && s[0] == '0'))
		return 0;
	return atol(s) <= 65535;
}

/* "PROXY TCP4 src dst sport dport\r\n" */
static enum proxy_status
parse_v1(const unsigned char *p, size_t len, struct proxy_addr *a,
    size_t *used)
{
	char line[PROXY_V1_MAX + 1], proto[8], *f[6], *save = NULL;
	const unsigned char *lf;
	unsigned char bin[16];
	size_t n;
	int i, family;

	if ((lf = memchr(p, '\n', len < PROXY_V1_MAX ? len : PROXY_V1_MAX)) ==
	    NULL)
		return len < PROXY_V1_MAX ? PROXY_MORE : PROXY_BAD;
	n = (size_t)(lf - p);
	if (n == 0 || p[n - 1] != '\r')
		return PROXY_BAD;
	memcpy(line, p, n - 1);
	line[n - 1] = '\0';
	*used = n + 1;
	for (i = 0; i < 6; i++)
		if ((f[i] = strtok_r(i ? NULL : line, " ", &save)) == NULL)
			break;
	if (i >= 2 && strcmp(f[0], "PROXY") == 0 && strcmp(f[1], "UNKNOWN") == 0) {
		a->local = 1;
		return PROXY_DONE;
	}
	if (i != 6 || strtok_r(NULL, " ", &save) != NULL ||
	    strcmp(f[0], "PROXY") != 0)
		return PROXY_BAD;
	snprintf(proto, sizeof(proto), "%s", f[1]);
	if (strcmp(proto, "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(proto, "TCP6") == 0)
		family = AF_INET6;
	else
		return PROXY_BAD;
	if (inet_pton(family, f[2], bin) != 1 ||
	    inet_pton(family, f[3], bin) != 1 || !port_ok(f[4]) ||
	    !port_ok(f[5]))
		return PROXY_BAD;
	snprintf(a->src_ip, sizeof(a->src_ip), "%s", f[2]);
	snprintf(a->dst_ip, sizeof(a->dst_ip), "%s", f[3]);
	snprintf(a->src_port, sizeof(a->src_port), "%s", f[4]);
	snprintf(a->dst_port, sizeof(a->dst_port), "%s", f[5]);
	return PROXY_DONE;
}

static void
v2_address(int family, const unsigned char *ip, const unsigned char *port,
    char *ipout, size_t ipsize, char *portout, size_t portsize)
{
	inet_ntop(family, ip, ipout, (socklen_t)ipsize);
	snprintf(portout, portsize, "%u", (unsigned)(port[0] << 8 | port[1]));
}

static enum proxy_status
parse_v2(const unsigned char *p, size_t len, struct proxy_addr *a,
    size_t *used)
{
	size_t body;
	int fam;

	if (len < V2_HDR)
		return PROXY_MORE;
	body = (size_t)(p[14] << 8 | p[15]);
	if (V2_HDR + body > PROXY_V2_MAX)
		return PROXY_BAD;
	if (len < V2_HDR + body)
		return PROXY_MORE;
	*used = V2_HDR + body;
	if (p[12] == V2_CMD_LOCAL) {
		a->local = 1;
		return PROXY_DONE;
	}
	if (p[12] != V2_CMD_PROXY)
		return PROXY_BAD;
	fam = p[13];
	p += V2_HDR;
	if (fam == V2_INET_STREAM && body >= 12) {
		v2_address(AF_INET, p, p + 8, a->src_ip, sizeof(a->src_ip),
		    a->src_port, sizeof(a->src_port));
		v2_address(AF_INET, p + 4, p + 10, a->dst_ip, sizeof(a->dst_ip),
		    a->dst_port, sizeof(a->dst_port));
	} else if (fam == V2_INET6_STREAM && body >= 36) {
		v2_address(AF_INET6, p, p + 32, a->src_ip, sizeof(a->src_ip),
		    a->src_port, sizeof(a->src_port));
		v2_address(AF_INET6, p + 16, p + 34, a->dst_ip,
		    sizeof(a->dst_ip), a->dst_port, sizeof(a->dst_port));
	} else
		/* UNSPEC or a unix socket: keep the connection's addresses. */
		a->local = 1;
	return PROXY_DONE;
}

enum proxy_status
proxy_parse(const unsigned char *p, size_t len, struct proxy_addr *a,
    size_t *used)
{
	size_t n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);

	memset(a, 0, sizeof(*a));
	*used = 0;
	if (memcmp(p, v2_sig, n) == 0)
		return n < sizeof(v2_sig) ? PROXY_MORE : parse_v2(p, len, a, used);
	n = len < 6 ? len : 6;
	if (memcmp(p, "PROXY ", n) != 0)
		return PROXY_BAD;
	return n < 6 ? PROXY_MORE : parse_v1(p, len, a, used);
}

/* The family both addresses share, or 0. */
static int
family_of(const struct proxy_addr *a, unsigned char *src, unsigned char *dst)
{
	if (inet_pton(AF_INET, a->src_ip, src) == 1 &&
	    inet_pton(AF_INET, a->dst_ip, dst) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, a->src_ip, src) == 1 &&
	    inet_pton(AF_INET6, a->dst_ip, dst) == 1)
		return AF_INET6;
	return 0;
}

size_t
proxy_build_v1(const struct proxy_addr *a, unsigned char *out, size_t outsize)
{
	unsigned char src[16], dst[16];
	int family = a->local ? 0 : family_of(a, src, dst), n;

	if (family == 0)
		n = snprintf((char *)out, outsize, "PROXY UNKNOWN\r\n");
	else
		n = snprintf((char *)out, outsize, "PROXY %s %s %s %s %s\r\n",
		    family == AF_INET ? "TCP4" : "TCP6", a->src_ip, a->dst_ip,
		    a->src_port, a->dst_port);
	return n < 0 || (size_t)n >= outsize ? 0 : (size_t)n;
}

size_t
proxy_build_v2(const struct proxy_addr *a, unsigned char *out, size_t outsize)
{
	unsigned char src[16], dst[16];
	int family = a->local ? 0 : family_of(a, src, dst);
	size_t alen = family == AF_INET ? 4 : 16, body;
	unsigned sport = (unsigned)atoi(a->src_port);
	unsigned dport = (unsigned)atoi(a->dst_port);
	unsigned char *p;

	body = family == 0 ? 0 : 2 * alen + 4;
	if (outsize < V2_HDR + body)
		return 0;
	memcpy(out, v2_sig, sizeof(v2_sig));
	out[12] = family == 0 ? V2_CMD_LOCAL : V2_CMD_PROXY;
	out[13] = family == 0 ? 0 : family == AF_INET ? V2_INET_STREAM :
	    V2_INET6_STREAM;
	out[14] = (unsigned char)(body >> 8);
	out[15] = (unsigned char)body;
	if (family == 0)
		return V2_HDR;
	p = out + V2_HDR;
	memcpy(p, src, alen);
	memcpy(p + alen, dst, alen);
	p[2 * alen] = (unsigned char)(sport >> 8);
	p[2 * alen + 1] = (unsigned char)sport;
	p[2 * alen + 2] = (unsigned char)(dport >> 8);
	p[2 * alen + 3] = (unsigned char)dport;
	return V2_HDR + body;
}
