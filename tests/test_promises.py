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
