"""One socket unit with both ports (issue 11 item 3): systemd Accept=no
with ListenStream=143 and ListenStream=993 passes two listening sockets to
one imapgate, which becomes a supervisor of one listener per socket, each
serving its port's listen group.  Real clients under
`systemd-socket-activate -l A -l B` (no -a), as systemd would start
imapgate-listener.service: a greeting on both ports (implicit TLS on the
second), a reload (SIGHUP to the supervisor) reaching both, a stop
(SIGTERM) stopping both while a logged-in session runs on, one
listener's death stopping the other, and each session holding only its
client (not the other port's listening socket)."""
import os
import re
import signal
import socket
import ssl

import pytest

import conftest
import helpers
from conftest import tls_settings
from test_evil import (evil, extra_listener, listening_inodes, proc_fds,
                       session_holds_only_its_client)


class TwoSockets(conftest.Gate):
    """systemd-socket-activate with two listening sockets (Accept=no),
    or (mode "listen") imapgate -L twice: self.port plain, self.port2
    the listen group with ssl = true."""

    port2 = None

    def command(self):
        if self.mode == "listen":           # -L twice, no super-server
            return [conftest.GATE_BIN, "-c", self.conf_path, "-L", "127.0.0.1:%d" % self.port,
                    "-L", "127.0.0.1:%d" % self.port2]
        ssa_env = [a for k, v in sorted(self.env.items()) for a in ("-E", "%s=%s" % (k, v))]
        return [conftest.SSA, "-l", "127.0.0.1:%d" % self.port,
                "-l", "127.0.0.1:%d" % self.port2] + ssa_env + \
            [conftest.GATE_BIN, "-c", self.conf_path]

    def connect2(self, greeting=True):
        """An implicit-TLS client of the second port."""
        c = helpers.Client(self.port2)
        c.start_tls(helpers.tls_context(self.world.certs.ca),
                    server_hostname="imap.example.test")
        if greeting:
            c.greeting = c.expect_prefix("* OK ")
        return c

    def listeners(self):
        """The supervisor's children: one listener per socket."""
        return [p["pid"] for p in self.processes() if p["ppid"] == self.proc.pid]


def settings(world, port2, greeting):
    return tls_settings(world.certs, greeting=greeting,
                        listen=[{"port": port2, "ssl": True}])


@pytest.fixture
def two_sockets(world, certs, request):
    gates = []
    request.node._imapgate_gates = gates

    def start(greeting="both ports", evil=False, pass_fds=(), mode="accept-no"):
        n = len(gates) + 1
        for _ in range(3):          # a port race is retried, as Gate.start does
            p1, p2 = conftest.free_port(), conftest.free_port()
            if p1 != p2:
                break
        conf = world.write_config("two-%d.conf" % n, **settings(world, p2, greeting))
        env = conftest.evil_env() if evil else None
        g = TwoSockets(world, mode, conf, os.path.join(world.root, "two-%d.log" % n),
                       env=env)
        g.port2 = p2
        g.pass_fds = tuple(pass_fds)
        gates.append(g)
        g.start(port=p1)
        # systemd-socket-activate without -a starts imapgate at the first
        # connection, as systemd does: that client is served too.
        first = g.connect()
        first.close()
        assert helpers.wait_for(lambda: len(g.listeners()) == 2 and
                                g.log().count("listening on port") == 2,
                                timeout=10), g.log()
        return g

    yield start
    for g in gates:
        g.stop()
    for g in gates:
        for marker in conftest.SANITIZER_MARKERS:
            assert marker not in g.log(), g.log()


def login(c, tag="a"):
    c.send(b"%s LOGIN alice secret\r\n" % tag.encode())
    c.expect_re(helpers.logged_in_re(tag))
    c.send(b"s SELECT INBOX\r\n")
    assert c.read_until_tagged(b"s")[-1].startswith(b"s OK")


def still_works(c, tag):
    c.send(b"%s SELECT INBOX\r\n" % tag.encode())
    assert c.read_until_tagged(tag.encode())[-1].startswith(tag.encode() + b" OK")


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    return False


def test_both_ports_served(two_sockets):
    """Plain IMAP on the first socket, implicit TLS on the second (its
    listen group), from one imapgate started with two sockets; a login on
    each."""
    g = two_sockets()
    c = g.connect()
    assert c.greeting.endswith(b"] both ports"), c.greeting
    login(c)
    t = g.connect2()
    assert t.greeting.endswith(b"] both ports"), t.greeting
    login(t)
    # A TLS client on the plain port gets no handshake, a plain one on the
    # TLS port no greeting: each listener has its own port's group.
    p = helpers.Client(g.port2)
    with pytest.raises(AssertionError):
        p.expect_prefix("* OK ", timeout=1)
    p.close()
    bad = helpers.Client(g.port)
    with pytest.raises((ssl.SSLError, OSError)):
        bad.start_tls(helpers.tls_context(g.world.certs.ca),
                      server_hostname="imap.example.test")
    bad.close()
    for x in (c, t):
        x.send(b"z LOGOUT\r\n")
        x.expect_prefix(b"* BYE")
        x.close()
    text = g.log()
    assert "supervising 2 listeners" in text, text
    assert "listening on port %d" % g.port in text and \
        "listening on port %d" % g.port2 in text, text


def test_sighup_reaches_both(two_sockets, world):
    """`systemctl reload` signals the supervisor (the unit's main
    process): both listeners reload, new clients on both ports see the
    new greeting, a client logged in before keeps its session."""
    g = two_sockets(greeting="first")
    old = g.connect2()
    login(old)
    world.write_config(os.path.basename(g.conf_path), **settings(world, g.port2, "second"))
    os.kill(g.proc.pid, signal.SIGHUP)
    assert helpers.wait_for(lambda: g.log().count("reloaded ") == 2, timeout=10), g.log()
    for _ in range(3):          # more than the spares of each listener
        c = g.connect()
        assert c.greeting.endswith(b"] second"), c.greeting
        c.close()
        t = g.connect2()
        assert t.greeting.endswith(b"] second"), t.greeting
        t.close()
    still_works(old, "b")
    old.send(b"z LOGOUT\r\n")
    old.expect_prefix(b"* BYE")
    old.close()
    assert len(g.listeners()) == 2 and g.proc.poll() is None, g.log()


def test_sigterm_stops_both(two_sockets):
    """`systemctl stop` (SIGTERM to the supervisor alone, KillMode=process):
    both ports refuse, the clients not logged in get BYE on both, the
    supervisor exits 0, a logged-in session runs on to its end."""
    g = two_sockets()
    logged = g.connect()
    login(logged)
    pre1, pre2 = g.connect(), g.connect2()
    os.kill(g.proc.pid, signal.SIGTERM)
    pre1.expect(b"* BYE Server shutting down", timeout=10)
    pre2.expect(b"* BYE Server shutting down", timeout=10)
    assert g.proc.wait(timeout=10) == 0, g.log()
    assert refused(g.port) and refused(g.port2)
    still_works(logged, "b")
    logged.send(b"z LOGOUT\r\n")
    logged.expect_prefix(b"* BYE")
    logged.close()
    assert "every listener has ended (status 0)" in g.log(), g.log()


def test_one_listener_dies_the_other_stops(two_sockets):
    """A listener that ends without a stop asked for: logged, the other
    one stopped (its port refuses), the supervisor exits with a failure,
    which is Restart=on-failure's cue for the whole unit."""
    g = two_sockets()
    first, second = sorted(g.listeners())
    os.kill(first, signal.SIGKILL)
    status = g.proc.wait(timeout=10)
    assert status == 128 + signal.SIGKILL, (status, g.log())
    assert re.search(r"error: the listener on port \d+ ended \(status 137\) with no stop "
                     r"asked for: stopping the others", g.log()), g.log()
    assert refused(g.port) and refused(g.port2)
    assert helpers.wait_for(lambda: helpers.proc_info(second) is None, timeout=5)


@pytest.mark.parametrize("mode", ["accept-no", "listen"])
def test_session_holds_only_its_client_two_sockets(two_sockets, mode):
    """The session-holds-only-its-client rule with two sockets, from
    systemd or -L twice (and a leaked listening socket on fd 77): no
    listening socket in the session of either port -- neither its own
    port's nor the other's."""
    leak, leakfd = extra_listener()
    try:
        g = two_sockets(evil=True, pass_fds=(leakfd,), mode=mode)
        c = g.connect()
        session_holds_only_its_client(c)
        # Clients waiting on both ports: the session can take neither.
        waiting = [helpers.Client(g.port), helpers.Client(g.port2)]
        ok, acc = evil(c, "ACCEPT")
        assert ok and acc == "none", acc
        for w in waiting:
            w.close()
        # Nor does a listener hold the other port's socket.
        listening = listening_inodes()
        for pid in g.listeners():
            socks = [link for link in proc_fds(pid).values()
                     if link.startswith("socket:[") and link[8:-1] in listening]
            assert len(socks) == 1, (pid, proc_fds(pid))
        c.sendline("a LOGIN alice secret")
        c.expect_prefix("a OK")
        c.sendline("b LOGOUT")
        c.expect("* BYE Logging out")
    finally:
        os.close(leakfd)
        leak.close()



def test_several_L_options(two_sockets):
    """`-L A -L B` without a super-server: the same supervisor, one
    listener per address, each with its port's listen group (plain on the
    first, implicit TLS on the second); SIGHUP and SIGTERM to the process
    started reach both."""
    g = two_sockets(greeting="first", mode="listen")
    assert g.connect().greeting.endswith(b"] first")
    assert g.connect2().greeting.endswith(b"] first")
    g.world.write_config(os.path.basename(g.conf_path), **settings(g.world, g.port2, "second"))
    os.kill(g.proc.pid, signal.SIGHUP)
    assert helpers.wait_for(lambda: g.log().count("reloaded ") == 2, timeout=10), g.log()
    for _ in range(3):
        assert g.connect().greeting.endswith(b"] second")
        assert g.connect2().greeting.endswith(b"] second")
    os.kill(g.proc.pid, signal.SIGTERM)
    assert g.proc.wait(timeout=10) == 0, g.log()
    assert refused(g.port) and refused(g.port2)


def test_supervisor_reads_no_configuration(two_sockets):
    """The supervisor never reads the file: none of its text in its
    memory (a greeting no other place has, which each listener holds, so
    the search works), no configuration snapshot (memfd), and no socket
    of its own once the listeners have theirs."""
    from test_tls import memory_holds
    needle = b"only-in-the-file-7c1e9a"
    g = two_sockets(greeting=needle.decode())
    assert g.connect().greeting.endswith(b"] " + needle)
    for pid in g.listeners():
        assert memory_holds(pid, [needle]), "the search works (listener %d)" % pid
    sup = g.proc.pid
    assert memory_holds(sup, [needle]) is False, "the supervisor holds the file's text"
    fds = proc_fds(sup)
    assert not [t for t in fds.values() if "memfd:" in t or t.endswith(".conf")], fds
    assert [fd for fd in fds if fd > 2] == [], fds
