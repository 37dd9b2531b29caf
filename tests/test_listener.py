"""Listener mode: imapgate -L ADDR:PORT, and a listening socket handed over
by systemd (Accept=no, here systemd-socket-activate without -a).  The
configuration is loaded once; each connection is a forked monitor with
its own sandboxed session, as under a super-server."""
import imaplib
import os
import re
import signal
import subprocess

import pytest

import conftest
import helpers
from helpers import GREETING

LISTEN_MODES = ("listen", "accept-no")


@pytest.mark.parametrize("mode", LISTEN_MODES)
def test_listener_exec_sessions(start_gate, mode):
    g = start_gate(mode=mode)
    # Several connections in a row: each gets its own monitor and session.
    for i in range(3):
        with imaplib.IMAP4("127.0.0.1", g.port, timeout=10) as m:
            assert m.welcome == GREETING
            typ, data = m.login("alice", "secret")
            assert typ == "OK" and data[0].endswith(b"Logged in"), data
            msg = b"Subject: n%d\r\n\r\nbody %d\r\n" % (i, i)
            assert m.append("INBOX", None, None, msg)[0] == "OK"
            typ, data = m.select("INBOX")
            assert data == [str(i + 1).encode()], data
            typ, data = m.fetch(str(i + 1), "(BODY.PEEK[])")
            assert data[0][1] == msg
            m.logout()


# LISTEN_SPARES in src/bounds.h: connection processes forked ahead.
SPARES = 2


def spares_only(g):
    """The listener's children are its spares alone, none a zombie."""
    procs = g.processes()
    return (len(procs) == 2 * SPARES and
            not any(p["state"].startswith("Z") for p in procs))


@pytest.mark.parametrize("mode", LISTEN_MODES)
def test_listener_session_sandboxed_and_reaped(start_gate, privsep_user, mode):
    g = start_gate(mode=mode)
    # Before any client: SPARES monitors (root), each with its session
    # already sandboxed, waiting.  (systemd-socket-activate without -a
    # starts imapgate at the first connection only.)
    if mode == "listen":
        assert helpers.wait_for(lambda: spares_only(g), timeout=5), \
            g.processes()
    c = g.connect()
    c.send(b"a NOOP\r\n")
    c.expect(b"a OK NOOP completed")
    def sessions_now():
        return [p for p in g.processes()
                if p["uids"][0] == privsep_user.pw_uid]

    # Ours and the spares (a new one replaces the spare that took us).
    assert helpers.wait_for(lambda: len(sessions_now()) == SPARES + 1,
                            timeout=5), g.processes()
    procs = g.processes()
    sessions = sessions_now()
    for s in sessions:
        assert s["root"] == g.world.chroot, s
        assert s["nonewprivs"] == "1", s
        monitor = [p for p in procs if p["pid"] == s["ppid"]]
        assert monitor and monitor[0]["uids"][0] == 0, procs
    before = {s["pid"] for s in sessions}
    c.send(b"b LOGOUT\r\n")
    c.expect(b"* BYE Logging out")
    c.expect(b"b OK LOGOUT completed")
    c.assert_closed()
    # The listener reaps the connection's processes, zombies included:
    # the spares alone remain, and our session is gone.
    assert helpers.wait_for(lambda: spares_only(g), timeout=5), \
        g.processes()
    after = {p["pid"] for p in g.processes()
             if p["uids"][0] == privsep_user.pw_uid}
    assert len(before - after) == 1, (before, after)
    assert g.proc.poll() is None


@pytest.mark.parametrize("mode", LISTEN_MODES)
def test_listener_fresh_pair_per_client(start_gate, mode):
    """Clients in a row each get a session of their own (a spare is used
    once), and the listener is back to its spares afterwards."""
    g = start_gate(mode=mode)
    seen = set()
    for i in range(4):
        c = g.connect()
        c.send(b"a NOOP\r\n")
        c.expect(b"a OK NOOP completed")
        c.send(b"b LOGOUT\r\n")
        c.expect(b"* BYE Logging out")
        c.expect(b"b OK LOGOUT completed")
        c.assert_closed()
    assert helpers.wait_for(lambda: spares_only(g), timeout=5), \
        g.processes()
    # Each connection had its own session process.
    pids = re.findall(r"imapgate\[(\d+)\]: session closed", g.log())
    seen.update(pids)
    assert len(seen) == 4, g.log()


@pytest.mark.parametrize("mode", LISTEN_MODES)
def test_listener_pipelined_after_login(start_gate, mode):
    g = start_gate(mode=mode)
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    c.expect_re(rb"^a OK \[CAPABILITY [^\]]+\] Logged in$")
    assert re.match(rb"^b OK \[READ-WRITE\] Select completed",
                    c.read_until_tagged(b"b")[-1])
    assert c.read_until_tagged(b"c")[-1].startswith(b"c OK Logout completed")


def test_listener_connect_mode(start_proxy):
    g = start_proxy(mode="listen", passwd_file=None)
    for _ in range(2):
        with imaplib.IMAP4("127.0.0.1", g.port, timeout=10) as m:
            typ, data = m.login("alice", "secret")
            assert typ == "OK" and b"[CAPABILITY " in data[0], data
            assert m.select("INBOX")[0] == "OK"
            m.logout()
    assert helpers.wait_for(lambda: g.log().count("session: user=\"alice\"")
                            == 2, timeout=5), g.log()


def test_listener_refuses_bad_address(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text('auth: { passwd_file = "/p"; };\n'
                    'backend: { exec = ["/bin/true"]; };\n')
    r = subprocess.run([conftest.GATE_BIN, "-c", str(conf), "-L", "nowhere"],
                       capture_output=True, timeout=10)
    assert r.returncode == 111
    assert b"-L nowhere: not address:port" in r.stderr


@pytest.mark.parametrize("mode", LISTEN_MODES)
def test_listener_spare_with_dead_session_takes_no_client(start_gate, privsep_user, mode):
    """A spare whose pre-forked session died (killed, OOM) replaces itself
    without waiting for a client: a whole new spare takes its place, and
    the next clients get the normal greeting, not `* BYE [UNAVAILABLE]
    Server misconfigured` (issue 9 item 6)."""
    g = start_gate(mode=mode)
    if mode == "accept-no":     # systemd-socket-activate starts it on a first connect
        c = g.connect()
        c.send(b"a LOGOUT\r\n")
        c.expect(b"* BYE Logging out")
        c.expect(b"a OK LOGOUT completed")
        c.assert_closed()

    def sessions():
        return {p["pid"] for p in g.processes()
                if p["uids"][0] == privsep_user.pw_uid and not p["state"].startswith("Z")}

    for _ in range(2):
        assert helpers.wait_for(lambda: spares_only(g) and len(sessions()) == SPARES,
                                timeout=5), g.processes()
        # Every spare's session: whichever spare the kernel picks, it is
        # one whose session is gone.
        killed = sessions()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        # Replaced before any client comes (in at most LISTEN_RESPAWN_MS).
        assert helpers.wait_for(lambda: spares_only(g) and len(sessions()) == SPARES
                                and not sessions() & killed, timeout=3), g.processes()
        for _ in range(SPARES + 1):
            c = g.connect(timeout=5)
            c.send(b"a NOOP\r\n")
            c.expect(b"a OK NOOP completed")
            c.close()
    assert "Server misconfigured" not in g.log(), g.log()
    assert g.proc.poll() is None
