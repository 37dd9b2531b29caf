"""Pre-auth dialogue: greeting, CAPABILITY, NOOP, LOGOUT, ID, errors, tags,
STARTTLS refusal, timeouts."""

import time

import pytest

from helpers import BASE_CAPS, GREETING


def test_greeting_default(gate):
    c = gate.connect(greeting=False)
    c.expect(GREETING)


def test_greeting_custom_capabilities_and_login_mech(start_gate):
    g = start_gate(imap_capabilities=["IMAP4rev1", "IDLE"], imap_auth=["plain", "login"],
                   greeting="hello there")
    c = g.connect(greeting=False)
    c.expect(b"* OK [CAPABILITY IMAP4rev1 IDLE ID SASL-IR LITERAL- AUTH=PLAIN AUTH=LOGIN] hello there")
    c.sendline("a CAPABILITY")
    c.expect(b"* CAPABILITY IMAP4rev1 IDLE ID SASL-IR LITERAL- AUTH=PLAIN AUTH=LOGIN")
    c.expect(b"a OK CAPABILITY completed")


@pytest.mark.parametrize("lit", ["LITERAL+", "LITERAL-"])
def test_operator_literal_token_suppresses_literal_minus(start_gate, lit):
    g = start_gate(imap_capabilities=["IMAP4rev1", lit])
    c = g.connect(greeting=False)
    c.expect(("* OK [CAPABILITY IMAP4rev1 %s ID SASL-IR AUTH=PLAIN] imapgate ready" % lit).encode())


def test_capability(gate):
    c = gate.connect()
    c.sendline("a CAPABILITY")
    c.expect(b"* CAPABILITY " + BASE_CAPS.encode())
    c.expect(b"a OK CAPABILITY completed")


def test_commands_are_case_insensitive(gate):
    c = gate.connect()
    c.sendline("a capability")
    c.expect(b"* CAPABILITY " + BASE_CAPS.encode())
    c.expect_prefix(b"a OK ")
    c.sendline("b NoOp")
    c.expect_prefix(b"b OK ")


def test_noop(gate):
    c = gate.connect()
    c.sendline("a NOOP")
    c.expect(b"a OK NOOP completed")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_logout(gate):
    c = gate.connect()
    c.sendline("a LOGOUT")
    c.expect(b"* BYE Logging out")
    c.expect(b"a OK LOGOUT completed")
    c.assert_closed()


def test_answers_survive_client_half_close(gate):
    c = gate.connect()
    c.send(b"a NOOP\r\nb LOGOUT\r\n")
    c.shutdown_write()
    c.expect(b"a OK NOOP completed")
    c.expect(b"* BYE Logging out")
    c.expect(b"b OK LOGOUT completed")
    c.assert_closed()


def test_eof_closes(gate):
    c = gate.connect()
    c.shutdown_write()
    c.assert_closed(timeout=3)


def test_id_nil(gate):
    c = gate.connect()
    c.sendline("a ID NIL")
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"a OK ID completed")


def test_id_list(gate):
    c = gate.connect()
    c.sendline('a ID ("name" "Thunderbird" "version" "115.0")')
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"a OK ID completed")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_id_outlook_style_nonsync_literal(gate):
    # nginx closes on this one (REFERENCE §2).
    c = gate.connect()
    value = b"Microsoft Outlook 16.0"
    c.send(b'a ID ("name" {%d+}\r\n%s "version" "16")\r\n' % (len(value), value))
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"a OK ID completed")


def _field(i, n=30):
    f = ("f%02d" % i).encode()
    return f + b"x" * (n - len(f))


@pytest.mark.parametrize("bufsize", [None, 1024])
def test_id_at_rfc2971_limits_bigger_than_buffer(start_gate, bufsize):
    """30 pairs, 30-octet fields, 1024-octet values (~32 KB, four or 32
    times the buffer), quoted strings, non-sync and sync literals mixed."""
    c = start_gate(imap_client_buffer=bufsize).connect()
    c.send(b"a ID (")
    for i in range(30):
        field = _field(i)
        value = (b"%02d" % i) * 512
        sep = b"" if i == 0 else b" "
        kind = i % 3
        if kind == 0:       # both quoted
            c.send(sep + b'"' + field + b'" "' + value + b'"')
        elif kind == 1:     # both non-synchronizing literals
            c.send(sep + b"{30+}\r\n" + field + b" {1024+}\r\n" + value)
        else:               # quoted field, synchronizing literal value
            c.send(sep + b'"' + field + b'" {1024}\r\n')
            c.expect_continuation()
            c.send(value)
    c.send(b")\r\n")
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"a OK ID completed")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def _id_then_noop(c, id_bytes):
    c.send(id_bytes + b"b NOOP\r\n")
    c.expect_prefix(b"a BAD ")
    c.expect(b"b OK NOOP completed")
    c.sendline("c NOOP")
    c.expect(b"c OK NOOP completed")


def test_id_nil_values_and_empty_list(gate):
    c = gate.connect()
    c.sendline('a ID ("name" NIL "version" "1")')
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"a OK ID completed")
    c.sendline("b ID ()")
    c.expect(b'* ID ("name" "imapgate")')
    c.expect(b"b OK ID completed")


def test_id_odd_element_count(gate):
    c = gate.connect()
    _id_then_noop(c, b'a ID ("name")\r\n')


def test_id_sync_literal_value_too_long_gets_no_continuation(gate):
    c = gate.connect()
    c.send(b'a ID ("name" {1025}\r\n')
    c.expect_prefix(b"a BAD ")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_id_too_many_pairs(gate):
    c = gate.connect()
    pairs = b" ".join(b'"%s" "v"' % _field(i, 8) for i in range(31))
    _id_then_noop(c, b"a ID (" + pairs + b")\r\n")


def test_id_field_too_long(gate):
    c = gate.connect()
    _id_then_noop(c, b'a ID ("' + _field(1, 31) + b'" "v")\r\n')


def test_id_value_too_long_quoted(gate):
    c = gate.connect()
    _id_then_noop(c, b'a ID ("name" "' + b"v" * 1025 + b'")\r\n')


def test_id_value_too_long_literal_is_skipped(gate):
    # The over-long literal carries a command; it must not be executed.
    c = gate.connect()
    payload = (b"x NOOP\r\n" * 129)[:1025]
    _id_then_noop(c, b'a ID ("name" {1025+}\r\n' + payload + b')\r\n')


def test_id_syntax_error(gate):
    c = gate.connect()
    _id_then_noop(c, b"a ID foo\r\n")


def test_unknown_command(gate):
    c = gate.connect()
    c.sendline("a FOO")
    c.expect(b"a BAD Unknown command")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_select_before_login_is_unknown(gate):
    c = gate.connect()
    c.sendline("a SELECT INBOX")
    c.expect(b"a BAD Unknown command")


def test_max_errors_default_is_5(gate):
    c = gate.connect()
    for i in range(4):
        c.sendline("t%d FOO" % i)
        c.expect(b"t%d BAD Unknown command" % i)
    c.sendline("t4 FOO")
    c.expect(b"t4 BAD Unknown command")
    c.expect(b"* BYE Too many invalid commands")
    c.assert_closed()


def test_max_errors_configured(start_gate):
    g = start_gate(max_errors=3)
    c = g.connect()
    c.sendline("a FOO")
    c.expect(b"a BAD Unknown command")
    c.sendline("b NOOP")                   # good commands do not reset it
    c.expect(b"b OK NOOP completed")
    c.sendline("c BAR")
    c.expect(b"c BAD Unknown command")
    c.sendline("d BAZ")
    c.expect(b"d BAD Unknown command")
    c.expect(b"* BYE Too many invalid commands")
    c.assert_closed()


def test_max_errors_pipelined_http_request(start_gate):
    """ALPACA-style: HTTP lines are closed within max_errors lines and no
    client byte comes back."""
    g = start_gate(max_errors=3)
    c = g.connect()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: <script>\r\nAccept: */*\r\n\r\n",
           ignore_errors=True)
    lines = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            lines.append(c.readline(timeout=max(0.01, deadline - time.monotonic())))
        except AssertionError:
            break
    assert lines[-1:] == [b"* BYE Too many invalid commands"], lines
    assert len(lines) == 4, lines
    for ln in lines:
        assert b"script" not in ln and b"HTTP" not in ln, lines


@pytest.mark.parametrize("tag", [b"a*b", b"a$b", b"a{b", b"a+b", b"a%b", b"a\"b", b"t" * 33])
def test_invalid_tag(gate, tag):
    c = gate.connect()
    c.send(tag + b" NOOP\r\n")
    c.expect(b"* BAD Invalid tag")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_valid_tag_charset_and_length(gate):
    c = gate.connect()
    tag = b"Az09._-" + b"t" * 25             # exactly 32
    assert len(tag) == 32
    c.send(tag + b" NOOP\r\n")
    c.expect(tag + b" OK NOOP completed")


def test_invalid_tags_count_against_max_errors(start_gate):
    g = start_gate(max_errors=3)
    c = g.connect()
    c.send(b"a*b NOOP\r\n")
    c.expect(b"* BAD Invalid tag")
    c.sendline("b FOO")
    c.expect(b"b BAD Unknown command")
    c.send(b"c*d NOOP\r\n")
    c.expect(b"* BAD Invalid tag")
    c.expect(b"* BYE Too many invalid commands")
    c.assert_closed()


def test_starttls_refused(gate):
    c = gate.connect()
    c.sendline("a STARTTLS")
    c.expect_prefix(b"a BAD ")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_starttls_not_advertised(gate):
    c = gate.connect()
    assert b"STARTTLS" not in c.greeting
    assert b"LOGINDISABLED" not in c.greeting


def test_idle_timeout(start_gate):
    g = start_gate(timeout=2)
    c = g.connect()
    t0 = time.monotonic()
    c.expect(b"* BYE Autologout; idle for too long", timeout=6)
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed <= 4.0, elapsed
    c.assert_closed()


def test_idle_timeout_resets_on_activity(start_gate):
    g = start_gate(timeout=2)
    c = g.connect()
    for i in range(3):
        time.sleep(1.2)
        c.sendline("n%d NOOP" % i)
        c.expect(b"n%d OK NOOP completed" % i)


def test_idle_timeout_in_authenticate_continuation(start_gate):
    g = start_gate(timeout=2)
    c = g.connect()
    c.sendline("a AUTHENTICATE PLAIN")
    c.expect_re(rb"^\+ ?$")
    c.expect(b"* BYE Autologout; idle for too long", timeout=6)
    c.assert_closed()


def test_total_preauth_cap(start_gate):
    """A byte every second keeps the idle timer happy but the whole
    pre-auth phase is capped at 3 x timeout."""
    g = start_gate(timeout=2)
    c = g.connect()
    t0 = time.monotonic()
    stream = b"a NOOP\r\n" * 20
    i = 0
    bye = None
    while time.monotonic() - t0 < 12 and bye is None:
        c.send(stream[i:i + 1], ignore_errors=True)
        i += 1
        end = time.monotonic() + 1.0
        while bye is None and time.monotonic() < end:
            try:
                line = c.readline(timeout=max(0.01, end - time.monotonic()))
            except AssertionError as e:
                if "closed" in str(e):
                    raise
                break
            if line.startswith(b"* BYE"):
                bye = line
            else:
                assert line == b"a OK NOOP completed", line
    elapsed = time.monotonic() - t0
    assert bye is not None, "no BYE within 12 s of dribbling"
    assert 5.0 <= elapsed <= 8.5, elapsed
    c.assert_closed()
