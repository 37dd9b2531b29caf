"""auth.http: nginx's auth_http protocol, so an existing nginx mail auth
endpoint works unchanged (REFERENCE.md section 3).

imapgate runs in connect mode in front of the session's Dovecot daemon;
the auth server is a recording Python server (helpers.AuthHTTPServer:
every request's raw header lines, answers from a per-test script) or
nginx's own http module.  Each test asserts the request bytes imapgate
sent and/or the lines the IMAP client got."""

import subprocess
import time

import pytest

import conftest
import helpers
from helpers import auth_error, auth_ok, auth_wait
from test_connect import dovecot_login_re, expect_logged_in

TEMPFAIL = b" NO [UNAVAILABLE] Temporary authentication failure."


def start_http(start_proxy, url, **kw):
    """imapgate with auth.http = url and no passwd-file."""
    return start_proxy(passwd_file=None, http=url, **kw)


def expected_lines(user, pw, attempt=1, client_ip="127.0.0.1", method="plain",
                   salt=None, proxy=None, extra=()):
    """The header lines (bytes, without CRLF) nginx would send, except Host."""
    b = helpers._b
    lines = [b"Auth-Method: " + b(method), b"Auth-User: " + b(user), b"Auth-Pass: " + b(pw)]
    if salt is not None:
        lines.append(b"Auth-Salt: " + b(salt))
    lines += [b"Auth-Protocol: imap", b"Auth-Login-Attempt: %d" % attempt,
              b"Client-IP: " + b(client_ip)]
    if proxy:
        addr, port, saddr, sport = proxy
        lines += [b"Proxy-Protocol-Addr: " + b(addr), b"Proxy-Protocol-Port: %d" % port,
                  b"Proxy-Protocol-Server-Addr: " + b(saddr),
                  b"Proxy-Protocol-Server-Port: %d" % sport]
    return lines + [b(x) for x in extra]


def check_request(req, expected, server=None, path="/auth", extra=()):
    """The request is `GET path HTTP/1.0`, one Host header, and exactly the
    `expected` header lines besides (byte for byte, no others), with the
    auth_http_header lines `extra` last."""
    assert req.complete, "incomplete request: %r" % req.raw
    assert req.request_line == b"GET " + path.encode() + b" HTTP/1.0", req.raw
    hosts = [ln for ln in req.header_lines if ln.lower().startswith(b"host:")]
    assert len(hosts) == 1, req.raw
    host = hosts[0].split(b":", 1)[1].strip()
    if server is not None and server.port:
        assert host == b"127.0.0.1", req.raw       # as nginx: no port
    elif server is not None and server.unix_path:
        assert host == b"localhost", req.raw      # nginx's Host for a unix socket
    else:
        assert host, req.raw
    others = [ln for ln in req.header_lines if not ln.lower().startswith(b"host:")]
    assert sorted(others) == sorted(expected), \
        "headers differ:\n sent:     %r\n expected: %r" % (others, expected)
    if extra:
        assert others[-len(extra):] == [helpers._b(x) for x in extra], others
    assert req.raw.endswith(b"\r\n\r\n") and req.raw.count(b"\r\n\r\n") == 1, req.raw


def login_line(tag, user, pw):
    q = lambda s: b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return tag.encode() + b" LOGIN " + q(user) + b" " + q(pw) + b"\r\n"


# -- the request --------------------------------------------------------------

def test_request_headers_escaping_attempts_and_extra_headers(start_proxy, dovecot, auth_server):
    """LOGIN from 127.0.0.2 with a user and password needing escapes: the
    first request is attempt 1; after the Auth-Wait'ed NO the retry on the
    same connection is attempt 2; auth_http_header lines are appended."""
    srv = auth_server()
    srv.push(auth_error("Invalid login", wait=1),
             auth_ok(dovecot.port, user="alice", password="secret"))
    extra = ["X-Auth-Key: secret", "X-Other: two words"]
    g = start_http(start_proxy, srv.url(), auth_http_header=extra)
    c = g.connect(source="127.0.0.2")
    c.send(login_line("a", "j doe%", "p a%ss"))
    c.expect(b"a NO Invalid login", timeout=5)
    c.send(login_line("b", "j doe%", "p a%ss"))
    expect_logged_in(c, "b")
    assert srv.count() == 2, srv.requests
    for n, req in enumerate(srv.requests, 1):
        check_request(req, expected_lines("j%20doe%25", "p%20a%25ss", attempt=n,
                                          client_ip="127.0.0.2", extra=extra),
                      server=srv, extra=extra)
    assert dovecot.wait_log(dovecot_login_re("alice"), dovecot.log_mark)


@pytest.mark.parametrize("how", ["login", "plain", "plain-ir", "authlogin"])
def test_every_password_mechanism_sends_method_plain(start_proxy, dovecot, auth_server, how):
    """LOGIN, AUTHENTICATE PLAIN (with and without SASL-IR) and AUTHENTICATE
    LOGIN all send Auth-Method: plain; control bytes are escaped."""
    srv = auth_server(default=auth_ok(dovecot.port, user="alice", password="secret"))
    g = start_http(start_proxy, srv.url())
    c = g.connect()
    user, pw = "u\tser", "p\x01 a%ss\x19"
    if how == "login":
        user = "us er"         # no control bytes in a quoted string
        pw = "p a%ss"
        c.send(login_line("a", user, pw))
    elif how == "plain":
        c.sendline("a AUTHENTICATE PLAIN")
        c.expect_continuation()
        c.send(helpers.b64("\0%s\0%s" % (user, pw)) + b"\r\n")
    elif how == "plain-ir":
        c.send(b"a AUTHENTICATE PLAIN " + helpers.b64("\0%s\0%s" % (user, pw)) + b"\r\n")
    else:
        c.sendline("a AUTHENTICATE LOGIN")
        c.expect_continuation()
        c.send(helpers.b64(user) + b"\r\n")
        c.expect_continuation()
        c.send(helpers.b64(pw) + b"\r\n")
    expect_logged_in(c, "a")
    esc = lambda s: "".join("%%%02X" % ord(ch) if ch in " %" or ord(ch) < 0x20 else ch
                            for ch in s)
    assert srv.count() == 1, srv.requests
    check_request(srv.requests[0], expected_lines(esc(user), esc(pw)), server=srv)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_protocol_addresses_sent(start_proxy, dovecot, auth_server, version):
    srv = auth_server(default=auth_ok(dovecot.port))
    g = start_http(start_proxy, srv.url(), proxy_protocol=True,
                   set_real_ip_from=["127.0.0.0/8"])
    make = helpers.proxy_v1 if version == "v1" else helpers.proxy_v2
    c = g.connect(greeting=False)
    c.send(make("192.0.2.7", "198.51.100.1", 40007, 1143))
    c.expect_prefix(b"* OK ")
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert srv.count() == 1, srv.requests
    check_request(srv.requests[0],
                  expected_lines("alice", "secret", client_ip="192.0.2.7",
                                 proxy=("192.0.2.7", 40007, "198.51.100.1", 1143)),
                  server=srv)


# -- Auth-Status: OK ----------------------------------------------------------

@pytest.mark.parametrize("server", ["127.0.0.1", "localhost"])
def test_ok_routes_to_auth_server_backend(start_proxy, dovecot, auth_server, server):
    """Auth-Server (an IP or a host name) and Auth-Port override
    backend.connect (here a port where nothing listens)."""
    srv = auth_server(default=auth_ok(dovecot.port, server=server))
    g = start_http(start_proxy, srv.url(),
                   connect=["127.0.0.1:%d" % helpers.closed_port()])
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    c.sendline("b LOGOUT")
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK"), lines
    assert dovecot.wait_log(dovecot_login_re("alice"), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)


def test_ok_auth_user_and_pass_replace_the_clients(start_proxy, dovecot, auth_server):
    srv = auth_server(default=auth_ok(dovecot.port, user="alice", password="secret"))
    g = start_http(start_proxy, srv.url())
    c = g.connect()
    c.sendline("a LOGIN x y")
    expect_logged_in(c, "a")
    check_request(srv.requests[0], expected_lines("x", "y"), server=srv)
    assert dovecot.wait_log(dovecot_login_re("alice"), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)


# -- other Auth-Status: the text reaches the client ---------------------------

def test_error_without_wait_then_closed(start_proxy, dovecot, auth_server):
    srv = auth_server(default=auth_error("Invalid login or password"))
    g = start_http(start_proxy, srv.url())
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a NO Invalid login or password")
    c.expect(b"* BYE Authentication refused")
    c.assert_closed()
    assert srv.count() == 1


def test_error_with_wait_delayed_and_kept(start_proxy, dovecot, auth_server):
    srv = auth_server(default=auth_error("Invalid login", wait=1))
    g = start_http(start_proxy, srv.url())
    c = g.connect()
    t0 = time.monotonic()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a NO Invalid login", timeout=5)
    took = time.monotonic() - t0
    assert 0.95 <= took <= 3.5, took
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    c.sendline("c LOGIN alice secret")
    c.expect(b"c NO Invalid login", timeout=5)
    assert [r.get("Auth-Login-Attempt") for r in srv.requests] == ["1", "2"], srv.requests


# -- Auth-Status: WAIT ---------------------------------------------------------

def test_wait_then_ok_asks_again(start_proxy, dovecot, auth_server):
    srv = auth_server()
    srv.push(auth_wait(1), auth_ok(dovecot.port))
    g = start_http(start_proxy, srv.url())
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert srv.count() == 2, srv.requests
    gap = srv.requests[1].time - srv.requests[0].time
    assert gap >= 0.95, gap
    for r in srv.requests:
        assert (r.get("Auth-User"), r.get("Auth-Pass")) == ("alice", "secret"), r


def test_wait_stops_when_client_leaves(start_proxy, dovecot, auth_server):
    """nginx keeps re-querying after the client left; imapgate must not."""
    srv = auth_server(default=auth_wait(1))
    g = start_http(start_proxy, srv.url())
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    assert srv.wait_requests(2, timeout=4), srv.requests
    c.close()
    n = srv.count()
    time.sleep(3.5)
    assert srv.count() <= n + 1, "%d requests after the client left" % (srv.count() - n)
    assert helpers.wait_for(lambda: not g.processes(), timeout=3), g.processes()


# -- failures of the auth server itself: TEMPFAIL, never a crash --------------

def _malformed(dport):
    ok = b"Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: %d\r\n" % dport
    pad = b"".join(b"X-Pad-%04d: %s\r\n" % (i, b"x" * 40) for i in range(120))
    return {
        "no-status": helpers.AuthReply([("Auth-Server", "127.0.0.1"), ("Auth-Port", dport)]),
        "garbage": helpers.AuthReply(raw=b"\x00\xff\xfe garbage \x01\x02\r\n\x7f\x80\r\n\r\n"),
        "bad-header-name": helpers.AuthReply(
            raw=b"HTTP/1.0 200 OK\r\nX-Bad{Name}: 1\r\n" + ok + b"\r\n"),
        "over-4096": helpers.AuthReply(raw=b"HTTP/1.0 200 OK\r\n" + ok + pad + b"\r\n"),
        "truncated": helpers.AuthReply(raw=b"HTTP/1.0 200 OK\r\n" + ok),
        "empty": helpers.AuthReply(close_only=True),
    }


@pytest.mark.parametrize("kind", ["no-status", "garbage", "bad-header-name", "over-4096",
                                  "truncated", "empty"])
def test_malformed_response_is_tempfail(start_proxy, dovecot, auth_server, kind):
    reply = _malformed(dovecot.port)[kind]
    if kind == "over-4096":
        assert len(reply.raw) > 5000
    srv = auth_server(default=reply)
    g = start_http(start_proxy, srv.url())
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + TEMPFAIL)
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    assert srv.count() == 1
    assert not dovecot.wait_log(r"Login: user=<alice>", dovecot.log_mark, timeout=0.3)


def test_timeout_is_tempfail(start_proxy, dovecot, auth_server):
    srv = auth_server(default=helpers.AuthReply([("Auth-Status", "OK")], delay=6))
    g = start_http(start_proxy, srv.url(), auth_http_timeout=1)
    c = g.connect()
    t0 = time.monotonic()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + TEMPFAIL, timeout=5)
    took = time.monotonic() - t0
    assert 0.9 <= took <= 3.5, took
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_refused_is_tempfail(start_proxy, dovecot):
    g = start_http(start_proxy, "http://127.0.0.1:%d/auth" % helpers.closed_port())
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + TEMPFAIL)
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


# -- unix socket ---------------------------------------------------------------

def test_unix_socket_auth_server(start_proxy, dovecot, auth_server):
    srv = auth_server(default=auth_ok(dovecot.port), unix=True)
    assert srv.url().startswith("unix:/") and srv.url().endswith(".sock:/auth")
    g = start_http(start_proxy, srv.url())
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert srv.count() == 1
    check_request(srv.requests[0], expected_lines("alice", "secret"), server=srv)


# -- nginx's http module as the auth server -------------------------------------

def test_nginx_auth_ok(start_proxy, dovecot, nginx_auth):
    g = start_http(start_proxy, nginx_auth.url("/auth"),
                   connect=["127.0.0.1:%d" % helpers.closed_port()])
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert helpers.wait_for(lambda: "GET /auth HTTP/1.0|plain|alice|secret|imap|1|127.0.0.1"
                            in nginx_auth.access_log(), timeout=3), nginx_auth.access_log()
    assert dovecot.wait_log(dovecot_login_re("alice"), dovecot.log_mark)


def test_nginx_auth_invalid_login_with_wait(start_proxy, dovecot, nginx_auth):
    g = start_http(start_proxy, nginx_auth.url("/auth-fail"))
    c = g.connect()
    t0 = time.monotonic()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a NO Invalid login", timeout=5)
    assert time.monotonic() - t0 >= 0.95
    c.sendline("b LOGIN alice secret")
    c.expect(b"b NO Invalid login", timeout=5)
    c.sendline("c NOOP")
    c.expect(b"c OK NOOP completed")
    log = nginx_auth.access_log()
    assert "GET /auth-fail HTTP/1.0|plain|alice|secret|imap|1|127.0.0.1" in log, log
    assert "GET /auth-fail HTTP/1.0|plain|alice|secret|imap|2|127.0.0.1" in log, log


# -- configuration ---------------------------------------------------------------

def run_check(conf):
    conftest.require_binary()
    return subprocess.run([conftest.GATE_BIN, "-t", "-c", conf], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=10)


def test_config_http_valid(world):
    conf = world.write_config("http-ok.conf", exec=None, passwd_file=None,
                              connect=["127.0.0.1:143"], http="http://127.0.0.1:9/auth",
                              auth_http_header=["X-Auth-Key: secret"], auth_http_timeout=5,
                              imap_auth=["plain", "login", "cram-md5", "oauthbearer", "xoauth2"],
                              server_name="mail.example.org")
    r = run_check(conf)
    assert r.returncode == 0, r


@pytest.mark.parametrize("kw", [
    dict(http="http://127.0.0.1:9/auth"),                         # and passwd_file
    dict(checkpassword=["/bin/true"]),                            # and passwd_file
    dict(passwd_file=None, checkpassword=["/bin/true"], http="http://127.0.0.1:9/auth"),
    dict(imap_auth=["plain", "oauthbearer"]),                     # without http
    dict(imap_auth=["plain", "xoauth2"]),
])
def test_config_auth_sources_invalid(world, kw):
    conf = world.write_config("http-bad.conf", exec=None, connect=["127.0.0.1:143"], **kw)
    r = run_check(conf)
    assert r.returncode == 1, r
    assert conf in r.stderr.decode(), r
