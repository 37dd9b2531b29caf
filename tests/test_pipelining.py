"""Bytes the client pipelines around LOGIN: everything after the login line
must reach Dovecot, in order, whether imapgate already read it or not."""

import imaplib
import time

import pytest

import conftest
from helpers import AUTH_FAILED, b64, logged_in_re


def expect_select_and_logout(c, sel="b", out="c"):
    lines = c.read_until_tagged(sel)
    assert any(ln == b"* 0 EXISTS" or ln.endswith(b" EXISTS") for ln in lines), lines
    assert lines[-1].startswith(sel.encode() + b" OK [READ-WRITE] Select completed"), lines
    lines = c.read_until_tagged(out)
    assert lines == [b"* BYE Logging out", lines[-1]], lines
    assert lines[-1].startswith(out.encode() + b" OK Logout completed"), lines
    c.assert_closed()


def test_commands_pipelined_with_login(start_gate, mode):
    g = start_gate(mode=mode)
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    c.expect_re(logged_in_re("a"))
    expect_select_and_logout(c)


def test_commands_pipelined_with_authenticate_plain(gate):
    c = gate.connect()
    c.send(b"a AUTHENTICATE PLAIN " + b64("\0alice\0secret") + b"\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    c.expect_re(logged_in_re("a"))
    expect_select_and_logout(c)


def test_commands_pipelined_with_literal_login(gate):
    c = gate.connect()
    c.send(b"a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    c.expect_re(logged_in_re("a"))
    expect_select_and_logout(c)


def test_preauth_and_postauth_commands_in_one_write(gate):
    c = gate.connect()
    c.send(b"x NOOP\r\ny ID NIL\r\na LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    c.expect(b"x OK NOOP completed")
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"y OK ID completed")
    c.expect_re(logged_in_re("a"))
    expect_select_and_logout(c)


def test_failed_login_then_pipelined_success(gate):
    c = gate.connect()
    c.send(b"a LOGIN alice wrong\r\nb NOOP\r\nc LOGIN alice secret\r\nd SELECT INBOX\r\ne LOGOUT\r\n")
    c.expect(b"a" + AUTH_FAILED)
    c.expect(b"b OK NOOP completed")
    c.expect_re(logged_in_re("c"))
    expect_select_and_logout(c, "d", "e")


@pytest.mark.parametrize("pause", [0.0, 0.005, 0.02, 0.1, 0.3])
def test_commands_arriving_during_login(gate, pause):
    """The next command arrives while imapgate is checking the password or
    handing over: it must be answered by Dovecot, exactly once."""
    c = gate.connect()
    c.send(b"a LOGIN alice secret\r\n")
    time.sleep(pause)
    c.send(b"b SELECT INBOX\r\n")
    time.sleep(pause)
    c.send(b"c LOGOUT\r\n")
    c.expect_re(logged_in_re("a"))
    expect_select_and_logout(c)


@pytest.mark.parametrize("offset", [-40, -25, -10, -1, 0, 5])
def test_login_straddling_buffer_end(gate, offset):
    """Pre-auth NOOPs fill the buffer so that the LOGIN line (or what
    follows it) crosses byte 8192 of the stream."""
    c = gate.connect()
    start = 8192 + offset
    data = b""
    n = 0
    while len(data) < start - 60:
        data += b"p%d NOOP\r\n" % n
        n += 1
    head, tail = b'pad ID ("k" "', b'")\r\n'
    data += head + b"z" * (start - len(data) - len(head) - len(tail)) + tail
    assert len(data) == start
    c.send(data + b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    for i in range(n):
        c.expect(b"p%d OK NOOP completed" % i)
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"pad OK ID completed")
    c.expect_re(logged_in_re("a"))
    expect_select_and_logout(c)


@pytest.mark.parametrize("size", [100, 7000, 30000])
def test_append_pipelined_after_login_arrives_intact(start_gate, size):
    """A message larger than the buffer pipelined right behind LOGIN: part of
    it may be in imapgate's buffer, the rest still in the socket."""
    g = start_gate()
    msg = (b"Subject: pipelined %d\r\n\r\n" % size
           + b"".join(b"%06d abcdefghijklmnopqrstuvwxyz0123456789\r\n" % i
                      for i in range(size // 45 + 1)))
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb APPEND INBOX {%d+}\r\n" % len(msg) + msg
           + b"\r\nc LOGOUT\r\n")
    c.expect_re(logged_in_re("a"))
    c.expect_prefix(b"b OK ")
    lines = c.read_until_tagged("c")
    assert lines[0] == b"* BYE Logging out", lines
    c.assert_closed()
    with imaplib.IMAP4("127.0.0.1", g.port, timeout=10) as m:
        m.login("alice", "secret")
        m.select("INBOX")
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        assert data[0][1] == msg
        m.logout()


def test_pipelined_bytes_after_failed_login_stay_preauth(gate):
    # After a failed LOGIN, a pipelined SELECT is a pre-auth command again.
    c = gate.connect()
    c.send(b"a LOGIN alice wrong\r\nb SELECT INBOX\r\n")
    c.expect(b"a" + AUTH_FAILED)
    c.expect(b"b BAD Unknown command")


def test_bob_special_password_pipelined(gate):
    pw = conftest.USERS["bob"][0].encode()
    c = gate.connect()
    c.send(b"a LOGIN bob {%d+}\r\n%s\r\nb SELECT INBOX\r\nc LOGOUT\r\n" % (len(pw), pw))
    c.expect_re(logged_in_re("a"))
    expect_select_and_logout(c)
