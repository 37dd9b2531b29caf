/*
 * tls_verify_client(): the monitor's own check of the chain a session
 * passes on for AUTHENTICATE EXTERNAL.  The certificates are made here
 * with the openssl command (a CA, a client certificate it signs, one
 * another CA signs), into a fresh directory under /tmp.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "config.h"
#include "tls.h"
#include "unit.h"

static char dir[64];

static int
sh(const char *fmt, const char *arg)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg, arg, arg, arg, arg, arg);
	return system(cmd);
}

/* A CA "ca", "alice" signed by it, "eve" signed by another CA "other",
 * and a server pair for the credentials tls_init() loads. */
static int
make_pki(void)
{
	static const char script[] =
	    "cd %s && exec >/dev/null 2>&1 && "
	    "for c in ca other; do openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=$c "
	    "-keyout $c.key -out $c.pem || exit 1; done && "
	    "for u in alice:ca eve:other srv:ca; do n=${u%%:*}; i=${u#*:}; "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-subj /CN=$n -keyout $n.key -out $n.csr && "
	    "openssl x509 -req -in $n.csr -CA $i.pem -CAkey $i.key "
	    "-CAcreateserial -days 2 -out $n.pem && "
	    "openssl x509 -in $n.pem -outform DER -out $n.der || exit 1; "
	    "done";

	snprintf(dir, sizeof(dir), "/tmp/imapgate-unit-tls-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return sh(script, dir) == 0 ? 0 : -1;
}

/* facts with the DER file name.der as the whole chain. */
static void
load_der(struct tls_facts *f, const char *name)
{
	char path[128];
	FILE *fp;
	size_t n;

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s/%s.der", dir, name);
	if ((fp = fopen(path, "rb")) == NULL)
		abort();
	n = fread(f->der, 1, sizeof(f->der), fp);
	fclose(fp);
	f->active = 1;
	f->ncerts = 1;
	f->der_len[0] = (uint32_t)n;
}

static void
tls_monitor_verifies_chain(void)
{
	static struct tls_facts f;
	struct config c;
	char err[256], cn[USER_MAX + 1], p[4][128];

	if (make_pki() < 0) {
		CHECK(!"openssl could not make the test certificates");
		return;
	}
	memset(&c, 0, sizeof(c));
	snprintf(p[0], sizeof(p[0]), "%s/srv.pem", dir);
	snprintf(p[1], sizeof(p[1]), "%s/srv.key", dir);
	snprintf(p[2], sizeof(p[2]), "%s/ca.pem", dir);
	c.path = "unit.conf";
	c.ssl = 1;
	c.ssl_cert[0] = p[0];
	c.ssl_key[0] = p[1];
	c.nssl_cert = c.nssl_key = 1;
	c.ssl_priority = (char *)SSL_PRIORITY_DEFAULT;
	c.ssl_verify_client = VERIFY_OPTIONAL;
	c.ssl_client_ca = p[2];
	CHECK_EQ(tls_init(&c, 1, err, sizeof(err)), 0);

	load_der(&f, "alice");
	CHECK_EQ(tls_verify_client(&f, cn, sizeof(cn)), 0);
	CHECK_STR(cn, "alice");
	/* Signed by a CA we do not trust. */
	load_der(&f, "eve");
	CHECK_EQ(tls_verify_client(&f, cn, sizeof(cn)), -1);
	CHECK_STR(cn, "");
	/* One bit of the signature changed. */
	load_der(&f, "alice");
	f.der[f.der_len[0] - 1] ^= 1;
	CHECK_EQ(tls_verify_client(&f, cn, sizeof(cn)), -1);
	/* A CN changed: the signature no longer covers it. */
	load_der(&f, "alice");
	{
		unsigned char *q = memmem(f.der, f.der_len[0], "alice", 5);

		CHECK(q != NULL);
		if (q != NULL)
			memcpy(q, "admin", 5);
	}
	CHECK_EQ(tls_verify_client(&f, cn, sizeof(cn)), -1);
	/* Lengths the session made up. */
	load_der(&f, "alice");
	f.der_len[0] = sizeof(f.der) + 1;
	CHECK_EQ(tls_verify_client(&f, cn, sizeof(cn)), -1);
	load_der(&f, "alice");
	f.ncerts = 0;
	CHECK_EQ(tls_verify_client(&f, cn, sizeof(cn)), -1);
	f.ncerts = TLS_CHAIN_CERTS + 1;
	CHECK_EQ(tls_verify_client(&f, cn, sizeof(cn)), -1);
	/* Garbage is not a certificate. */
	memset(&f, 0, sizeof(f));
	f.ncerts = 1;
	f.der_len[0] = 100;
	memset(f.der, 0x30, 100);
	CHECK_EQ(tls_verify_client(&f, cn, sizeof(cn)), -1);
	/* The monitor's signing for the session's handshake. */
	{
		static struct msg_sign m;
		static struct msg_signature r;
		static const char ctx13[] = "TLS 1.3, server CertificateVerify";

		CHECK_EQ(tls_init(&c, 0, err, sizeof(err)), 0);
		CHECK_EQ(tls_load_keys(&c, err, sizeof(err)), 0);
		memset(&m, 0, sizeof(m));
		m.type = MSG_SIGN;
		m.algo = GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
		/* Anything but handshake data: refused, and not counted. */
		m.len = 100;
		memset(m.data, 'A', 100);
		CHECK_EQ(tls_sign(&m, &r), -1);
		/* A TLS 1.3 CertificateVerify: signed. */
		memset(m.data, ' ', 64);
		memcpy(m.data + 64, ctx13, sizeof(ctx13));
		memset(m.data + 64 + sizeof(ctx13), 0x5a, 32);
		m.len = 64 + sizeof(ctx13) + 32;
		CHECK_EQ(tls_sign(&m, &r), 0);
		CHECK(r.type == MSG_SIGNATURE && r.len > 0);
		/* Not 64 spaces in front: refused. */
		m.data[3] = 'x';
		CHECK_EQ(tls_sign(&m, &r), -1);
		m.data[3] = ' ';
		/* A key that is not there. */
		m.key = 1;
		CHECK_EQ(tls_sign(&m, &r), -1);
		m.key = 0;
		/* TLS_SIGNS_MAX per connection, then no more. */
		CHECK_EQ(tls_sign(&m, &r), 0);
		CHECK_EQ(tls_sign(&m, &r), -1);

		/* Hashes (what GnuTLS hands an external RSA or ECDSA key):
		 * refused unless a SHA-2 digest of its exact length, for a
		 * scheme this key signs with, without flags. */
		CHECK_EQ(tls_load_keys(&c, err, sizeof(err)), 0);
		memset(&m, 0, sizeof(m));
		m.type = MSG_SIGN;
		m.hashed = 1;
		memset(m.data, 0x11, 64);
		m.algo = GNUTLS_SIGN_ECDSA_SHA1;	/* SHA-1 */
		m.len = 20;
		CHECK_EQ(tls_sign(&m, &r), -1);
		m.algo = GNUTLS_SIGN_ECDSA_SHA256;
		m.len = 36;			/* MD5+SHA-1's length */
		CHECK_EQ(tls_sign(&m, &r), -1);
		m.len = 31;
		CHECK_EQ(tls_sign(&m, &r), -1);
		m.len = 32;
		m.flags = GNUTLS_PRIVKEY_SIGN_FLAG_TLS1_RSA;
		CHECK_EQ(tls_sign(&m, &r), -1);
		m.flags = 0;
		m.algo = GNUTLS_SIGN_RSA_RAW;	/* not this key's */
		CHECK_EQ(tls_sign(&m, &r), -1);
		m.algo = GNUTLS_SIGN_RSA_PSS_RSAE_SHA256;
		CHECK_EQ(tls_sign(&m, &r), -1);
		/* Unhashed: a TLS 1.2 point of the wrong size, an unknown
		 * group. */
		m.hashed = 0;
		m.algo = GNUTLS_SIGN_ECDSA_SHA256;
		memset(m.data, 0x22, 64);
		m.data[64] = 3;
		m.data[65] = 0;
		m.data[66] = 23;
		m.data[67] = 65;
		m.data[68] = 4;
		m.len = 68 + 64;
		CHECK_EQ(tls_sign(&m, &r), -1);
		m.data[66] = 99;
		m.len = 68 + 65;
		CHECK_EQ(tls_sign(&m, &r), -1);
		/* ... and the right one: signed. */
		m.data[66] = 23;
		CHECK_EQ(tls_sign(&m, &r), 0);
		CHECK(r.len > 0);
		/* A SHA-256 digest for ECDSA-SHA256: signed -- the monitor
		 * cannot see what was hashed (the THREAT MODEL says so). */
		m.hashed = 1;
		m.len = 32;
		CHECK_EQ(tls_sign(&m, &r), 0);
		CHECK(r.len > 0);
		/* The cap holds for hashes too. */
		CHECK_EQ(tls_sign(&m, &r), -1);

		/* TLS 1.3 only: no digest at all, the content still. */
		c.ssl_priority = (char *)"NORMAL:-VERS-ALL:+VERS-TLS1.3";
		CHECK_EQ(tls_init(&c, 0, err, sizeof(err)), 0);
		CHECK_EQ(tls_load_keys(&c, err, sizeof(err)), 0);
		CHECK_EQ(tls_sign(&m, &r), -1);
		m.hashed = 0;
		m.algo = GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
		memset(m.data, ' ', 64);
		memcpy(m.data + 64, ctx13, sizeof(ctx13));
		memset(m.data + 64 + sizeof(ctx13), 0x5a, 48);
		m.len = 64 + sizeof(ctx13) + 48;
		CHECK_EQ(tls_sign(&m, &r), 0);
		CHECK(r.len > 0);
		c.ssl_priority = (char *)SSL_PRIORITY_DEFAULT;
	}
	sh("rm -rf %s", dir);
}

void
suite_tls(void)
{
	RUN(tls_monitor_verifies_chain);
}
