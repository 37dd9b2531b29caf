/*
 * PROXY protocol headers, CIDR ranges, backend addresses.
 */
#include <string.h>

#include "cidr.h"
#include "config.h"
#include "proxy.h"
#include "unit.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static void
proxy_v1_parse(void)
{
	static const char h[] = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\nA";
	struct proxy_addr a;
	size_t used, i;

	CHECK_EQ(proxy_parse((const unsigned char *)h, sizeof(h) - 1, &a,
	    &used), PROXY_DONE);
	CHECK_UEQ(used, sizeof(h) - 2);
	CHECK_STR(a.src_ip, "192.0.2.7");
	CHECK_STR(a.src_port, "40000");
	CHECK_STR(a.dst_ip, "127.0.0.1");
	CHECK_STR(a.dst_port, "143");
	CHECK_EQ(a.local, 0);
	/* Every prefix wants more, never a verdict. */
	for (i = 0; i < sizeof(h) - 2; i++)
		CHECK_EQ(proxy_parse((const unsigned char *)h, i, &a, &used),
		    PROXY_MORE);
}

static void
proxy_v1_bad(void)
{
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.7 127.0.0.1 40000\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 40000 143 x\r\n",
		"PROXY TCP4 ::1 127.0.0.1 40000 143\r\n",
		"PROXY TCP5 192.0.2.7 127.0.0.1 40000 143\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 70000 143\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 040 143\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\n",
		"GET / HTTP/1.1\r\n",
		"a LOGIN x y\r\n",
	};
	struct proxy_addr a;
	size_t used, i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(proxy_parse((const unsigned char *)bad[i],
		    strlen(bad[i]), &a, &used), PROXY_BAD);
	/* No line end within 107 bytes. */
	{
		unsigned char longline[200];

		memset(longline, 'x', sizeof(longline));
		memcpy(longline, "PROXY ", 6);
		CHECK_EQ(proxy_parse(longline, sizeof(longline), &a, &used),
		    PROXY_BAD);
	}
	CHECK_EQ(proxy_parse((const unsigned char *)"PROXY UNKNOWN\r\n", 15,
	    &a, &used), PROXY_DONE);
	CHECK_EQ(a.local, 1);
}

static void
proxy_v2_roundtrip(void)
{
	struct proxy_addr in, out;
	unsigned char h[PROXY_V2_MAX];
	size_t n, used, i;

	memset(&in, 0, sizeof(in));
	strcpy(in.src_ip, "2001:db8::7");
	strcpy(in.src_port, "51000");
	strcpy(in.dst_ip, "2001:db8::1");
	strcpy(in.dst_port, "993");
	n = proxy_build_v2(&in, h, sizeof(h));
	CHECK_UEQ(n, 16 + 36);
	CHECK_MEM(h, 12, v2_sig, 12);
	CHECK_EQ(h[12], 0x21);
	CHECK_EQ(h[13], 0x21);
	CHECK_EQ(proxy_parse(h, n, &out, &used), PROXY_DONE);
	CHECK_UEQ(used, n);
	CHECK_STR(out.src_ip, "2001:db8::7");
	CHECK_STR(out.src_port, "51000");
	CHECK_STR(out.dst_port, "993");
	for (i = 0; i < n; i++)
		CHECK_EQ(proxy_parse(h, i, &out, &used), PROXY_MORE);

	strcpy(in.src_ip, "192.0.2.7");
	strcpy(in.dst_ip, "127.0.0.1");
	n = proxy_build_v2(&in, h, sizeof(h));
	CHECK_UEQ(n, 16 + 12);
	CHECK_EQ(h[13], 0x11);
	CHECK_EQ(proxy_parse(h, n, &out, &used), PROXY_DONE);
	CHECK_STR(out.src_ip, "192.0.2.7");
	CHECK_STR(out.dst_ip, "127.0.0.1");

	/* Mixed families or a unix peer: LOCAL, no addresses. */
	strcpy(in.src_ip, "unix");
	n = proxy_build_v2(&in, h, sizeof(h));
	CHECK_UEQ(n, 16);
	CHECK_EQ(h[12], 0x20);
	CHECK_EQ(proxy_parse(h, n, &out, &used), PROXY_DONE);
	CHECK_EQ(out.local, 1);
	CHECK_UEQ(proxy_build_v1(&in, h, sizeof(h)), 15);
	CHECK_MEM(h, 15, "PROXY UNKNOWN\r\n", 15);
	CHECK_UEQ(proxy_build_v2(&in, h, 10), 0);
}

static void
proxy_v2_bad(void)
{
	unsigned char h[PROXY_V2_MAX + 64];
	struct proxy_addr a;
	size_t used;

	memset(h, 0, sizeof(h));
	memcpy(h, v2_sig, 12);
	h[12] = 0x22;			/* neither LOCAL nor PROXY */
	CHECK_EQ(proxy_parse(h, 16, &a, &used), PROXY_BAD);
	h[12] = 0x21;
	h[14] = (PROXY_V2_MAX >> 8) & 0xff;	/* longer than we take */
	h[15] = PROXY_V2_MAX & 0xff;
	CHECK_EQ(proxy_parse(h, sizeof(h), &a, &used), PROXY_BAD);
	h[13] = 0x11;			/* TCP4 with too short a body */
	h[14] = 0;
	h[15] = 4;
	CHECK_EQ(proxy_parse(h, 20, &a, &used), PROXY_DONE);
	CHECK_EQ(a.local, 1);
	CHECK_UEQ(used, 20);
}

static void
cidr_ranges(void)
{
	struct cidr c[3];

	CHECK_EQ(cidr_parse("127.0.0.0/8", &c[0]), 0);
	CHECK_EQ(cidr_parse("2001:db8::/32", &c[1]), 0);
	CHECK_EQ(cidr_parse("192.0.2.5", &c[2]), 0);
	CHECK(cidr_match(c, 3, "127.1.2.3"));
	CHECK(cidr_match(c, 3, "::ffff:127.0.0.9"));
	CHECK(cidr_match(c, 3, "2001:db8:1::1"));
	CHECK(cidr_match(c, 3, "192.0.2.5"));
	CHECK(!cidr_match(c, 3, "192.0.2.6"));
	CHECK(!cidr_match(c, 3, "128.0.0.1"));
	CHECK(!cidr_match(c, 3, "2001:db9::1"));
	CHECK(!cidr_match(c, 3, "unix"));
	CHECK(!cidr_match(c, 0, "127.0.0.1"));
	CHECK_EQ(cidr_parse("10.0.0.0/33", &c[0]), -1);
	CHECK_EQ(cidr_parse("10.0.0.0/", &c[0]), -1);
	CHECK_EQ(cidr_parse("10.0.0/8", &c[0]), -1);
	CHECK_EQ(cidr_parse("host.example/8", &c[0]), -1);
	CHECK_EQ(cidr_parse("10.1.2.3/12", &c[0]), 0);
	CHECK(cidr_match(c, 1, "10.15.255.255"));
	CHECK(!cidr_match(c, 1, "10.16.0.0"));
}

static void
backend_addresses(void)
{
	struct backend_addr a;

	CHECK_EQ(backend_addr_parse("imap1.example:143", &a), 0);
	CHECK_STR(a.host, "imap1.example");
	CHECK_STR(a.port, "143");
	CHECK_EQ(a.is_unix, 0);
	CHECK_EQ(backend_addr_parse("[2001:db8::1]:993", &a), 0);
	CHECK_STR(a.host, "2001:db8::1");
	CHECK_STR(a.port, "993");
	CHECK_EQ(backend_addr_parse("unix:/run/dovecot/imap", &a), 0);
	CHECK_STR(a.host, "/run/dovecot/imap");
	CHECK_EQ(a.is_unix, 1);
	CHECK_EQ(backend_addr_parse("imap1.example", &a), -1);
	CHECK_EQ(backend_addr_parse("imap1.example:", &a), -1);
	CHECK_EQ(backend_addr_parse("imap1.example:0", &a), -1);
	CHECK_EQ(backend_addr_parse("imap1.example:65536", &a), -1);
	CHECK_EQ(backend_addr_parse("imap1.example:14x", &a), -1);
	CHECK_EQ(backend_addr_parse("2001:db8::1:143", &a), -1);
	CHECK_EQ(backend_addr_parse(":143", &a), -1);
	CHECK_EQ(backend_addr_parse("unix:relative", &a), -1);
}

static void
auth_http_urls(void)
{
	struct auth_http_url u;

	CHECK_EQ(auth_http_url_parse("http://127.0.0.1:8080/auth?x=1", &u), 0);
	CHECK_STR(u.addr.host, "127.0.0.1");
	CHECK_STR(u.addr.port, "8080");
	CHECK_STR(u.uri, "/auth?x=1");
	CHECK_STR(u.host, "127.0.0.1:8080");
	CHECK_EQ(auth_http_url_parse("http://auth.example", &u), 0);
	CHECK_STR(u.addr.port, "80");
	CHECK_STR(u.uri, "/");
	CHECK_EQ(auth_http_url_parse("http://[2001:db8::1]/a", &u), 0);
	CHECK_STR(u.addr.host, "2001:db8::1");
	CHECK_STR(u.addr.port, "80");
	CHECK_EQ(auth_http_url_parse("unix:/run/auth.sock:/auth", &u), 0);
	CHECK_EQ(u.addr.is_unix, 1);
	CHECK_STR(u.addr.host, "/run/auth.sock");
	CHECK_STR(u.uri, "/auth");
	CHECK_EQ(auth_http_url_parse("http://", &u), -1);
	CHECK_EQ(auth_http_url_parse("http:///auth", &u), -1);
	CHECK_EQ(auth_http_url_parse("https://h/auth", &u), -1);
	CHECK_EQ(auth_http_url_parse("unix:/x", &u), -1);
	CHECK_EQ(auth_http_url_parse("http://h:0/", &u), -1);
	CHECK_EQ(auth_http_url_parse("http://h:x/", &u), -1);
}

/* Same source for max_preauth_per_source (issue 9 item 4)? */
static int
same_source(const char *a, const char *b)
{
	unsigned char ka[16], kb[16];

	if (cidr_source_key(a, ka) < 0 || cidr_source_key(b, kb) < 0)
		return -1;
	return memcmp(ka, kb, 16) == 0;
}

static void
source_keys(void)
{
	unsigned char k[16];

	/* IPv4: the whole address. */
	CHECK_EQ(same_source("192.0.2.7", "192.0.2.7"), 1);
	CHECK_EQ(same_source("192.0.2.7", "192.0.2.8"), 0);
	CHECK_EQ(same_source("192.0.2.7", "::ffff:192.0.2.7"), 1);
	CHECK_EQ(same_source("::ffff:192.0.2.7", "::ffff:192.0.2.8"), 0);
	/* IPv6: one /64 is one source, whatever the zone. */
	CHECK_EQ(same_source("2001:db8:1:2::1", "2001:db8:1:2:ffff:1:2:3"), 1);
	CHECK_EQ(same_source("2001:db8:1:2::1", "2001:db8:1:3::1"), 0);
	CHECK_EQ(same_source("fe80::1%eth0", "fe80::2%eth1"), 1);
	CHECK_EQ(same_source("fe80::1%eth0", "fe80::1"), 1);
	/* Neither family can pose as the other. */
	CHECK_EQ(same_source("::", "0.0.0.0"), 0);
	CHECK_EQ(same_source("::ffff:0:0", "0.0.0.0"), 1);
	CHECK_EQ(cidr_source_key("", k), -1);
	CHECK_EQ(cidr_source_key("example.org", k), -1);
	CHECK_EQ(cidr_source_key("192.0.2.7/24", k), -1);
}

void
suite_proxy(void)
{
	RUN(proxy_v1_parse);
	RUN(proxy_v1_bad);
	RUN(proxy_v2_roundtrip);
	RUN(proxy_v2_bad);
	RUN(cidr_ranges);
	RUN(source_keys);
	RUN(backend_addresses);
	RUN(auth_http_urls);
}
