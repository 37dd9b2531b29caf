"""A real HAProxy (Debian's) in front of imapgate (issue 13): `mode tcp`
with `send-proxy-v2` or `send-proxy`, imapgate with proxy_protocol = true
and set_real_ip_from = HAProxy's address.  The scale-out deployment:
several imapgate hosts behind one balancer.

The client connects to HAProxy from 127.0.0.2; HAProxy connects to
imapgate from 127.0.0.1.  The address HAProxy saw (127.0.0.2, and the
client's port) must be the one imapgate logs, penalises, sends to
auth_http as Client-IP, and forwards to the mail server: Dovecot exec
(`rip=`), Courier exec (TCPREMOTEIP), Dovecot connect (ID).
"""

import os
import re
import subprocess
import time

import pytest

import conftest
import helpers
from helpers import AUTH_FAILED, b64, logged_in_re
from test_connect import dovecot_login_re, expect_logged_in
from test_courier import LOGGED_IN, LOGIN_LOG, courier_world

HAPROXY = "/usr/sbin/haproxy"
CLIENT = "127.0.0.2"

# The configuration README.md shows, with the test's ports.
HAPROXY_CONF = """\
global
    pidfile {d}/haproxy.pid
defaults
    mode tcp
    timeout connect 5s
    timeout client 30m
    timeout server 30m
frontend imap
    bind 127.0.0.1:{port}
    default_backend imapgate
backend imapgate
    server gate1 127.0.0.1:{gate_port} {send}
"""

SEND = {"v2": "send-proxy-v2", "v1": "send-proxy"}


class HAProxy:
    def __init__(self, root, gate_port, version):
        self.root = root
        self.port = conftest.free_port()
        self.conf = os.path.join(root, "haproxy-%s.cfg" % version)
        with open(self.conf, "w") as f:
            f.write(HAPROXY_CONF.format(d=root, port=self.port, gate_port=gate_port,
                                        send=SEND[version]))
        self.log_path = os.path.join(root, "haproxy.log")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        if not helpers.wait_for(lambda: conftest.port_listening(self.port), timeout=10):
            self.stop()
            pytest.fail("haproxy did not listen: " + open(self.log_path).read())

    def connect(self, greeting=True):
        c = helpers.Client(self.port, source=CLIENT)
        if greeting:
            c.greeting = c.expect_prefix("* OK ")
        return c

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture(params=["v2", "v1"])
def version(request):
    return request.param


@pytest.fixture
def haproxy(world):
    conftest.require_tool(HAPROXY)
    started = []

    def start(gate, version):
        h = HAProxy(world.root, gate.port, version)
        started.append(h)
        return h
    yield start
    for h in started:
        h.stop()


# Only HAProxy's address is believed.
PP = {"proxy_protocol": True, "set_real_ip_from": ["127.0.0.1"]}


def test_haproxy_dovecot_exec(start_gate, haproxy, version):
    g = start_gate(**PP)
    h = haproxy(g, version)
    c = h.connect()
    port = c.sock.getsockname()[1]
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    c.expect_re(logged_in_re("a"))
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK [READ-WRITE]"), lines
    lines = c.read_until_tagged("c")
    assert lines[-1].startswith(b"c OK Logout completed"), lines
    assert helpers.wait_for(lambda: re.search(
        r'login: user="alice" method=LOGIN ip=%s port=%d' % (re.escape(CLIENT), port),
        g.log()), timeout=5), g.log()
    # Dovecot's imap was told IP= the client's address, not HAProxy's.
    assert helpers.wait_for(lambda: "imap(alice)<rip=%s>" % CLIENT in g.log(), timeout=5), g.log()


def test_haproxy_courier_exec(start_gate, world, haproxy, version):
    g = start_gate(exec=[courier_world(world), "Maildir"], **PP)
    h = haproxy(g, version)
    c = h.connect()
    port = c.sock.getsockname()[1]
    c.send(b"a AUTHENTICATE PLAIN " + b64("\0alice\0secret") + b"\r\nb NOOP\r\nc LOGOUT\r\n")
    c.expect(b"a" + LOGGED_IN)
    c.expect(b"b OK NOOP completed")
    c.expect(b"* BYE Courier-IMAP server shutting down")
    c.expect(b"c OK LOGOUT completed")
    pat = LOGIN_LOG % ("alice", re.escape(CLIENT), port)
    assert helpers.wait_for(lambda: re.search(pat, g.log()), timeout=5), g.log()


def test_haproxy_dovecot_connect_forwards_by_id(start_proxy, dovecot, haproxy, version):
    g = start_proxy(**PP)
    h = haproxy(g, version)
    c = h.connect()
    port = c.sock.getsockname()[1]
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    c.sendline("z LOGOUT")
    c.read_until_tagged("z")
    assert dovecot.wait_log(dovecot_login_re("alice", CLIENT, port), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)


def test_haproxy_auth_http_client_ip(start_proxy, dovecot, auth_server, haproxy, version):
    srv = auth_server(default=helpers.auth_ok(dovecot.port))
    g = start_proxy(passwd_file=None, http=srv.url(), **PP)
    h = haproxy(g, version)
    c = h.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert srv.count() == 1, srv.requests
    raw = srv.requests[0].raw
    assert b"\r\nClient-IP: %s\r\n" % CLIENT.encode() in raw, raw


def fail_once(h, source):
    """Seconds from a wrong LOGIN through HAProxy to its NO."""
    c = helpers.Client(h.port, source=source)
    try:
        c.expect_prefix("* OK ")
        t0 = time.monotonic()
        c.sendline("a LOGIN alice wrong")
        c.expect(b"a" + AUTH_FAILED, timeout=10)
        return time.monotonic() - t0
    finally:
        c.close()


def test_haproxy_penalty_is_per_client_address(start_gate, world, haproxy):
    """Failures from one client behind HAProxy slow that client, not the
    next one: the penalty is keyed by the address in the header."""
    base = 0.4
    g = start_gate(failure_delay=base, max_attempts=1, max_penalty=3.0,
                   penalty_file=world.penalty_file, **PP)
    h = haproxy(g, "v2")
    first = fail_once(h, "127.0.0.2")
    second = fail_once(h, "127.0.0.2")
    third = fail_once(h, "127.0.0.2")
    other = fail_once(h, "127.0.0.3")
    assert third >= 3.5 * base, (first, second, third)     # base * 4: doubled twice
    assert other < 2.5 * base, (other, third)               # base: a fresh address
    assert helpers.wait_for(lambda: g.log().count("ip=127.0.0.2") >= 3, timeout=5), g.log()
