"""Promises of README and imapgate(8) that no other test held imapgate to
(issue 15): the session log line field by field, checkpassword's
descriptors, environment and input limit, the exit statuses of a
connection, -t's warnings, the defaults of max_penalty and penalty_file."""

import os
import re
import socket
import subprocess
import time

import pytest

import conftest
import helpers
from conftest import tls_settings
from helpers import AUTH_FAILED
from test_connect import expect_logged_in, login_line


def read_all_to_close(c, timeout=5.0):
    deadline = time.monotonic() + timeout
    try:
        while c._fill(deadline):
            pass
    except TimeoutError:
        raise AssertionError("connection still open; got %r" % c.buf[-300:]) from None
    data, c.buf = c.buf, b""
    return data


# -- the session line ------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_session_log_line_exactly(start_proxy, dovecot, certs, tls):
    """Connect mode: after the relay ends, one `session:` line with every
    documented field: the user, the client address, the backend, the bytes
    from the client after the login (in), the bytes to it after the login
    reply (out), the seconds since the connection began, end=closed (and
    tls=yes when the client spoke TLS)."""
    g = start_proxy(**(tls_settings(certs, ssl=True) if tls else {}))
    t0 = time.monotonic()
    c = g.connect_tls() if tls else g.connect()
    c.send(login_line("a", "alice", "secret"))
    expect_logged_in(c, "a")
    after = c.buf
    c.buf = b""
    sent = b"b NOOP\r\nc LOGOUT\r\n"
    c.send(sent)
    got = after + read_all_to_close(c)
    assert got.endswith(b"c OK Logout completed (0.001 + 0.000 secs).\r\n") or \
        re.search(rb"c OK Logout completed[^\r\n]*\r\n$", got), got
    elapsed = time.monotonic() - t0
    c.close()
    rx = (r'^imapgate\[\d+\]: session: user="alice" ip=127\.0\.0\.1 backend=%s '
          r'in=(\d+) out=(\d+) duration=(\d+\.\d{3}) end=closed%s$'
          % (re.escape(dovecot.addr()), " tls=yes" if tls else ""))
    m = helpers.wait_for(lambda: re.search(rx, g.log(), re.M), timeout=5)
    assert m, (rx, g.log())
    assert len(re.findall(r"\bsession: ", g.log())) == 1, g.log()
    assert int(m.group(1)) == len(sent), (m.group(0), sent)
    assert int(m.group(2)) == len(got), (m.group(0), got)
    assert 0 < float(m.group(3)) <= elapsed + 0.01, (m.group(0), elapsed)


# -- auth_http's limits -----------------------------------------------------------

TEMPFAIL = b"a NO [UNAVAILABLE] Temporary authentication failure."


def http_gate(start_proxy, srv, **kw):
    return start_proxy(passwd_file=None, http=srv.url(), **kw)


def padded_ok(dport, total):
    """An OK answer of exactly `total` bytes (a body pads it)."""
    head = (b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n"
            b"Auth-Port: %d\r\n\r\n" % dport)
    assert total >= len(head)
    return helpers.AuthReply(raw=head + b"x" * (total - len(head)))


@pytest.mark.parametrize("size", [4095, 4096])
def test_auth_http_answer_size_limit(start_proxy, dovecot, auth_server, size):
    """An answer shorter than 4096 bytes (body included) is read; one of
    4096 is a temporary failure, logged."""
    srv = auth_server(default=padded_ok(dovecot.port, size))
    g = http_gate(start_proxy, srv)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    if size < 4096:
        expect_logged_in(c, "a")
        return
    c.expect(TEMPFAIL)
    assert helpers.wait_for(lambda: 'error: auth: auth_http server timed out, or answered too '
                            'much (user "alice")' in g.log(), timeout=3), g.log()


@pytest.mark.parametrize("status,client_sees", [
    ("N" * 300, b"a NO " + b"N" * 256),                    # at most 256 characters
    ("Invalid\tlogin \xe9t\xe9", b"a NO Invalid?login ?t?"),  # tab allowed, shown as ?
])
def test_auth_http_status_text_to_client(start_proxy, dovecot, auth_server, status, client_sees):
    srv = auth_server(default=helpers.AuthReply(raw=b"HTTP/1.0 200 OK\r\nAuth-Status: " +
                                                status.encode("latin-1") + b"\r\n\r\n"))
    g = http_gate(start_proxy, srv)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    assert c.readline() == client_sees
    c.expect(b"* BYE Authentication refused")
    c.assert_closed()


@pytest.mark.parametrize("value", [b"Invalid\x01login", b"Invalid\x7flogin", b"Invalid\rlogin"])
def test_auth_http_control_bytes_are_tempfail(start_proxy, dovecot, auth_server, value):
    srv = auth_server(default=helpers.AuthReply(raw=b"HTTP/1.0 200 OK\r\nAuth-Status: " +
                                                value + b"\r\nAuth-Wait: 1\r\n\r\n"))
    g = http_gate(start_proxy, srv)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(TEMPFAIL)
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    assert helpers.wait_for(lambda: 'error: auth: malformed auth_http response (user "alice")'
                            in g.log(), timeout=3), g.log()


@pytest.mark.parametrize("wait,kept", [("3601", True), ("999999", True),
                                       ("1234567", False), ("soon", False)])
def test_auth_http_wait_limits(start_proxy, dovecot, auth_server, wait, kept):
    """Auth-Wait of at most 6 digits is honoured (capped at 3600 s: the
    client is still waiting seconds later, the connection kept); anything
    else is no Auth-Wait: the NO at once, then closing."""
    srv = auth_server(default=helpers.auth_error("Invalid login", wait=wait))
    g = http_gate(start_proxy, srv, failure_delay=0.2)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    if kept:
        c.assert_silent(2.0)
        return
    c.expect(b"a NO Invalid login", timeout=3)
    c.expect(b"* BYE Authentication refused")
    c.assert_closed()
