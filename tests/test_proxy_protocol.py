"""PROXY protocol in front of imapgate (proxy_protocol = true): a load
balancer's v1 or v2 header comes before imapgate's greeting, is believed
only from set_real_ip_from peers, and its address becomes the client
address -- in imapgate's log and at the backend (Dovecot's `rip=`)."""

import re
import time

import pytest

import helpers
from test_connect import dovecot_login_re, expect_logged_in, expect_select_and_logout, read_to_close

HEADERS = {
    "v1": lambda src, sport: helpers.proxy_v1(src, "127.0.0.1" if ":" not in src else "::1",
                                              sport, 143),
    "v2": lambda src, sport: helpers.proxy_v2(src, "127.0.0.1" if ":" not in src else "::1",
                                              sport, 143),
}


def start_pp(start_proxy, trusted=("127.0.0.0/8",), **kw):
    return start_proxy(proxy_protocol=True, set_real_ip_from=list(trusted), **kw)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_header_from_trusted_peer(start_proxy, dovecot, version):
    """No greeting before the header is complete; then the greeting, and
    the header's address is the one Dovecot and imapgate's log show."""
    g = start_pp(start_proxy)
    hdr = HEADERS[version]("192.0.2.7", 40007)
    c = g.connect(greeting=False)
    c.send(hdr[:9])
    c.assert_silent(0.4)
    c.send(hdr[9:])
    c.expect_prefix(b"* OK ")
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)
    assert dovecot.wait_log(dovecot_login_re("alice", "192.0.2.7", 40007), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)
    assert helpers.wait_for(lambda: "192.0.2.7" in g.log(), timeout=3), g.log()


def test_header_v2_forwarded_as_proxy_v2(start_proxy, dovecot):
    """Header in, header out: Dovecot's haproxy listener gets the address
    from imapgate's own PROXY v2 header."""
    g = start_pp(start_proxy, connect=[dovecot.addr(dovecot.haproxy_port)],
                 forward_client="proxy-v2")
    c = g.connect(greeting=False)
    c.send(helpers.proxy_v2("198.51.100.9", "127.0.0.1", 51000, 143) +
           b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    c.expect_prefix(b"* OK ")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)
    assert dovecot.wait_log(dovecot_login_re("alice", "198.51.100.9", 51000), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)


def test_header_ipv6_address_forwarded_by_id(start_proxy, dovecot):
    g = start_pp(start_proxy)
    c = g.connect(greeting=False)
    c.send(helpers.proxy_v2("2001:db8::7", "::1", 52000, 143))
    c.expect_prefix(b"* OK ")
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert dovecot.wait_log(dovecot_login_re("alice", "2001:db8::7", 52000), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)


def assert_refused(c, g, dovecot):
    """No greeting, no IMAP service: the connection is closed, at most
    after a * BYE line, and nothing reached Dovecot."""
    c.send(b"a LOGIN alice secret\r\nb CAPABILITY\r\n", ignore_errors=True)
    data = read_to_close(c, timeout=5)
    assert data == b"" or (data.startswith(b"* BYE") and data.count(b"\r\n") == 1), data
    time.sleep(0.2)
    assert "user=<alice>" not in dovecot.log(dovecot.log_mark), dovecot.log(dovecot.log_mark)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_header_from_untrusted_peer_refused(start_proxy, dovecot, version):
    g = start_pp(start_proxy, trusted=["10.0.0.0/8"])
    c = g.connect(greeting=False)
    c.send(HEADERS[version]("192.0.2.7", 40007))
    assert_refused(c, g, dovecot)


def test_trust_is_by_peer_address(start_proxy, dovecot):
    """set_real_ip_from = 127.0.0.2/32: believed from 127.0.0.2, not from
    127.0.0.1."""
    g = start_pp(start_proxy, trusted=["127.0.0.2/32"])
    c = g.connect(greeting=False)
    c.send(helpers.proxy_v1("192.0.2.8", "127.0.0.1", 40008, 143))
    assert_refused(c, g, dovecot)
    c = helpers.Client(g.port, source="127.0.0.2")
    c.send(helpers.proxy_v1("192.0.2.8", "127.0.0.1", 40008, 143))
    c.expect_prefix(b"* OK ")
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert dovecot.wait_log(dovecot_login_re("alice", "192.0.2.8", 40008), dovecot.log_mark)


def test_trusted_peer_without_header_refused(start_proxy, dovecot):
    g = start_pp(start_proxy)
    c = g.connect(greeting=False)
    assert_refused(c, g, dovecot)


def test_header_ignored_when_proxy_protocol_off(start_proxy, dovecot):
    """Off (the default): a PROXY line is just a bad IMAP command after
    the greeting, and the peer address stays the client address."""
    g = start_proxy(set_real_ip_from=["127.0.0.0/8"])
    c = g.connect()
    c.send(helpers.proxy_v1("192.0.2.9", "127.0.0.1", 40009, 143))
    line = c.readline()
    assert re.match(rb"^\S+ BAD ", line) or line.startswith(b"* BAD"), line
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert dovecot.wait_log(dovecot_login_re("alice", "127.0.0.1"), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)
    assert "192.0.2.9" not in dovecot.log(dovecot.log_mark)
