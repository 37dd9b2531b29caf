"""TLS on the client side (issue 4, /work/notes/tls-spec.md): implicit TLS
(`ssl = true`), STARTTLS (`starttls = "on"` / `"only"`), what CAPABILITY
says before and after, STARTTLS injection, ALPN, SNI, the handshake
deadline, `listen` groups, exec mode relaying TLS, real clients (imaplib,
gnutls-cli, openssl s_client, curl).

The certificates are a private test PKI made with the openssl tool
(conftest `tls_certs` / `certs`, tests/tlscerts.py); clients trust only the
test CA and check the name imap.example.test (or 127.0.0.1)."""

import imaplib
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import time
import warnings

import pytest

import conftest
import helpers
from conftest import tls_settings
from helpers import AUTH_FAILED, GREETING, caps_of, logged_in_re
from test_connect import expect_logged_in, make_message

BASE = ["IMAP4", "IMAP4rev1", "UIDPLUS", "ID", "SASL-IR", "LITERAL-"]
BEGIN_TLS = b"a OK Begin TLS negotiation now"
PRIVACY = b" NO [PRIVACYREQUIRED] Use STARTTLS first"
NAME = "imap.example.test"
MODES_ALL = ("inetd", "fd3", "tcpserver", "listen")


def ctx(certs, **kw):
    return helpers.tls_context(certs.ca, **kw)


def assert_caps(line, expected):
    """The capability list in `line` is exactly the tokens `expected`
    (order aside), each once."""
    got = caps_of(line)
    assert len(got) == len(set(got)), "duplicate capability in %r" % line
    assert sorted(got) == sorted(expected), "capabilities %r, expected %r" % (got, expected)


def starttls(c, certs, tag="a", server_hostname=NAME, context=None):
    """STARTTLS on a plaintext Client whose greeting was read: the tagged
    OK, then the handshake (checking the server certificate)."""
    c.sendline("%s STARTTLS" % tag)
    c.expect(b"%s OK Begin TLS negotiation now" % tag.encode())
    c.start_tls(context or ctx(certs), server_hostname=server_hostname)
    return c


def capability(c, tag="k"):
    c.sendline("%s CAPABILITY" % tag)
    lines = c.read_until_tagged(tag)
    assert lines[-1] == b"%s OK CAPABILITY completed" % tag.encode(), lines
    caps = [ln for ln in lines if ln.startswith(b"* CAPABILITY ")]
    assert len(caps) == 1, lines
    return caps[0]


def login_exec(c, tag="a", user="alice", pw="secret"):
    """LOGIN in exec mode: Dovecot's imap answers the tag."""
    c.send(b"%s LOGIN %s %s\r\n" % (tag.encode(), user.encode(), pw.encode()))
    lines = c.read_until_tagged(tag)
    assert re.match(logged_in_re(tag), lines[-1]), lines


def select_and_logout(c, sel="b", out="c"):
    c.sendline("%s SELECT INBOX" % sel)
    lines = c.read_until_tagged(sel)
    assert lines[-1].startswith(b"%s OK [READ-WRITE]" % sel.encode()), lines
    c.sendline("%s LOGOUT" % out)
    lines = c.read_until_tagged(out)
    assert lines[0] == b"* BYE Logging out", lines
    assert lines[-1].startswith(b"%s OK Logout completed" % out.encode()), lines
    c.assert_closed()


def assert_no_password_in_log(g, *passwords):
    time.sleep(0.2)
    log = g.log_bytes()
    for pw in passwords:
        pw = helpers._b(pw)
        assert pw not in log, (pw, log)
        assert helpers.b64(pw) not in log, (pw, log)


def run(cmd, input=None, timeout=20):
    return subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def interact(cmd, lines, until, timeout=10.0):
    """Run a line-oriented TLS client (gnutls-cli, openssl s_client): write
    `lines`, keep stdin open, and collect stdout until `until` (bytes) has
    appeared and the process has ended (the server closes after LOGOUT),
    or the deadline.  Returns (stdout, stderr, returncode or None)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = b"", b""
    try:
        p.stdin.write(b"".join(lines))
        p.stdin.flush()
        deadline = time.monotonic() + timeout
        open_fds = [p.stdout, p.stderr]
        while open_fds and time.monotonic() < deadline:
            r, _, _ = select.select(open_fds, [], [], 0.1)
            for f in r:
                data = os.read(f.fileno(), 65536)
                if not data:
                    open_fds.remove(f)
                elif f is p.stdout:
                    out += data
                else:
                    err += data
        rc = p.poll()
        return out, err, rc
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=5)
        for f in (p.stdin, p.stdout, p.stderr):
            try:
                f.close()
            except OSError:
                pass


# -- the environment itself --------------------------------------------------------

def test_tls_test_pki(tls_certs):
    """The test PKI: server and client certificates verify against the
    test CA with the expected names; the self-signed client certificate
    and the unrelated CA do not verify."""
    c = tls_certs
    for pair in (c.server, c.other, c.wrong, c.alice):
        r = run(["openssl", "verify", "-CAfile", c.ca, pair.cert])
        assert r.returncode == 0, r.stderr
    r = run(["openssl", "verify", "-CAfile", c.ca, c.alice_selfsigned.cert])
    assert r.returncode != 0
    r = run(["openssl", "verify", "-CAfile", c.other_ca, c.server.cert])
    assert r.returncode != 0
    r = run(["openssl", "verify", "-CAfile", c.ca, "-verify_hostname", NAME, c.wrong.cert])
    assert r.returncode != 0
    r = run(["openssl", "x509", "-in", c.server.cert, "-noout", "-ext", "subjectAltName"])
    assert b"DNS:imap.example.test, DNS:localhost, IP Address:127.0.0.1" in r.stdout
    for f in (c.ticket_key, c.ticket_key2):
        assert os.path.getsize(f) == 80
    assert open(c.ticket_key, "rb").read() != open(c.ticket_key2, "rb").read()


def test_tls_dovecot_direct(dovecot_tls, certs):
    """Without imapgate: the TLS Dovecot serves implicit TLS and STARTTLS
    with imap.example.test's certificate on 127.0.0.1, wrong.example.test's
    on 127.0.0.2, and logs a login over TLS with ", TLS,"."""
    d = dovecot_tls
    with imaplib.IMAP4_SSL("127.0.0.1", d.ssl_port, ssl_context=ctx(certs), timeout=10) as m:
        assert m.login("alice", "secret")[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
        m.logout()
    with imaplib.IMAP4("127.0.0.1", d.port, timeout=10) as m:
        assert "STARTTLS" in m.capabilities
        m.starttls(ssl_context=ctx(certs))
        assert m.login("bob", conftest.USERS["bob"][0])[0] == "OK"
        m.logout()
    # 127.0.0.2: the wrong name for imap.example.test, right for its own.
    with socket.create_connection(("127.0.0.2", d.ssl_port), timeout=5) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx(certs).wrap_socket(s, server_hostname=NAME)
    with socket.create_connection(("127.0.0.2", d.ssl_port), timeout=5) as s:
        with ctx(certs).wrap_socket(s, server_hostname="wrong.example.test") as t:
            assert helpers.peer_names(t) == ["wrong.example.test"]
    out, err, _ = interact(["openssl", "s_client", "-starttls", "imap", "-connect",
                            d.addr(), "-CAfile", certs.ca, "-verify_hostname", NAME,
                            "-verify_return_error", "-quiet"],
                           [b"x LOGOUT\r\n"], b"x OK")
    assert b"x OK Logout completed" in out, (out, err)
    assert d.wait_log(r"Login: user=<alice>, .* TLS, session=", d.log_mark)
    assert d.wait_log(r"Login: user=<bob>, .* TLS, session=", d.log_mark)


# -- configuration ------------------------------------------------------------------

def gate_check(world, **overrides):
    conf = world.write_config("check.conf", **overrides)
    return run([conftest.GATE_BIN, "-t", "-c", conf])


def test_config_tls_keys_accepted(world, certs):
    """Every new key, at the top level, in listen groups and in backend{}."""
    conftest.require_binary()
    r = gate_check(world, **tls_settings(
        certs, certs.server, certs.other,
        ssl=False, starttls="on", ssl_priority="NORMAL:-VERS-ALL:+VERS-TLS1.3",
        ssl_session_ticket_key=certs.ticket_key, ssl_verify_client="optional",
        ssl_client_certificate=certs.ca, ssl_handshake_timeout=5,
        imap_auth=["plain", "external"], ssl_external_trust_session=True,
        listen=[{"port": 993, "ssl": True, "ssl_handshake_timeout": 3},
                {"port": 143, "starttls": "only", "greeting": "door 143"}]))
    assert r.returncode == 0, r.stderr
    r = gate_check(world, **tls_settings(
        certs, exec=None, connect=["127.0.0.1:993"], backend_ssl=True,
        backend_ssl_trusted_certificate=certs.ca, backend_ssl_name=NAME))
    assert r.returncode == 0, r.stderr
    r = gate_check(world, exec=None, connect=["127.0.0.1:143"], backend_starttls=True)
    assert r.returncode == 0, r.stderr


BAD_CONFIGS = {
    "starttls-value": (lambda c: tls_settings(c, starttls="maybe"), r"starttls"),
    "ssl-without-cert": (lambda c: {"ssl": True}, r"ssl_certificate"),
    "starttls-without-cert": (lambda c: {"starttls": "only"}, r"ssl_certificate"),
    "cert-key-lengths": (lambda c: {"ssl": True,
                                    "ssl_certificate": [c.server.cert, c.other.cert],
                                    "ssl_certificate_key": [c.server.key]},
                         r"ssl_certificate"),
    "relative-cert": (lambda c: {"ssl": True, "ssl_certificate": "imap.crt",
                                 "ssl_certificate_key": c.server.key}, r"ssl_certificate"),
    "verify-value": (lambda c: tls_settings(c, ssl=True, ssl_verify_client="yes",
                                            ssl_client_certificate=c.ca),
                     r"ssl_verify_client"),
    "verify-without-ca": (lambda c: tls_settings(c, ssl=True, ssl_verify_client="on"),
                          r"ssl_verify_client|ssl_client_certificate"),
    "relative-ticket-key": (lambda c: tls_settings(c, ssl=True,
                                                   ssl_session_ticket_key="ticket.key"),
                            r"ssl_session_ticket_key"),
    "duplicate-listen-port": (lambda c: tls_settings(c, listen=[{"port": 993, "ssl": True},
                                                                {"port": 993}]),
                              r"listen|port"),
    "listen-in-listen": (lambda c: tls_settings(c, listen=[{"port": 993, "listen": ()}]),
                         r"listen"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_config_tls_errors(world, certs, case):
    """imapgate -t rejects a wrong TLS setting, exit 1, naming the key."""
    conftest.require_binary()
    make, key_rx = BAD_CONFIGS[case]
    settings = make(certs)
    if case == "listen-in-listen":
        # an empty nested list: rendered by hand
        conf = world.write_config("check.conf", extra_top="listen = ( { port = 993; "
                                  "listen = ( ); } );", **{k: v for k, v in settings.items()
                                                          if k != "listen"})
        r = run([conftest.GATE_BIN, "-t", "-c", conf])
    else:
        r = gate_check(world, **settings)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert re.search(key_rx.encode(), r.stderr), r.stderr


# -- real clients ------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES_ALL)
def test_imaplib_starttls_session(start_gate, certs, mode):
    g = start_gate(mode=mode, **tls_settings(certs, starttls="on"))
    with imaplib.IMAP4("127.0.0.1", g.port, timeout=10) as m:
        assert "STARTTLS" in m.capabilities, m.capabilities
        typ, data = m.starttls(ssl_context=ctx(certs))
        assert typ == "OK", data
        assert "STARTTLS" not in m.capabilities and "AUTH=PLAIN" in m.capabilities
        assert m.sock.version() in ("TLSv1.3", "TLSv1.2")
        typ, data = m.login("bob", conftest.USERS["bob"][0])
        assert typ == "OK" and data[0].endswith(b"Logged in"), data
        msg = make_message("over starttls", 2000)
        assert m.append("INBOX", None, None, msg)[0] == "OK"
        assert m.select("INBOX") == ("OK", [b"1"])
        assert m.fetch("1", "(BODY.PEEK[])")[1][0][1] == msg
        m.logout()
    assert_no_password_in_log(g, conftest.USERS["bob"][0])


@pytest.mark.parametrize("mode", MODES_ALL)
def test_imaplib_implicit_tls_session(start_gate, certs, mode):
    """ssl = true: the handshake first, then the greeting; a large
    message goes up and comes back through the TLS relay of exec mode."""
    g = start_gate(mode=mode, **tls_settings(certs, ssl=True))
    with imaplib.IMAP4_SSL("127.0.0.1", g.port, ssl_context=ctx(certs), timeout=10) as m:
        assert m.welcome == GREETING
        typ, data = m.login("alice", "secret")
        assert typ == "OK" and data[0].endswith(b"Logged in"), data
        msgs = [make_message("small"), make_message("large", 400000)]
        helpers.mail_roundtrip(m, msgs)
        m.logout()
    assert_no_password_in_log(g, "secret")


def test_plaintext_client_on_implicit_tls_port_gets_nothing(start_gate, certs):
    """A client speaking IMAP to an ssl = true port never sees a greeting
    or an answer in plaintext."""
    g = start_gate(**tls_settings(certs, ssl=True, ssl_handshake_timeout=2))
    c = g.connect(greeting=False)
    c.send(b"a LOGIN alice secret\r\n", ignore_errors=True)
    try:
        while c._fill(time.monotonic() + 4):
            pass
    except TimeoutError:
        raise AssertionError("connection still open; got %r" % c.buf)
    assert b"OK" not in c.buf and b"* " not in c.buf, c.buf
    assert_no_password_in_log(g, "secret")


def gnutls_cli(port, certs, starttls):
    cmd = ["gnutls-cli", "--x509cafile", certs.ca, "--verify-hostname", NAME,
           "--sni-hostname", NAME, "-p", str(port), "127.0.0.1"]
    if starttls:
        cmd[1:1] = ["--starttls-proto=imap"]
    return cmd


def s_client(port, certs, starttls):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", certs.ca,
           "-verify_hostname", NAME, "-servername", NAME, "-verify_return_error", "-quiet"]
    if starttls:
        cmd[2:2] = ["-starttls", "imap"]
    return cmd


@pytest.mark.parametrize("how", ["starttls", "implicit"])
@pytest.mark.parametrize("tool", ["gnutls-cli", "openssl"])
def test_cli_tls_clients(start_gate, certs, tool, how):
    """gnutls-cli and openssl s_client, STARTTLS and implicit: CAPABILITY
    over TLS has AUTH=PLAIN and no STARTTLS; LOGIN, SELECT, LOGOUT."""
    if not shutil.which(tool):
        pytest.fail("%s missing" % tool)
    settings = {"starttls": "on"} if how == "starttls" else {"ssl": True}
    g = start_gate(**tls_settings(certs, **settings))
    make = gnutls_cli if tool == "gnutls-cli" else s_client
    cmd = make(g.port, certs, how == "starttls")
    out, err, rc = interact(cmd, [b"x1 CAPABILITY\r\n", b"x2 LOGIN alice secret\r\n",
                                  b"x3 SELECT INBOX\r\n", b"x4 LOGOUT\r\n"], b"x4 OK")
    text = out.replace(b"\r\n", b"\n")
    caps = [ln for ln in text.split(b"\n") if ln.startswith(b"* CAPABILITY ")]
    assert caps, (out, err)
    assert_caps(caps[-1], BASE + ["AUTH=PLAIN"])
    assert b"\nx1 OK CAPABILITY completed\n" in text, (out, err)
    assert re.search(rb"\nx2 OK \[CAPABILITY [^\]]*\] Logged in\n", text), (out, err)
    assert re.search(rb"\nx3 OK \[READ-WRITE\]", text), (out, err)
    assert b"\n* BYE Logging out\n" in text and b"\nx4 OK Logout completed" in text, (out, err)
    if how == "implicit":
        first = [ln for ln in text.split(b"\n") if ln.startswith(b"* ")][0]
        assert first.startswith(b"* OK [CAPABILITY " + " ".join(BASE).encode()), (out, err)


def curl(*args):
    if not shutil.which("curl"):
        pytest.fail("curl missing")
    return run(["curl", "-s", "-S", "--max-time", "15"] + list(args), timeout=30)


@pytest.mark.parametrize("how", ["imaps", "ssl-reqd"])
def test_curl_lists_mailboxes(start_gate, certs, how):
    settings = {"ssl": True} if how == "imaps" else {"starttls": "only"}
    g = start_gate(**tls_settings(certs, **settings))
    scheme = "imaps" if how == "imaps" else "imap"
    extra = ["--ssl-reqd"] if how == "ssl-reqd" else []
    r = curl("--cacert", certs.ca, "--resolve", "%s:%d:127.0.0.1" % (NAME, g.port),
             *extra, "--url", "%s://%s:%d/" % (scheme, NAME, g.port),
             "-u", "bob:" + conftest.USERS["bob"][0])
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert re.search(rb'^\* LIST \([^)]*\) "[./]" "?INBOX"?\r?$', r.stdout, re.M), r.stdout


def test_curl_ssl_reqd_refuses_a_gate_without_starttls(start_gate, certs):
    """Certificates configured but starttls off: STARTTLS is not offered,
    so curl --ssl-reqd gives up (CURLE_USE_SSL_FAILED) before sending the
    password."""
    g = start_gate(**tls_settings(certs))
    r = curl("--cacert", certs.ca, "--ssl-reqd", "--url", "imap://127.0.0.1:%d/" % g.port,
             "-u", "alice:secret")
    assert r.returncode == 64, (r.returncode, r.stderr)


def test_curl_wrong_ca_refused(start_gate, certs):
    """The client's check works: trusting another CA, curl refuses."""
    g = start_gate(**tls_settings(certs, ssl=True))
    r = curl("--cacert", certs.other_ca, "--url", "imaps://127.0.0.1:%d/" % g.port,
             "-u", "alice:secret")
    assert r.returncode == 60, (r.returncode, r.stderr)     # CURLE_PEER_FAILED_VERIFICATION


# -- CAPABILITY and STARTTLS ----------------------------------------------------------

def test_capability_starttls_on(start_gate, certs):
    g = start_gate(**tls_settings(certs, starttls="on", imap_auth=["plain", "login"]))
    c = g.connect()
    plain = BASE + ["AUTH=PLAIN", "AUTH=LOGIN"]
    assert_caps(c.greeting, plain + ["STARTTLS"])
    assert c.greeting.endswith(b"] imapgate ready"), c.greeting
    assert_caps(capability(c), plain + ["STARTTLS"])
    starttls(c, certs)
    assert_caps(capability(c, "k2"), plain)
    login_exec(c, "l")
    select_and_logout(c)


def test_capability_starttls_only(start_gate, certs):
    g = start_gate(**tls_settings(certs, starttls="only", imap_auth=["plain", "login"]))
    c = g.connect()
    assert_caps(c.greeting, BASE + ["STARTTLS", "LOGINDISABLED"])
    assert_caps(capability(c), BASE + ["STARTTLS", "LOGINDISABLED"])
    starttls(c, certs)
    assert_caps(capability(c, "k2"), BASE + ["AUTH=PLAIN", "AUTH=LOGIN"])
    login_exec(c, "l")
    select_and_logout(c)


def test_capability_implicit_tls(start_gate, certs):
    """Over implicit TLS: no STARTTLS, even with starttls = "on" set too."""
    g = start_gate(**tls_settings(certs, ssl=True, starttls="on"))
    c = g.connect_tls()
    assert c.greeting == GREETING
    assert_caps(capability(c), BASE + ["AUTH=PLAIN"])
    c.sendline("a STARTTLS")
    c.expect(b"a BAD TLS is already active")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


@pytest.mark.parametrize("with_certs", [False, True])
def test_starttls_off(start_gate, certs, with_certs):
    """starttls off (the default), certificates configured or not: not
    advertised, and refused with BAD; the connection goes on in plaintext."""
    g = start_gate(**(tls_settings(certs) if with_certs else {}))
    c = g.connect()
    assert c.greeting == GREETING
    c.sendline("a STARTTLS")
    c.expect(b"a BAD STARTTLS is not enabled")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    login_exec(c, "l")


def test_starttls_twice(start_gate, certs):
    g = start_gate(**tls_settings(certs, starttls="on"))
    c = g.connect()
    starttls(c, certs)
    c.sendline("b STARTTLS")
    c.expect(b"b BAD TLS is already active")
    c.sendline("c NOOP")
    c.expect(b"c OK NOOP completed")
    login_exec(c, "l")
    select_and_logout(c, "m", "n")


@pytest.mark.parametrize("case", ["off", "active-starttls", "active-implicit"])
def test_starttls_errors_count_against_max_errors(start_gate, certs, case):
    settings = {"off": {}, "active-starttls": {"starttls": "on"},
                "active-implicit": {"ssl": True}}[case]
    g = start_gate(max_errors=2, **tls_settings(certs, **settings))
    if case == "active-implicit":
        c = g.connect_tls()
    else:
        c = g.connect()
        if case == "active-starttls":
            starttls(c, certs, tag="s")
    text = b"STARTTLS is not enabled" if case == "off" else b"TLS is already active"
    c.sendline("a STARTTLS")
    c.expect(b"a BAD " + text)
    c.sendline("b STARTTLS")
    c.expect(b"b BAD " + text)
    c.expect(b"* BYE Too many invalid commands")
    c.assert_closed()


# -- STARTTLS injection (REFERENCE: CVE-2011-0411 and the 2021 "NO STARTTLS" family) --

def test_starttls_injection_same_segment(start_gate, certs):
    """`a STARTTLS` and `b NOOP` in one TCP segment: b is plaintext the
    server must discard, never answer (neither before nor after the
    handshake); the client's first command over TLS is answered."""
    g = start_gate(**tls_settings(certs, starttls="on"))
    c = g.connect()
    c.send(b"a STARTTLS\r\nb NOOP\r\n")
    c.expect(BEGIN_TLS)
    c.start_tls(ctx(certs), server_hostname=NAME)   # asserts no plaintext after the OK
    c.assert_silent(0.5)
    c.sendline("c NOOP")
    c.expect(b"c OK NOOP completed")
    c.sendline("d LOGOUT")
    c.expect(b"* BYE Logging out")
    c.expect(b"d OK LOGOUT completed")
    assert not any(ln.startswith(b"b ") for ln in c.lines), c.lines


def test_starttls_injection_login_never_reaches_auth(start_gate, dovecot, certs, auth_server):
    """starttls only: a LOGIN injected behind STARTTLS is not run, not
    before the handshake (it would be refused) and not after (it would be
    the attacker's command in the victim's TLS session)."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_gate(exec=None, connect=[dovecot.addr()], passwd_file=None, http=srv.url(),
                   **tls_settings(certs, starttls="only"))
    c = g.connect()
    c.send(b"a STARTTLS\r\nb LOGIN alice secret\r\n")
    c.expect(BEGIN_TLS)
    c.start_tls(ctx(certs), server_hostname=NAME)
    c.assert_silent(0.7)
    assert srv.count() == 0, srv.requests
    c.sendline("c LOGOUT")
    c.expect(b"* BYE Logging out")
    c.expect(b"c OK LOGOUT completed")
    assert srv.count() == 0, srv.requests


def test_starttls_injection_second_segment(start_gate, certs):
    """`b NOOP` sent raw after STARTTLS's OK, before the ClientHello: the
    handshake fails, the connection closes, and no `b OK` is ever sent,
    in plaintext or otherwise."""
    g = start_gate(**tls_settings(certs, starttls="on"))
    c = g.connect()
    c.sendline("a STARTTLS")
    c.expect(BEGIN_TLS)
    c.send(b"b NOOP\r\n")
    time.sleep(0.2)
    obj, raw, err = helpers.bio_handshake(c.sock, ctx(certs), server_hostname=NAME)
    assert obj is None, "handshake succeeded after injected plaintext"
    assert b"b OK" not in raw and b"NOOP" not in raw, raw
    try:
        while c._fill(time.monotonic() + 5):
            pass
    except TimeoutError:
        raise AssertionError("connection still open after a failed handshake: %r" % c.buf)
    assert b"b OK" not in c.buf, c.buf


def test_starttls_partial_line_not_joined(start_gate, certs):
    """`b NO` after STARTTLS in plaintext, `OP\\r\\n` over TLS: had the
    server kept the plaintext, `b NOOP` would be answered."""
    g = start_gate(**tls_settings(certs, starttls="on"))
    c = g.connect()
    c.send(b"a STARTTLS\r\nb NO")
    c.expect(BEGIN_TLS)
    c.start_tls(ctx(certs), server_hostname=NAME)
    c.send(b"OP\r\n")
    c.sendline("c NOOP")
    lines = c.read_until_tagged("c")
    assert lines[-1] == b"c OK NOOP completed", lines
    assert not any(ln.startswith(b"b ") for ln in lines), lines
    assert all(b"BAD" in ln for ln in lines[:-1]), lines


def test_starttls_only_refuses_login_before_tls(start_gate, dovecot, certs, auth_server):
    """starttls only: LOGIN and AUTHENTICATE PLAIN before TLS get
    NO [PRIVACYREQUIRED] and reach no auth source; after STARTTLS the
    same LOGIN works, and the password is in no log."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_gate(exec=None, connect=[dovecot.addr()], passwd_file=None, http=srv.url(),
                   **tls_settings(certs, starttls="only"))
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + PRIVACY)
    c.send(b"b AUTHENTICATE PLAIN " + helpers.b64("\0alice\0secret") + b"\r\n")
    c.expect(b"b" + PRIVACY)
    time.sleep(0.3)
    assert srv.count() == 0, srv.requests
    starttls(c, certs, tag="c")
    c.sendline("d LOGIN alice secret")
    expect_logged_in(c, "d")
    assert srv.count() == 1, srv.requests
    assert srv.requests[0].get("Auth-SSL") == "on", srv.requests[0].raw
    assert dovecot.wait_log(r"Login: user=<alice>", dovecot.log_mark)
    assert_no_password_in_log(g, "secret")


def test_starttls_on_allows_plaintext_login(start_gate, certs):
    """starttls on (not only): LOGIN in plaintext is still accepted."""
    g = start_gate(**tls_settings(certs, starttls="on"))
    c = g.connect()
    login_exec(c)
    select_and_logout(c)


# -- ALPN, SNI ------------------------------------------------------------------------

@pytest.mark.parametrize("alpn", [None, ["imap"], ["h2", "imap"]])
def test_alpn_accepted(start_gate, certs, alpn):
    g = start_gate(**tls_settings(certs, ssl=True))
    c = g.connect_tls(ctx(certs, alpn=alpn))
    assert c.greeting == GREETING
    assert c.sock.selected_alpn_protocol() == (None if alpn is None else "imap")
    login_exec(c)


@pytest.mark.parametrize("how", ["implicit", "starttls"])
@pytest.mark.parametrize("alpn", [["http/1.1"], ["http/1.1", "h2"]])
def test_alpn_without_imap_refused(start_gate, certs, alpn, how):
    """ALPACA: a client that wants another protocol is refused in the
    handshake with no_application_protocol, and sees no IMAP."""
    settings = {"ssl": True} if how == "implicit" else {"starttls": "on"}
    g = start_gate(**tls_settings(certs, **settings))
    c = g.connect(greeting=(how == "starttls"))
    if how == "starttls":
        c.sendline("a STARTTLS")
        c.expect(BEGIN_TLS)
    with pytest.raises(ssl.SSLError) as e:
        c.start_tls(ctx(certs, alpn=alpn), server_hostname=NAME)
    assert "NO_APPLICATION_PROTOCOL" in str(e.value).upper().replace(" ", "_"), e.value


@pytest.mark.parametrize("sni,expect", [
    ("other.example.test", ["other.example.test"]),
    ("imap.example.test", ["imap.example.test", "localhost"]),
    ("unknown.example.test", ["imap.example.test", "localhost"]),
    (None, ["imap.example.test", "localhost"]),
])
def test_sni_selects_certificate(start_gate, certs, sni, expect):
    """Two certificate pairs: the one whose names match the SNI, else the
    first."""
    g = start_gate(**tls_settings(certs, certs.server, certs.other, ssl=True))
    context = ctx(certs)
    context.check_hostname = False      # checked below, by name list
    c = g.connect_tls(context, server_hostname=sni)
    assert helpers.peer_names(c.sock) == sorted(expect)
    assert c.greeting == GREETING
    if sni == "other.example.test":
        c.close()
        # and a client checking the name is satisfied
        c = g.connect_tls(ctx(certs), server_hostname=sni)
        login_exec(c)


def test_sni_over_starttls(start_gate, certs):
    g = start_gate(**tls_settings(certs, certs.server, certs.other, starttls="on"))
    c = g.connect()
    starttls(c, certs, server_hostname="other.example.test")
    assert helpers.peer_names(c.sock) == ["other.example.test"]
    login_exec(c)


@pytest.mark.parametrize("setting, refused, served", [
    # ssl_priority limits the versions: TLS 1.2 only refuses a
    # TLS-1.3-only client and serves a TLS 1.2 one.
    ({"ssl_priority": "NORMAL:-VERS-ALL:+VERS-TLS1.2"},
     {"min_version": ssl.TLSVersion.TLSv1_3}, "TLSv1.2"),
    # nginx's ssl_protocols works too: TLSv1.3 only refuses a client that
    # stops at TLS 1.2 and serves a TLS 1.3 one.
    ({"ssl_protocols": ["TLSv1.3"]},
     {"max_version": ssl.TLSVersion.TLSv1_2}, "TLSv1.3"),
], ids=["ssl_priority", "ssl_protocols"])
def test_tls_versions_setting_applies(start_gate, certs, setting, refused, served):
    g = start_gate(**tls_settings(certs, ssl=True, **setting))
    c = g.connect(greeting=False)
    with pytest.raises((ssl.SSLError, OSError)):
        c.start_tls(ctx(certs, **refused), server_hostname=NAME)
    c.close()
    c = g.connect_tls()
    assert c.sock.version() == served
    login_exec(c)


def test_default_priority_is_tls12_or_13(start_gate, certs):
    """The default priority allows TLS 1.3 and 1.2 only."""
    g = start_gate(**tls_settings(certs, ssl=True))
    c = g.connect_tls()
    assert c.sock.version() == "TLSv1.3"
    c.close()
    c = g.connect_tls(ctx(certs, max_version=ssl.TLSVersion.TLSv1_2))
    assert c.sock.version() == "TLSv1.2"
    c.close()
    c = g.connect(greeting=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = ctx(certs, max_version=ssl.TLSVersion.TLSv1_1)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        old.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, OSError)):
        c.start_tls(old, server_hostname=NAME)


# -- deadlines, renegotiation -----------------------------------------------------------

def closed_within(c, limit):
    """Seconds until the server closed the connection (failing after
    `limit`); what it sent before must not be IMAP."""
    t0 = time.monotonic()
    try:
        while c._fill(t0 + limit):
            pass
    except TimeoutError:
        raise AssertionError("connection open after %.1fs; got %r" % (limit, c.buf)) from None
    assert b"* OK" not in c.buf, c.buf
    return time.monotonic() - t0


@pytest.mark.parametrize("send", ["nothing", "half-hello"])
def test_handshake_timeout_implicit(start_gate, certs, send):
    g = start_gate(timeout=30, **tls_settings(certs, ssl=True, ssl_handshake_timeout=1))
    c = g.connect(greeting=False)
    t0 = time.monotonic()
    if send == "half-hello":
        hello = helpers.client_hello()
        c.send(hello[:len(hello) // 2])
    closed_within(c, 4.0)
    assert time.monotonic() - t0 >= 0.8, "closed before ssl_handshake_timeout"


def test_handshake_timeout_after_starttls(start_gate, certs):
    g = start_gate(timeout=30, **tls_settings(certs, starttls="on", ssl_handshake_timeout=1))
    c = g.connect()
    c.sendline("a STARTTLS")
    c.expect(BEGIN_TLS)
    t0 = time.monotonic()
    hello = helpers.client_hello()
    c.send(hello[:20])
    closed_within(c, 4.0)
    assert time.monotonic() - t0 >= 0.8, "closed before ssl_handshake_timeout"


def test_handshake_timeout_does_not_cut_sessions(start_gate, certs):
    """ssl_handshake_timeout limits the handshake only: an idle TLS session
    outlives it (until `timeout`)."""
    g = start_gate(timeout=30, **tls_settings(certs, ssl=True, ssl_handshake_timeout=1))
    c = g.connect_tls()
    time.sleep(1.8)
    c.sendline("a NOOP")
    c.expect(b"a OK NOOP completed")


def test_renegotiation_refused(start_gate, certs):
    """TLS 1.2 client-initiated renegotiation (openssl s_client's R
    command): the connection is closed, later commands are not answered."""
    if not shutil.which("openssl"):
        pytest.fail("openssl missing")
    g = start_gate(**tls_settings(certs, ssl=True))
    p = subprocess.Popen(["openssl", "s_client", "-tls1_2", "-connect", "127.0.0.1:%d" % g.port,
                          "-CAfile", certs.ca, "-verify_hostname", NAME, "-servername", NAME,
                          "-verify_return_error", "-crlf"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""

    def read_until(pred, timeout):
        nonlocal out
        deadline = time.monotonic() + timeout
        while not pred(out) and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.1)
            if r:
                data = os.read(p.stdout.fileno(), 65536)
                if not data:
                    return False
                out += data
        return pred(out)

    try:
        assert read_until(lambda o: b"imapgate ready" in o, 5), out
        p.stdin.write(b"a NOOP\n")
        p.stdin.flush()
        assert read_until(lambda o: b"a OK NOOP completed" in o, 5), out
        p.stdin.write(b"R\n")
        p.stdin.flush()
        time.sleep(0.5)
        try:
            p.stdin.write(b"b NOOP\n")
            p.stdin.flush()
        except BrokenPipeError:
            pass
        read_until(lambda o: False, 2)
        assert b"b OK" not in out, out
        # s_client exits because imapgate closed (it waits for ever
        # otherwise): wait() raising TimeoutExpired fails the test.
        rc = p.wait(timeout=5)
        assert re.search(rb"RENEGOTIATING\r?\n(.*\n)*closed", out), (rc, out)
        assert helpers.wait_for(lambda: g.processes() == [], timeout=3), g.processes()
        assert "session closed: reason=" in g.log(), g.log()
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=5)


# -- listen groups ------------------------------------------------------------------------

def test_listen_group_makes_port_implicit_tls(start_gate, certs):
    """The group whose port is the connection's local port overrides the
    top level: on p implicit TLS, on q (no group) plaintext."""
    p, q = conftest.free_port(), conftest.free_port()
    cfg = tls_settings(certs, listen=[{"port": p, "ssl": True}])
    gp = start_gate(port=p, **cfg)
    gq = start_gate(port=q, **cfg)
    c = gp.connect_tls()
    assert c.greeting == GREETING
    login_exec(c)
    select_and_logout(c)
    c = gq.connect()
    assert c.greeting == GREETING
    login_exec(c)


def test_listen_groups_two_ports_two_policies(start_gate, certs):
    """993-like and 143-like ports with one configuration, the top level
    plaintext; a group's greeting and imap_auth override too."""
    p, q, r = conftest.free_port(), conftest.free_port(), conftest.free_port()
    cfg = tls_settings(certs, listen=[
        {"port": p, "ssl": True, "imap_auth": ["plain", "login"]},
        {"port": q, "starttls": "only", "greeting": "door q"}])
    gp, gq, gr = (start_gate(port=x, **cfg) for x in (p, q, r))
    c = gp.connect_tls()
    assert_caps(c.greeting, BASE + ["AUTH=PLAIN", "AUTH=LOGIN"])
    login_exec(c)
    c = gq.connect()
    assert c.greeting.endswith(b"] door q"), c.greeting
    assert_caps(c.greeting, BASE + ["STARTTLS", "LOGINDISABLED"])
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + PRIVACY)
    starttls(c, certs, tag="b")
    login_exec(c, "c")
    c = gr.connect()
    assert c.greeting == GREETING
    c.sendline("a STARTTLS")
    c.expect(b"a BAD STARTTLS is not enabled")


def test_listen_group_overrides_auth_group(start_gate, world, certs):
    """A group may override a whole group such as auth {}: another
    passwd-file on port p."""
    other = world.write_passwd(passwords={"alice": "p-port-pw"}, name="passwd-p")
    p, q = conftest.free_port(), conftest.free_port()
    auth = {"passwd_file": other, "failure_delay": 0.2, "penalty_file": world.penalty_file,
            "max_penalty": 0.2}
    cfg = tls_settings(certs, listen=[{"port": p, "ssl": True, "auth": auth}])
    gp = start_gate(port=p, **cfg)
    gq = start_gate(port=q, **cfg)
    c = gp.connect_tls()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + AUTH_FAILED)
    login_exec(c, "b", pw="p-port-pw")
    c = gq.connect()
    c.sendline("a LOGIN alice p-port-pw")
    c.expect(b"a" + AUTH_FAILED)
    login_exec(c, "b")


def test_listen_group_in_listener_mode(start_gate, certs):
    """imapgate -L with a listen group for its port."""
    p = conftest.free_port()
    g = start_gate(mode="listen", port=p, **tls_settings(certs, listen=[{"port": p, "ssl": True}]))
    for _ in range(2):
        c = g.connect_tls()
        assert c.greeting == GREETING
        login_exec(c)
        select_and_logout(c)


# -- exec mode: the session relays TLS to the mail server ----------------------------------

@pytest.mark.parametrize("how", ["implicit", "starttls"])
def test_exec_pipelined_after_login_over_tls(start_gate, certs, how):
    """LOGIN, SELECT and LOGOUT in one TLS record: Dovecot answers all
    three, through imapgate's relay."""
    settings = {"ssl": True} if how == "implicit" else {"starttls": "only"}
    g = start_gate(**tls_settings(certs, **settings))
    if how == "implicit":
        c = g.connect_tls()
    else:
        c = g.connect()
        starttls(c, certs, tag="s")
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    lines = c.read_until_tagged("a")
    assert re.match(logged_in_re("a"), lines[-1]), lines
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK [READ-WRITE]"), lines
    lines = c.read_until_tagged("c")
    assert lines[0] == b"* BYE Logging out", lines
    assert lines[-1].startswith(b"c OK Logout completed"), lines
    c.assert_closed()
    assert_no_password_in_log(g, "secret")


def test_exec_tls_client_closes_first(start_gate, certs):
    """The client drops the TLS connection in the middle of a session:
    imapgate and the mail server go away."""
    g = start_gate(**tls_settings(certs, ssl=True))
    c = g.connect_tls()
    login_exec(c)
    c.sendline("b SELECT INBOX")
    c.read_until_tagged("b")
    c.close()
    assert helpers.wait_for(lambda: g.processes() == [], timeout=5), g.processes()


# -- the private key stays out of the session --------------------------------

def rsa_primes(keyfile):
    """The RSA key's two primes, big-endian bytes."""
    out = run(["openssl", "rsa", "-in", keyfile, "-noout", "-text"]).stdout.decode()
    primes = []
    for name in ("prime1", "prime2"):
        m = re.search(name + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", out)
        assert m, out
        hexs = re.sub(r"[\s:]", "", m.group(1))
        primes.append(bytes.fromhex(hexs).lstrip(b"\0"))
    return primes


def memory_holds(pid, needles):
    """Does any readable mapping of process pid contain one of needles
    (searched as given and byte-reversed, as GMP keeps a number)?  Read
    in chunks; mappings over 1 GiB (an ASan build's shadow) are skipped."""
    wanted = [n for p in needles for n in (p, p[::-1])]
    keep = max(len(n) for n in wanted)
    chunk = 1 << 20
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if perms[0] != "r" or line.endswith(("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in addr.split("-"))
            if end - start > 1 << 30:
                continue
            tail = b""
            for off in range(start, end, chunk):
                try:
                    mem.seek(off)
                    data = tail + mem.read(min(chunk, end - off))
                except OSError:
                    break
                if any(n in data for n in wanted):
                    return True
                tail = data[-keep:]
    return False


@pytest.mark.parametrize("mode", ["inetd", "listen"])
def test_private_key_never_in_the_session(start_gate, certs, privsep_user, mode):
    """The session does the handshake but signs through the monitor: the
    key's primes are in the monitor's memory and nowhere in the session's,
    which parses every client byte."""
    primes = rsa_primes(certs.server.key)
    g = start_gate(mode=mode, **tls_settings(certs, ssl=True))
    c = g.connect_tls()
    c.sendline("a NOOP")
    c.expect("a OK NOOP completed")
    procs = g.processes()
    mine = None
    for s in (p for p in procs if p["uids"][0] == privsep_user.pw_uid):
        # Ours is the session that has a client: its monitor is not
        # waiting in accept() (a spare's) -- simplest: the newest pair
        # whose monitor has the TCP peer.
        if helpers.proc_has_peer(s["pid"], c.sock.getsockname()[1]):
            mine = s
    assert mine is not None, procs
    monitor = mine["ppid"]
    # The search works: the monitor, which signs, holds the key.
    assert memory_holds(monitor, primes)
    assert not memory_holds(mine["pid"], primes)
    c.sendline("b LOGOUT")
    c.expect("* BYE Logging out")
