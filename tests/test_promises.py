"""Promises of README and imapgate(8) that no other test held imapgate to
(issue 15): the session log line field by field, checkpassword's
descriptors, environment and input limit, the exit statuses of a
connection, -t's warnings, the defaults of max_penalty and penalty_file."""

import json
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


# -- checkpassword: descriptors, environment, the input limit ---------------------

# The checkpassword program: python, which opens no descriptor before it
# has looked (os.readlink opens none); /proc/self/environ is the block
# execve() got.
CPW_DUMP = """
import json, os, sys
fds = {}
for n in range(1024):
    try:
        fds[n] = os.readlink("/proc/self/fd/%d" % n)
    except OSError:
        pass
with open("/proc/self/environ", "rb") as f:
    env = f.read().decode()
data = b""
while True:
    chunk = os.read(3, 4096)
    if not chunk:
        break
    data += chunk
with open(sys.argv[1] + "/fd3", "wb") as f:
    f.write(data)
with open(sys.argv[1] + "/report", "w") as f:
    json.dump({"fds": fds, "env": env, "argv": sys.argv[3:]}, f)
sys.exit(int(sys.argv[2]))
"""


def cpw_argv(d, code, *more):
    return ["/usr/bin/python3", "-I", "-S", "-c", CPW_DUMP, d, str(code)] + list(more)


def cpw_report(d):
    with open(os.path.join(d, "report")) as f:
        return json.load(f)


def cpw_dir(world):
    d = os.path.join(world.root, "cpw-out")
    os.mkdir(d)
    os.chmod(d, 0o777)
    return d


@pytest.mark.parametrize("mode", ["inetd", "listen"])
def test_checkpassword_fds_environment_and_input(start_proxy, dovecot, world, mode):
    """The program gets fd 0 and 1 on /dev/null, fd 2 the log (never the
    client socket), fd 3 the pipe with user NUL password NUL timestamp NUL,
    nothing else open; an environment of PATH and the four TCP* variables
    only; its arguments and /bin/true."""
    d = cpw_dir(world)
    g = start_proxy(mode=mode, passwd_file=None,
                    checkpassword=cpw_argv(d, 1, "x y"))
    c = g.connect()
    cport = c.sock.getsockname()[1]
    t0 = int(time.time())
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + AUTH_FAILED)
    with open(os.path.join(d, "fd3"), "rb") as f:
        fd3 = f.read()
    user, pw, ts, rest = fd3.split(b"\0")
    assert (user, pw, rest) == (b"alice", b"secret", b""), fd3
    assert t0 - 1 <= int(ts) <= time.time() + 1, fd3
    rep = cpw_report(d)
    env = dict(e.split("=", 1) for e in rep["env"].split("\0") if e)
    assert env == {"PATH": "/usr/local/bin:/usr/bin:/bin",
                   "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": str(cport),
                   "TCPLOCALIP": "127.0.0.1", "TCPLOCALPORT": str(g.port)}, env
    assert rep["argv"] == ["x y", "/bin/true"], rep
    fds = {int(k): v for k, v in rep["fds"].items()}
    assert sorted(fds) == [0, 1, 2, 3], fds
    assert fds[0] == fds[1] == "/dev/null", fds
    assert not fds[2].startswith("socket:"), fds
    assert fds[3].startswith("pipe:"), fds


@pytest.mark.parametrize("pwlen,called", [(484, True), (485, False)])
def test_checkpassword_489_byte_limit(start_proxy, dovecot, world, pwlen, called):
    """User name and password together up to 489 bytes reach the program
    (with the timestamp they fit its 512); one byte more is refused
    without running it."""
    d = cpw_dir(world)
    g = start_proxy(passwd_file=None, max_attempts=1, imap_client_buffer=8192,
                    checkpassword=cpw_argv(d, 1))
    c = g.connect()
    pw = b"p" * pwlen                      # + "alice" = 489 or 490
    c.send(b"a LOGIN alice {%d+}\r\n%s\r\n" % (pwlen, pw))
    c.expect(b"a" + AUTH_FAILED)
    ran = os.path.exists(os.path.join(d, "fd3"))
    assert ran == called, (pwlen, ran)
    if called:
        with open(os.path.join(d, "fd3"), "rb") as f:
            assert f.read().startswith(b"alice\0" + pw + b"\0")
    else:
        assert helpers.wait_for(lambda: "credentials too long for checkpassword" in g.log(),
                                timeout=3), g.log()


# -- the exit status of a connection ---------------------------------------------

def exit_code(g, timeout=8):
    """imapgate's exit status, as systemd-socket-activate logs it."""
    m = helpers.wait_for(lambda: re.search(r"^Child \d+ died with code (\d+)$", g.log(), re.M),
                         timeout=timeout)
    assert m, g.log()
    return int(m.group(1))


def _logout(c):
    c.sendline("z LOGOUT")
    c.read_until_tagged("z")


def _close_now(c):
    c.close()


def _errors(c):
    for i in range(3):
        c.sendline("e%d BOGUS" % i)
    read_all_to_close(c)


def _failures(c):
    c.sendline("a LOGIN alice wrong")
    read_all_to_close(c)


def _idle(c):
    read_all_to_close(c, timeout=5)


def _exec_then_logout(c):
    c.sendline("a LOGIN alice secret")
    c.expect_re(helpers.logged_in_re("a"))
    _logout(c)


@pytest.mark.parametrize("how,settings,status", [
    ("logout", {}, 0),
    ("close", {}, 1),
    ("errors", {"max_errors": 3}, 1),
    ("failures", {"max_attempts": 1}, 1),
    ("timeout", {"timeout": 1}, 1),
    ("bad-config", {"extra_top": "bogus_key = 1;"}, 1),
    ("bad-privsep", {"chroot": "/nonexistent-chroot"}, 111),
    ("exec-fails", {"exec": ["/nonexistent/imap"]}, 111),
    ("mail-server", {}, 0),
])
def test_exit_status_of_a_connection(start_gate, how, settings, status):
    """imapgate(8)'s exit statuses: 0 after LOGOUT before login (and the
    mail server's after it); 1 for a configuration error or a session that
    ended otherwise before login; 111 for a temporary or internal failure."""
    g = start_gate(failure_delay=0.1, **settings)
    c = g.connect(greeting=how not in ("bad-config", "bad-privsep"))
    try:
        {"logout": _logout, "close": _close_now, "errors": _errors, "failures": _failures,
         "timeout": _idle, "bad-config": lambda c: read_all_to_close(c),
         "bad-privsep": lambda c: read_all_to_close(c),
         "exec-fails": lambda c: (c.sendline("a LOGIN alice secret"), read_all_to_close(c)),
         "mail-server": _exec_then_logout}[how](c)
    finally:
        c.close()
    assert exit_code(g) == status, g.log()


def test_exit_status_connect_mode_after_relay(start_proxy, dovecot):
    """Connect mode: 0 when the relay ends."""
    g = start_proxy()
    c = g.connect()
    c.send(login_line("a", "alice", "secret"))
    expect_logged_in(c, "a")
    _logout(c)
    read_all_to_close(c)
    c.close()
    assert exit_code(g) == 0, g.log()


# -- -t: warnings for what a connection would find missing -----------------------

def run_t(conf):
    conftest.require_binary()
    return subprocess.run([conftest.GATE_BIN, "-t", "-c", conf], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=10)


@pytest.mark.parametrize("case", ["user", "chroot", "chroot-writable", "passwd", "exec", "cert"])
def test_config_check_warnings(world, certs, case):
    """A valid file naming things this machine lacks: -t says valid (exit
    0) and warns, one line each, on stderr."""
    missing = os.path.join(world.root, "missing")
    writable = os.path.join(world.root, "writable")
    os.mkdir(writable)
    os.chmod(writable, 0o777)
    kw, want = {
        "user": ({"user": "no-such-user-h5"}, 'privsep.user "no-such-user-h5" does not exist'),
        "chroot": ({"chroot": missing}, "privsep.chroot %s: not a directory" % missing),
        "chroot-writable": ({"chroot": writable}, "privsep.chroot %s: must be owned by root "
                            "and not writable by others" % writable),
        "passwd": ({"passwd_file": missing},
                   "auth.passwd_file %s: No such file or directory" % missing),
        "exec": ({"exec": [missing]}, "backend.exec %s: No such file or directory" % missing),
        "cert": ({"ssl": True, "ssl_certificate": missing, "ssl_certificate_key": missing},
                 None),
    }[case]
    conf = world.write_config(**kw)
    r = run_t(conf)
    assert r.returncode == 0, r
    assert r.stdout == b"imapgate: %s: configuration is valid\n" % conf.encode(), r
    err = r.stderr.decode()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imapgate: warning: "), err
    if want is not None:
        assert lines[0] == "imapgate: warning: %s: %s" % (conf, want), err
    else:
        assert missing in lines[0], err


def test_config_check_no_warning_when_all_is_there(world):
    conf = world.write_config()
    r = run_t(conf)
    assert (r.returncode, r.stderr) == (0, b""), r
    assert r.stdout == b"imapgate: %s: configuration is valid\n" % conf.encode(), r


# -- the defaults of max_penalty and penalty_file ---------------------------------

def test_penalty_defaults(start_gate, machine_lock):
    """Neither key set: the table is /run/imapgate/penalty, and a guess's
    delay doubles up to 15 s: with failure_delay 9, the second failure
    from an address waits 15 s, not 18."""
    machine_lock("default-penalty")     # the table is machine-wide
    source = "127.0.0.93"
    g = start_gate(failure_delay=9.0, max_attempts=1, penalty_file=None, max_penalty=None)
    default = "/run/imapgate/penalty"

    def succeed():                              # a success clears the address
        c = g.connect(source=source)
        c.sendline("a LOGIN alice secret")
        c.expect_re(helpers.logged_in_re("a"), timeout=25)
        c.close()

    def fail():
        c = g.connect(source=source)
        try:
            t0 = time.monotonic()
            c.sendline("a LOGIN alice wrong")
            c.expect(b"a" + AUTH_FAILED, timeout=25)
            return time.monotonic() - t0
        finally:
            c.close()
    # The table is machine-wide: a run stopped half-way (or another
    # checkout's) may have left this address in it.
    succeed()
    before = os.stat(default).st_mtime_ns if os.path.exists(default) else None
    try:
        first = fail()
        second = fail()
        changed = os.path.exists(default) and os.stat(default).st_mtime_ns != before
    finally:
        succeed()
    assert 8.95 <= first <= 10.0, first
    assert 14.95 <= second <= 16.0, second
    assert changed                              # the failures wrote the default table
