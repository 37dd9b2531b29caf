"""Connect mode with TLS (issue 4, /work/notes/tls-spec.md): imapgate to
the backend over implicit TLS (backend.ssl) or STARTTLS
(backend.starttls), verifying the backend's certificate and name; and the
client side over TLS in front of a plaintext backend.

The backend is the TLS Dovecot daemon (conftest `dovecot_tls`): on
127.0.0.1 it presents imap.example.test (+ localhost, 127.0.0.1), on
127.0.0.2 wrong.example.test, both signed by the test CA.  Dovecot's
login line ends in ", TLS, session=" for a login over TLS."""

import imaplib
import re

import pytest

import conftest
import helpers
from conftest import tls_settings
from helpers import GREETING
from test_connect import expect_logged_in, expect_select_and_logout, make_message
from test_tls import NAME, ctx

UNAVAILABLE = b" NO [UNAVAILABLE] Backend unavailable."


def tls_login_re(user):
    return r"Login: user=<%s>, .* TLS, session=" % re.escape(user)


def start_backend_tls(start_gate, certs, connect, **settings):
    s = {"exec": None, "connect": connect,
         "backend_ssl_trusted_certificate": certs.ca}
    s.update(settings)
    return start_gate(**s)


@pytest.mark.parametrize("how,host,name", [
    ("ssl", "127.0.0.1", None),                 # the IP address SAN
    ("ssl", "localhost", None),                 # host part of backend.connect
    ("ssl", "127.0.0.1", NAME),
    ("ssl", "127.0.0.2", "wrong.example.test"), # its own name: fine
    ("starttls", "127.0.0.1", None),
    ("starttls", "127.0.0.1", NAME),
])
def test_backend_tls_login_select_fetch(start_gate, dovecot_tls, certs, how, host, name):
    """Login through imapgate to Dovecot over TLS; APPEND, SELECT, FETCH
    go through; Dovecot saw a TLS login."""
    d = dovecot_tls
    port = d.ssl_port if how == "ssl" else d.port
    g = start_backend_tls(start_gate, certs, ["%s:%d" % (host, port)],
                          backend_ssl=(how == "ssl") or None,
                          backend_starttls=(how == "starttls") or None,
                          backend_ssl_name=name)
    msg = make_message("via backend tls", 100000)
    with imaplib.IMAP4("127.0.0.1", g.port, timeout=10) as m:
        assert m.welcome == GREETING
        typ, data = m.login("alice", "secret")
        assert typ == "OK" and data[0].endswith(b"Logged in"), data
        assert m.append("INBOX", None, None, msg)[0] == "OK"
        assert m.select("INBOX") == ("OK", [b"1"])
        assert m.fetch("1", "(BODY.PEEK[])")[1][0][1] == msg
        m.logout()
    assert d.wait_log(tls_login_re("alice"), d.log_mark), d.log(d.log_mark)


@pytest.mark.parametrize("case", ["ssl-wrong-cert", "starttls-wrong-cert", "ssl-name-mismatch",
                                  "untrusted-ca", "system-cas"])
def test_backend_tls_verification_failure(start_gate, dovecot_tls, certs, case):
    """A backend certificate that does not carry the expected name, or is
    not signed by a trusted CA: `NO [UNAVAILABLE] Backend unavailable.`,
    and the password never reaches Dovecot."""
    d = dovecot_tls
    settings = {
        "ssl-wrong-cert": dict(connect=[d.ssl_addr("127.0.0.2")], backend_ssl=True,
                               backend_ssl_name=NAME),
        "starttls-wrong-cert": dict(connect=[d.addr(host="127.0.0.2")],
                                    backend_starttls=True, backend_ssl_name=NAME),
        "ssl-name-mismatch": dict(connect=[d.ssl_addr()], backend_ssl=True,
                                  backend_ssl_name="other.example.test"),
        "untrusted-ca": dict(connect=[d.ssl_addr()], backend_ssl=True,
                             backend_ssl_trusted_certificate=certs.other_ca),
        "system-cas": dict(connect=[d.ssl_addr()], backend_ssl=True,
                           backend_ssl_trusted_certificate=None),
    }[case]
    g = start_backend_tls(start_gate, certs, **settings)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + UNAVAILABLE, timeout=10)
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    assert not d.wait_log(r"user=<alice>", d.log_mark, timeout=0.5), d.log(d.log_mark)
    assert "secret" not in g.log()


def test_backend_starttls_not_offered(start_gate, dovecot, certs):
    """backend.starttls against a backend without STARTTLS (the plaintext
    Dovecot): refused like an unavailable backend; the user name and
    password are never sent in plaintext."""
    g = start_gate(exec=None, connect=[dovecot.addr()], backend_starttls=True,
                   backend_ssl_trusted_certificate=certs.ca)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + UNAVAILABLE, timeout=10)
    assert not dovecot.wait_log(r"alice", dovecot.log_mark, timeout=0.5), \
        dovecot.log(dovecot.log_mark)


def test_backend_ssl_to_plaintext_port_fails(start_gate, dovecot_tls, certs):
    """backend.ssl to a port that speaks plaintext IMAP: no handshake,
    UNAVAILABLE, nothing sent in the clear."""
    d = dovecot_tls
    g = start_backend_tls(start_gate, certs, [d.addr()], backend_ssl=True)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + UNAVAILABLE, timeout=15)
    assert not d.wait_log(r"user=<alice>", d.log_mark, timeout=0.5), d.log(d.log_mark)


def test_backend_tls_failover_pass_through(start_gate, dovecot_tls, certs):
    """Without an auth source (the backend judges the password), the first
    backend refusing connections: each login fails over to the second, over
    TLS; a wrong password there is refused with AUTHENTICATIONFAILED, the
    right one logs in."""
    d = dovecot_tls
    dead = helpers.closed_port()
    g = start_backend_tls(start_gate, certs, ["127.0.0.1:%d" % dead, d.ssl_addr()],
                          backend_ssl=True, passwd_file=None)
    c = g.connect()
    c.sendline("a LOGIN alice wrong-pw")
    c.expect(b"a" + helpers.AUTH_FAILED, timeout=10)
    assert d.wait_log(r"auth-worker.*alice.*Password mismatch|"
                      r"passwd-file\(alice,[^)]*\): Password mismatch", d.log_mark)
    c.sendline("b LOGIN alice secret")
    expect_logged_in(c, "b")
    assert d.wait_log(tls_login_re("alice"), d.log_mark)
    # Both logins tried the dead backend first.
    refused = re.findall(r"warning: backend 127\.0\.0\.1 \[127\.0\.0\.1\]:%d: Connection refused$"
                         % dead, g.log(), re.M)
    assert len(refused) == 2, g.log()
    assert "backend=%s" % d.ssl_addr() in g.log(), g.log()


@pytest.mark.parametrize("backend", ["ssl", "starttls"])
def test_backend_tls_pipelined_after_login(start_gate, dovecot_tls, certs, backend):
    d = dovecot_tls
    g = start_backend_tls(start_gate, certs,
                          [d.ssl_addr() if backend == "ssl" else d.addr()],
                          backend_ssl=(backend == "ssl") or None,
                          backend_starttls=(backend == "starttls") or None)
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)


@pytest.mark.parametrize("client", ["implicit", "starttls"])
@pytest.mark.parametrize("backend", ["plain", "ssl"])
def test_client_tls_in_connect_mode(start_gate, dovecot, dovecot_tls, certs, client, backend):
    """The client over TLS, the backend plaintext or TLS: imapgate relays
    TLS records both ways; a large message goes up and down intact."""
    if backend == "plain":
        conn = dict(exec=None, connect=[dovecot.addr()])
        d = dovecot
    else:
        conn = dict(exec=None, connect=[dovecot_tls.ssl_addr()], backend_ssl=True,
                    backend_ssl_trusted_certificate=certs.ca)
        d = dovecot_tls
    cl = {"ssl": True} if client == "implicit" else {"starttls": "only"}
    g = start_gate(**tls_settings(certs, **cl), **conn)
    if client == "implicit":
        m = imaplib.IMAP4_SSL("127.0.0.1", g.port, ssl_context=ctx(certs), timeout=20)
    else:
        m = imaplib.IMAP4("127.0.0.1", g.port, timeout=20)
        m.starttls(ssl_context=ctx(certs))
    try:
        typ, data = m.login("bob", conftest.USERS["bob"][0])
        assert typ == "OK" and data[0].endswith(b"Logged in"), data
        msgs = [make_message("one"), make_message("two", 1500000)]
        helpers.mail_roundtrip(m, msgs)
        m.logout()
    finally:
        try:
            m.shutdown()
        except OSError:
            pass
    assert d.wait_log(r"Login: user=<bob>", d.log_mark)
    assert conftest.USERS["bob"][0] not in g.log()


def test_client_tls_pipelined_in_connect_mode(start_gate, dovecot, certs):
    g = start_gate(exec=None, connect=[dovecot.addr()], **tls_settings(certs, ssl=True))
    c = g.connect_tls()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)
