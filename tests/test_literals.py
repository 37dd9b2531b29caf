"""Literals, NUL bytes, pipelining across the buffer end, over-long lines."""

import time

import pytest

from helpers import AUTH_FAILED, logged_in_re


def test_sync_literals_login(gate):
    c = gate.connect()
    c.send(b"a LOGIN {5}\r\n")
    c.expect_continuation()
    c.send(b"alice {6}\r\n")
    c.expect_continuation()
    c.send(b"secret\r\n")
    c.expect_re(logged_in_re("a"))
    c.sendline("b LOGOUT")
    c.read_until_tagged("b")


def test_sync_literal_no_continuation_before_the_line_ends(gate):
    # The continuation must not be sent for a literal that is not yet
    # complete on the wire ("{5" without "}\r\n").
    c = gate.connect()
    c.send(b"a LOGIN {5")
    c.assert_silent(0.5)
    c.send(b"}\r\n")
    c.expect_continuation()


def test_nonsync_literals_login(gate):
    c = gate.connect()
    c.send(b"a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n")
    # No continuation request may come before the tagged answer.
    c.expect_re(logged_in_re("a"))


def test_mixed_literal_and_quoted_login(gate):
    c = gate.connect()
    c.send(b'a LOGIN "alice" {6}\r\n')
    c.expect_continuation()
    c.send(b"secret\r\n")
    c.expect_re(logged_in_re("a"))


def test_literal_content_is_never_a_command(gate):
    c = gate.connect()
    c.send(b"a LOGIN alice {14+}\r\nx\r\nb LOGOUT\r\n\r\nc NOOP\r\n")
    c.expect(b"a" + AUTH_FAILED)
    c.expect(b"c OK NOOP completed")
    c.assert_silent(0.3)


def test_login_sent_byte_by_byte(gate):
    c = gate.connect()
    for ch in b"a LOGIN {5+}\r\nalice \"secret\"\r\nb SELECT INBOX\r\n":
        c.send(bytes([ch]))
        time.sleep(0.003)
    c.expect_re(logged_in_re("a"))
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK [READ-WRITE]"), lines


def test_empty_nonsync_literal_consumes_nothing(gate):
    # nginx's {0} eats one byte; here the following NOOP must survive.
    c = gate.connect()
    c.send(b"a LOGIN alice {0+}\r\n\r\nb NOOP\r\n")
    c.expect(b"a" + AUTH_FAILED, timeout=5)
    c.expect(b"b OK NOOP completed")


def test_empty_sync_literal(gate):
    c = gate.connect()
    c.send(b"a LOGIN alice {0}\r\n")
    c.expect_continuation()
    c.send(b"\r\nb NOOP\r\n")
    c.expect(b"a" + AUTH_FAILED)
    c.expect(b"b OK NOOP completed")


def test_empty_literal_user_is_invalid(gate):
    c = gate.connect()
    c.send(b"a LOGIN {0+}\r\n secret\r\nb NOOP\r\n")
    c.expect(b"a BAD Invalid arguments")
    c.expect(b"b OK NOOP completed")


def test_empty_literal_in_id(gate):
    c = gate.connect()
    c.send(b'a ID ("name" {0+}\r\n)\r\n')
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"a OK ID completed")


@pytest.mark.parametrize("count", [b"4294967296", b"4294967295", b"18446744073709551616",
                                   b"99999999999999999999", b"000000000000000000000000005"])
def test_huge_sync_literal_count_rejected_without_continuation(gate, count):
    c = gate.connect()
    c.send(b"a LOGIN alice {" + count + b"}\r\n")
    line = c.readline()
    if count.lstrip(b"0") == b"5" and line.startswith(b"+"):
        # Leading zeros are digits: a 5-octet literal may be accepted...
        c.send(b"wrong\r\n")
        c.expect(b"a" + AUTH_FAILED)
    else:
        # ...or refused; anything too large must be refused, never "+".
        assert line.startswith(b"a BAD "), line
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_short_sync_literal_then_idle_timeout(start_gate):
    g = start_gate(timeout=2)
    c = g.connect()
    c.send(b"a LOGIN alice {5}\r\n")
    c.expect_continuation()
    c.send(b"sec")                      # 3 of 5 bytes, then silence
    t0 = time.monotonic()
    c.expect(b"* BYE Autologout; idle for too long", timeout=6)
    assert time.monotonic() - t0 >= 1.5
    c.assert_closed()


@pytest.mark.parametrize("bufsize,size", [(None, 9000), (1024, 2000)])
def test_sync_literal_larger_than_buffer(start_gate, bufsize, size):
    g = start_gate(imap_client_buffer=bufsize)
    c = g.connect()
    c.send(b"a LOGIN alice {%d}\r\n" % size)
    c.expect_prefix(b"a BAD ")            # no "+" first
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_nonsync_literal_over_4096_rejected_and_skipped(gate):
    c = gate.connect()
    payload = b"b NOOP\r\n" * 625           # 5000 bytes that look like commands
    assert len(payload) == 5000
    c.send(b"a LOGIN alice {5000+}\r\n" + payload + b"\r\nc NOOP\r\n")
    c.expect_prefix(b"a BAD ")
    c.expect(b"c OK NOOP completed")
    c.assert_silent(0.5)


def test_nonsync_literal_4096_consumed_exactly(gate):
    # 4096 is the LITERAL- limit: the literal is read (a 4096-octet password
    # may fail or be refused as too long) and exactly its bytes are consumed.
    c = gate.connect()
    c.send(b"a LOGIN alice {4096+}\r\n" + b"p" * 4096 + b"\r\nb NOOP\r\n")
    line = c.readline()
    assert line == b"a" + AUTH_FAILED or line.startswith(b"a BAD "), line
    c.expect(b"b OK NOOP completed")


def test_rejected_command_nonsync_literal_is_skipped(gate):
    c = gate.connect()
    c.send(b"a FOO {5+}\r\nb NOO\r\nc NOOP\r\n")
    c.expect(b"a BAD Unknown command")
    c.expect(b"c OK NOOP completed")
    c.assert_silent(0.5)


def test_rejected_command_sync_literal_gets_no_continuation(gate):
    c = gate.connect()
    c.send(b"a FOO {5}\r\n")
    c.expect_prefix(b"a BAD ")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_rejected_command_several_literals_skipped(gate):
    c = gate.connect()
    c.send(b"a FOO {3+}\r\nx y {8+}\r\nz NOOP\r\n w\r\nc NOOP\r\n")
    c.expect(b"a BAD Unknown command")
    c.expect(b"c OK NOOP completed")
    c.assert_silent(0.5)


@pytest.mark.parametrize("line", [b"a LOGIN alice sec\x00ret\r\n",
                                  b"a NO\x00OP\r\n",
                                  b'a LOGIN "alice" "sec\x00ret"\r\n'])
def test_nul_outside_literal_is_bad(gate, line):
    c = gate.connect()
    c.send(line)
    c.expect_re(rb"^(a|\*) BAD ")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_pipelined_commands_answered_in_order(gate):
    c = gate.connect()
    c.send(b"a NOOP\r\nb CAPABILITY\r\nc ID NIL\r\nd FOO\r\ne NOOP\r\n")
    c.expect(b"a OK NOOP completed")
    c.expect_prefix(b"* CAPABILITY ")
    c.expect(b"b OK CAPABILITY completed")
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"c OK ID completed")
    c.expect(b"d BAD Unknown command")
    c.expect(b"e OK NOOP completed")


@pytest.mark.parametrize("bufsize", [None, 1024])
def test_pipelining_across_buffer_end(start_gate, bufsize):
    g = start_gate(imap_client_buffer=bufsize)
    c = g.connect()
    n = 3000
    data = b"".join(b"t%d NOOP\r\n" % i for i in range(n))
    assert len(data) > 3 * 8192
    c.send(data)
    for i in range(n):
        c.expect(b"t%d OK NOOP completed" % i)
    c.assert_silent(0.3)


@pytest.mark.parametrize("offset", [-12, -10, -9, -5, -1, 0, 1])
def test_command_straddling_buffer_end(gate, offset):
    """A 10-byte command placed at 8192+offset of the client stream: before,
    across (CRLF split included) and right at the end of the default buffer."""
    c = gate.connect()
    start = 8192 + offset
    data = b""
    n = 0
    while len(data) < start - 100:
        data += b"p%d NOOP\r\n" % n
        n += 1
    head, tail = b'pad ID ("k" "', b'")\r\n'
    data += head + b"z" * (start - len(data) - len(head) - len(tail)) + tail
    assert len(data) == start
    c.send(data + b"mid NOOP\r\nlast NOOP\r\n")
    lines = c.read_until_tagged("last")
    assert lines[-1] == b"last OK NOOP completed", lines[-4:]
    assert lines[-2] == b"mid OK NOOP completed", lines[-4:]
    assert lines[-3] == b"pad OK ID completed", lines[-4:]
    assert lines[:n] == [b"p%d OK NOOP completed" % i for i in range(n)]


@pytest.mark.parametrize("bufsize,size", [(None, 9000), (1024, 2000)])
def test_line_too_long(start_gate, bufsize, size):
    g = start_gate(imap_client_buffer=bufsize)
    c = g.connect()
    c.send(b"a NOOP " + b"x" * size + b"\r\n", ignore_errors=True)
    c.expect(b"* BAD Command line too long")
    c.expect_prefix(b"* BYE")
    c.assert_closed()


def test_line_too_long_without_crlf(gate):
    # The server must not wait for a CRLF that will never fit.
    c = gate.connect()
    c.send(b"a NOOP " + b"x" * 9000, ignore_errors=True)
    c.expect(b"* BAD Command line too long")
    c.expect_prefix(b"* BYE")
    c.assert_closed()


def test_line_just_under_buffer_is_fine(start_gate):
    g = start_gate(imap_client_buffer=1024)
    c = g.connect()
    c.send(b"a FOO " + b"x" * 900 + b"\r\n")
    c.expect(b"a BAD Unknown command")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


# -- a literal the server acknowledged is never run as commands (issue 9 item 5) --

@pytest.mark.parametrize("header,data", [
    # The literal is the LOGIN's first argument; what follows it is bad.
    (b"a LOGIN {10}\r\n", b"x LOGOUT\r\n\x01\r\n"),
    (b"a LOGIN {10}\r\n", b"x LOGOUT\r\n \"bad\\q\"\r\n"),
    (b"a LOGIN alice {10}\r\n", b"x LOGOUT\r\n{z}\r\n"),
    # ... a literal too large for the buffer, announced after it ...
    (b"a LOGIN {8}\r\n", b"x LOGOUT {9000}\r\n"),
    # ... a non-synchronizing one over LITERAL-'s limit (its bytes follow).
    # (sent in two parts, so that the server sees the header alone first).
    (b"a LOGIN {8}\r\n", (b"x LOGOUT {5000+}\r\n", b"y LOGOUT\r\n" * 500 + b"\r\n")),
], ids=["nul-after", "bad-quoted-after", "bad-literal-after", "sync-too-large-after",
        "nonsync-too-large-after"])
def test_acknowledged_literal_is_data_when_the_command_is_rejected(gate, header, data):
    c = gate.connect()
    c.send(header)
    c.expect_continuation()
    for i, part in enumerate(data if isinstance(data, tuple) else (data,)):
        if i:
            time.sleep(0.3)
        c.send(part)
    c.sendline("b NOOP")
    lines = c.read_until_tagged("b")
    assert len(lines) == 2 and lines[0].startswith(b"a BAD "), lines
    assert lines[1] == b"b OK NOOP completed", lines
    c.assert_silent(0.3)
