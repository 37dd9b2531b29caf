"""The compromised-session harness itself (issue 10 item 1,
tests/harness/README.md): loaded into imapgate, it acts in the sandboxed
session only -- never in the root monitor -- and answers on the wire."""

import os
import socket
import time

import pytest

import helpers
from conftest import evil


@pytest.mark.parametrize("mode", ["inetd", "listen"])
def test_harness_acts_in_the_session_only(start_gate, privsep_user, mode):
    """EVIL PID answers with the session's pid (a process of the privsep
    user whose parent, the monitor, runs as root); EVIL UID with the
    privsep user's uid; imapgate never sees the EVIL line (the next
    command is answered as the first)."""
    g = start_gate(mode=mode, evil=True)
    c = g.connect()
    ok, pid = evil(c, "PID")
    assert ok, pid
    ok, uid = evil(c, "UID")
    assert ok and uid == "%d %d" % (privsep_user.pw_uid, privsep_user.pw_uid), uid
    info = helpers.proc_info(int(pid))
    assert info and info["uids"][0] == privsep_user.pw_uid, info
    assert info["nonewprivs"] == "1", info
    monitor = helpers.proc_info(info["ppid"])
    assert monitor and monitor["uids"][0] == 0, monitor
    # The line went to the harness, not to the IMAP parser: no BAD for it.
    c.sendline("a NOOP")
    c.expect("a OK NOOP completed")
    ok, text = evil(c, "NO-SUCH-ACTION")
    assert ok is False and "unknown action" in text, text
    c.sendline("b LOGOUT")
    c.expect("* BYE Logging out")


def test_harness_idle_without_the_fixture_option(start_gate):
    """Without evil=True an EVIL line is only a bad command."""
    g = start_gate()
    c = g.connect()
    c.sendline("EVIL PID")
    line = c.readline()
    assert line.startswith(b"EVIL BAD") or b"BAD" in line, line


# -- issue 10 item 3: the session holds only its client ------------------------

def listening_inodes():
    """Socket inodes of every TCP socket in LISTEN state."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A":
                    out.add(cols[9])
    return out


def proc_fds(pid):
    """{fd: link} of process pid."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        out[int(fd)] = helpers.readlink("/proc/%d/fd/%s" % (pid, fd)) or ""
    return out


def assert_no_listening_socket(pid):
    """Process pid holds no listening socket (as /proc tells, whatever
    the harness says)."""
    listening = listening_inodes()
    for fd, link in proc_fds(pid).items():
        assert not (link.startswith("socket:[") and link[8:-1] in listening), \
            (fd, link, proc_fds(pid))


def check_only_client(fds_text, where):
    """The harness's FDS list: no listening socket; above fd 2 only the
    client (one inet stream socket) and the monitor's socketpair."""
    entries = dict(e.split(":", 1) for e in fds_text.split())
    assert not [e for e in entries.values() if "listening" in e], (where, fds_text)
    inet = [fd for fd, e in entries.items() if e.startswith("sock:inet")]
    assert len(inet) <= 1, (where, fds_text)
    for fd, e in entries.items():
        if int(fd) > 2:
            assert e in ("sock:inet:stream", "sock:inet6:stream", "sock:unix:seqpacket"), \
                (where, fds_text)


def extra_listener():
    """A listening socket on a high descriptor, as a leaky super-server
    might pass it on: (socket, fd number)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    fd = os.dup2(s.fileno(), 77, inheritable=True)
    return s, fd


def session_holds_only_its_client(c):
    """The session behind client c, asked through the harness and read
    from /proc: its client and monitor socket only, no listening socket.
    Its pid."""
    ok, pid = evil(c, "PID")
    assert ok, pid
    ok, fds = evil(c, "FDS")
    assert ok, fds
    check_only_client(fds, "session")
    assert_no_listening_socket(int(pid))
    return int(pid)


@pytest.mark.parametrize("mode", ["inetd-wait", "accept-no", "listen"])
def test_session_holds_only_its_client(start_gate, mode):
    """inetd "wait" (listening fd 0 and 1), systemd Accept=no (fd 3) and
    -L, with a leaked listening socket on fd 77 too: the session holds no
    listening socket -- its /proc/PID/fd has none, EVIL ACCEPT finds none
    while another client is waiting -- only its client and the monitor's
    socketpair above fd 2."""
    leak, leakfd = extra_listener()
    try:
        g = start_gate(mode=mode, evil=True, pass_fds=(leakfd,))
        c = g.connect()
        session_holds_only_its_client(c)
        # A second client waits for a spare, or in the backlog: the
        # session still cannot take it.
        other = helpers.Client(g.port)
        leak_peer = socket.create_connection(leak.getsockname())
        ok, acc = evil(c, "ACCEPT")
        assert ok and acc == "none", acc
        leak_peer.close()
        other.close()
        c.sendline("a LOGIN alice secret")
        c.expect_prefix("a OK")
        c.sendline("b LOGOUT")
        c.expect("* BYE Logging out")
    finally:
        os.close(leakfd)
        leak.close()


def test_relay_holds_only_its_client(start_proxy):
    """Connect mode, inetd "wait": after login the monitor, unprivileged,
    relays; it too holds no listening socket (the harness acts there)."""
    g = start_proxy(mode="inetd-wait", evil=True)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect_prefix("a OK")
    ok, fds = evil(c, "FDS")
    assert ok, fds
    assert "listening" not in fds, fds
    other = helpers.Client(g.port)
    ok, acc = evil(c, "ACCEPT")
    assert ok and acc == "none", acc
    other.close()
    c.sendline("b NOOP")
    c.expect_prefix("b OK")


# Run as the mail server: lists the shell's own descriptors (ls, a child,
# reads /proc/PID/fd of its parent), then ends the connection.
FD_LISTER = "ls /proc/$$/fd; exit 0"


@pytest.mark.parametrize("mode", ["inetd-wait", "inetd"])
def test_mail_server_inherits_only_fds_0_to_2(start_gate, mode):
    """The exec'd mail server (here a shell listing its descriptors) holds
    fds 0-2 and nothing else, even when a leaked socket sat on fd 77."""
    leak, leakfd = extra_listener()
    try:
        g = start_gate(mode=mode, exec=["/bin/sh", "-c", FD_LISTER], pass_fds=(leakfd,))
        c = g.connect()
        c.sendline("a LOGIN alice secret")
        out = b""
        while c._fill(time.monotonic() + 10):
            pass
        out = c.buf.decode()
        fds = sorted(int(x) for x in out.split() if x.isdigit())
        assert fds == [0, 1, 2], out
    finally:
        os.close(leakfd)
        leak.close()


# -- issue 10 item 2: no secret in the session's memory ------------------------

API_KEY = "k3y-SECRET-7731-api"


@pytest.mark.parametrize("where", ["top", "listen-group"])
def test_no_secret_in_session_memory(start_proxy, dovecot, privsep_user, where):
    """backend.master_password and an auth_http_header value (an API key)
    are nowhere in the session's memory -- not in its heap, not in the
    freed buffers of libconfig, which read the whole file -- while the
    monitor, which uses them, holds them (so the search works).  Also when
    they are set inside the connection's `listen` group."""
    from conftest import MASTER_PASSWORD, MASTER_USER, free_port
    from test_tls import memory_holds
    secrets = {"master_user": MASTER_USER, "master_password": MASTER_PASSWORD,
               "auth_http_header": ["X-Api-Key: " + API_KEY]}
    if where == "top":
        g = start_proxy(mode="inetd", evil=True, **secrets)
    else:
        port = free_port()
        group = {"port": port, "auth_http_header": secrets["auth_http_header"],
                 "backend": {"master_user": MASTER_USER,
                             "master_password": MASTER_PASSWORD}}
        g = start_proxy(mode="listen", evil=True, port=port, listen=[group])
    c = g.connect()
    ok, pid = evil(c, "PID")
    assert ok, pid
    session = int(pid)
    monitor = helpers.proc_info(session)["ppid"]
    needles = [MASTER_PASSWORD.encode(), API_KEY.encode()]
    for n in needles:
        assert memory_holds(monitor, [n]), "the search works: monitor holds %r" % n
    for n in needles:
        assert not memory_holds(session, [n]), "session %d holds %r" % (session, n)
    # And the master login still works: the monitor has the password.
    c.sendline("a LOGIN alice secret")
    c.expect_prefix("a OK")
    c.sendline("b LOGOUT")
    c.expect("* BYE Logging out")


# -- issue 10 item 8: seccomp ---------------------------------------------------

def seccomp_mode(pid):
    return (helpers.proc_status(pid) or {}).get("Seccomp")


def nofile_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return [int(x) for x in line.split()[3:5]]
    return None


def test_session_under_seccomp(start_gate):
    """The session runs under a seccomp filter (/proc/PID/status says
    "Seccomp: 2") with RLIMIT_NOFILE lowered, soft and hard: the harness
    cannot raise it back."""
    g = start_gate(evil=True)
    c = g.connect()
    ok, pid = evil(c, "PID")
    assert ok, pid
    assert seccomp_mode(int(pid)) == "2", helpers.proc_status(int(pid))
    soft, hard = nofile_limit(int(pid))
    assert hard <= 16, (soft, hard)
    ok, text = evil(c, "RLIMIT")
    assert ok is not True, text        # ERR, or killed (EOF)


@pytest.mark.parametrize("action", ["CONNECT", "KILL -1 9", "OPEN /etc/passwd",
                                    "EXEC /bin/sh"])
def test_denied_call_ends_only_that_session(start_proxy, dovecot, action):
    """connect() to the backend, kill(-1, SIGKILL), open("/etc/passwd"),
    execve() from a taken-over session: the call is not made, the session
    ends (the client sees EOF), the monitor logs the SIGSYS -- and another
    client's session on the same gate is still served."""
    g = start_proxy(mode="inetd", evil=True)
    other = g.connect()
    c = g.connect()
    if action == "CONNECT":
        action = "CONNECT 127.0.0.1 %d" % dovecot.port
    ok, text = evil(c, action)
    assert ok is None and text == "EOF", (ok, text)
    assert helpers.wait_for(lambda: "killed by SIGSYS" in g.log()), g.log()
    other.sendline("a NOOP")
    other.expect("a OK NOOP completed")
    other.sendline("b LOGIN alice secret")
    other.expect_prefix("b OK")
    other.sendline("c LOGOUT")
    other.expect("* BYE Logging out")


def test_no_signal_through_fcntl(start_gate):
    """fcntl(F_SETOWN) + F_SETSIG + O_ASYNC would have the kernel send any
    signal to another session when the client socket becomes readable --
    kill() by another name.  The filter lets fcntl() change flags only:
    the session that tries ends, the other one is served."""
    g = start_gate(evil=True)
    other = g.connect()
    ok, victim = evil(other, "PID")
    assert ok, victim
    c = g.connect()
    ok, text = evil(c, "SIGIO %s 9" % victim)
    if ok:                              # armed: make the socket readable
        c.sendline("a NOOP")
    other.sendline("b NOOP")
    other.expect("b OK NOOP completed")
    assert ok is None and text == "EOF", (ok, text)
    assert helpers.wait_for(lambda: "killed by SIGSYS" in g.log()), g.log()


def test_relay_under_seccomp(start_proxy, dovecot):
    """After login the connect-mode relay (the monitor, unprivileged) runs
    under the same filter: connect() there ends the relay too."""
    g = start_proxy(mode="inetd", evil=True)
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    c.expect_prefix("a OK")
    ok, pid = evil(c, "PID")
    assert ok, pid
    assert seccomp_mode(int(pid)) == "2"
    assert helpers.proc_info(int(pid))["uids"][0] != 0
    ok, text = evil(c, "CONNECT 127.0.0.1 %d" % dovecot.port)
    assert ok is None and text == "EOF", (ok, text)


def test_tls_session_under_seccomp(start_gate, certs, privsep_user):
    """A TLS session (GnuTLS in the sandbox: handshake, signing through
    the monitor, the relay to the mail server after login) works under
    the filter."""
    from conftest import tls_settings
    g = start_gate(**tls_settings(certs, ssl=True))
    c = g.connect_tls()
    port = c.sock.getsockname()[1]
    sess = [p for p in g.processes() if p["uids"][0] == privsep_user.pw_uid
            and helpers.proc_has_peer(p["pid"], port)]
    assert sess and seccomp_mode(sess[0]["pid"]) == "2", g.processes()
    c.sendline("a LOGIN alice secret")
    c.expect_prefix("a OK")
    c.sendline("b SELECT INBOX")
    c.read_until_tagged("b")
    c.sendline("c LOGOUT")
    c.expect("* BYE Logging out")


def test_syslog_mode_survives_the_filter(world):
    """With fd 2 the client socket, imapgate logs to syslog.  Here there is
    no /dev/log (or the daemon restarted): syslog(3) would try socket()
    again at the session's first line -- which the allow-list answers
    with SIGSYS.  imapgate's own syslog client connects once, before the
    sandbox, and drops what it cannot send: the session lives to LOGOUT
    (exit status 0, not 111 for a session killed)."""
    import subprocess
    from conftest import GATE_BIN
    conf = world.write_config()
    a, b = socket.socketpair()
    p = subprocess.Popen([GATE_BIN, "-c", conf], stdin=b, stdout=b, stderr=b)
    b.close()
    try:
        a.settimeout(10)
        f = a.makefile("rb")
        assert f.readline().startswith(b"* OK"), "no greeting"
        a.sendall(b"a LOGIN alice wrong\r\n")      # logged by the monitor
        assert f.readline().startswith(b"a NO")
        a.sendall(b"b BOGUS\r\nc LOGOUT\r\n")       # logged by the session
        lines = [f.readline() for _ in range(3)]
        assert lines[1].startswith(b"* BYE"), lines
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
        a.close()
