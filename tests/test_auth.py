"""LOGIN and AUTHENTICATE: argument forms, SASL details, failures, delays,
attempt limits, every passwd-file scheme, and what reaches the log."""

import re
import statistics
import time

import pytest

import conftest
from helpers import AUTH_FAILED, b64, logged_in_re


def logged_in_then_logout(c, tag="a"):
    c.expect_re(logged_in_re(tag))
    c.sendline("z LOGOUT")
    lines = c.read_until_tagged("z")
    assert lines[-1].startswith(b"z OK"), lines
    c.assert_closed()


# -- LOGIN ---------------------------------------------------------------------

def test_login_atoms(gate):
    c = gate.connect()
    c.sendline("a LOGIN alice secret")
    logged_in_then_logout(c)


def test_login_quoted(gate):
    c = gate.connect()
    c.sendline('a LOGIN "alice" "secret"')
    logged_in_then_logout(c)


def test_login_quoted_escapes(gate):
    # bob's password is: b0b p"a\ss
    c = gate.connect()
    c.send(b'a LOGIN "bob" "b0b p\\"a\\\\ss"\r\n')
    logged_in_then_logout(c)


def test_login_literal_password_with_specials(gate):
    pw = conftest.USERS["bob"][0].encode()
    c = gate.connect()
    c.send(b"a LOGIN bob {%d+}\r\n%s\r\n" % (len(pw), pw))
    logged_in_then_logout(c)


def test_login_command_case_insensitive(gate):
    c = gate.connect()
    c.sendline("a login alice secret")
    c.expect_re(logged_in_re("a"))


@pytest.mark.parametrize("args", ['"" secret', "alice", "", "alice secret extra", '{0+}\r\n secret'])
def test_login_invalid_arguments(gate, args):
    c = gate.connect()
    c.send(b"a LOGIN" + (b" " + args.encode() if args else b"") + b"\r\n")
    c.expect(b"a BAD Invalid arguments")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_login_wrong_password(start_gate):
    g = start_gate(failure_delay=0.3)
    c = g.connect()
    t0 = time.monotonic()
    c.sendline("a LOGIN alice wrong")
    c.expect(b"a" + AUTH_FAILED)
    assert time.monotonic() - t0 >= 0.27
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_login_unknown_user(gate):
    c = gate.connect()
    c.sendline("a LOGIN nosuchuser secret")
    c.expect(b"a" + AUTH_FAILED)


def test_username_is_case_sensitive(gate):
    c = gate.connect()
    c.sendline("a LOGIN ALICE secret")
    c.expect(b"a" + AUTH_FAILED)


def test_password_prefix_and_extension_rejected(gate):
    c = gate.connect()
    c.sendline("a LOGIN alice secre")
    c.expect(b"a" + AUTH_FAILED)
    c.sendline("b LOGIN alice secrets")
    c.expect(b"b" + AUTH_FAILED)


def test_failure_delay_default_is_2s(start_gate):
    g = start_gate(failure_delay=None)
    c = g.connect()
    t0 = time.monotonic()
    c.sendline("a LOGIN alice wrong")
    c.expect(b"a" + AUTH_FAILED, timeout=6)
    assert 1.9 <= time.monotonic() - t0 <= 4.0


def _fail_time(c, tag, user, pw):
    t0 = time.monotonic()
    c.send(b"%s LOGIN %s %s\r\n" % (tag, user, pw))
    c.expect(tag + AUTH_FAILED)
    return time.monotonic() - t0


@pytest.mark.parametrize("known", [b"alice", b"bob", b"dave"])
def test_unknown_user_and_wrong_password_same_text_and_time(start_gate, known):
    g = start_gate(failure_delay=0.2, max_attempts=20)
    c = g.connect()
    known_t, unknown_t = [], []
    for i in range(5):
        known_t.append(_fail_time(c, b"k%d" % i, known, b"wrong-password"))
        unknown_t.append(_fail_time(c, b"u%d" % i, b"nobody-here", b"wrong-password"))
    for t in known_t + unknown_t:
        assert t >= 0.18, (known_t, unknown_t)
    diff = abs(statistics.median(known_t) - statistics.median(unknown_t))
    assert diff < 0.06, (known_t, unknown_t)


def test_max_attempts_default_3(gate):
    c = gate.connect()
    c.sendline("a LOGIN alice x1")
    c.expect(b"a" + AUTH_FAILED)
    c.sendline("b LOGIN nosuch x2")
    c.expect(b"b" + AUTH_FAILED)
    c.sendline("c LOGIN alice x3")
    c.expect(b"c" + AUTH_FAILED)
    c.expect(b"* BYE Too many authentication failures")
    c.assert_closed()


def test_max_attempts_configured_and_mixed_mechanisms(start_gate):
    g = start_gate(max_attempts=2)
    c = g.connect()
    c.sendline("a AUTHENTICATE PLAIN " + b64("\0alice\0nope").decode())
    c.expect(b"a" + AUTH_FAILED)
    c.sendline("b LOGIN alice nope")
    c.expect(b"b" + AUTH_FAILED)
    c.expect(b"* BYE Too many authentication failures")
    c.assert_closed()


def test_success_after_failures(gate):
    c = gate.connect()
    c.sendline("a LOGIN alice wrong")
    c.expect(b"a" + AUTH_FAILED)
    c.sendline("b LOGIN alice wrong")
    c.expect(b"b" + AUTH_FAILED)
    c.sendline("c LOGIN alice secret")
    logged_in_then_logout(c, "c")


# -- every passwd-file scheme -----------------------------------------------------

@pytest.mark.parametrize("user", sorted(conftest.USERS))
def test_scheme_good_and_bad_password(gate, user):
    pw = conftest.USERS[user][0].encode()
    c = gate.connect()
    c.send(b"a LOGIN %s {%d+}\r\n%sX\r\n" % (user.encode(), len(pw) + 1, pw))
    c.expect(b"a" + AUTH_FAILED)
    c.send(b"b LOGIN %s {%d+}\r\n%s\r\n" % (user.encode(), len(pw), pw))
    logged_in_then_logout(c, "b")


# -- AUTHENTICATE PLAIN ----------------------------------------------------------

def test_authenticate_plain_initial_response(gate):
    c = gate.connect()
    c.send(b"a AUTHENTICATE PLAIN " + b64("\0alice\0secret") + b"\r\n")
    logged_in_then_logout(c)


def test_authenticate_plain_continuation(gate):
    c = gate.connect()
    c.sendline("a AUTHENTICATE PLAIN")
    c.expect_re(rb"^\+ ?$")
    c.send(b64("\0alice\0secret") + b"\r\n")
    logged_in_then_logout(c)


def test_authenticate_mechanism_case_insensitive(gate):
    c = gate.connect()
    c.send(b"a authenticate plain " + b64("\0alice\0secret") + b"\r\n")
    c.expect_re(logged_in_re("a"))


def test_authenticate_plain_authzid_equal_user(gate):
    c = gate.connect()
    c.send(b"a AUTHENTICATE PLAIN " + b64("alice\0alice\0secret") + b"\r\n")
    logged_in_then_logout(c)


def test_authenticate_plain_authzid_other_user(gate):
    c = gate.connect()
    c.send(b"a AUTHENTICATE PLAIN " + b64("bob\0alice\0secret") + b"\r\n")
    c.expect_prefix(b"a NO [AUTHORIZATIONFAILED] ")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_authenticate_plain_wrong_password(gate):
    c = gate.connect()
    c.send(b"a AUTHENTICATE PLAIN " + b64("\0alice\0wrong") + b"\r\n")
    c.expect(b"a" + AUTH_FAILED)


def test_authenticate_plain_empty_initial_response(gate):
    # "=" is a zero-length initial response (RFC 4959), not bad base64; an
    # empty PLAIN message cannot authenticate anybody.
    c = gate.connect()
    c.sendline("a AUTHENTICATE PLAIN =")
    line = c.readline()
    assert line != b"a BAD Invalid base64", line
    assert line.startswith(b"a NO ") or line.startswith(b"a BAD "), line
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_authenticate_plain_cancel(gate):
    c = gate.connect()
    c.sendline("a AUTHENTICATE PLAIN")
    c.expect_re(rb"^\+ ?$")
    c.sendline("*")
    c.expect(b"a BAD Authentication canceled")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


@pytest.mark.parametrize("bad", [b"!!!!", b"AGFsaWNlAHNlY3JldA=x", b"AGFs#WNlAHNlY3JldA==", b"=AAA"])
def test_authenticate_plain_bad_base64_initial(gate, bad):
    c = gate.connect()
    c.send(b"a AUTHENTICATE PLAIN " + bad + b"\r\n")
    c.expect(b"a BAD Invalid base64")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_authenticate_plain_bad_base64_continuation(gate):
    c = gate.connect()
    c.sendline("a AUTHENTICATE PLAIN")
    c.expect_re(rb"^\+ ?$")
    c.sendline("%%%%")
    c.expect(b"a BAD Invalid base64")


@pytest.mark.parametrize("msg", ["alice\0secret", "\0alice", "\0\0secret", "\0alice\0sec\0ret", ""])
def test_authenticate_plain_malformed_message(gate, msg):
    c = gate.connect()
    c.send(b"a AUTHENTICATE PLAIN " + (b64(msg) if msg else b"=") + b"\r\n")
    line = c.readline()
    assert line.startswith(b"a NO") or line.startswith(b"a BAD"), line
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_authenticate_plain_255_octet_fields_accepted(gate):
    # RFC 4616: at least 255 octets per field; a wrong one just fails.
    c = gate.connect()
    c.send(b"a AUTHENTICATE PLAIN " + b64(b"\0" + b"u" * 255 + b"\0" + b"p" * 255) + b"\r\n")
    c.expect(b"a" + AUTH_FAILED)


# -- AUTHENTICATE LOGIN ----------------------------------------------------------

def test_authenticate_login_accepted_though_not_advertised(gate):
    c = gate.connect()
    assert b"AUTH=LOGIN" not in c.greeting
    c.sendline("a AUTHENTICATE LOGIN")
    c.expect(b"+ VXNlcm5hbWU6")
    c.send(b64("alice") + b"\r\n")
    c.expect(b"+ UGFzc3dvcmQ6")
    c.send(b64("secret") + b"\r\n")
    logged_in_then_logout(c)


def test_authenticate_login_advertised(start_gate):
    g = start_gate(imap_auth=["plain", "login"])
    c = g.connect()
    assert c.greeting.endswith(b"AUTH=PLAIN AUTH=LOGIN] imapgate ready"), c.greeting
    c.sendline("a AUTHENTICATE LOGIN")
    c.expect(b"+ VXNlcm5hbWU6")
    c.send(b64("bob") + b"\r\n")
    c.expect(b"+ UGFzc3dvcmQ6")
    c.send(b64(conftest.USERS["bob"][0]) + b"\r\n")
    logged_in_then_logout(c)


def test_authenticate_login_wrong_password(gate):
    c = gate.connect()
    c.sendline("a AUTHENTICATE LOGIN")
    c.expect(b"+ VXNlcm5hbWU6")
    c.send(b64("alice") + b"\r\n")
    c.expect(b"+ UGFzc3dvcmQ6")
    c.send(b64("nope") + b"\r\n")
    c.expect(b"a" + AUTH_FAILED)


def test_authenticate_login_cancel_at_password(gate):
    c = gate.connect()
    c.sendline("a AUTHENTICATE LOGIN")
    c.expect(b"+ VXNlcm5hbWU6")
    c.send(b64("alice") + b"\r\n")
    c.expect(b"+ UGFzc3dvcmQ6")
    c.sendline("*")
    c.expect(b"a BAD Authentication canceled")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_authenticate_login_bad_base64(gate):
    c = gate.connect()
    c.sendline("a AUTHENTICATE LOGIN")
    c.expect(b"+ VXNlcm5hbWU6")
    c.sendline("not base64!")
    c.expect(b"a BAD Invalid base64")


@pytest.mark.parametrize("mech", ["CRAM-MD5", "EXTERNAL", "FOO", "GSSAPI"])
def test_authenticate_unsupported_mechanism(gate, mech):
    c = gate.connect()
    c.sendline("a AUTHENTICATE " + mech)
    c.expect(b"a NO Unsupported authentication mechanism")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_authenticate_without_mechanism(gate):
    c = gate.connect()
    c.sendline("a AUTHENTICATE")
    c.expect_prefix(b"a BAD ")


# -- the log ---------------------------------------------------------------------

def test_hostile_user_name_escaped_in_log(gate):
    user = b"Qev\r\nQil%n%s%x\nX"
    c = gate.connect()
    c.send(b"a LOGIN {%d+}\r\n%s wrong\r\n" % (len(user), user))
    c.expect(b"a" + AUTH_FAILED)
    c.send(b"b AUTHENTICATE PLAIN " + b64(b"\0" + user + b"\0wrong") + b"\r\n")
    c.expect(b"b" + AUTH_FAILED)
    c.sendline("c LOGOUT")
    c.read_until_tagged("c")
    c.close()
    time.sleep(0.3)
    log = gate.log_bytes()
    assert b"\r" not in log, log
    for ln in log.split(b"\n"):
        assert not ln.startswith(b"Qil"), log
        assert not ln.startswith(b"X"), log
    # The name reaches the log, once per attempt, escaped (\xHH for
    # control bytes) and not used as a printf format (%x would expand).
    name = rb"Qev\x0d\x0aQil%n%s%x\x0aX"
    for method, attempt in ((b"LOGIN", 1), (b"PLAIN", 2)):
        want = (rb'^imapgate\[\d+\]: login failed: user="' + re.escape(name) +
                rb'" method=' + method + rb" ip=127\.0\.0\.1 reason=unknown user attempt=%d$" % attempt)
        assert len(re.findall(want, log, re.M)) == 1, (want, log)


def test_passwords_never_logged(gate):
    secrets = {
        "alice": b"Wr0ng-Secret-Alpha",
        "bob": b"Wr0ng-Secret-Bravo",
        "nosuch": b"Wr0ng-Secret-Charlie",
    }
    c = gate.connect()
    for i, (u, pw) in enumerate(secrets.items()):
        c.send(b"t%d LOGIN %s %s\r\n" % (i, u.encode(), pw))
        c.expect(b"t%d" % i + AUTH_FAILED)
    c.close()
    dpw = conftest.USERS["dave"][0].encode()
    c = gate.connect()
    c.send(b"a AUTHENTICATE PLAIN " + b64(b"\0dave\0" + dpw) + b"\r\n")
    logged_in_then_logout(c)
    c = gate.connect()
    epw = conftest.USERS["erin"][0].encode()
    c.send(b"a LOGIN erin " + epw + b"\r\n")
    logged_in_then_logout(c)
    time.sleep(0.3)
    log = gate.log_bytes()
    for pw in list(secrets.values()) + [dpw, epw, b64(b"\0dave\0" + dpw)]:
        assert pw not in log, (pw, log)
    for pw in secrets.values():
        assert b64(pw) not in log
