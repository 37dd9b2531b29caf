"""TLS and authentication (issue 4, /work/notes/tls-spec.md): session
resumption across connections with ssl_session_ticket_key, client
certificates (ssl_verify_client, AUTHENTICATE EXTERNAL), and what auth_http
learns about the TLS connection (Auth-SSL-*)."""

import re
import ssl
import urllib.parse

import pytest

import conftest
import helpers
from conftest import tls_settings
from helpers import GREETING, caps_of, logged_in_re
from test_connect import expect_logged_in
from test_tls import (BASE, NAME, assert_caps, capability, ctx, curl, login_exec,
                      select_and_logout, starttls)

UNSUPPORTED = b" NO Unsupported authentication mechanism"
AUTHZ_FAILED = b" NO [AUTHORIZATIONFAILED] Authorization failed."


# -- session resumption --------------------------------------------------------------

VERSIONS = {"TLSv1.3": ssl.TLSVersion.TLSv1_3, "TLSv1.2": ssl.TLSVersion.TLSv1_2}


def first_session(g, context):
    """Connect, read the greeting (TLS 1.3 tickets come before it) and
    return the client's session."""
    c = g.connect_tls(context)
    assert c.greeting == GREETING
    assert not c.sock.session_reused
    sess = c.sock.session
    c.close()
    return sess


@pytest.mark.parametrize("mode", ["inetd", "listen"])
@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_session_resumed_with_ticket_key(start_gate, certs, version, mode):
    """With ssl_session_ticket_key, a session from one connection (one
    imapgate process) resumes on the next; the resumed connection works."""
    g = start_gate(mode=mode, **tls_settings(certs, ssl=True,
                                              ssl_session_ticket_key=certs.ticket_key))
    v = VERSIONS[version]
    context = ctx(certs, min_version=v, max_version=v)
    sess = first_session(g, context)
    assert sess is not None and sess.has_ticket, "no session ticket received"
    for _ in range(2):
        c = g.connect_tls(context, session=sess)
        assert c.sock.version() == version
        assert c.sock.session_reused, "session not resumed"
        assert c.greeting == GREETING
        login_exec(c)
        select_and_logout(c)


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_session_not_resumed_without_ticket_key(start_gate, certs, version):
    g = start_gate(**tls_settings(certs, ssl=True))
    v = VERSIONS[version]
    context = ctx(certs, min_version=v, max_version=v)
    sess = first_session(g, context)
    c = g.connect_tls(context, session=sess)
    assert not c.sock.session_reused
    login_exec(c)


def test_session_not_resumed_with_another_key(start_gate, certs):
    """A ticket made under one key file is not accepted under another: a
    full handshake follows, and the connection works."""
    g1 = start_gate(**tls_settings(certs, ssl=True, ssl_session_ticket_key=certs.ticket_key))
    g2 = start_gate(**tls_settings(certs, ssl=True, ssl_session_ticket_key=certs.ticket_key2))
    context = ctx(certs)
    sess = first_session(g1, context)
    assert sess.has_ticket
    c = g2.connect_tls(context, session=sess)
    assert not c.sock.session_reused
    login_exec(c)
    c = g1.connect_tls(context, session=sess)
    assert c.sock.session_reused


def test_session_resumed_after_starttls(start_gate, certs):
    g = start_gate(**tls_settings(certs, starttls="on", ssl_session_ticket_key=certs.ticket_key))
    context = ctx(certs)
    c = g.connect()
    starttls(c, certs, context=context)
    c.sendline("n NOOP")
    c.expect(b"n OK NOOP completed")
    sess = c.sock.session
    assert sess.has_ticket
    c.close()
    c = g.connect()
    c.sendline("a STARTTLS")
    c.expect(b"a OK Begin TLS negotiation now")
    c.start_tls(context, server_hostname=NAME, session=sess)
    assert c.sock.session_reused
    login_exec(c, "b")


# -- client certificates, AUTHENTICATE EXTERNAL ------------------------------------------

def ext_settings(certs, verify="optional", **more):
    s = dict(ssl=True, ssl_verify_client=verify, ssl_client_certificate=certs.ca,
             imap_auth=["plain", "external"], ssl_external_trust_session=True)
    s.update(more)
    return tls_settings(certs, **s)


@pytest.mark.parametrize("how", ["ir-empty", "ir-authzid", "continuation-empty",
                                 "continuation-equals"])
def test_external_with_ca_signed_cert(start_gate, certs, how):
    """The CA-signed certificate CN=alice: AUTH=EXTERNAL is offered and
    logs in as alice (exec mode); her mailbox is selected."""
    g = start_gate(**ext_settings(certs))
    c = g.connect_tls(ctx(certs, cert=certs.alice))
    assert_caps(c.greeting, BASE + ["AUTH=PLAIN", "AUTH=EXTERNAL"])
    assert_caps(capability(c), BASE + ["AUTH=PLAIN", "AUTH=EXTERNAL"])
    if how == "ir-empty":
        c.sendline("a AUTHENTICATE EXTERNAL =")
    elif how == "ir-authzid":
        c.send(b"a AUTHENTICATE EXTERNAL " + helpers.b64("alice") + b"\r\n")
    else:
        c.sendline("a AUTHENTICATE EXTERNAL")
        c.expect_continuation()
        c.send(b"\r\n" if how == "continuation-empty" else b"=\r\n")
    lines = c.read_until_tagged("a")
    assert re.match(logged_in_re("a"), lines[-1]), lines
    select_and_logout(c)
    assert re.search(r"login: user=\"alice\"", g.log()), g.log()


def test_external_authzid_other_user_refused(start_gate, certs):
    """passwd-file source: an authzid other than the certificate's CN."""
    g = start_gate(**ext_settings(certs))
    c = g.connect_tls(ctx(certs, cert=certs.alice))
    c.send(b"a AUTHENTICATE EXTERNAL " + helpers.b64("bob") + b"\r\n")
    c.expect(b"a" + AUTHZ_FAILED, timeout=5)
    c.sendline("b AUTHENTICATE EXTERNAL =")
    lines = c.read_until_tagged("b")
    assert re.match(logged_in_re("b"), lines[-1]), lines


def test_external_cn_not_a_user(start_gate, certs):
    """A valid certificate whose CN is in no passwd-file line: no login."""
    g = start_gate(**ext_settings(certs))
    c = g.connect_tls(ctx(certs, cert=certs.mallory))
    assert "AUTH=EXTERNAL" in caps_of(c.greeting)
    c.sendline("a AUTHENTICATE EXTERNAL =")
    line = c.readline(timeout=5)
    assert line.startswith(b"a NO "), line
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


@pytest.mark.parametrize("client_cert", ["none", "self-signed", "ca-signed-not-listed"])
def test_external_not_offered(start_gate, certs, client_cert):
    """No certificate, one that does not verify (ssl_verify_client
    optional lets both in), or external not in imap_auth: no AUTH=EXTERNAL,
    AUTHENTICATE EXTERNAL is an unsupported mechanism; a password login
    still works."""
    cert = {"none": None, "self-signed": certs.alice_selfsigned,
            "ca-signed-not-listed": certs.alice}[client_cert]
    more = {"imap_auth": ["plain"]} if client_cert == "ca-signed-not-listed" else {}
    g = start_gate(**ext_settings(certs, **more))
    c = g.connect_tls(ctx(certs, cert=cert))
    assert_caps(c.greeting, BASE + ["AUTH=PLAIN"])
    assert_caps(capability(c), BASE + ["AUTH=PLAIN"])
    c.sendline("a AUTHENTICATE EXTERNAL =")
    c.expect(b"a" + UNSUPPORTED)
    c.sendline("b AUTHENTICATE EXTERNAL")
    c.expect(b"b" + UNSUPPORTED)
    login_exec(c, "c")


def test_external_not_offered_in_plaintext(start_gate, certs):
    """STARTTLS: AUTH=EXTERNAL only after TLS with the certificate."""
    g = start_gate(**ext_settings(certs, ssl=None, starttls="on"))
    c = g.connect()
    assert_caps(c.greeting, BASE + ["AUTH=PLAIN", "STARTTLS"])
    c.sendline("a AUTHENTICATE EXTERNAL =")
    c.expect(b"a" + UNSUPPORTED)
    starttls(c, certs, tag="b", context=ctx(certs, cert=certs.alice))
    assert_caps(capability(c), BASE + ["AUTH=PLAIN", "AUTH=EXTERNAL"])
    c.sendline("c AUTHENTICATE EXTERNAL =")
    lines = c.read_until_tagged("c")
    assert re.match(logged_in_re("c"), lines[-1]), lines


@pytest.mark.parametrize("how", ["implicit", "starttls"])
def test_verify_client_on_without_cert_refused(start_gate, certs, how):
    """ssl_verify_client on: a client sending no certificate fails the
    handshake (TLS 1.3: the client learns it on its first read) and never
    gets an IMAP answer over TLS."""
    g = start_gate(**ext_settings(certs, verify="on", **(
        {"ssl": None, "starttls": "on"} if how == "starttls" else {})))
    c = g.connect(greeting=(how == "starttls"))
    if how == "starttls":
        c.sendline("a STARTTLS")
        c.expect(b"a OK Begin TLS negotiation now")
    refused, lines = helpers.tls_refused(c, ctx(certs))
    assert refused, "connection still open; lines %r" % lines
    assert not any(ln.startswith(b"* OK") or b" OK " in ln for ln in lines), lines


def test_verify_client_on_with_unverified_cert(start_gate, certs):
    """ssl_verify_client on, a self-signed certificate: `* BYE Client
    certificate not verified`, then the connection closes."""
    g = start_gate(**ext_settings(certs, verify="on"))
    c = g.connect(greeting=False)
    refused, lines = helpers.tls_refused(c, ctx(certs, cert=certs.alice_selfsigned))
    assert refused, "connection still open; lines %r" % lines
    assert lines == [b"* BYE Client certificate not verified"], lines


def test_verify_client_on_with_valid_cert(start_gate, certs):
    g = start_gate(**ext_settings(certs, verify="on"))
    c = g.connect_tls(ctx(certs, cert=certs.alice))
    assert "AUTH=EXTERNAL" in caps_of(c.greeting)
    login_exec(c)               # a password still works for the holder
    select_and_logout(c)


def test_curl_external(start_gate, certs):
    """curl's own EXTERNAL (AUTHENTICATE EXTERNAL with the user as authzid,
    SASL-IR) with its client certificate."""
    g = start_gate(**ext_settings(certs))
    r = curl("--cacert", certs.ca, "--cert", certs.alice.cert, "--key", certs.alice.key,
             "--login-options", "AUTH=EXTERNAL", "-u", "alice:",
             "--url", "imaps://127.0.0.1:%d/" % g.port)
    assert r.returncode == 0, (r.returncode, r.stderr, g.log())
    assert re.search(rb'^\* LIST \([^)]*\) "[./]" "?INBOX"?\r?$', r.stdout, re.M), r.stdout


# -- auth_http: Auth-SSL-* -----------------------------------------------------------------

def start_http(start_gate, dovecot, srv, **settings):
    return start_gate(exec=None, connect=[dovecot.addr()], passwd_file=None, http=srv.url(),
                      **settings)


def unescape(v):
    return urllib.parse.unquote(v)


def norm_serial(s):
    return s.replace(":", "").lower().lstrip("0") or "0"


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_auth_http_ssl_headers_without_client_cert(start_gate, dovecot, certs, auth_server,
                                                   version):
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_http(start_gate, dovecot, srv, **tls_settings(certs, ssl=True))
    v = VERSIONS[version]
    c = g.connect_tls(ctx(certs, min_version=v, max_version=v))
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert srv.count() == 1, srv.requests
    req = srv.requests[0]
    d = req.as_dict()
    assert d["Auth-SSL"] == "on", req.raw
    assert d["Auth-SSL-Protocol"] == version.replace("v", ""), req.raw     # TLS1.3
    assert re.match(r"^[A-Za-z0-9_.%+-]+$", d.get("Auth-SSL-Cipher", "")), req.raw
    assert d.get("Auth-SSL-Verify") == "NONE", req.raw
    for h in ("Auth-SSL-Subject", "Auth-SSL-Issuer", "Auth-SSL-Serial",
              "Auth-SSL-Fingerprint"):
        assert h not in d, req.raw
    assert d["Auth-Method"] == "plain" and d["Auth-User"] == "alice", req.raw


def test_auth_http_no_ssl_headers_in_plaintext(start_gate, dovecot, certs, auth_server):
    """starttls on, but the login before STARTTLS: no Auth-SSL-* at all."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_http(start_gate, dovecot, srv, **tls_settings(certs, starttls="on"))
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert srv.count() == 1
    assert not [n for n in srv.requests[0].names() if n.lower().startswith("auth-ssl")], \
        srv.requests[0].raw


@pytest.mark.parametrize("which", ["ca-signed", "self-signed"])
def test_auth_http_ssl_client_cert_headers(start_gate, dovecot, certs, auth_server, which):
    """With a client certificate (ssl_verify_client optional): its
    verification result, subject, issuer, serial and SHA-1 fingerprint,
    percent-escaped like Auth-User."""
    pair = certs.alice if which == "ca-signed" else certs.alice_selfsigned
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_http(start_gate, dovecot, srv, **tls_settings(
        certs, ssl=True, ssl_verify_client="optional", ssl_client_certificate=certs.ca))
    c = g.connect_tls(ctx(certs, cert=pair))
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert srv.count() == 1, srv.requests
    req = srv.requests[0]
    d = req.as_dict()
    assert d["Auth-SSL"] == "on", req.raw
    assert d["Auth-SSL-Verify"] == ("SUCCESS" if which == "ca-signed" else "FAILED"), req.raw
    for h in ("Auth-SSL-Subject", "Auth-SSL-Issuer"):
        assert " " not in d[h], "unescaped space in %s: %r" % (h, req.raw)
    assert "CN=alice" in unescape(d["Auth-SSL-Subject"]), req.raw
    issuer = unescape(d["Auth-SSL-Issuer"])
    if which == "ca-signed":
        assert "CN=imapgate Test CA" in issuer and "O=imapgate tests" in issuer, req.raw
        assert "imapgate%20Test%20CA" in d["Auth-SSL-Issuer"], req.raw
    else:
        assert "CN=alice" in issuer and "Test CA" not in issuer, req.raw
    assert d["Auth-SSL-Fingerprint"] == pair.sha1(), req.raw
    assert norm_serial(d["Auth-SSL-Serial"]) == pair.serial(), req.raw


def test_auth_http_external(start_gate, dovecot, certs, auth_server):
    """EXTERNAL with auth_http: Auth-Method external, the CN (or the
    authzid) as Auth-User, an empty Auth-Pass; the auth server decides."""
    srv = auth_server()
    srv.push(helpers.auth_ok(dovecot.port, password="secret"),
             helpers.auth_ok(dovecot.port, password=conftest.USERS["bob"][0]))
    settings = ext_settings(certs)
    g = start_http(start_gate, dovecot, srv, **settings)
    c = g.connect_tls(ctx(certs, cert=certs.alice))
    assert "AUTH=EXTERNAL" in caps_of(c.greeting)
    c.sendline("a AUTHENTICATE EXTERNAL =")
    expect_logged_in(c, "a")
    c = g.connect_tls(ctx(certs, cert=certs.alice))
    c.send(b"a AUTHENTICATE EXTERNAL " + helpers.b64("bob") + b"\r\n")
    expect_logged_in(c, "a")
    assert srv.count() == 2, srv.requests
    for req, user in zip(srv.requests, ("alice", "bob")):
        d = req.as_dict()
        assert d["Auth-Method"] == "external", req.raw
        assert d["Auth-User"] == user, req.raw
        assert d["Auth-Pass"] == "", req.raw
        assert d["Auth-SSL-Verify"] == "SUCCESS", req.raw
        assert d["Auth-SSL-Fingerprint"] == certs.alice.sha1(), req.raw
    assert dovecot.wait_log(r"Login: user=<alice>", dovecot.log_mark)
    assert dovecot.wait_log(r"Login: user=<bob>", dovecot.log_mark)
