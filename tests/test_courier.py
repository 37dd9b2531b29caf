"""Courier's imapd behind imapgate, exec'd as the user (issue 13).

Debian's courier-imap conflicts with dovecot-imapd, so tests/install-deps
unpacks it into tests/pkgs/ (its dependencies courier-base and
courier-authlib are installed with apt).  Nothing of Courier runs as a
daemon: imapgate execs `imapd Maildir` in the user's home, with the
environment Courier's imaplogin would give it.

Courier reads no CLIENT_INPUT: commands a client pipelines after its
login, which the session already read, reach it only through the relay
(backend.client_input, default auto).  When nothing is pending the exec
stays plain: imapd alone, no imapgate process left (checked on the
process tree).
"""

import imaplib
import os
import re
import shutil
import subprocess
import time

import pytest

import conftest
import helpers
from helpers import b64
from test_tls import starttls

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURIER_IMAPD = os.path.join(TOP, "tests", "pkgs", "courier-imap", "usr", "bin", "imapd")
MAILDIRMAKE = "/usr/bin/maildirmake"

# Courier's answer to the login's tag (IMAPLOGINTAG) and its SELECT.
LOGGED_IN = b" OK LOGIN Ok."
# Courier logs this on stderr, which is imapgate's log: AUTHENTICATED is
# the user, TCPREMOTEIP the ip, TCPREMOTEPORT the port.
LOGIN_LOG = r"INFO: LOGIN, user=%s, ip=\[%s\], port=\[%d\], protocol=IMAP"


def courier_world(world):
    """Maildirs for the world's users; returns the path of Courier's imapd
    to exec: a copy in the world's directory, which the mail user can reach
    wherever the checkout is (a private temp copy of it, say)."""
    conftest.require_tool(COURIER_IMAPD)
    conftest.require_tool(MAILDIRMAKE)
    for u, home in world.homes.items():
        md = os.path.join(home, "Maildir")
        if not os.path.isdir(md):
            subprocess.run(["setpriv", "--reuid=%d" % conftest.MAIL_UID,
                            "--regid=%d" % conftest.MAIL_GID, "--clear-groups",
                            MAILDIRMAKE, md], check=True)
    imapd = os.path.join(world.root, "courier", "imapd")
    if not os.path.exists(imapd):
        os.makedirs(os.path.dirname(imapd), 0o755, exist_ok=True)
        shutil.copy2(COURIER_IMAPD, imapd)
        os.chmod(imapd, 0o755)
    return imapd


def client_input(value):
    """extra_sections for backend.client_input (the key this file tests)."""
    return {"backend": ['client_input = "%s";' % value]}


@pytest.fixture
def courier(world, start_gate):
    """start_gate for Courier's imapd: courier(**overrides) -> Gate."""
    imapd = courier_world(world)

    def start(mode="inetd", **overrides):
        return start_gate(mode=mode, exec=[imapd, "Maildir"], **overrides)
    return start


def put_message(world, user, subject, body="Hello from the test.\n"):
    """A message delivered straight into the user's Maildir/new."""
    md = world.maildir(user)
    name = "%d.%s.test" % (time.time_ns(), os.urandom(4).hex())
    data = ("From: t@example.org\nTo: %s@example.org\nSubject: %s\n\n%s"
            % (user, subject, body)).encode()
    path = os.path.join(md, "new", name)
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, conftest.MAIL_UID, conftest.MAIL_GID)
    return data


def served_by(g):
    """(names of imapgate processes, names of mail server processes) among
    the super-server's descendants, once the login is handed over."""
    procs = g.processes()
    return ([p for p in procs if p["name"] == "imapgate"],
            [p for p in procs if p["name"] in ("imapd", "imap")])


def wait_handed_over(g, server="imapd"):
    """Wait until the mail server runs; return (imapgate procs, server procs)."""
    helpers.wait_for(lambda: any(p["name"] == server for p in g.processes()), timeout=5)
    time.sleep(0.1)     # a relay would already be there: it forks the server
    return served_by(g)


def expect_select(c, tag="b"):
    lines = c.read_until_tagged(tag)
    assert lines[-1] == tag.encode() + b" OK [READ-WRITE] Ok", lines
    exists = [ln for ln in lines if ln.endswith(b" EXISTS")]
    assert exists, lines
    return int(exists[0].split()[1])


def expect_logout(c, tag="c"):
    lines = c.read_until_tagged(tag)
    assert lines == [b"* BYE Courier-IMAP server shutting down",
                     tag.encode() + b" OK LOGOUT completed"], lines
    c.assert_closed()


# -- the login and what Courier was told ------------------------------------

def test_courier_login_plain_exec(courier, world):
    """A client that waits for the tagged OK: Courier answers the login's
    tag itself, and the exec is plain (no imapgate process left)."""
    put_message(world, "alice", "one")
    g = courier()
    c = g.connect()
    c.sendline("a1 LOGIN alice secret")
    c.expect(b"a1" + LOGGED_IN)
    gates, servers = wait_handed_over(g)
    assert [p["name"] for p in servers] == ["imapd"], servers
    assert gates == [], "a relay process where none is needed: %r" % gates
    assert servers[0]["uids"] == [conftest.MAIL_UID] * 4
    c.sendline("b SELECT INBOX")
    assert expect_select(c) == 1
    c.sendline("c LOGOUT")
    expect_logout(c)


def test_courier_environment_from_its_log(courier):
    """AUTHENTICATED, TCPREMOTEIP and TCPREMOTEPORT as Courier itself logs
    them; IMAPLOGINTAG is the tag it answers."""
    g = courier()
    c = g.connect()
    port = c.sock.getsockname()[1]
    c.sendline("Tag.7 LOGIN bob {%d+}" % len(conftest.USERS["bob"][0]))
    c.send(conftest.USERS["bob"][0].encode() + b"\r\n")
    c.expect(b"Tag.7" + LOGGED_IN)
    c.sendline("z LOGOUT")
    expect_logout(c, "z")
    pat = LOGIN_LOG % ("bob", re.escape("127.0.0.1"), port)
    assert helpers.wait_for(lambda: re.search(pat, g.log()), timeout=5), g.log()


@pytest.mark.parametrize("how", ["login", "authenticate-plain-ir"])
def test_courier_commands_pipelined_after_login(courier, world, mode, how):
    """The login and the next commands in one write: Courier answers them
    all (the session's read-ahead is relayed to it first)."""
    put_message(world, "alice", "pipelined")
    g = courier(mode=mode)
    c = g.connect()
    if how == "login":
        first = b"a LOGIN alice secret\r\n"
    else:
        first = b"a AUTHENTICATE PLAIN " + b64("\0alice\0secret") + b"\r\n"
    c.send(first + b"b SELECT INBOX\r\nc LOGOUT\r\n")
    c.expect(b"a" + LOGGED_IN)
    assert expect_select(c) == 1
    expect_logout(c)
    c.close()
    # The relay ran, logged its end with what it carried.
    assert helpers.wait_for(
        lambda: re.search(r'session: user="alice" .*backend=exec in=\d+ out=\d+ '
                          r'.*end=closed relay=yes', g.log()), timeout=5), g.log()


def test_courier_many_commands_pipelined_after_login(courier):
    """More bytes after the login than the session's buffer holds: what it
    read and what it left in the socket both reach Courier, in order."""
    g = courier(imap_client_buffer=16384)
    c = g.connect()
    n = 3000
    c.send(b"a LOGIN alice secret\r\n" +
           b"".join(b"n%d NOOP\r\n" % i for i in range(n)) + b"z LOGOUT\r\n")
    c.expect(b"a" + LOGGED_IN)
    for i in range(n):
        c.expect(b"n%d OK NOOP completed" % i)
    expect_logout(c, "z")


def test_courier_relay_process_tree(courier):
    """With bytes pending the relay is an unprivileged imapgate process,
    sandboxed (chroot, no new privileges), the parent of imapd."""
    g = courier()
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb NOOP\r\n")
    c.expect(b"a" + LOGGED_IN)
    c.expect(b"b OK NOOP completed")
    gates, servers = wait_handed_over(g)
    assert len(gates) == 1 and len(servers) == 1, (gates, servers)
    relay, imapd = gates[0], servers[0]
    assert imapd["ppid"] == relay["pid"]
    assert imapd["uids"] == [conftest.MAIL_UID] * 4
    assert relay["uids"][0] != 0 and relay["uids"][1] != 0, relay
    assert relay["root"] == g.world.chroot, relay
    assert relay["nonewprivs"] == "1", relay
    c.sendline("c LOGOUT")
    expect_logout(c)
    c.close()
    assert helpers.wait_for(lambda: served_by(g) == ([], []), timeout=5), g.processes()


def test_courier_pipelined_over_starttls(courier, certs):
    """STARTTLS, then the login and commands in one TLS write: exec over
    TLS (the session relays), every command answered."""
    g = courier(**conftest.tls_settings(certs, starttls="on"))
    c = g.connect()
    starttls(c, certs, tag="s")
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    c.expect(b"a" + LOGGED_IN)
    assert expect_select(c) == 0
    expect_logout(c)


def test_courier_env_mode_is_the_operators_choice(courier):
    """backend.client_input = "env": no relay even with bytes pending
    (for servers that read CLIENT_INPUT); Courier then never sees them."""
    g = courier(extra_sections=client_input("env"))
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb NOOP\r\n")
    c.expect(b"a" + LOGGED_IN)
    gates, servers = wait_handed_over(g)
    assert gates == [] and len(servers) == 1, (gates, servers)
    c.assert_silent(0.5)


# -- real clients --------------------------------------------------------------

def test_courier_imaplib(courier, world):
    data = put_message(world, "alice", "for imaplib")
    g = courier()
    with imaplib.IMAP4("127.0.0.1", g.port, timeout=10) as m:
        typ, _ = m.login("alice", "secret")
        assert typ == "OK"
        typ, d = m.select("INBOX")
        assert (typ, d) == ("OK", [b"1"])
        typ, d = m.fetch("1", "(RFC822)")
        assert typ == "OK"
        assert d[0][1].replace(b"\r\n", b"\n") == data
        typ, _ = m.append("INBOX", None, None, b"Subject: appended\r\n\r\nbody\r\n")
        assert typ == "OK"
        m.logout()
    assert len(os.listdir(os.path.join(world.maildir("alice"), "cur"))) + \
        len(os.listdir(os.path.join(world.maildir("alice"), "new"))) == 2


def test_courier_curl(courier, world):
    data = put_message(world, "alice", "for curl")
    g = courier()
    r = subprocess.run(["curl", "-sS", "--max-time", "20",
                        "--url", "imap://127.0.0.1:%d/INBOX;UID=1" % g.port,
                        "-u", "alice:secret"], capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stderr, g.log())
    assert r.stdout.replace(b"\r\n", b"\n") == data


def test_courier_mbsync(courier, world, tmp_path):
    if not shutil.which("mbsync"):
        pytest.fail("mbsync missing")
    msgs = [put_message(world, "alice", "sync %d" % i) for i in range(3)]
    g = courier()
    mb = helpers.Mbsync(tmp_path, g.port, "alice", "secret")
    mb.sync(g.log())
    assert mb.messages() == sorted(msgs)


# -- Dovecot: auto means CLIENT_INPUT, no relay ----------------------------------

def test_dovecot_auto_takes_env_no_relay(start_gate):
    """Dovecot's imap reads CLIENT_INPUT: with bytes pending, auto still
    execs it plainly (no relay process) and it answers them."""
    g = start_gate()
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\n")
    c.expect_re(helpers.logged_in_re("a"))
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK [READ-WRITE]"), lines
    gates, servers = wait_handed_over(g, "imap")
    assert gates == [] and [p["name"] for p in servers] == ["imap"], (gates, servers)


def test_dovecot_relay_when_asked(start_gate):
    """client_input = "relay": Dovecot too gets the pending bytes through
    the relay, and answers them."""
    g = start_gate(extra_sections=client_input("relay"))
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\n")
    c.expect_re(helpers.logged_in_re("a"))
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK [READ-WRITE]"), lines
    gates, servers = wait_handed_over(g, "imap")
    assert len(gates) == 1 and servers[0]["ppid"] == gates[0]["pid"], (gates, servers)


def test_client_input_values(world):
    for v in ("auto", "env", "relay"):
        conf = world.write_config(extra_sections=client_input(v))
        r = subprocess.run([conftest.GATE_BIN, "-t", "-c", conf], capture_output=True, text=True)
        assert r.returncode == 0, (v, r.stderr)
    conf = world.write_config(extra_sections=client_input("stdin"))
    r = subprocess.run([conftest.GATE_BIN, "-t", "-c", conf], capture_output=True, text=True)
    assert r.returncode != 0
    assert "client_input" in r.stderr and "not one of the allowed values" in r.stderr, r.stderr
