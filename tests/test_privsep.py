"""Privilege separation and the command line (-t, -V)."""

import base64
import json
import os
import re
import subprocess
import threading
import time

import pytest

import conftest
import helpers


def _gate_procs(g):
    """(monitor, session) infos for the one connection in pre-auth."""
    def find():
        procs = g.processes()
        monitors = [p for p in procs if p["ppid"] == g.proc.pid]
        if len(monitors) != 1:
            return None
        kids = [p for p in procs if p["ppid"] == monitors[0]["pid"]]
        if len(kids) != 1:
            return None
        return monitors[0], kids[0], procs
    found = helpers.wait_for(find, timeout=3)
    assert found, "expected super-server -> monitor -> session, got %r" % g.processes()
    return found


def test_session_is_unprivileged_and_chrooted(start_gate, mode, privsep_user):
    g = start_gate(mode=mode)
    c = g.connect()
    monitor, session, procs = _gate_procs(g)
    assert monitor["exe"] == os.path.realpath(conftest.GATE_BIN), monitor
    assert monitor["uids"] == [0, 0, 0, 0], monitor
    assert monitor["root"] == "/", monitor
    assert helpers.children_of(monitor["pid"]) == [session["pid"]]
    assert session["uids"] == [privsep_user.pw_uid] * 4, session
    assert session["gids"] == [privsep_user.pw_gid] * 4, session
    assert set(session["groups"]) <= {privsep_user.pw_gid}, session
    assert session["root"] == g.world.chroot, session
    assert helpers.children_of(session["pid"]) == []
    # The connection still works while we looked.
    c.sendline("a NOOP")
    c.expect(b"a OK NOOP completed")


def test_session_processes_gone_after_logout(gate):
    c = gate.connect()
    _gate_procs(gate)
    c.sendline("a LOGOUT")
    c.read_until_tagged("a")
    c.assert_closed()
    left = helpers.wait_for(lambda: gate.processes() == [] or None, timeout=3)
    assert left, "processes left behind: %r" % gate.processes()


def test_after_login_only_the_mail_server_remains(start_gate, mode):
    g = start_gate(mode=mode)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect_re(helpers.logged_in_re("a"))
    c.sendline("b SELECT INBOX")
    c.read_until_tagged("b")

    def only_dovecot():
        procs = g.processes()
        if any(p["exe"] == os.path.realpath(conftest.GATE_BIN) for p in procs):
            return None
        return procs or None
    procs = helpers.wait_for(only_dovecot, timeout=3)
    assert procs, "imapgate still present after login: %r" % g.processes()
    imap = [p for p in procs if p["exe"] == conftest.DOVECOT_IMAP]
    assert len(imap) == 1, procs
    p = imap[0]
    assert p["uids"] == [conftest.MAIL_UID] * 4, p
    assert p["gids"] == [conftest.MAIL_GID] * 4, p
    assert p["ppid"] == g.proc.pid, p     # exec'd in place of the monitor
    st = os.stat(g.world.maildir("alice"))
    assert (st.st_uid, st.st_gid) == (conftest.MAIL_UID, conftest.MAIL_GID)
    c.sendline("z LOGOUT")
    c.read_until_tagged("z")
    c.assert_closed()
    # Dovecot rewrites its environ block (process title), so read USER, IP
    # and LOCAL_IP back from its log line instead.
    log = helpers.wait_for(lambda: "Disconnected" in g.log() and g.log(), timeout=3)
    assert log and "imap(alice)<rip=127.0.0.1><lip=127.0.0.1>: " in log, g.log()


# -- imapgate -t / -V ------------------------------------------------------------

def run_gate(*args):
    conftest.require_binary()
    return subprocess.run([conftest.GATE_BIN] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=10)


def test_version():
    r = run_gate("-V")
    assert r.returncode == 0, r
    out = (r.stdout + r.stderr).decode()
    assert re.search(r"\d+\.\d+", out), out


def test_config_check_good(world):
    conf = world.write_config()
    r = run_gate("-t", "-c", conf)
    assert r.returncode == 0, r


def test_config_check_good_full(world):
    conf = world.write_config(imap_capabilities=["IMAP4", "IMAP4rev1", "UIDPLUS"],
                              imap_auth=["plain", "login"], imap_client_buffer=8192,
                              greeting="imapgate ready", timeout=60, max_errors=5,
                              failure_delay=2.0, max_attempts=3)
    r = run_gate("-t", "-c", conf)
    assert r.returncode == 0, r


def _line_of(path, needle):
    with open(path) as f:
        for n, ln in enumerate(f, 1):
            if needle in ln:
                return n
    raise AssertionError(needle)


@pytest.mark.parametrize("where", ["top", "auth", "privsep"])
def test_config_check_unknown_key(world, where):
    if where == "top":
        conf = world.write_config(extra_top="bogus_key = 1;")
    else:
        conf = world.write_config(extra_sections={where: ["bogus_key = 1;"]})
    line = _line_of(conf, "bogus_key")
    r = run_gate("-t", "-c", conf)
    assert r.returncode == 1, r
    err = r.stderr.decode()
    assert "%s:%d" % (conf, line) in err, err
    assert "bogus_key" in err, err


def test_config_check_syntax_error(world):
    conf = world.write_config(extra_top="timeout = ;")
    line = _line_of(conf, "timeout = ;")
    r = run_gate("-t", "-c", conf)
    assert r.returncode == 1, r
    assert "%s:%d" % (conf, line) in r.stderr.decode(), r.stderr


def test_config_check_wrong_type(world):
    conf = world.write_config(timeout="soon")
    line = _line_of(conf, 'timeout = "soon"')
    r = run_gate("-t", "-c", conf)
    assert r.returncode == 1, r
    err = r.stderr.decode()
    assert "%s:%d" % (conf, line) in err and "timeout" in err, err


def test_config_check_missing_file(world):
    path = os.path.join(world.root, "does-not-exist.conf")
    r = run_gate("-t", "-c", path)
    assert r.returncode == 1, r
    assert r.stderr == b"imapgate: %s: cannot read the file\n" % path.encode(), r
    assert r.stdout == b"", r


def test_bad_config_refuses_to_serve(start_gate):
    # With an invalid config imapgate must not greet as if all were well:
    # it closes (possibly after a * BYE) and logs the reason.
    g = start_gate(extra_top="bogus_key = 1;")
    c = helpers.Client(g.port)
    try:
        while c._fill(time.monotonic() + 3):
            pass
    except TimeoutError:
        raise AssertionError("connection not closed; got %r" % c.buf)
    data = c.buf
    assert not data.startswith(b"* OK"), data
    assert data == b"" or data.startswith(b"* BYE"), data
    assert "bogus_key" in g.log(), g.log()


# -- the exec handoff, seen from the exec'd program ------------------------------

FAKE_BACKEND = r'''
import base64, json, os, socket, stat, sys
out = sys.argv[1]
fds = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        pass
env = dict(os.environ)
ci = base64.b64decode(env.get("CLIENT_INPUT", "")) if "CLIENT_INPUT" in env else None
tag = env.get("IMAPLOGINTAG") or (ci[1:ci.index(b"\0")].decode() if ci else "?")
sock = socket.socket(fileno=os.dup(0))
sock.sendall(tag.encode() + b" OK [CAPABILITY IMAP4rev1] Logged in\r\n")
rest = b""
sock.settimeout(3)
seen = ci[ci.index(b"\0") + 1:] if ci else b""
try:
    while not (seen + rest).endswith(b"LOGOUT\r\n"):
        d = sock.recv(65536)
        if not d:
            break
        rest += d
except OSError:
    pass
report = {
    "env": env, "fds": fds, "cwd": os.getcwd(),
    "ids": [os.getresuid(), os.getresgid(), os.getgroups()],
    "fd0_sock": stat.S_ISSOCK(os.fstat(0).st_mode),
    "fd1_sock": stat.S_ISSOCK(os.fstat(1).st_mode),
    "fd2_sock": stat.S_ISSOCK(os.fstat(2).st_mode),
    "client_input": base64.b64encode(ci).decode() if ci is not None else None,
    "stdin": base64.b64encode(rest).decode(),
}
with open(out, "w") as f:
    json.dump(report, f)
sock.sendall(b"* BYE fake\r\nc OK fake done\r\n")
'''

# LC_CTYPE: python's own C-locale coercion (PEP 538) adds it.  The Courier
# set (AUTHENTICATED, TCP*) is allowed when it is correct.
ALLOWED_ENV = {"USER", "HOME", "IP", "LOCAL_IP", "IMAPLOGINTAG", "CLIENT_INPUT",
               "DOVECOT_PRESERVE_ENVS", "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
               "LOGNAME", "SHELL", "AUTHENTICATED", "TCPREMOTEIP", "TCPREMOTEPORT",
               "TCPLOCALIP", "TCPLOCALPORT"}


@pytest.mark.parametrize("login", [b"a LOGIN alice secret\r\n",
                                   b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"])
def test_exec_handoff_environment_fds_and_ids(start_gate, world, mode, login):
    script = os.path.join(world.root, "fake_backend.py")
    with open(script, "w") as f:
        f.write(FAKE_BACKEND)
    os.chmod(script, 0o644)
    outdir = os.path.join(world.root, "out")
    os.mkdir(outdir, 0o755)
    os.chown(outdir, conftest.MAIL_UID, conftest.MAIL_GID)
    outfile = os.path.join(outdir, "report.json")
    g = start_gate(mode=mode, exec=["/usr/bin/python3", "-I", "-S", script, outfile])
    c = g.connect()
    c.send(login + b"b NOOP\r\nc LOGOUT\r\n")
    c.expect(b"a OK [CAPABILITY IMAP4rev1] Logged in")
    c.expect(b"* BYE fake")
    c.expect(b"c OK fake done")
    c.assert_closed()
    with open(outfile) as f:
        rep = json.load(f)
    env = rep["env"]
    assert env.get("USER") == "alice", env
    assert env.get("HOME") == world.homes["alice"], env
    assert env.get("IP") == "127.0.0.1", env
    assert env.get("LOCAL_IP") == "127.0.0.1", env
    assert env.get("IMAPLOGINTAG") == "a", env
    assert "CLIENT_INPUT" in env, env
    preserved = env.get("DOVECOT_PRESERVE_ENVS", "").split()
    for name in ("IMAPLOGINTAG", "CLIENT_INPUT", "IP", "LOCAL_IP"):
        assert name in preserved, env
    courier = {"AUTHENTICATED": "alice", "TCPREMOTEIP": "127.0.0.1",
               "TCPLOCALIP": "127.0.0.1", "TCPLOCALPORT": str(g.port),
               "TCPREMOTEPORT": str(c.sock.getsockname()[1])}
    for k, v in courier.items():
        if k in env:
            assert env[k] == v, (k, env)
    for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        assert k not in env, env
    leaked = set(env) - ALLOWED_ENV
    assert not leaked, "environment not scrubbed: %r" % {k: env[k] for k in leaked}
    # CLIENT_INPUT = '0' tag NUL + what imapgate read past the login line;
    # that plus what was still in the socket is exactly what we sent.
    ci = base64.b64decode(rep["client_input"])
    assert ci.startswith(b"0a\0"), ci
    assert ci[3:] + base64.b64decode(rep["stdin"]) == b"b NOOP\r\nc LOGOUT\r\n", rep
    # ids: the mail user, no root group, supplementary groups of the user only
    assert rep["ids"][0] == [conftest.MAIL_UID] * 3, rep["ids"]
    assert rep["ids"][1] == [conftest.MAIL_GID] * 3, rep["ids"]
    assert set(rep["ids"][2]) <= {conftest.MAIL_GID}, rep["ids"]
    assert rep["cwd"] == world.homes["alice"], rep["cwd"]
    # fds: the socket on 0 and 1, stderr elsewhere, nothing else inherited
    assert rep["fd0_sock"] and rep["fd1_sock"], rep
    assert not rep["fd2_sock"], rep
    extra = {fd: tgt for fd, tgt in rep["fds"].items() if fd not in ("0", "1", "2")}
    # python itself holds one fd open for listing /proc/self/fd
    extra = {fd: tgt for fd, tgt in extra.items() if not tgt.startswith("/proc/")}
    assert not extra, "leaked descriptors into the mail server: %r" % extra


# -- process lifecycle -----------------------------------------------------------

def _no_processes_left(g, timeout=3):
    left = helpers.wait_for(lambda: g.processes() == [] or None, timeout=timeout)
    assert left, "processes left behind: %r" % g.processes()


@pytest.mark.parametrize("partial", [b"", b"a LOGIN alice {5}\r\nsec",
                                     b"a AUTHENTICATE PLAIN\r\n", b"a NOO"])
def test_client_disconnect_preauth_ends_both_processes(gate, partial):
    c = gate.connect()
    c.send(partial)
    _gate_procs(gate)
    time.sleep(0.1)
    c.close()
    _no_processes_left(gate)


def test_client_disconnect_during_failure_delay(start_gate):
    g = start_gate(failure_delay=1.0)
    c = g.connect()
    c.sendline("a LOGIN alice wrong")
    time.sleep(0.2)
    c.close()
    _no_processes_left(g, timeout=3)


def test_idle_timeout_ends_both_processes(start_gate):
    g = start_gate(timeout=1)
    c = g.connect()
    c.expect(b"* BYE Autologout; idle for too long", timeout=4)
    c.assert_closed()
    _no_processes_left(g)


def test_session_killed_monitor_closes_connection(gate):
    c = gate.connect()
    monitor, session, _ = _gate_procs(gate)
    os.kill(session["pid"], 9)
    # No answer may come from a dead session; the monitor must not linger.
    c.assert_closed(timeout=3)
    _no_processes_left(gate)


def test_monitor_killed_session_exits(gate):
    """Without its monitor the session can authenticate nobody: a LOGIN must
    not succeed or hang, and the session must not outlive the connection."""
    c = gate.connect()
    monitor, session, _ = _gate_procs(gate)
    os.kill(monitor["pid"], 9)
    time.sleep(0.2)
    c.send(b"a LOGIN alice secret\r\n", ignore_errors=True)
    try:
        while c._fill(time.monotonic() + 3):
            pass
    except TimeoutError:
        raise AssertionError("connection still open 3 s after the monitor died; got %r"
                             % c.buf) from None
    assert b" OK " not in c.buf, c.buf
    gone = helpers.wait_for(lambda: helpers.proc_status(session["pid"]) is None
                            or helpers.proc_status(session["pid"]).get("State", "").startswith("Z"),
                            timeout=3)
    assert gone, "session survives its monitor: %r" % helpers.proc_info(session["pid"])


def test_concurrent_logins(start_gate, mode):
    g = start_gate(mode=mode)
    errors = []

    def one(i):
        try:
            c = g.connect(timeout=15)
            user = ["alice", "dave", "erin", "gina"][i % 4]
            pw = conftest.USERS[user][0].encode()
            c.send(b"a LOGIN %s {%d+}\r\n%s\r\nb SELECT INBOX\r\nc LOGOUT\r\n"
                   % (user.encode(), len(pw), pw))
            c.expect_re(helpers.logged_in_re("a"))
            lines = c.read_until_tagged("c")
            assert lines[-1].startswith(b"c OK"), lines
            c.close()
        except Exception as e:      # collected and reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


# -- failing closed ----------------------------------------------------------------

def _read_to_close(c, timeout=3):
    try:
        while c._fill(time.monotonic() + timeout):
            pass
    except TimeoutError:
        raise AssertionError("connection still open; got %r" % c.buf) from None
    return c.buf


@pytest.mark.parametrize("what", ["missing-chroot", "writable-chroot", "missing-user"])
def test_unusable_sandbox_refuses_to_serve(start_gate, world, what):
    """The session must never run unsandboxed: no greeting, and the reason
    is logged."""
    if what == "missing-chroot":
        g = start_gate(chroot=os.path.join(world.root, "no-such-dir"))
    elif what == "writable-chroot":
        os.chmod(world.chroot, 0o777)
        g = start_gate()
    else:
        g = start_gate(user="no-such-user-imapgate")
    c = helpers.Client(g.port)
    data = _read_to_close(c)
    assert not data.startswith(b"* OK"), data
    assert data == b"" or data.startswith(b"* BYE"), data
    log = helpers.wait_for(lambda: "imapgate[" in g.log() and g.log(), timeout=2)
    assert log, g.log()


def test_missing_passwd_file_is_unavailable_not_wrong_password(start_gate, world):
    g = start_gate(passwd_file=os.path.join(world.root, "no-such-passwd"))
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect_prefix(b"a NO [UNAVAILABLE]")


def test_missing_mail_server_no_tagged_ok(start_gate, world):
    g = start_gate(exec=[os.path.join(world.root, "no-such-imap")])
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb NOOP\r\n")
    data = _read_to_close(c)
    for ln in data.split(b"\r\n"):
        assert not ln.startswith(b"a OK") and not ln.startswith(b"b OK"), data
    _no_processes_left(g)


@pytest.mark.parametrize("kw", [dict(imap_auth=["bogus"]), dict(timeout=-1),
                                dict(imap_client_buffer=10), dict(max_errors=0),
                                dict(failure_delay=-1.0), dict(exec=[]),
                                dict(greeting="two\r\nlines")])
def test_config_check_rejects_invalid_values(world, kw):
    conf = world.write_config(**kw)
    key = list(kw)[0]
    r = run_gate("-t", "-c", conf)
    assert r.returncode == 1, r
    err = r.stderr.decode()
    assert key in err and ("%s:" % conf) in err, err
