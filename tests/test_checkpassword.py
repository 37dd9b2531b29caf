"""auth.checkpassword: DJB's interface (REFERENCE.md section 8).  imapgate
runs argv + ["/bin/true"] with "user\\0password\\0timestamp\\0" on fd 3;
exit 0 is a good password, 1 a bad one, 2, 111, anything else and a
timeout a temporary failure.

Connect mode in front of the session's Dovecot: the verdict is the
script's, then imapgate logs in to Dovecot with the same credentials.
Each script records what it read on fd 3 and its arguments, and prints
marker text on stdout and stderr that must never reach the client."""

import os
import re
import time

import pytest

import conftest
import helpers
from helpers import AUTH_FAILED
from test_connect import dovecot_login_re, expect_logged_in

TEMPFAIL = b" NO [UNAVAILABLE] Temporary authentication failure."


def _checkpw_timeout():
    """imapgate's fixed deadline for the program (s), from src/bounds.h."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "src", "bounds.h")
    try:
        with open(path) as f:
            m = re.search(r"^#define\s+CHECKPW_TIMEOUT\s+(\d+)", f.read(), re.M)
        return int(m.group(1)) if m else 10
    except OSError:
        return 10


CHECKPW_TIMEOUT = _checkpw_timeout()

SCRIPT = """\
#!/bin/sh
# checkpassword stand-in: record fd 3 and the arguments, talk, then the verdict
cat <&3 > {d}/fd3-{name}
for a in "$@"; do printf '%s\\n' "$a"; done > {d}/argv-{name}
echo "CPW-STDOUT-{name}"
echo "CPW-STDERR-{name}" >&2
{tail}
"""

# A checkpassword that really checks: the Dovecot users' passwords.
CHECKER = """\
#!/usr/bin/python3
import os, sys
USERS = {users!r}
data = os.read(3, 600)
with open({log!r}, "ab") as f:
    f.write(data + b"\\n")
parts = data.split(b"\\0")
if len(parts) != 4 or parts[3] != b"":
    sys.exit(2)
user, pw = parts[0].decode(), parts[1].decode()
print("CPW-STDOUT-checker")
sys.stderr.write("CPW-STDERR-checker\\n")
if USERS.get(user) != pw:
    sys.exit(1)
os.execv(sys.argv[-1], sys.argv[-1:])
"""


def make_script(world, name, tail):
    path = os.path.join(world.root, "cpw-%s.sh" % name)
    with open(path, "w") as f:
        f.write(SCRIPT.format(d=world.root, name=name, tail=tail))
    os.chmod(path, 0o755)
    return path


def read(world, what, name):
    with open(os.path.join(world.root, "%s-%s" % (what, name)), "rb") as f:
        return f.read()


# Every activation mode the suite uses: the super-servers' and -L (where
# a spare's free descriptors differ: fd 3 is free once it has accepted).
CPW_MODES = conftest.MODES + ("listen",)


@pytest.fixture(params=CPW_MODES)
def cpw_mode(request):
    return request.param


def start_cpw(start_proxy, argv, mode):
    return start_proxy(mode=mode, passwd_file=None, checkpassword=argv)


def all_received(c):
    return b"\r\n".join(c.lines) + c.buf


def assert_fd3(data, user, pw):
    """user NUL password NUL timestamp NUL, nothing else."""
    assert data.count(b"\0") == 3 and data.endswith(b"\0"), data
    u, p, ts, rest = data.split(b"\0")
    assert (u, p, rest) == (user, pw, b""), data
    assert ts and b"\n" not in ts, data


def assert_no_markers(c):
    got = all_received(c)
    assert b"CPW-" not in got, got


# -- the exit codes --------------------------------------------------------------

def test_exit_0_login_ok(start_proxy, cpw_mode, dovecot, world):
    cpw = make_script(world, "ok", "exit 0")
    g = start_cpw(start_proxy, [cpw, "arg1"], cpw_mode)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert_fd3(read(world, "fd3", "ok"), b"alice", b"secret")
    assert read(world, "argv", "ok") == b"arg1\n/bin/true\n"
    c.sendline("b LOGOUT")
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK"), lines
    c.assert_closed()
    assert_no_markers(c)
    assert dovecot.wait_log(dovecot_login_re("alice"), dovecot.log_mark)


def test_exit_0_runs_the_next_program(start_proxy, cpw_mode, dovecot, world):
    """A script that execs its last argument, as checkpassword does: the
    /bin/true imapgate appends exits 0."""
    cpw = make_script(world, "exec", 'for last in "$@"; do :; done\nexec "$last"')
    g = start_cpw(start_proxy, [cpw], cpw_mode)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    assert read(world, "argv", "exec") == b"/bin/true\n"


def test_exit_1_authentication_failed(start_proxy, cpw_mode, dovecot, world):
    cpw = make_script(world, "no", "exit 1")
    g = start_cpw(start_proxy, [cpw], cpw_mode)
    c = g.connect()
    t0 = time.monotonic()
    c.send(b'a LOGIN alice "p a%ss"\r\n')
    c.expect(b"a" + AUTH_FAILED)
    assert time.monotonic() - t0 >= 0.18
    assert_fd3(read(world, "fd3", "no"), b"alice", b"p a%ss")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    assert_no_markers(c)
    assert not dovecot.wait_log(r"Login: user=<alice>", dovecot.log_mark, timeout=0.3)


@pytest.mark.parametrize("tail", ["exit 2", "exit 111", "exit 3", "kill -9 $$"])
def test_other_exits_are_tempfail(start_proxy, cpw_mode, dovecot, world, tail):
    cpw = make_script(world, "temp", tail)
    g = start_cpw(start_proxy, [cpw], cpw_mode)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + TEMPFAIL)
    assert_fd3(read(world, "fd3", "temp"), b"alice", b"secret")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    assert_no_markers(c)
    assert not dovecot.wait_log(r"Login: user=<alice>", dovecot.log_mark, timeout=0.3)


def test_timeout_is_tempfail_and_program_killed(start_proxy, cpw_mode, dovecot, world):
    pidfile = os.path.join(world.root, "sleeper.pid")
    cpw = make_script(world, "slow", "echo $$ > %s\nexec sleep 60" % pidfile)
    g = start_cpw(start_proxy, [cpw], cpw_mode)
    c = g.connect()
    t0 = time.monotonic()
    c.sendline("a LOGIN alice secret")
    c.expect(b"a" + TEMPFAIL, timeout=CHECKPW_TIMEOUT + 5)
    took = time.monotonic() - t0
    assert CHECKPW_TIMEOUT - 0.5 <= took <= CHECKPW_TIMEOUT + 3, took
    pid = int(open(pidfile).read())
    assert helpers.wait_for(lambda: helpers.proc_status(pid) is None
                            or helpers.proc_status(pid).get("State", "").startswith("Z"),
                            timeout=2), "checkpassword program still running"
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")


# -- a real checker ------------------------------------------------------------------

def test_checker_accepts_real_password_only(start_proxy, cpw_mode, dovecot, world):
    log = os.path.join(world.root, "checker.log")
    path = os.path.join(world.root, "checker.py")
    with open(path, "w") as f:
        f.write(CHECKER.format(users=dict(dovecot.passwords), log=log))
    os.chmod(path, 0o755)
    g = start_cpw(start_proxy, [path], cpw_mode)
    c = g.connect()
    c.sendline("a LOGIN alice wrong")
    c.expect(b"a" + AUTH_FAILED)
    pw = conftest.USERS["bob"][0].encode()
    c.send(b"b LOGIN bob {%d+}\r\n%s\r\n" % (len(pw), pw))
    expect_logged_in(c, "b")
    assert_no_markers(c)
    with open(log, "rb") as f:
        got = f.read()
    assert got.startswith(b"alice\0wrong\0") and (b"\nbob\0" + pw + b"\0") in got, got
    assert dovecot.wait_log(dovecot_login_re("bob"), dovecot.log_mark)


# -- stdout and stderr stay off the client socket ---------------------------------

class StderrIsSocketGate(conftest.Gate):
    """inetd style with fd 2 the client socket too (as inetd and xinetd
    without a log redirection do)."""

    def command(self):
        return [conftest.SSA, "-a", "--inetd", "-l", "127.0.0.1:%d" % self.port,
                "/bin/sh", "-c", 'exec "$0" "$@" 2>&1', conftest.GATE_BIN, "-c", self.conf_path]


@pytest.mark.parametrize("code", ["0", "1", "111"])
def test_output_never_reaches_client_when_fd2_is_the_socket(world, dovecot, start_gate, request,
                                                             code):
    # start_gate: its list of gates (stopped after the test) is used below
    cpw = make_script(world, "talk", "exit %s" % code)
    conf = world.write_config("cpw-fd2.conf", exec=None, connect=[dovecot.addr()],
                              passwd_file=None, checkpassword=[cpw])
    g = StderrIsSocketGate(world, "inetd", conf, os.path.join(world.root, "cpw-fd2.log"))
    request.node._imapgate_gates.append(g)
    g.start()
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    lines = c.read_until_tagged("a")
    want = {"0": helpers.logged_in_re("a"), "1": b"^" + re.escape(b"a" + AUTH_FAILED) + b"$",
            "111": b"^" + re.escape(b"a" + TEMPFAIL) + b"$"}[code]
    assert re.match(want, lines[-1]), lines
    # LOGOUT is answered (by Dovecot after a login, by imapgate before):
    # everything the connection carried is in c.lines for the check below.
    c.sendline("b LOGOUT")
    lines = c.read_until_tagged("b", timeout=3)
    assert lines[0] == b"* BYE Logging out", lines
    assert lines[-1].lower().startswith(b"b ok logout completed"), lines
    c.assert_closed()
    c.close()
    assert b"CPW-" not in all_received(c), all_received(c)
    assert read(world, "fd3", "talk").startswith(b"alice\0secret\0")
