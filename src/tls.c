/*
 * TLS through GnuTLS, loaded with dlopen(): only the types and constants
 * come from its headers, every call goes through the table below, so
 * the binary does not link GnuTLS and a plaintext configuration never
 * loads it (DESIGN.md section 4).
 *
 * One process serves one connection: the credentials, the priority cache
 * and the ticket key are process globals, set up by tls_init() in the
 * monitor before the session is forked, and inherited by it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "clock.h"
#include "dl.h"
#include "msg.h"
#include "tls.h"

#define LIBGNUTLS	"libgnutls.so.30"

#define GNUTLS_FUNCS \
	X(gnutls_alert_send_appropriate) \
	X(gnutls_alpn_set_protocols) \
	X(gnutls_bye) \
	X(gnutls_certificate_allocate_credentials) \
	X(gnutls_certificate_free_credentials) \
	X(gnutls_certificate_get_peers) \
	X(gnutls_certificate_get_trust_list) \
	X(gnutls_certificate_server_set_request) \
	X(gnutls_certificate_set_flags) \
	X(gnutls_certificate_set_x509_key_file2) \
	X(gnutls_certificate_set_x509_system_trust) \
	X(gnutls_certificate_set_x509_trust_file) \
	X(gnutls_certificate_verify_peers2) \
	X(gnutls_cipher_get) \
	X(gnutls_cipher_get_name) \
	X(gnutls_credentials_set) \
	X(gnutls_decode_ber_digest_info) \
	X(gnutls_error_is_fatal) \
	X(gnutls_handshake) \
	X(gnutls_handshake_set_hook_function) \
	X(gnutls_hash) \
	X(gnutls_hash_copy) \
	X(gnutls_hash_deinit) \
	X(gnutls_hash_fast) \
	X(gnutls_hash_init) \
	X(gnutls_hash_output) \
	X(gnutls_hash_get_len) \
	X(gnutls_free) \
	X(gnutls_init) \
	X(gnutls_load_file) \
	X(gnutls_malloc) \
	X(gnutls_pcert_list_import_x509_file) \
	X(gnutls_certificate_set_key) \
	X(gnutls_priority_deinit) \
	X(gnutls_priority_init2) \
	X(gnutls_priority_protocol_list) \
	X(gnutls_priority_set) \
	X(gnutls_privkey_import_ext4) \
	X(gnutls_privkey_deinit) \
	X(gnutls_privkey_get_pk_algorithm) \
	X(gnutls_privkey_import_x509_raw) \
	X(gnutls_privkey_init) \
	X(gnutls_privkey_sign_data2) \
	X(gnutls_privkey_sign_hash2) \
	X(gnutls_protocol_get_name) \
	X(gnutls_pubkey_get_pk_algorithm) \
	X(gnutls_protocol_get_version) \
	X(gnutls_record_check_pending) \
	X(gnutls_record_get_direction) \
	X(gnutls_record_recv) \
	X(gnutls_record_send) \
	X(gnutls_server_name_set) \
	X(gnutls_session_is_resumed) \
	X(gnutls_session_set_verify_cert) \
	X(gnutls_session_ticket_enable_server) \
	X(gnutls_sign_get_hash_algorithm) \
	X(gnutls_sign_supports_pk_algorithm) \
	X(gnutls_strerror) \
	X(gnutls_transport_set_int2) \
	X(gnutls_x509_crt_deinit) \
	X(gnutls_x509_crt_get_dn) \
	X(gnutls_x509_crt_get_dn_by_oid) \
	X(gnutls_x509_crt_get_fingerprint) \
	X(gnutls_x509_crt_get_issuer_dn) \
	X(gnutls_x509_crt_get_serial) \
	X(gnutls_x509_crt_import) \
	X(gnutls_x509_crt_init) \
	X(gnutls_x509_trust_list_verify_crt2)

#define X(f) __typeof__(f) *f;
static struct { GNUTLS_FUNCS } g;
#undef X

static gnutls_certificate_credentials_t server_cred, backend_cred;

/*
 * The server's private keys never reach the session: it holds the
 * certificates and, for each key, a stand-in whose signatures are made
 * by the monitor (MSG_SIGN), which alone reads the key files, after the
 * fork.  The monitor signs at most TLS_SIGNS_MAX times per connection.
 */
static gnutls_pcert_st pcert[SSL_CERTS_MAX][SSL_CHAIN_MAX];
static gnutls_privkey_t stand_in[SSL_CERTS_MAX];
static int pk_algo[SSL_CERTS_MAX];
static unsigned int pk_bits[SSL_CERTS_MAX];
static gnutls_privkey_t keys[SSL_CERTS_MAX];	/* the monitor's */
static int nkeys, sign_fd = -1;
static unsigned int signs;
static int digests_allowed;	/* the priority allows TLS 1.2 or older */
static gnutls_priority_t priority;
static unsigned char ticket_key[64];
static gnutls_datum_t ticket = { ticket_key, 0 };

static int
load(void)
{
	static int loaded;

	if (loaded)
		return 0;
#define X(f) if ((*(void **)&g.f = dl_symbol(LIBGNUTLS, #f)) == NULL) \
		return -1;
	GNUTLS_FUNCS
#undef X
	loaded = 1;
	return 0;
}

static int
server_side(const struct config *c)
{
	return c->ssl || c->starttls != STARTTLS_OFF;
}

static int
backend_side(const struct config *c)
{
	return c->backend_ssl || c->backend_starttls;
}

int
tls_wanted(const struct config *c)
{
	return server_side(c) || backend_side(c);
}

/* ssl_session_ticket_key: whatever its length (nginx's 48 or 80 bytes,
 * `openssl rand 80`), its SHA-512 is GnuTLS's 64-byte master key, the
 * same in every process. */
static int
load_ticket_key(const char *path, char *why, size_t whysize)
{
	unsigned char buf[TICKET_KEY_FILE_MAX + 1];
	ssize_t n;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, whysize, "%s", strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < TICKET_KEY_FILE_MIN || n > TICKET_KEY_FILE_MAX) {
		snprintf(why, whysize, "must hold %d to %d bytes",
		    TICKET_KEY_FILE_MIN, TICKET_KEY_FILE_MAX);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	r = g.gnutls_hash_fast(GNUTLS_DIG_SHA512, buf, (size_t)n, ticket_key);
	explicit_bzero(buf, sizeof(buf));
	if (r < 0) {
		snprintf(why, whysize, "%s", g.gnutls_strerror(r));
		return -1;
	}
	ticket.size = sizeof(ticket_key);
	return 0;
}

/*
 * The session's running TLS 1.3 transcript, so that it can hand the
 * monitor the CertificateVerify content to sign (which the monitor
 * parses) rather than the bare digest GnuTLS gives an external key.
 * GnuTLS does not say which hash the transcript uses before it asks for
 * the signature, so both TLS 1.3 hashes run; the one whose content hashes
 * to what GnuTLS asked for is the right one.
 */
static const gnutls_digest_algorithm_t transcript_alg[2] = {
	GNUTLS_DIG_SHA256, GNUTLS_DIG_SHA384 };
static gnutls_hash_hd_t transcript[2];
static gnutls_session_t handshaking;
static int transcript_ok;

static const char tls13_server_cv[] = "TLS 1.3, server CertificateVerify";

/* Every handshake message, header and body, as RFC 8446 4.4.1 hashes
 * them; a HelloRetryRequest replaces the first ClientHello by its hash. */
static int
transcript_hook(gnutls_session_t s, unsigned int htype, unsigned int when,
    unsigned int incoming, const gnutls_datum_t *msg)
{
	unsigned char hdr[4], h[64];
	unsigned int wire = htype, i, len;

	(void)s;
	(void)when;
	(void)incoming;
	if (!transcript_ok || when != (incoming ? GNUTLS_HOOK_PRE :
	    GNUTLS_HOOK_POST))
		return 0;
	if (htype == GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST) {
		wire = GNUTLS_HANDSHAKE_SERVER_HELLO;
		for (i = 0; i < 2; i++) {
			len = (unsigned int)g.gnutls_hash_get_len(
			    transcript_alg[i]);
			g.gnutls_hash_output(transcript[i], h);
			hdr[0] = 254;	/* message_hash */
			hdr[1] = hdr[2] = 0;
			hdr[3] = (unsigned char)len;
			g.gnutls_hash(transcript[i], hdr, 4);
			g.gnutls_hash(transcript[i], h, len);
		}
	} else if (htype > 255 || htype == GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC)
		return 0;
	if (msg->size > 0xffffff) {
		transcript_ok = 0;
		return 0;
	}
	hdr[0] = (unsigned char)wire;
	hdr[1] = (unsigned char)(msg->size >> 16);
	hdr[2] = (unsigned char)(msg->size >> 8);
	hdr[3] = (unsigned char)msg->size;
	for (i = 0; i < 2; i++) {
		g.gnutls_hash(transcript[i], hdr, 4);
		g.gnutls_hash(transcript[i], msg->data, msg->size);
	}
	return 0;
}

/* Start a transcript for handshake s (the server side's). */
static void
transcript_start(gnutls_session_t s)
{
	int i;

	handshaking = s;
	transcript_ok = 0;
	for (i = 0; i < 2; i++) {
		if (transcript[i] != NULL)
			g.gnutls_hash_deinit(transcript[i], NULL);
		transcript[i] = NULL;
		if (g.gnutls_hash_init(&transcript[i], transcript_alg[i]) < 0)
			return;
	}
	transcript_ok = 1;
	g.gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_ANY,
	    GNUTLS_HOOK_BOTH, transcript_hook);
}

/* The TLS 1.3 CertificateVerify content whose hash (by algo's hash) is
 * hash, into out; its length, or 0 if the transcript does not give it
 * (TLS 1.2, or a handshake the hook could not follow). */
static size_t
tls13_content(gnutls_sign_algorithm_t algo, const gnutls_datum_t *hash,
    unsigned char *out, size_t size)
{
	gnutls_digest_algorithm_t h = g.gnutls_sign_get_hash_algorithm(algo);
	gnutls_hash_hd_t copy;
	unsigned char check[64];
	size_t len, prefix = 64 + sizeof(tls13_server_cv);
	int i;

	if (!transcript_ok || handshaking == NULL ||
	    g.gnutls_protocol_get_version(handshaking) != GNUTLS_TLS1_3 ||
	    g.gnutls_hash_get_len(h) != hash->size || hash->size == 0)
		return 0;
	for (i = 0; i < 2; i++) {
		len = g.gnutls_hash_get_len(transcript_alg[i]);
		if (prefix + len > size ||
		    (copy = g.gnutls_hash_copy(transcript[i])) == NULL)
			continue;
		memset(out, ' ', 64);
		memcpy(out + 64, tls13_server_cv, sizeof(tls13_server_cv));
		g.gnutls_hash_deinit(copy, out + prefix);
		if (g.gnutls_hash_fast(h, out, prefix + len, check) == 0 &&
		    memcmp(check, hash->data, hash->size) == 0)
			return prefix + len;
	}
	return 0;
}

/* The session's side of a signature: ask the monitor. */
static int
remote_sign(void *userdata, int hashed, gnutls_sign_algorithm_t algo,
    unsigned int flags, const gnutls_datum_t *in, gnutls_datum_t *sig)
{
	static struct msg_sign m;
	static struct msg_signature r;

	if (sign_fd < 0 || in->size > sizeof(m.data))
		return GNUTLS_E_PK_SIGN_FAILED;
	memset(&m, 0, sizeof(m));
	m.type = MSG_SIGN;
	m.key = (uint32_t)(uintptr_t)userdata;
	m.hashed = (uint32_t)hashed;
	m.algo = (uint32_t)algo;
	m.flags = flags;
	m.len = in->size;
	memcpy(m.data, in->data, in->size);
	if (msg_send(sign_fd, &m, sizeof(m)) < 0 ||
	    msg_recv(sign_fd, &r, sizeof(r)) != (ssize_t)sizeof(r) ||
	    r.type != MSG_SIGNATURE || r.len == 0 || r.len > sizeof(r.sig) ||
	    (sig->data = (*g.gnutls_malloc)(r.len)) == NULL)
		return GNUTLS_E_PK_SIGN_FAILED;
	memcpy(sig->data, r.sig, r.len);
	sig->size = r.len;
	return 0;
}

static int
remote_sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned int flags, const gnutls_datum_t *data,
    gnutls_datum_t *sig)
{
	(void)key;
	return remote_sign(userdata, 0, algo, flags, data, sig);
}

/* A digest: in TLS 1.3, send the content it is the digest of, which the
 * monitor can check; else (TLS 1.2) the digest itself. */
static int
remote_sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned int flags, const gnutls_datum_t *hash,
    gnutls_datum_t *sig)
{
	static unsigned char content[64 + sizeof(tls13_server_cv) + 64];
	gnutls_datum_t d = { content, 0 };

	(void)key;
	if ((d.size = (unsigned int)tls13_content(algo, hash, content,
	    sizeof(content))) > 0)
		return remote_sign(userdata, 0, algo, flags, &d, sig);
	return remote_sign(userdata, 1, algo, flags, hash, sig);
}

/* What GnuTLS asks of a key to choose a signature: from the
 * certificate's public key. */
static int
remote_info(gnutls_privkey_t key, unsigned int flags, void *userdata)
{
	int i = (int)(uintptr_t)userdata;

	(void)key;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return pk_algo[i];
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)pk_bits[i];
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO)
		return g.gnutls_sign_supports_pk_algorithm(
		    (gnutls_sign_algorithm_t)GNUTLS_FLAGS_TO_SIGN_ALGO(flags),
		    (gnutls_pk_algorithm_t)pk_algo[i]);
	return -1;
}

/* Certificate pair i for the session: the chain, and a stand-in key. */
static int
add_stand_in(int i, const char *cert)
{
	unsigned int n = SSL_CHAIN_MAX;
	int r;

	if ((r = g.gnutls_pcert_list_import_x509_file(pcert[i], &n, cert,
	    GNUTLS_X509_FMT_PEM, NULL, NULL, 0)) < 0)
		return r;
	if ((pk_algo[i] = g.gnutls_pubkey_get_pk_algorithm(pcert[i][0].pubkey,
	    &pk_bits[i])) < 0)
		return pk_algo[i];
	if ((r = g.gnutls_privkey_init(&stand_in[i])) < 0 ||
	    (r = g.gnutls_privkey_import_ext4(stand_in[i], (void *)(uintptr_t)i,
	    remote_sign_data, remote_sign_hash, NULL, NULL, remote_info,
	    0)) < 0)
		return r;
	/* Names NULL: GnuTLS takes them from the certificate, for SNI. */
	return g.gnutls_certificate_set_key(server_cred, NULL, 0, pcert[i],
	    (int)n, stand_in[i]);
}

void
tls_sign_via(int fd)
{
	sign_fd = fd;
}

/* Does ssl_priority allow a version before TLS 1.3, whose signatures
 * the session can only hand the monitor as a digest? */
static int
tls12_allowed(void)
{
	const unsigned int *list;
	int i, n;

	if (priority == NULL ||
	    (n = g.gnutls_priority_protocol_list(priority, &list)) < 0)
		return 1;
	for (i = 0; i < n; i++)
		if (list[i] != GNUTLS_TLS1_3)
			return 1;
	return 0;
}

int
tls_load_keys(const struct config *c, char *err, size_t errsize)
{
	gnutls_datum_t d;
	int i, r;

	signs = 0;
	if (!server_side(c))
		return 0;
	for (i = 0; i < c->nssl_cert; i++) {
		d.data = NULL;
		/* Loaded once per process; again only in the unit tests. */
		if (keys[i] != NULL)
			g.gnutls_privkey_deinit(keys[i]);
		keys[i] = NULL;
		if ((r = g.gnutls_privkey_init(&keys[i])) < 0 ||
		    (r = g.gnutls_load_file(c->ssl_key[i], &d)) < 0 ||
		    (r = g.gnutls_privkey_import_x509_raw(keys[i], &d,
		    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
			snprintf(err, errsize, "%s: ssl_certificate_key \"%s\": "
			    "%s", c->path, c->ssl_key[i], g.gnutls_strerror(r));
			r = -1;
		}
		if (d.data != NULL) {
			explicit_bzero(d.data, d.size);
			(*g.gnutls_free)(d.data);
		}
		if (r < 0)
			return -1;
	}
	nkeys = c->nssl_cert;
	digests_allowed = tls12_allowed();
	return 0;
}

/*
 * What the monitor signs for the session (issue 10 item 4).
 *
 * Data (sign_data): only what a TLS handshake signs, parsed: a TLS 1.3
 * server CertificateVerify (64 spaces, the context string, a 0, a
 * transcript hash of 32 to 64 bytes), or TLS 1.2's ECDHE parameters (the
 * two randoms, named_curve, a named group we know, a point of that
 * group's size).  The monitor hashes it itself.  In TLS 1.3 the session
 * sends the CertificateVerify content it rebuilt from its transcript
 * (transcript_hook); GnuTLS asks for data outright only for keys that
 * sign unhashed (Ed25519, Ed448).
 *
 * A hash (sign_hash): GnuTLS 3.7 hashes TLS 1.2's ServerKeyExchange
 * parameters itself for RSA and ECDSA keys and hands the external key
 * only the digest (measured with TLS 1.2 clients: RSA PKCS#1 comes as
 * RSA_RAW with a DigestInfo, ECDSA and RSA-PSS as the digest), and the
 * parameters' ECDHE point is nowhere in its API, so the session cannot
 * send what it hashed.  The monitor takes a digest only when ssl_priority
 * allows TLS 1.2 or older, and binds what it can: a SHA-2 digest of
 * exactly its length, for a signature scheme of this key, no flags;
 * RSA_RAW only as a DigestInfo of SHA-256/384/512, signed as that hash
 * (never a raw RSA block, never MD5+SHA-1 or SHA-1).  What a taken-over
 * session can still get is in imapgate(8), THREAT MODEL.
 */
static int
tls12_point_ok(const unsigned char *p, size_t len)
{
	unsigned int group = (unsigned int)p[0] << 8 | p[1];
	size_t want;

	switch (group) {
	case 23: want = 65; break;	/* secp256r1, uncompressed */
	case 24: want = 97; break;	/* secp384r1 */
	case 25: want = 133; break;	/* secp521r1 */
	case 29: want = 32; break;	/* x25519 */
	case 30: want = 56; break;	/* x448 */
	default: return 0;
	}
	return len == 3 + want && p[2] == want && (group >= 29 || p[3] == 4);
}

static int
handshake_data(const struct msg_sign *m)
{
	const char *tls13 = tls13_server_cv;
	size_t i, hash;

	if (m->len > 64 + sizeof(tls13_server_cv) &&
	    memcmp(m->data + 64, tls13, sizeof(tls13_server_cv)) == 0) {
		for (i = 0; i < 64 && m->data[i] == ' '; i++)
			;
		hash = m->len - 64 - sizeof(tls13_server_cv);
		return i == 64 && hash >= 32 && hash <= 64;
	}
	/* client_random server_random, curve_type 3, group (2), point */
	return m->len > 68 && m->data[64] == 3 &&
	    tls12_point_ok(m->data + 65, m->len - 65);
}

/* A SHA-2 digest algorithm TLS signs with. */
static int
sha2(gnutls_digest_algorithm_t h)
{
	return h == GNUTLS_DIG_SHA256 || h == GNUTLS_DIG_SHA384 ||
	    h == GNUTLS_DIG_SHA512;
}

/*
 * A hash to sign, bound as far as the monitor can: *algo and *digest
 * become what is signed (RSA_RAW: the DigestInfo's hash, as RSA-SHA2).
 * 0, or -1 to refuse.
 */
static int
handshake_hash(const struct msg_sign *m, gnutls_sign_algorithm_t *algo,
    gnutls_datum_t *digest, unsigned char *buf, size_t bufsize)
{
	gnutls_digest_algorithm_t h;
	unsigned int len = (unsigned int)bufsize;
	int pk = g.gnutls_privkey_get_pk_algorithm(keys[m->key], NULL);
	gnutls_datum_t in = { (unsigned char *)m->data, m->len };

	if (m->flags != 0 || !digests_allowed)
		return -1;
	*algo = (gnutls_sign_algorithm_t)m->algo;
	if (*algo == GNUTLS_SIGN_RSA_RAW) {
		if (pk != GNUTLS_PK_RSA || g.gnutls_decode_ber_digest_info(&in,
		    &h, buf, &len) < 0 || !sha2(h) ||
		    len != g.gnutls_hash_get_len(h))
			return -1;
		*algo = h == GNUTLS_DIG_SHA256 ? GNUTLS_SIGN_RSA_SHA256 :
		    h == GNUTLS_DIG_SHA384 ? GNUTLS_SIGN_RSA_SHA384 :
		    GNUTLS_SIGN_RSA_SHA512;
		digest->data = buf;
		digest->size = len;
		return 0;
	}
	h = g.gnutls_sign_get_hash_algorithm(*algo);
	if (!sha2(h) || m->len != g.gnutls_hash_get_len(h) || pk < 0 ||
	    !g.gnutls_sign_supports_pk_algorithm(*algo,
	    (gnutls_pk_algorithm_t)pk))
		return -1;
	digest->data = (unsigned char *)m->data;
	digest->size = m->len;
	return 0;
}

int
tls_sign(const struct msg_sign *m, struct msg_signature *r)
{
	unsigned char buf[TLS_HASHED_MAX];
	gnutls_sign_algorithm_t algo = (gnutls_sign_algorithm_t)m->algo;
	gnutls_datum_t d = { (unsigned char *)m->data, m->len };
	gnutls_datum_t sig = { NULL, 0 };
	int rc;

	if (m->key >= (uint32_t)nkeys || m->len > sizeof(m->data) ||
	    (m->hashed ? handshake_hash(m, &algo, &d, buf, sizeof(buf)) < 0 :
	    m->flags != 0 || !handshake_data(m)) || ++signs > TLS_SIGNS_MAX)
		return -1;
	rc = m->hashed ?
	    g.gnutls_privkey_sign_hash2(keys[m->key], algo, 0, &d, &sig) :
	    g.gnutls_privkey_sign_data2(keys[m->key], algo, 0, &d, &sig);
	memset(r, 0, sizeof(*r));
	r->type = MSG_SIGNATURE;
	if (rc == 0 && sig.size <= sizeof(r->sig)) {
		memcpy(r->sig, sig.data, sig.size);
		r->len = sig.size;
	}
	if (sig.data != NULL)
		(*g.gnutls_free)(sig.data);
	return 0;
}

static int
init_server(const struct config *c, int thorough, char *err, size_t errsize)
{
	char why[256];
	int i, r;

	if ((r = g.gnutls_certificate_allocate_credentials(&server_cred)) < 0)
		goto gnutls_fail;
	for (i = 0; i < c->nssl_cert; i++)
		/* -t: the real key, and GnuTLS's test that it matches its
		 * certificate (a signature and its check: 2.9 M
		 * instructions, which a connection does not repeat). */
		if ((r = thorough ?
		    g.gnutls_certificate_set_x509_key_file2(server_cred,
		    c->ssl_cert[i], c->ssl_key[i], GNUTLS_X509_FMT_PEM, NULL,
		    0) : add_stand_in(i, c->ssl_cert[i])) < 0) {
			snprintf(err, errsize, "%s: ssl_certificate \"%s\" with "
			    "ssl_certificate_key \"%s\": %s", c->path,
			    c->ssl_cert[i], c->ssl_key[i], g.gnutls_strerror(r));
			return -1;
		}
	if (c->ssl_verify_client != VERIFY_OFF &&
	    (r = g.gnutls_certificate_set_x509_trust_file(server_cred,
	    c->ssl_client_ca, GNUTLS_X509_FMT_PEM)) <= 0) {
		snprintf(err, errsize, "%s: ssl_client_certificate \"%s\": %s",
		    c->path, c->ssl_client_ca, r < 0 ? g.gnutls_strerror(r) :
		    "no certificate in it");
		return -1;
	}
	if (c->ssl_ticket_key != NULL &&
	    load_ticket_key(c->ssl_ticket_key, why, sizeof(why)) < 0) {
		snprintf(err, errsize, "%s: ssl_session_ticket_key \"%s\": %s",
		    c->path, c->ssl_ticket_key, why);
		return -1;
	}
	return 0;
gnutls_fail:
	snprintf(err, errsize, "TLS: %s", g.gnutls_strerror(r));
	return -1;
}

static int
init_backend(const struct config *c, char *err, size_t errsize)
{
	int r;

	if ((r = g.gnutls_certificate_allocate_credentials(&backend_cred)) < 0) {
		snprintf(err, errsize, "TLS: %s", g.gnutls_strerror(r));
		return -1;
	}
	r = c->backend_ca != NULL ?
	    g.gnutls_certificate_set_x509_trust_file(backend_cred,
	    c->backend_ca, GNUTLS_X509_FMT_PEM) :
	    g.gnutls_certificate_set_x509_system_trust(backend_cred);
	if (r <= 0) {
		snprintf(err, errsize, "%s: backend.ssl_trusted_certificate "
		    "\"%s\": %s", c->path, c->backend_ca != NULL ?
		    c->backend_ca : "(the system's CAs)", r < 0 ?
		    g.gnutls_strerror(r) : "no certificate in it");
		return -1;
	}
	return 0;
}

int
tls_init(const struct config *c, int thorough, char *err, size_t errsize)
{
	const char *at = NULL;
	int r;

	if (load() < 0) {
		snprintf(err, errsize, "TLS: cannot load %s", LIBGNUTLS);
		return -1;
	}
	/* -t loads once per listen group: drop what the last one loaded. */
	if (priority != NULL)
		g.gnutls_priority_deinit(priority);
	if (server_cred != NULL)
		g.gnutls_certificate_free_credentials(server_cred);
	if (backend_cred != NULL)
		g.gnutls_certificate_free_credentials(backend_cred);
	priority = NULL;
	server_cred = backend_cred = NULL;
	explicit_bzero(ticket_key, sizeof(ticket_key));
	ticket.size = 0;
	if ((r = g.gnutls_priority_init2(&priority, c->ssl_priority, &at,
	    0)) < 0) {
		snprintf(err, errsize, "%s: ssl_priority: %s at \"%.40s\"",
		    c->path, g.gnutls_strerror(r), at != NULL ? at : "");
		return -1;
	}
	if (server_side(c) && init_server(c, thorough, err, errsize) < 0)
		return -1;
	if (backend_side(c) && init_backend(c, err, errsize) < 0)
		return -1;
	return 0;
}

void
chan_nonblock(const struct chan *ch)
{
	int fl;

	if ((fl = fcntl(ch->in, F_GETFL)) >= 0)
		(void)fcntl(ch->in, F_SETFL, fl | O_NONBLOCK);
	if (ch->out != ch->in && (fl = fcntl(ch->out, F_GETFL)) >= 0)
		(void)fcntl(ch->out, F_SETFL, fl | O_NONBLOCK);
}

/* Wait for fd to be ready for events, within ms; 1, 0 timeout, -1. */
static int
wait_fd(int fd, short events, long ms)
{
	struct pollfd pfd = { fd, events, 0 };
	int r;

	if (ms <= 0)
		return 0;
	do
		r = poll(&pfd, 1, ms > INT32_MAX ? INT32_MAX : (int)ms);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Drive a handshake on non-blocking descriptors to its end or the
 * deadline. */
static int
handshake(gnutls_session_t s, const struct chan *ch, int timeout_s,
    char *err, size_t errsize)
{
	struct timespec deadline;
	int r, out;

	deadline_after(&deadline, NULL, timeout_s);
	for (;;) {
		if ((r = g.gnutls_handshake(s)) == 0)
			return 0;
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED &&
		    g.gnutls_error_is_fatal(r)) {
			/* Tell the peer why: no_application_protocol for
			 * ALPN, handshake_failure, ... (best effort). */
			(void)g.gnutls_alert_send_appropriate(s, r);
			snprintf(err, errsize, "TLS handshake: %s",
			    g.gnutls_strerror(r));
			return -1;
		}
		if (r != GNUTLS_E_AGAIN)
			continue;
		out = g.gnutls_record_get_direction(s);
		if (wait_fd(out ? ch->out : ch->in, out ? POLLOUT : POLLIN,
		    ms_left(&deadline)) <= 0) {
			snprintf(err, errsize, "TLS handshake timed out");
			return -1;
		}
	}
}

static void
hex(const unsigned char *in, size_t len, char *out, size_t outsize)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len && 2 * i + 2 < outsize; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * i] = '\0';
}

/* A name fit to be a user name: no control bytes, no NUL inside. */
static int
name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || strlen(s) != len)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* The subject CN, if it is fit to be a user name; else "". */
static void
crt_cn(gnutls_x509_crt_t crt, char *cn, size_t size)
{
	size_t len = size;

	if (g.gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME,
	    0, 0, cn, &len) < 0 || !name_ok(cn, len))
		cn[0] = '\0';
}

/* Keep the chain's DER for the monitor, as much of it as fits. */
static void
keep_chain(const gnutls_datum_t *peers, unsigned int n, struct tls_facts *f)
{
	size_t used = 0;
	unsigned int i;

	for (i = 0; i < n && i < TLS_CHAIN_CERTS; i++) {
		if (peers[i].size > sizeof(f->der) - used)
			break;
		memcpy(f->der + used, peers[i].data, peers[i].size);
		f->der_len[i] = peers[i].size;
		used += peers[i].size;
	}
	f->ncerts = i;
}

/* What a certificate says, for the log and Auth-SSL-*: from its DER. */
static void
leaf_facts(gnutls_x509_crt_t crt, struct tls_facts *f)
{
	unsigned char bin[TLS_SERIAL_MAX / 2];
	size_t len;

	crt_cn(crt, f->cn, sizeof(f->cn));
	len = sizeof(f->subject);
	if (g.gnutls_x509_crt_get_dn(crt, f->subject, &len) < 0)
		f->subject[0] = '\0';
	len = sizeof(f->issuer);
	if (g.gnutls_x509_crt_get_issuer_dn(crt, f->issuer, &len) < 0)
		f->issuer[0] = '\0';
	len = sizeof(bin);
	if (g.gnutls_x509_crt_get_serial(crt, bin, &len) == 0)
		hex(bin, len, f->serial, sizeof(f->serial));
	len = TLS_FINGERPRINT_LEN;
	if (g.gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA1, bin,
	    &len) == 0)
		hex(bin, len, f->fingerprint, sizeof(f->fingerprint));
}

static void
cert_facts(gnutls_session_t s, struct tls_facts *f)
{
	const gnutls_datum_t *peers;
	gnutls_x509_crt_t crt;
	unsigned int n = 0, status = 0;

	if ((peers = g.gnutls_certificate_get_peers(s, &n)) == NULL || n == 0)
		return;
	f->cert = 1;
	f->verified = g.gnutls_certificate_verify_peers2(s, &status) == 0 &&
	    status == 0;
	keep_chain(peers, n, f);
	if (g.gnutls_x509_crt_init(&crt) < 0)
		return;
	if (g.gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0)
		leaf_facts(crt, f);
	g.gnutls_x509_crt_deinit(crt);
}

static void
facts(gnutls_session_t s, struct tls_facts *f)
{
	const char *p;

	memset(f, 0, sizeof(*f));
	p = g.gnutls_protocol_get_name(g.gnutls_protocol_get_version(s));
	snprintf(f->protocol, sizeof(f->protocol), "%s", p ? p : "unknown");
	p = g.gnutls_cipher_get_name(g.gnutls_cipher_get(s));
	snprintf(f->cipher, sizeof(f->cipher), "%s", p ? p : "unknown");
	f->active = 1;
	f->resumed = g.gnutls_session_is_resumed(s) != 0;
	cert_facts(s, f);
}

/* The chain f carries, imported: the number of certificates in crt
 * (each to be deinit'ed), or -1 when it is not a chain of DER
 * certificates that fits. */
static int
import_chain(const struct tls_facts *f, gnutls_x509_crt_t *crt)
{
	gnutls_datum_t d;
	unsigned int i, n = 0;
	size_t used = 0;

	if (server_cred == NULL || f->ncerts == 0 ||
	    f->ncerts > TLS_CHAIN_CERTS)
		return -1;
	for (i = 0; i < f->ncerts; i++) {
		if (f->der_len[i] > sizeof(f->der) - used ||
		    g.gnutls_x509_crt_init(&crt[i]) < 0)
			goto bad;
		n++;
		d.data = (unsigned char *)f->der + used;
		d.size = f->der_len[i];
		used += f->der_len[i];
		if (g.gnutls_x509_crt_import(crt[i], &d,
		    GNUTLS_X509_FMT_DER) < 0)
			goto bad;
	}
	return (int)n;
bad:
	for (i = 0; i < n; i++)
		g.gnutls_x509_crt_deinit(crt[i]);
	return -1;
}

/* Does the chain lead to ssl_client_certificate, for client auth? */
static int
chain_verifies(gnutls_x509_crt_t *crt, int n)
{
	static char client_auth[] = GNUTLS_KP_TLS_WWW_CLIENT;
	gnutls_typed_vdata_st purpose = { GNUTLS_DT_KEY_PURPOSE_OID,
	    (unsigned char *)client_auth, 0 };
	gnutls_x509_trust_list_t tl;
	unsigned int out = 1;

	g.gnutls_certificate_get_trust_list(server_cred, &tl);
	return g.gnutls_x509_trust_list_verify_crt2(tl, crt, (unsigned int)n,
	    &purpose, 1, 0, &out, NULL) == 0 && out == 0;
}

int
tls_verify_client(const struct tls_facts *f, char *cn, size_t cnsize)
{
	gnutls_x509_crt_t crt[TLS_CHAIN_CERTS];
	int i, n, ok = -1;

	cn[0] = '\0';
	if ((n = import_chain(f, crt)) < 0)
		return -1;
	if (chain_verifies(crt, n)) {
		crt_cn(crt[0], cn, cnsize);
		ok = cn[0] != '\0' ? 0 : -1;
	}
	for (i = 0; i < n; i++)
		g.gnutls_x509_crt_deinit(crt[i]);
	return ok;
}

void
tls_client_facts(struct tls_facts *f)
{
	gnutls_x509_crt_t crt[TLS_CHAIN_CERTS];
	int i, n;

	if (!f->active || server_cred == NULL) {
		/* All but the DER bytes: ncerts 0 says there are none (and
		 * the 16 KiB are not touched, issue 14). */
		memset(f, 0, offsetof(struct tls_facts, der));
		return;
	}
	f->cert = f->verified = 0;
	f->cn[0] = f->subject[0] = f->issuer[0] = '\0';
	f->serial[0] = f->fingerprint[0] = '\0';
	if ((n = import_chain(f, crt)) < 0) {
		f->ncerts = 0;
		return;
	}
	f->cert = 1;
	f->verified = (uint32_t)chain_verifies(crt, n);
	leaf_facts(crt[0], f);
	for (i = 0; i < n; i++)
		g.gnutls_x509_crt_deinit(crt[i]);
}

int
tls_accept(struct chan *ch, const struct config *c, struct tls_facts *f,
    char *err, size_t errsize)
{
	static const gnutls_datum_t imap = { (unsigned char *)"imap", 4 };
	gnutls_session_t s;
	int r;

	if ((r = g.gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_SIGNAL |
	    (ticket.size == 0 ? GNUTLS_NO_TICKETS : 0))) < 0 ||
	    (r = g.gnutls_priority_set(s, priority)) < 0 ||
	    (r = g.gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	    server_cred)) < 0 ||
	    /* ALPACA: a client that asks for another protocol (ALPN without
	     * "imap") is refused with no_application_protocol. */
	    (r = g.gnutls_alpn_set_protocols(s, &imap, 1,
	    GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE)) < 0 ||
	    (ticket.size > 0 &&
	    (r = g.gnutls_session_ticket_enable_server(s, &ticket)) < 0)) {
		snprintf(err, errsize, "TLS: %s", g.gnutls_strerror(r));
		return -1;
	}
	if (c->ssl_verify_client != VERIFY_OFF)
		g.gnutls_certificate_server_set_request(s,
		    c->ssl_verify_client == VERIFY_ON ? GNUTLS_CERT_REQUIRE :
		    GNUTLS_CERT_REQUEST);
	transcript_start(s);
	g.gnutls_transport_set_int2(s, ch->in, ch->out);
	chan_nonblock(ch);
	if (handshake(s, ch, c->ssl_handshake_timeout, err, errsize) < 0)
		return -1;
	ch->tls = s;
	facts(s, f);
	return 0;
}

int
tls_connect(struct chan *ch, const struct config *c, const char *name,
    char *err, size_t errsize)
{
	unsigned char bin[16];
	gnutls_session_t s;
	int r, ip = inet_pton(AF_INET, name, bin) == 1 ||
	    inet_pton(AF_INET6, name, bin) == 1;

	if ((r = g.gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL)) < 0 ||
	    (r = g.gnutls_priority_set(s, priority)) < 0 ||
	    (r = g.gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	    backend_cred)) < 0 ||
	    (!ip && (r = g.gnutls_server_name_set(s, GNUTLS_NAME_DNS, name,
	    strlen(name))) < 0)) {
		snprintf(err, errsize, "TLS: %s", g.gnutls_strerror(r));
		return -1;
	}
	/* The chain against the CAs and the name (an IP against the
	 * certificate's IP addresses) are checked in the handshake. */
	g.gnutls_session_set_verify_cert(s, name, 0);
	g.gnutls_transport_set_int2(s, ch->in, ch->out);
	chan_nonblock(ch);
	if (handshake(s, ch, c->ssl_handshake_timeout, err, errsize) < 0)
		return -1;
	ch->tls = s;
	return 0;
}

ssize_t
chan_read(struct chan *ch, void *buf, size_t size)
{
	ssize_t n;

	if (ch->tls == NULL) {
		do
			n = read(ch->in, buf, size);
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return CHAN_AGAIN;
		return n < 0 ? -1 : n;
	}
	n = g.gnutls_record_recv(ch->tls, buf, size);
	if (n >= 0)
		return n;
	/* Most IMAP clients close without close_notify: an end all the
	 * same, since IMAP frames its own data. */
	if (n == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;
	/* GNUTLS_E_REHANDSHAKE: renegotiation is refused, by closing. */
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED ||
	    !g.gnutls_error_is_fatal((int)n))
		return n == GNUTLS_E_REHANDSHAKE ? -1 : CHAN_AGAIN;
	return -1;
}

ssize_t
chan_write(struct chan *ch, const void *buf, size_t len)
{
	ssize_t n;

	if (ch->tls == NULL) {
		do
			n = write(ch->out, buf, len);
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return CHAN_AGAIN;
		return n < 0 ? -1 : n;
	}
	n = g.gnutls_record_send(ch->tls, buf, len);
	if (n >= 0)
		return n;
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
		return CHAN_AGAIN;
	return -1;
}

int
chan_write_all(struct chan *ch, const void *buf, size_t len, long ms)
{
	const unsigned char *p = buf;
	struct timespec deadline;
	ssize_t n;

	deadline_after(&deadline, NULL, (double)ms / 1000);
	while (len > 0) {
		if ((n = chan_write(ch, p, len)) == CHAN_AGAIN) {
			if (wait_fd(ch->out, POLLOUT, ms_left(&deadline)) <= 0)
				return -1;
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

size_t
chan_pending(const struct chan *ch)
{
	return ch->tls != NULL ? g.gnutls_record_check_pending(ch->tls) : 0;
}

int
chan_wait(const struct chan *ch, long ms)
{
	if (chan_pending(ch) > 0)
		return 1;
	return wait_fd(ch->in, POLLIN, ms);
}

void
chan_shutdown(struct chan *ch)
{
	struct timespec deadline;
	int r;

	if (ch->tls != NULL) {
		deadline_after(&deadline, NULL, TLS_BYE_MS / 1000.0);
		while ((r = g.gnutls_bye(ch->tls, GNUTLS_SHUT_WR)) ==
		    GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			if (wait_fd(ch->out, POLLOUT, ms_left(&deadline)) <= 0)
				break;
	}
	(void)shutdown(ch->out, SHUT_WR);
}
