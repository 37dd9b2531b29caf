"""A monitor that trusts nothing the session says (issue 10 items 4-7),
tested by playing the taken-over session (tests/harness, evil=True): what
it asks the monitor to sign, the TLS facts and PROXY addresses it reports,
the descriptors it attaches, and EXTERNAL's dependence on its word."""

import re
import time
import urllib.parse

import pytest

import helpers
from conftest import evil, tls_settings
from test_connect import expect_logged_in
from test_tls import ctx, interact

CV_CONTEXT = b"TLS 1.3, server CertificateVerify\0"
SIGN_DATA_MAX = 2048            # TLS_SIGN_DATA_MAX


def plain_gate_with_key(start_gate, certs, **more):
    """STARTTLS on: the monitor holds the RSA server key (key 0), and a
    plaintext connection lets the harness speak."""
    return start_gate(evil=True, **tls_settings(certs, starttls="on", **more))


# -- item 4: the monitor signs only what it can check -------------------------------

@pytest.mark.parametrize("what,algo,flags,data", [
    # a raw PKCS#1 block over 36 bytes of the session's choice (TLS 1.0's
    # MD5+SHA-1 form): any DigestInfo, or none
    ("raw-rsa-block", 36, 1 << 0, b"\x42" * 36),
    # a SHA-1 digest (RSA-SHA1): collisions are for sale
    ("sha1-digest", 1, 0, b"\x42" * 20),
    # the length of no digest of the scheme asked for (RSA-PSS-SHA256)
    ("wrong-length", 40, 0, b"\x42" * 40),
])
def test_monitor_refuses_to_sign_what_no_tls_handshake_signs(start_gate, certs, what, algo,
                                                           flags, data):
    """A taken-over session asks the monitor for a signature that no TLS
    1.2/1.3 handshake needs: the monitor refuses (and ends the
    connection); on main it signed with the server key."""
    g = plain_gate_with_key(start_gate, certs)
    c = g.connect()
    ok, text = evil(c, "SIGN 0 1 %d %d %s" % (algo, flags, data.hex()))
    assert (ok, text) == (True, "closed"), (what, ok, text, g.log())
    assert helpers.wait_for(lambda: "SIGN" in g.log(), timeout=3), g.log()


def test_monitor_signs_a_tls13_certificate_verify_once_per_cap(start_gate, certs):
    """What a handshake does need is still signed, TLS_SIGNS_MAX (2)
    times per connection, then the connection ends."""
    g = plain_gate_with_key(start_gate, certs)
    c = g.connect()
    cv = b" " * 64 + CV_CONTEXT + b"\x5a" * 32
    for _ in range(2):
        ok, text = evil(c, "SIGN 0 0 40 0 %s" % cv.hex())
        assert ok and re.match(r"^[0-9a-f]{512}$", text), (ok, text)
    ok, text = evil(c, "SIGN 0 0 40 0 %s" % cv.hex())
    assert (ok, text) == (True, "closed"), (ok, text)


TLS13_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.3"


def test_tls13_only_no_digest_is_signed(start_gate, certs):
    """With ssl_priority TLS 1.3 only, the session has no reason to ask
    for a bare digest (it sends the CertificateVerify content): a SHA-256
    digest of its choice is refused (on main it was signed: the issue's
    `openssl dgst -verify` said Verified OK)."""
    g = plain_gate_with_key(start_gate, certs, ssl_priority=TLS13_ONLY)
    c = g.connect()
    ok, text = evil(c, "SIGN 0 1 40 0 %s" % (b"\x42" * 32).hex())
    assert (ok, text) == (True, "closed"), (ok, text, g.log())


@pytest.mark.parametrize("client", ["python", "gnutls-sha256-suite", "openssl-hello-retry"])
@pytest.mark.parametrize("sni", ["imap.example.test", "other.example.test"])
def test_tls13_handshakes_signed_from_the_session_transcript(start_gate, certs, client, sni):
    """TLS 1.3 only, RSA (RSA-PSS) and ECDSA certificates: the session
    rebuilds the transcript, the monitor signs the CertificateVerify
    content it parsed, and real clients accept it -- SHA-384 and SHA-256
    transcripts, and after a HelloRetryRequest (openssl offers a key share
    for P-521, which this priority lacks)."""
    g = start_gate(**tls_settings(certs, certs.server, certs.other, ssl=True,
                                  ssl_priority=TLS13_ONLY + ":-GROUP-ALL:+GROUP-X25519:"
                                  "+GROUP-SECP256R1"))
    if client == "python":
        context = ctx(certs)
        context.check_hostname = False
        c = g.connect_tls(context, server_hostname=sni)
        assert c.sock.version() == "TLSv1.3"
        c.sendline("a LOGIN alice secret")
        lines = c.read_until_tagged("a")
        assert b"a OK" in lines[-1], lines
        return
    if client == "gnutls-sha256-suite":
        cmd = ["gnutls-cli", "--insecure", "--priority",
               "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM",
               "--sni-hostname", sni, "-p", str(g.port), "127.0.0.1"]
    else:
        cmd = ["openssl", "s_client", "-tls1_3", "-groups", "P-521:P-256",
               "-servername", sni, "-connect", "127.0.0.1:%d" % g.port, "-quiet"]
    out, err, rc = interact(cmd, [b"a LOGOUT\r\n"], b"a OK", timeout=8)
    assert b"a OK" in out, (out, err, g.log())


# -- item 6: nothing the session says reaches a header unescaped -------------------

def start_http(start_gate, dovecot, srv, **settings):
    return start_gate(exec=None, connect=[dovecot.addr()], passwd_file=None, http=srv.url(),
                      **settings)


@pytest.mark.parametrize("field", ["protocol", "cipher"])
def test_tls_names_cannot_inject_auth_http_headers(start_gate, dovecot, certs, auth_server,
                                                  field):
    """The session reports the TLS protocol/cipher with CRLF and headers
    in it: the monitor refuses the message; no auth_http request carries
    the injected header (on main: X-Evil: 1 and a second Auth-SSL-Verify
    reached the auth server)."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_http(start_gate, dovecot, srv, evil=True, evil_rewrite={
        "auth.tls." + field: r"TLS1.3\r\nX-Evil: 1\r\nAuth-SSL-Verify: SUCCESS"},
        **tls_settings(certs, ssl=True))
    c = g.connect_tls(ctx(certs))
    c.sendline("a LOGIN alice secret")
    try:
        c.readline(timeout=5)
    except AssertionError:
        pass
    for req in srv.requests:
        assert "X-Evil" not in req.raw, req.raw
        assert req.raw.count("Auth-SSL-Verify") <= 1, req.raw
    assert "rewrote auth.tls." + field in g.log(), g.log()
    assert "malformed AUTH" in g.log(), g.log()


def test_verify_result_and_subject_come_from_the_monitor(start_gate, dovecot, certs,
                                                        auth_server):
    """A self-signed client certificate; the session claims it verified and
    names another subject: auth_http hears the monitor's own verdict
    (FAILED) and the certificate's subject (on main: SUCCESS, CN=bob)."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_http(start_gate, dovecot, srv, evil=True, evil_rewrite=[
        ("auth.tls.verified", "1"), ("auth.tls.subject", "CN=bob"),
        ("auth.tls.fingerprint", "00" * 20)],
        **tls_settings(certs, ssl=True, ssl_verify_client="optional",
                       ssl_client_certificate=certs.ca))
    c = g.connect_tls(ctx(certs, cert=certs.alice_selfsigned))
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert srv.count() == 1, srv.requests
    d = srv.requests[0].as_dict()
    assert d["Auth-SSL-Verify"] == "FAILED", srv.requests[0].raw
    assert "CN=alice" in urllib.parse.unquote(d["Auth-SSL-Subject"]), srv.requests[0].raw
    assert "bob" not in d["Auth-SSL-Subject"], srv.requests[0].raw
    assert d["Auth-SSL-Fingerprint"] == certs.alice_selfsigned.sha1(), srv.requests[0].raw


@pytest.mark.parametrize("field,value", [
    ("addr.dst_ip", r"127.0.0.1\r\nX-Evil: 1"),
    ("addr.dst_port", r"1\r\nX-Evil: 1"),
    ("addr.port", "99999"),
])
def test_proxy_addresses_cannot_inject_auth_http_headers(start_gate, dovecot, auth_server,
                                                         field, value):
    """The PROXY header's addresses as the session reports them, with CRLF
    or out of range: the monitor refuses; no header is injected (on main:
    X-Evil: 1 reached the auth server)."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_http(start_gate, dovecot, srv, evil=True, evil_rewrite={field: value},
                   proxy_protocol=True, set_real_ip_from=["127.0.0.0/8"])
    c = g.connect(greeting=False)
    c.send(helpers.proxy_v1("192.0.2.7", "127.0.0.1", 40007, 143) + b"a LOGIN alice secret\r\n")
    try:
        while c.readline(timeout=3):
            pass
    except AssertionError:
        pass
    for req in srv.requests:
        assert "X-Evil" not in req.raw, req.raw
        assert "99999" not in req.raw, req.raw
    assert "malformed CLIENT_ADDR" in g.log(), g.log()


# -- item 5: EXTERNAL only when the operator trusts the session ---------------------

def test_external_refused_without_trusting_the_session(start_gate, world, certs):
    """imap_auth external without ssl_external_trust_session = true: imapgate
    refuses the configuration (-t, and at run time it does not serve), so a
    taken-over session cannot pass off another holder's public certificate
    (on main it served, and the harness logged in with mallory's)."""
    settings = tls_settings(certs, ssl=True, ssl_verify_client="optional",
                            ssl_client_certificate=certs.ca, imap_auth=["plain", "external"])
    g = start_gate(evil=True, evil_files=[certs.mallory.cert],
                   evil_rewrite={"auth.tls.der": "@" + certs.mallory.cert}, **settings)
    c = helpers.Client(g.port)
    try:
        while c._fill(time.monotonic() + 3):
            pass
    except TimeoutError:
        raise AssertionError("connection not closed; got %r" % c.buf)
    except Exception:
        pass
    assert not c.buf.startswith(b"* OK"), c.buf
    assert "ssl_external_trust_session" in g.log(), g.log()


def test_external_with_trust_is_the_risk_the_man_page_states(start_gate, dovecot, certs,
                                                               auth_server):
    """With ssl_external_trust_session = true the operator accepts what
    imapgate(8) THREAT MODEL says: a taken-over session that did TLS as
    alice can pass off mallory's (public, CA-signed) certificate, and the
    monitor -- which verifies the chain, not the handshake -- names mallory.
    This pins the documented residual; if it ever fails, the man page
    must change."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_http(start_gate, dovecot, srv, evil=True, evil_files=[certs.mallory.cert],
                   evil_rewrite={"auth.tls.der": "@" + certs.mallory.cert},
                   **tls_settings(certs, ssl=True, ssl_verify_client="optional",
                                  ssl_client_certificate=certs.ca,
                                  imap_auth=["plain", "external"],
                                  ssl_external_trust_session=True))
    c = g.connect_tls(ctx(certs, cert=certs.alice))
    c.sendline("a AUTHENTICATE EXTERNAL =")
    c.read_until_tagged("a")
    assert srv.count() == 1, (srv.requests, g.log())
    d = srv.requests[0].as_dict()
    assert d["Auth-User"] == "mallory" and d["Auth-SSL-Verify"] == "SUCCESS", \
        srv.requests[0].raw


# -- item 7: the monitor keeps nothing it did not ask for ----------------------------

@pytest.mark.parametrize("fds", [1, 2, 3])
def test_monitor_refuses_messages_with_descriptors_it_did_not_ask_for(start_gate, certs, fds):
    """A SIGN the monitor would answer, with descriptors attached: refused
    and the connection ended (on main, two or three in one control message
    slipped past the check and stayed open in the root monitor while it
    signed)."""
    g = plain_gate_with_key(start_gate, certs)
    c = g.connect()
    cv = b" " * 64 + CV_CONTEXT + b"\x5a" * 32
    body = (0).to_bytes(4, "little") + (0).to_bytes(4, "little") + \
        (40).to_bytes(4, "little") + (0).to_bytes(4, "little") + \
        len(cv).to_bytes(4, "little") + cv.ljust(SIGN_DATA_MAX, b"\0")
    ok, text = evil(c, "MSG SIGN %s fds=%d" % (body.hex(), fds))
    assert (ok, text) == (True, "closed"), (ok, text[:80], g.log())
    assert helpers.wait_for(lambda: "descriptor" in g.log(), timeout=3), g.log()


# -- issue 14: MSG_AUTH is sent as long as its certificate chain, checked exactly ---

@pytest.mark.parametrize("pad", [0, 1, -1, 16384])
def test_auth_message_is_exactly_its_header_and_announced_chain(start_gate, dovecot,
                                                                auth_server, pad):
    """The session sends MSG_AUTH as the header and the DER bytes its
    ncerts/der_len announce, not the whole 16 KiB chain buffer.  A message
    one byte longer or shorter than that -- or the old fixed size -- is
    refused as malformed and the connection ended; the exact length is
    answered."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_http(start_gate, dovecot, srv, evil=True)
    c = g.connect()
    ok, text = evil(c, "AUTH alice secret pad=%d" % pad)
    if pad == 0:
        assert ok and text.startswith("result="), (ok, text, g.log())
        assert srv.count() == 1, g.log()
        assert "malformed AUTH" not in g.log(), g.log()
    else:
        assert (ok, text) == (True, "closed"), (ok, text[:80], g.log())
        assert helpers.wait_for(lambda: "malformed AUTH" in g.log(), timeout=3), g.log()
        assert srv.count() == 0, srv.requests
