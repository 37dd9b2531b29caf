"""Connect mode: imapgate logs in to a backend IMAP server for the user and
relays the connection.  The backend is a real Dovecot daemon (conftest's
`dovecot` fixture, shared by the session, mail emptied per test) or, where a
test needs to see imapgate's side of the backend dialogue byte for byte, a
scripted stand-in (helpers.ScriptedServer).

Every test asserts what crosses the wire, or what Dovecot logged about the
login it saw (`rip=` is the client address Dovecot believes in)."""

import base64
import email.utils
import imaplib
import os
import re
import select
import shutil
import socket
import subprocess
import time

import pytest

import conftest
import helpers
from helpers import AUTH_FAILED, GREETING, logged_in_re

UNAVAILABLE = b" NO [UNAVAILABLE] Backend unavailable."


def make_message(subject, size=0):
    body = "".join("line %d of the body, some text to fill it up\r\n" % i
                   for i in range(max(3, size // 44)))
    return ("From: Alice <alice@example.org>\r\n"
            "To: Bob <bob@example.org>\r\n"
            "Subject: %s\r\n"
            "Date: %s\r\n"
            "Message-ID: <%s@example.org>\r\n"
            "\r\n%s" % (subject, email.utils.formatdate(), os.urandom(6).hex(), body)).encode()


def maildir_messages(dovecot, user, folder=""):
    """Message files in a Dovecot Maildir folder ("" = INBOX)."""
    base = dovecot.maildir(user)
    if folder:
        base = os.path.join(base, "." + folder)
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(base, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in os.listdir(d)]
    return out


def dovecot_caps_after_login(dovecot, user, pw):
    """The CAPABILITY list in Dovecot's own tagged OK of a direct LOGIN."""
    with helpers.Client(dovecot.port) as c:
        c.expect_prefix(b"* OK ")
        c.send(login_line("x", user, pw))
        line = c.read_until_tagged("x")[-1]
        m = re.match(rb"^x OK \[CAPABILITY ([^\]]*)\] Logged in$", line)
        assert m, line
        c.sendline("y LOGOUT")
        return m.group(1)


def imap_quote(s):
    return b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def login_line(tag, user, pw):
    return tag.encode() + b" LOGIN " + imap_quote(user) + b" " + imap_quote(pw) + b"\r\n"


def dovecot_login_re(user, rip=None, rport=None, method=None):
    """Dovecot's imap-login line for a successful login."""
    rx = r"imap-login: Info: Login: user=<%s>, " % re.escape(user)
    rx += r"method=%s, " % (re.escape(method) if method else r"\S+")
    rx += r"rip=%s, " % (re.escape(rip) if rip else r"\S+")
    rx += r"rport=%s," % (str(rport) if rport else r"\d+")
    return rx


def expect_logged_in(c, tag):
    """The client's tag answered with a tagged OK carrying a CAPABILITY
    code, ending "Logged in" (Dovecot's text).  Untagged lines before it
    are allowed.  Returns the capability list."""
    lines = c.read_until_tagged(tag)
    m = re.match(logged_in_re(tag), lines[-1])
    assert m, lines
    return re.match(rb"^\S+ OK \[CAPABILITY ([^\]]*)\]", lines[-1]).group(1)


def expect_select_and_logout(c, sel="b", out="c", exists=0):
    lines = c.read_until_tagged(sel)
    assert b"* %d EXISTS" % exists in lines, lines
    assert lines[-1].startswith(sel.encode() + b" OK [READ-WRITE]"), lines
    lines = c.read_until_tagged(out)
    assert lines[0] == b"* BYE Logging out", lines
    assert lines[-1].startswith(out.encode() + b" OK Logout completed"), lines
    c.assert_closed()


def slow_read_to_close(c, timeout=20.0, chunk=32768, pause=0.002, half_close_when=None):
    """Read to EOF like a slow client: at most `chunk` bytes at a time,
    with a pause after each read.  With `half_close_when`, shut down the
    write side as soon as that function first returns true."""
    deadline = time.monotonic() + timeout
    out = [c.buf]
    c.buf = b""
    while True:
        if half_close_when and half_close_when():
            c.shutdown_write()
            half_close_when = None
        remaining = deadline - time.monotonic()
        assert remaining > 0, "connection still open after %d bytes" % sum(map(len, out))
        r, _, _ = select.select([c.sock], [], [], remaining)
        if not r:
            continue
        try:
            data = c.sock.recv(chunk)
        except ConnectionResetError:
            c.reset = True
            data = b""
        if not data:
            c.eof = True
            return b"".join(out)
        out.append(data)
        time.sleep(pause)


def read_to_close(c, timeout=5.0):
    deadline = time.monotonic() + timeout
    try:
        while c._fill(deadline):
            pass
    except TimeoutError:
        raise AssertionError("connection still open; got %r" % c.buf[:300]) from None
    return c.buf


# -- the environment itself ----------------------------------------------------

def test_dovecot_daemon_direct(dovecot):
    """Without imapgate: the private Dovecot daemon serves every test user,
    the master user, the haproxy listener and the trusted ID forwarding
    the other tests depend on."""
    for user, (pw, _) in conftest.USERS.items():
        with imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=10) as m:
            assert m.login(user, pw)[0] == "OK", user
            m.logout()
    msg = make_message("direct")
    with imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=10) as m:
        typ, _ = m.authenticate("PLAIN", lambda _: ("alice\0%s\0%s" % (
            conftest.MASTER_USER, conftest.MASTER_PASSWORD)).encode())
        assert typ == "OK"
        assert m.append("INBOX", None, None, msg)[0] == "OK"
        m.select("INBOX")
        assert m.fetch("1", "(BODY.PEEK[])")[1][0][1] == msg
        m.logout()
    assert dovecot.wait_log(r"Master user logging in as alice", dovecot.log_mark)
    # PROXY v2 on the haproxy listener, ID from a trusted network.
    with helpers.Client(dovecot.haproxy_port) as c:
        c.send(helpers.proxy_v2("192.0.2.99", "127.0.0.1", 4999, 143))
        c.expect_prefix(b"* OK ")
        c.send(login_line("a", "bob", conftest.USERS["bob"][0]))
        expect_logged_in(c, "a")
    with helpers.Client(dovecot.port) as c:
        c.expect_prefix(b"* OK ")
        c.sendline('i ID ("x-originating-ip" "192.0.2.98" "x-originating-port" "4998")')
        c.read_until_tagged("i")
        c.sendline("a LOGIN carol c4rol-yescrypt")
        expect_logged_in(c, "a")
    assert dovecot.wait_log(dovecot_login_re("bob", "192.0.2.99", 4999), dovecot.log_mark)
    assert dovecot.wait_log(dovecot_login_re("carol", "192.0.2.98", 4998), dovecot.log_mark)
    assert dovecot.wait_log(r"ID sent: .*x-originating-ip=192\.0\.2\.98", dovecot.log_mark)
    # Dovecot's own refusal text (proxy_pass_error_message passes it on).
    with helpers.Client(dovecot.port) as c:
        c.expect_prefix(b"* OK ")
        c.send(login_line("a", conftest.NOLOGIN_USER, conftest.NOLOGIN_PASSWORD))
        c.expect(b"a NO [CONTACTADMIN] " + conftest.NOLOGIN_REASON.encode())


# -- whole sessions --------------------------------------------------------------

@pytest.mark.parametrize("auth_source", ["passwd_file", "pass-through"])
def test_imaplib_full_session(start_proxy, dovecot, mode, auth_source):
    kw = {} if auth_source == "passwd_file" else {"passwd_file": None}
    g = start_proxy(mode=mode, **kw)
    m = imaplib.IMAP4("127.0.0.1", g.port, timeout=10)
    try:
        assert m.welcome == GREETING
        typ, data = m.login("bob", conftest.USERS["bob"][0])
        assert typ == "OK" and data[0].endswith(b"Logged in"), data
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"0"], data
        msgs = [make_message("first"), make_message("second, larger", 200000)]
        for msg in msgs:
            typ, data = m.append("INBOX", "(\\Seen)", None, msg)
            assert typ == "OK", data
        typ, data = m.select("INBOX")
        assert data == [b"2"], data
        for i, msg in enumerate(msgs, 1):
            typ, data = m.fetch(str(i), "(BODY.PEEK[])")
            assert typ == "OK"
            assert data[0][1] == msg
        typ, data = m.search(None, "SUBJECT", "second")
        assert data == [b"2"], data
        typ, data = m.logout()
        assert typ == "BYE", data
    finally:
        try:
            m.shutdown()
        except OSError:
            pass
    # The mail is in Dovecot's store, put there by the daemon.
    files = maildir_messages(dovecot, "bob")
    # (Dovecot stores LF line ends.)
    assert sorted(open(f, "rb").read() for f in files) == \
        sorted(m.replace(b"\r\n", b"\n") for m in msgs)
    assert dovecot.wait_log(dovecot_login_re("bob"), dovecot.log_mark)


@pytest.mark.parametrize("backend_login", ["login", "plain"])
@pytest.mark.parametrize("client_cmd", ["LOGIN", "AUTHENTICATE"])
def test_backend_capability_in_tagged_ok(start_proxy, dovecot, backend_login, client_cmd):
    """The client's tag gets Dovecot's own post-login CAPABILITY, with the
    backend login done the configured way whatever the client used."""
    g = start_proxy(login=backend_login)
    want = dovecot_caps_after_login(dovecot, "alice", "secret")
    mark = dovecot.log_size()
    c = g.connect()
    if client_cmd == "LOGIN":
        c.sendline("t1 LOGIN alice secret")
    else:
        c.sendline(b"t1 AUTHENTICATE PLAIN " + helpers.b64("\0alice\0secret"))
    caps = expect_logged_in(c, "t1")
    assert caps == want
    assert b"AUTH=" not in caps and b"MOVE" in caps, caps
    c.sendline("t2 SELECT INBOX")
    lines = c.read_until_tagged("t2")
    assert lines[-1].startswith(b"t2 OK [READ-WRITE]"), lines
    # (Dovecot logs method=PLAIN for a LOGIN command too; which command
    # imapgate sends is checked against the scripted backend below.)
    assert dovecot.wait_log(dovecot_login_re("alice", method="PLAIN"), mark), dovecot.log(mark)


# -- finding a backend -------------------------------------------------------------

def test_failover_past_refused_address(start_proxy, dovecot):
    g = start_proxy(connect=["127.0.0.1:%d" % helpers.closed_port(), dovecot.addr()])
    c = g.connect()
    t0 = time.monotonic()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    assert time.monotonic() - t0 < 3.0
    expect_select_and_logout(c)


def test_failover_past_connect_timeout(start_proxy, dovecot):
    port, held = helpers.blackhole_listener()
    if port is None:
        pytest.fail("could not make a non-answering listener on loopback")
    try:
        g = start_proxy(connect=["127.0.0.1:%d" % port, dovecot.addr()], connect_timeout=0.5)
        c = g.connect()
        t0 = time.monotonic()
        c.sendline("a LOGIN alice secret")
        expect_logged_in(c, "a")
        took = time.monotonic() - t0
        assert 0.4 <= took < 3.0, took
    finally:
        for s in held:
            s.close()


def test_connect_by_host_name(start_proxy, dovecot):
    g = start_proxy(connect=["localhost:%d" % dovecot.port])
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)


def test_connect_unix_socket(start_proxy, dovecot):
    g = start_proxy(connect=["unix:" + dovecot.unix_path])
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)


def test_backend_down_unavailable_then_retry(start_proxy, dovecot):
    """No backend: NO [UNAVAILABLE], the connection stays usable, and once
    the backend is back a retry on the same connection logs in."""
    port = helpers.closed_port()
    g = start_proxy(connect=["127.0.0.1:%d" % port])
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + UNAVAILABLE)
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    c.sendline("c LOGIN alice secret")
    c.expect(b"c" + UNAVAILABLE)
    fwd = helpers.ScriptedServer(helpers.forwarder(dovecot.port), port=port)
    try:
        c.send(b"d LOGIN alice secret\r\ne SELECT INBOX\r\nf LOGOUT\r\n")
        expect_logged_in(c, "d")
        expect_select_and_logout(c, "e", "f")
    finally:
        fwd.close()


@pytest.mark.parametrize("greeting", [b"* PREAUTH [CAPABILITY IMAP4rev1] welcome back\r\n",
                                      b"* BYE too busy, go away\r\n"])
def test_backend_greeting_not_ok_is_unavailable(start_proxy, greeting):
    def handler(conn):
        conn.send(greeting)
        conn.readline(timeout=5)          # wait for imapgate to hang up

    fake = helpers.ScriptedServer(handler)
    try:
        g = start_proxy(connect=["127.0.0.1:%d" % fake.port])
        c = g.connect()
        c.sendline("a LOGIN alice secret")
        c.expect(b"a" + UNAVAILABLE)
        c.sendline("b NOOP")
        c.expect(b"b OK NOOP completed")
        # Nothing the client sent may have been passed on after PREAUTH.
        for conn in fake.conns:
            assert b"secret" not in conn.received, conn.received
    finally:
        fake.close()


# -- failed logins -------------------------------------------------------------------

@pytest.mark.parametrize("auth_source", ["passwd_file", "pass-through"])
def test_backend_refuses_password(start_proxy, dovecot, world, auth_source):
    """Dovecot says NO: the client gets the generic AUTHENTICATIONFAILED no
    sooner than failure_delay, and may log in afterwards."""
    if auth_source == "passwd_file":
        # imapgate accepts this password; Dovecot does not know it.
        kw = {"passwd_file": world.write_passwd(passwords={"alice": "gate-only-pw"},
                                                name="passwd-gate")}
        wrong, right = "gate-only-pw", None
    else:
        kw = {"passwd_file": None}
        wrong, right = "wrong-pw", "secret"
    g = start_proxy(failure_delay=1.0, **kw)
    c = g.connect()
    t0 = time.monotonic()
    c.send(login_line("a", "alice", wrong))
    c.expect(b"a" + AUTH_FAILED, timeout=8)
    took = time.monotonic() - t0
    assert took >= 0.95, took
    # The password was really put to Dovecot.
    assert dovecot.wait_log(r"passwd-file\(alice,[^)]*\): Password mismatch", dovecot.log_mark)
    if right:
        c.send(login_line("b", "alice", right) + b"c SELECT INBOX\r\nd LOGOUT\r\n")
        expect_logged_in(c, "b")
        expect_select_and_logout(c, "c", "d")


@pytest.mark.parametrize("pass_message", [False, True])
def test_proxy_pass_error_message(start_proxy, dovecot, pass_message):
    g = start_proxy(passwd_file=None, proxy_pass_error_message=pass_message)
    c = g.connect()
    c.send(login_line("a", conftest.NOLOGIN_USER, conftest.NOLOGIN_PASSWORD))
    if pass_message:
        c.expect(b"a NO [CONTACTADMIN] " + conftest.NOLOGIN_REASON.encode())
    else:
        c.expect(b"a" + AUTH_FAILED)
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


def test_backend_failures_count_against_max_attempts(start_proxy, dovecot):
    g = start_proxy(passwd_file=None, max_attempts=2)
    c = g.connect()
    c.sendline("a LOGIN alice wrong1")
    c.expect(b"a" + AUTH_FAILED)
    c.sendline("b LOGIN alice wrong2")
    c.expect(b"b" + AUTH_FAILED)
    rest = read_to_close(c)
    assert rest == b"" or rest.startswith(b"* BYE "), rest
    assert b"OK" not in rest, rest


# -- the relay ---------------------------------------------------------------------

def tagged(lines, tag):
    """The tagged reply for `tag` among lines (Dovecot may complete
    pipelined commands out of order)."""
    got = [ln for ln in lines if ln.startswith(tag.encode() + b" ")]
    assert len(got) == 1, (tag, lines)
    return got[0]


def lines_to_close(c, timeout=10.0):
    data = read_to_close(c, timeout)
    assert data.endswith(b"\r\n"), data[-200:]
    return data[:-2].split(b"\r\n")


def test_pipelined_commands_after_login_in_one_write(start_proxy, dovecot):
    g = start_proxy()
    msg = make_message("pipelined")
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc APPEND INBOX {%d}\r\n" % len(msg))
    expect_logged_in(c, "a")
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK [READ-WRITE]"), lines
    c.expect_continuation()
    c.send(msg + b"\r\n")
    lines = c.read_until_tagged("c")
    assert lines[-1].startswith(b"c OK [APPENDUID "), lines
    c.send(b"d NOOP\r\ne FETCH 1 (BODY.PEEK[])\r\nf LOGOUT\r\n")
    lines = lines_to_close(c)
    assert tagged(lines, "d").startswith(b"d OK NOOP"), lines
    assert tagged(lines, "e").startswith(b"e OK Fetch completed"), lines
    assert lines[-1].startswith(b"f OK Logout completed"), lines
    assert b"* 1 FETCH (BODY[] {%d}" % len(msg) in lines, lines


@pytest.mark.parametrize("auth", ["LOGIN", "AUTHENTICATE"])
def test_pipelined_everything_in_one_write(start_proxy, dovecot, auth):
    g = start_proxy()
    c = g.connect()
    if auth == "LOGIN":
        first = b"a LOGIN alice secret\r\n"
    else:
        first = b"a AUTHENTICATE PLAIN " + helpers.b64("\0alice\0secret") + b"\r\n"
    c.send(first + b"b SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)


def test_half_close_still_gets_every_reply(start_proxy, dovecot):
    g = start_proxy()
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    c.shutdown_write()
    expect_logged_in(c, "a")
    expect_select_and_logout(c)


def test_half_close_with_large_transfers(start_proxy, dovecot):
    """More is pending than the socket buffers hold when the client shuts
    down its write side, in each direction in turn; all of it arrives."""
    g = start_proxy()
    msg = make_message("half-close", 2 * 1024 * 1024)
    # Client to backend: LOGIN and a 2 MB APPEND (LITERAL+, which Dovecot
    # has), then EOF.  Dovecot stores it, answers, and closes.
    c = g.connect(timeout=20)
    c.send(b"a LOGIN alice secret\r\nb APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    c.shutdown_write()
    lines = lines_to_close(c, timeout=20)
    assert re.match(logged_in_re("a"), tagged(lines, "a")), lines
    assert tagged(lines, "b").startswith(b"b OK [APPENDUID "), lines
    assert [open(f, "rb").read() for f in maildir_messages(dovecot, "alice")] == \
        [msg.replace(b"\r\n", b"\n")]
    # Backend to client: two FETCHes of it and LOGOUT, and a client slow
    # to read: Dovecot has written everything and closed while much of it
    # still waits in imapgate and the socket buffers; then the client
    # shuts down its write side too.  (Three rounds: how much is still
    # waiting at that moment varies.)  The client half-closes only once
    # Dovecot has logged the session out: Dovecot itself drops a session
    # whose input ends while a FETCH waits for output ("Connection closed
    # ... state=wait-output"), which once made this test fail on bytes
    # imapgate never received.
    lit = b"* 1 FETCH (BODY[] {%d}\r\n" % len(msg) + msg + b")\r\n"
    for _ in range(3):
        mark = dovecot.log_size()
        c = g.connect(timeout=20)
        c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\n"
               b"c FETCH 1 (BODY.PEEK[])\r\nd FETCH 1 (BODY.PEEK[])\r\ne LOGOUT\r\n")
        data = slow_read_to_close(
            c, timeout=20,
            half_close_when=lambda: "Disconnected: Logged out" in dovecot.log(mark))
        assert data.count(lit) == 2, (len(data), "reset" if c.reset else "fin",
                                      data[:300], data[-300:], g.log()[-600:])
        lines = data.replace(lit, b"").split(b"\r\n")
        for t in "abcd":
            assert tagged(lines, t).startswith(t.encode() + b" OK"), lines
        assert re.match(rb"^e OK Logout completed", lines[-2]), lines


def test_10mb_message_roundtrip_and_session_log(start_proxy, dovecot):
    g = start_proxy()
    size = 10 * 1024 * 1024
    chunk = bytes(range(33, 127)) * 10 + b"\r\n"
    msg = (b"From: a@example.org\r\nSubject: big\r\n\r\n" + chunk * (size // len(chunk) + 1))[:size]
    msg = msg[:-2] + b"\r\n"
    with imaplib.IMAP4("127.0.0.1", g.port, timeout=30) as m:
        assert m.login("alice", "secret")[0] == "OK"
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK", data
        m.select("INBOX")
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK"
        got = data[0][1]
        assert len(got) == len(msg)
        assert got == msg
        m.logout()
    files = maildir_messages(dovecot, "alice")
    assert len(files) == 1 and open(files[0], "rb").read() == msg.replace(b"\r\n", b"\n")
    # The one session line: bytes both ways and a duration.
    line = helpers.wait_for(
        lambda: next((ln for ln in g.log().splitlines()
                      if re.search(r"\bin=\d+", ln) and re.search(r"\bout=\d+", ln)
                      and "imapgate" in ln), None), timeout=5)
    assert line, g.log()
    n_in = int(re.search(r"\bin=(\d+)", line).group(1))
    n_out = int(re.search(r"\bout=(\d+)", line).group(1))
    assert n_in >= size and n_out >= size, line
    assert n_in < 2 * size and n_out < 2 * size, line
    assert re.search(r'imapgate\[\d+\]: session: user="alice" ip=127\.0\.0\.1 backend=%s '
                     r'in=\d+ out=\d+ duration=\d+\.\d{3} end=closed$' % re.escape(dovecot.addr()),
                     line), line


def test_proxy_timeout_closes_idle_session(start_proxy, dovecot):
    g = start_proxy(proxy_timeout=1)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    c.sendline("b NOOP")
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK"), lines
    c.assert_silent(0.6)
    t0 = time.monotonic()
    rest = read_to_close(c, timeout=5)
    assert time.monotonic() - t0 < 3.0
    assert rest == b"" or rest.startswith(b"* BYE"), rest


# -- the client address at the backend ----------------------------------------------

def test_client_address_via_id(start_proxy, dovecot):
    g = start_proxy()                   # forward_client defaults to "id"
    c = helpers.Client(g.port, source="127.0.0.2")
    c.expect_prefix(b"* OK ")
    sport = c.sock.getsockname()[1]
    c.send(b"a LOGIN alice secret\r\nb LOGOUT\r\n")
    expect_logged_in(c, "a")
    assert dovecot.wait_log(dovecot_login_re("alice", "127.0.0.2", sport), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)
    assert dovecot.wait_log(r"imap-login: Info: ID sent: .*x-originating-ip=127\.0\.0\.2",
                            dovecot.log_mark)


@pytest.mark.parametrize("forward", ["proxy-v1", "proxy-v2"])
def test_client_address_via_proxy_header(start_proxy, dovecot, forward):
    g = start_proxy(connect=[dovecot.addr(dovecot.haproxy_port)], forward_client=forward)
    c = helpers.Client(g.port, source="127.0.0.2")
    c.expect_prefix(b"* OK ")
    sport = c.sock.getsockname()[1]
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)
    assert dovecot.wait_log(dovecot_login_re("alice", "127.0.0.2", sport), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)


def test_forward_client_none(start_proxy, dovecot):
    g = start_proxy(forward_client="none")
    c = helpers.Client(g.port, source="127.0.0.2")
    c.expect_prefix(b"* OK ")
    c.send(b"a LOGIN alice secret\r\nb LOGOUT\r\n")
    expect_logged_in(c, "a")
    assert dovecot.wait_log(dovecot_login_re("alice", "127.0.0.1"), dovecot.log_mark), \
        dovecot.log(dovecot.log_mark)
    assert "ID sent" not in dovecot.log(dovecot.log_mark)


# -- the backend dialogue, seen from a scripted backend -----------------------------

class FakeImap:
    """A scripted backend: greets with `caps`, answers CAPABILITY, ID,
    LOGIN (synchronizing literals: sends "+ ..." and then a bare "+") and
    AUTHENTICATE PLAIN (with or without an initial response; the
    continuation is a bare "+"), and sends untagged noise before every
    tagged reply.  The login succeeds with [CAPABILITY X-FAKE-AFTER]."""

    def __init__(self, caps=b"IMAP4rev1 AUTH=PLAIN", after_login=None):
        self.caps = caps
        self.after_login = after_login      # f(conn): the rest of the session
        self.commands = []          # command lines, as received
        self.literal_waited = []    # True when nothing followed {n} before "+"
        self.credentials = []       # (how, data)
        self.server = helpers.ScriptedServer(self.handle)
        self.port = self.server.port

    def handle(self, c):
        c.send(b"* OK [CAPABILITY " + self.caps + b"] fake backend ready\r\n")
        pluses = [b"+ send the literal\r\n", b"+\r\n"]
        while True:
            line = c.readline(timeout=10)
            if line is None:
                return
            self.commands.append(line)
            tag, _, rest = line.partition(b" ")
            cmd = rest.split(b" ", 1)[0].upper()
            c.send(b"* OK [ALERT] untagged noise from the backend\r\n")
            if cmd == b"CAPABILITY":
                c.send(b"* CAPABILITY " + self.caps + b"\r\n" + tag + b" OK done\r\n")
            elif cmd == b"ID":
                c.send(b"* ID NIL\r\n" + tag + b" OK ID completed\r\n")
            elif cmd == b"LOGIN":
                args = []
                cur = line
                while True:
                    m = re.search(rb"\{(\d+)(\+?)\}$", cur)
                    if not m:
                        break
                    if not m.group(2):          # synchronizing: wait for "+"
                        self.literal_waited.append(c.pending(0.3) == b"")
                        c.send(pluses[min(len(args), 1)])
                    args.append(c.read(int(m.group(1)), timeout=5))
                    cur = c.readline(timeout=5)
                    if cur is None:
                        return
                    self.commands.append(cur)
                self.credentials.append(("LOGIN", args))
                c.send(tag + b" OK [CAPABILITY IMAP4rev1 X-FAKE-AFTER] Logged in\r\n")
                if self.after_login:
                    return self.after_login(c)
            elif cmd == b"AUTHENTICATE":
                parts = rest.split(b" ")
                if len(parts) >= 3:
                    data = parts[2]
                    how = "PLAIN-IR"
                else:
                    c.send(b"+\r\n")
                    data = c.readline(timeout=5)
                    how = "PLAIN"
                self.credentials.append((how, base64.b64decode(data or b"")))
                c.send(tag + b" OK [CAPABILITY IMAP4rev1 X-FAKE-AFTER] Logged in\r\n")
            elif cmd == b"LOGOUT":
                c.send(b"* BYE bye\r\n" + tag + b" OK Logout completed.\r\n")
                return
            else:
                c.send(tag + b" OK " + cmd + b" done\r\n")

    def close(self):
        self.server.close()
        assert not self.server.errors, self.server.errors


@pytest.fixture
def fake_imap():
    made = []

    def make(**kw):
        f = FakeImap(**kw)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def test_backend_login_with_synchronizing_literals(start_proxy, fake_imap):
    """No LITERAL+ and no ID advertised: LOGIN {5} waits for each "+"
    (the second one bare), and no ID is sent."""
    fake = fake_imap()
    g = start_proxy(connect=["127.0.0.1:%d" % fake.port], login="login")
    c = g.connect()
    c.send(b'a LOGIN alice secret\r\nb NOOP\r\nc LOGOUT\r\n')
    lines = c.read_until_tagged("a")
    assert lines[-1] == b"a OK [CAPABILITY IMAP4rev1 X-FAKE-AFTER] Logged in", lines
    lines = c.read_until_tagged("b")
    assert lines[-1] == b"b OK NOOP done", lines
    lines = c.read_until_tagged("c")
    assert lines[-1] == b"c OK Logout completed.", lines
    assert fake.credentials == [("LOGIN", [b"alice", b"secret"])], fake.commands
    assert fake.literal_waited == [True, True], fake.commands
    login = [ln for ln in fake.commands if b" LOGIN " in ln.upper()]
    assert len(login) == 1 and re.match(rb"^\S+ LOGIN \{5\}$", login[0]), fake.commands
    assert not any(re.match(rb"^\S+ ID ", ln, re.I) for ln in fake.commands), fake.commands
    # The client's own later commands follow, with the client's tags.
    assert fake.commands[-2:] == [b"b NOOP", b"c LOGOUT"], fake.commands


def test_backend_login_with_literal_plus(start_proxy, fake_imap):
    """A backend that advertises LITERAL+ may get {n+} literals (RFC 7888)
    or synchronizing ones; either way the credentials arrive intact."""
    fake = fake_imap(caps=b"IMAP4rev1 LITERAL+ AUTH=PLAIN")
    g = start_proxy(connect=["127.0.0.1:%d" % fake.port], login="login", passwd_file=None)
    c = g.connect()
    c.send(login_line("a", 'al\\"ice', "se cr\\et"))
    lines = c.read_until_tagged("a")
    assert lines[-1] == b"a OK [CAPABILITY IMAP4rev1 X-FAKE-AFTER] Logged in", lines
    assert fake.credentials == [("LOGIN", [b'al\\"ice', b"se cr\\et"])], fake.commands
    assert all(fake.literal_waited), fake.commands


@pytest.mark.parametrize("sasl_ir", [False, True])
def test_backend_authenticate_plain(start_proxy, fake_imap, sasl_ir):
    caps = b"IMAP4rev1 ID AUTH=PLAIN" + (b" SASL-IR" if sasl_ir else b"")
    fake = fake_imap(caps=caps)
    g = start_proxy(connect=["127.0.0.1:%d" % fake.port], login="plain")
    c = helpers.Client(g.port, source="127.0.0.2")
    c.expect_prefix(b"* OK ")
    sport = c.sock.getsockname()[1]
    c.sendline("a LOGIN alice secret")
    lines = c.read_until_tagged("a")
    assert lines[-1] == b"a OK [CAPABILITY IMAP4rev1 X-FAKE-AFTER] Logged in", lines
    assert len(fake.credentials) == 1, fake.commands
    how, data = fake.credentials[0]
    assert how == ("PLAIN-IR" if sasl_ir else "PLAIN"), fake.commands
    assert data in (b"\0alice\0secret", b"alice\0alice\0secret"), data
    # ID advertised: the client address went with it, before the login.
    ids = [i for i, ln in enumerate(fake.commands) if re.match(rb"^\S+ ID ", ln, re.I)]
    auth = [i for i, ln in enumerate(fake.commands) if b" AUTHENTICATE " in ln.upper()]
    assert ids and auth and ids[0] < auth[0], fake.commands
    idline = fake.commands[ids[0]]
    assert re.search(rb'"x-originating-ip" "127\.0\.0\.2"', idline, re.I), idline
    assert re.search(rb'"x-originating-port" "%d"' % sport, idline, re.I), idline


def test_backend_half_close_client_still_heard(start_proxy, fake_imap):
    """The other direction: the backend says BYE and shuts down its write
    side but goes on reading.  The client sees EOF, and what it sends after
    that (2 MB, then its own EOF) all reaches the backend, read slowly."""
    size = 2 * 1024 * 1024
    payload = b"c APPEND INBOX {%d+}\r\n" % size + \
        (b"x" * 78 + b"\r\n") * (size // 80) + b"\r\nd LOGOUT\r\n"
    got = {}

    def after_login(c):
        assert c.readline(timeout=5) == b"b DONE"
        c.send(b"* BYE the backend has said all it will say\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)                 # let everything pile up in imapgate
        data = c.buf
        c.buf = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r, _, _ = select.select([c.sock], [], [], deadline - time.monotonic())
            chunk = c.sock.recv(16384) if r else b""
            if not chunk:
                break
            data += chunk
            time.sleep(0.005)
        got["tail"] = data

    fake = fake_imap(after_login=after_login)
    g = start_proxy(connect=["127.0.0.1:%d" % fake.port])
    c = g.connect(timeout=20)
    c.send(b"a LOGIN alice secret\r\nb DONE\r\n")
    lines = c.read_until_tagged("a")
    assert lines[-1] == b"a OK [CAPABILITY IMAP4rev1 X-FAKE-AFTER] Logged in", lines
    c.expect(b"* BYE the backend has said all it will say")
    read_to_close(c)                    # EOF from imapgate: backend is done
    c.send(payload)
    c.shutdown_write()
    assert helpers.wait_for(lambda: "tail" in got, timeout=20), "backend never saw EOF"
    assert len(got["tail"]) == len(payload) and got["tail"] == payload, len(got["tail"])


# -- credentials and routing ----------------------------------------------------------

@pytest.mark.parametrize("backend_login", [None, "plain"])
def test_master_user_login(start_proxy, dovecot, world, backend_login):
    """imapgate checks the user's own password (which Dovecot does not
    know), then logs in to Dovecot as the master user for the user (PLAIN
    with authzid, also when backend.login is left at its default)."""
    passwd = world.write_passwd(passwords={"alice": "gate-only-pw"}, name="passwd-gate")
    g = start_proxy(passwd_file=passwd, login=backend_login, master_user=conftest.MASTER_USER,
                    master_password=conftest.MASTER_PASSWORD)
    c = g.connect()
    c.send(b"a LOGIN alice gate-only-pw\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)
    assert dovecot.wait_log(r"Master user logging in as alice", dovecot.log_mark)
    assert dovecot.wait_log(dovecot_login_re("alice"), dovecot.log_mark)
    # Without the master user the same login is refused by Dovecot.
    g2 = start_proxy(passwd_file=passwd, login="plain")
    c = g2.connect()
    c.sendline("a LOGIN alice gate-only-pw")
    c.expect(b"a" + AUTH_FAILED)
    # And imapgate still checks the user's password itself.
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + AUTH_FAILED)


def test_per_user_routing_from_passwd_file(start_proxy, dovecot, world):
    closed = helpers.closed_port()
    passwd = world.write_passwd(extra={
        "alice": "host=127.0.0.1 port=%d" % dovecot.port,
        "carol": "host=127.0.0.1 port=%d" % closed,
    }, name="passwd-routed")
    g = start_proxy(passwd_file=passwd, connect=["127.0.0.1:%d" % helpers.closed_port()])
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_logged_in(c, "a")
    expect_select_and_logout(c)
    c = g.connect()                     # bob: no route of his own, default down
    c.send(login_line("a", "bob", conftest.USERS["bob"][0]))
    c.expect(b"a" + UNAVAILABLE)
    # carol's route overrides a working backend.connect.
    g2 = start_proxy(passwd_file=passwd)
    c = g2.connect()
    c.send(login_line("a", "carol", conftest.USERS["carol"][0]))
    c.expect(b"a" + UNAVAILABLE)
    c = g2.connect()
    c.send(login_line("a", "bob", conftest.USERS["bob"][0]))
    expect_logged_in(c, "a")


# -- a real client ---------------------------------------------------------------------

def test_mbsync_through_proxy(start_proxy, dovecot, tmp_path):
    if not shutil.which("mbsync"):
        pytest.fail("mbsync missing")
    g = start_proxy()
    msgs = [make_message("sync %d" % i) for i in range(3)]
    with imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=10) as m:
        m.login("erin", conftest.USERS["erin"][0])
        m.create("Work")
        for msg in msgs:
            assert m.append("Work", None, None, msg)[0] == "OK"
        m.logout()
    mb = helpers.Mbsync(tmp_path, g.port, "erin", conftest.USERS["erin"][0], box="Work")
    mb.sync(g.log())
    assert mb.messages() == sorted(helpers.lf(m) for m in msgs)
    # A message written locally goes the other way.
    new = make_message("from the near side")
    with open(os.path.join(mb.local, "Work", "new", "%d.near.local" % time.time()),
              "wb") as f:
        f.write(helpers.lf(new))
    mb.sync(g.log())
    far = [open(f, "rb").read() for f in maildir_messages(dovecot, "erin", "Work")]
    assert len(far) == 4, far
    assert any(b"Subject: from the near side" in m for m in far)


def test_backend_drops_during_login(start_proxy, fake_imap):
    """A backend that hangs up in the middle of the login: the client's
    tag gets a NO (never an OK), and the session goes on."""
    def handler(c):
        c.send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n")
        c.readline(timeout=5)

    fake = helpers.ScriptedServer(handler)
    try:
        g = start_proxy(connect=["127.0.0.1:%d" % fake.port])
        c = g.connect()
        c.sendline("a LOGIN alice secret")
        line = c.read_until_tagged("a")[-1]
        assert line.startswith(b"a NO "), line
        c.sendline("b NOOP")
        c.expect(b"b OK NOOP completed")
    finally:
        fake.close()


# -- configuration -----------------------------------------------------------------------

def run_check(conf):
    conftest.require_binary()
    return subprocess.run([conftest.GATE_BIN, "-t", "-c", conf], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=10)


def test_config_connect_mode_valid(world):
    conf = world.write_config(
        "connect-ok.conf", exec=None, passwd_file=None,
        connect=["127.0.0.1:143", "localhost:10143", "unix:/run/imap.sock"],
        connect_timeout=2.5, login="plain", forward_client="proxy-v2",
        proxy_timeout=600, proxy_pass_error_message=True, proxy_protocol=True,
        set_real_ip_from=["127.0.0.0/8", "10.0.0.0/8", "::1/128"])
    r = run_check(conf)
    assert r.returncode == 0, r


@pytest.mark.parametrize("kw,key", [
    (dict(connect=["127.0.0.1:143"]), "connect"),                    # and exec
    (dict(exec=None), "exec"),                                       # neither
    (dict(exec=None, connect=["127.0.0.1"]), "connect"),
    (dict(exec=None, connect=["127.0.0.1:143"], connect_timeout=-1.0), "connect_timeout"),
    (dict(exec=None, connect=["127.0.0.1:143"], login="cram-md5"), "login"),
    (dict(exec=None, connect=["127.0.0.1:143"], forward_client="xff"), "forward_client"),
    (dict(exec=None, connect=["127.0.0.1:143"], set_real_ip_from=["10.0.0.0/33"]),
     "set_real_ip_from"),
    (dict(exec=None, connect=["127.0.0.1:143"], proxy_timeout=0), "proxy_timeout"),
])
def test_config_connect_mode_invalid(world, kw, key):
    conf = world.write_config("connect-bad.conf", **kw)
    r = run_check(conf)
    assert r.returncode == 1, r
    err = r.stderr.decode()
    assert (key in err or ("exec" in err and "connect" in err)) and conf in err, err
