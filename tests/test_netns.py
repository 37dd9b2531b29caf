"""Tests that need a network of their own: a private network namespace
(no traffic leaves it) in which imapgate, its clients and its auth server
run, created and deleted by each test.  The namespace shares the host's
files: the penalty table and the logs are read from here.

- A link-local IPv6 client gets its failure penalty like any other (issue
  9, item 7).  Its address comes with a scope ("fe80::1%lo"); keyed with
  the scope, the penalty table found no address in it and such a client
  was never slowed down.  The namespace's loopback carries fe80::1.
- An auth_http server that accepts and never reads costs a temporary
  failure after auth_http_timeout, not a monitor stuck for ever in a
  write (issue 9, item 7).  The namespace's TCP send buffers are small
  (net.ipv4.tcp_wmem is per namespace), so the request cannot be
  buffered whole, as it would be with the host's defaults.
"""

import os
import signal
import struct
import subprocess
import time

import pytest

import conftest
import helpers

BASE = 0.2
MAX = 3.0

CLIENT = r"""
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("fe80::1%lo", port), timeout=10)
f = s.makefile("rb")
greeting = f.readline()
t0 = time.monotonic()
s.sendall(b"a LOGIN alice wrong\r\n")
line = f.readline()
print(repr(greeting)); print(repr(line)); print(time.monotonic() - t0)
"""


def run(*argv):
    return subprocess.run(argv, capture_output=True, timeout=20)


@pytest.fixture
def netns():
    """A network namespace with lo up and fe80::1 on it; deleted after."""
    conftest.require_tool("/usr/sbin/ip")          # iproute2
    conftest.require_tool("/usr/sbin/sysctl")      # procps
    name = "imapgate-test-%d" % os.getpid()
    run("ip", "netns", "del", name)
    r = run("ip", "netns", "add", name)
    if r.returncode != 0:
        pytest.fail("cannot make a network namespace (ip netns add): %r" % r.stderr)
    try:
        for argv in (("ip", "-n", name, "link", "set", "lo", "up"),
                     ("ip", "-n", name, "addr", "add", "fe80::1/64", "dev", "lo", "nodad")):
            r = run(*argv)
            assert r.returncode == 0, (argv, r.stderr)
        yield name
    finally:
        run("ip", "netns", "del", name)


def tcp6_listening(pid, port):
    """Is port in LISTEN state in the network namespace of process pid?"""
    want = ":%04X" % port
    try:
        with open("/proc/%d/net/tcp6" % pid) as f:
            next(f)
            return any(ln.split()[1].endswith(want) and ln.split()[3] == "0A"
                       for ln in f)
    except OSError:
        return False


def penalty_failures_v6(path, prefix64):
    """The table's failure count for an IPv6 /64 (8 bytes of prefix)."""
    key = prefix64 + b"\0" * 8
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    slots = struct.unpack_from("<I", data, 12)[0]
    return sum(struct.unpack_from("<16sI", data, 16 + 40 * i)[1]
               for i in range(slots)
               if struct.unpack_from("<16s", data, 16 + 40 * i)[0] == key)


def start_in(netns, world, name, **overrides):
    """imapgate under systemd-socket-activate --inetd in the namespace,
    listening on [::]:port; returns (Popen, port, log path)."""
    conf = world.write_config("imapgate-%s.conf" % name, **overrides)
    log_path = os.path.join(world.root, "gate-%s.log" % name)
    port = conftest.free_port()
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, conftest.SSA, "-a", "--inetd",
             "-l", "[::]:%d" % port, conftest.GATE_BIN, "-c", conf],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
    if not helpers.wait_for(lambda: tcp6_listening(proc.pid, port), timeout=10):
        stop_in(netns, proc)
        pytest.fail("imapgate did not listen in %s:\n%s" % (netns, read_log(log_path)))
    return proc, port, log_path


def stop_in(netns, proc):
    """Kill the super-server and whatever else runs in the namespace
    (imapgate processes, helpers this test started there)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=5)
    r = run("ip", "netns", "pids", netns)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def read_log(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "backslashreplace")
    except FileNotFoundError:
        return ""


def no_sanitizer_report(log):
    for marker in conftest.SANITIZER_MARKERS:
        assert marker not in log, log[-4000:]


def test_link_local_client_gets_its_penalty(world, netns):
    proc, port, log_path = start_in(netns, world, "ll", failure_delay=BASE,
                                    max_penalty=MAX, max_attempts=1)
    try:
        times = []
        for _ in range(3):
            r = subprocess.run(["ip", "netns", "exec", netns, "/usr/bin/python3", "-c",
                                CLIENT, str(port)], capture_output=True, timeout=30)
            assert r.returncode == 0, (r.stdout, r.stderr)
            greeting, line, took = r.stdout.decode().splitlines()
            assert "a NO [AUTHENTICATIONFAILED]" in line, r.stdout
            times.append(float(took))
        log = read_log(log_path)
        assert "ip=fe80::1%lo" in log, log[-2000:]
        # Three failures under fe80::/64 (the table is keyed without the
        # scope), and the delay doubled: 0.2, 0.4, 0.8.
        assert penalty_failures_v6(world.penalty_file, b"\xfe\x80" + b"\0" * 6) == 3, log[-2000:]
        assert times[2] >= 0.75, times
    finally:
        stop_in(netns, proc)
    no_sanitizer_report(read_log(log_path))


# An auth_http server that accepts and never reads, with the smallest
# receive buffer: it prints its port, then holds its connections.
DEAF_SERVER = r"""
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
l.bind(("127.0.0.1", 0))
l.listen(8)
print(l.getsockname()[1], flush=True)
held = []
l.settimeout(60)
while True:
    try:
        held.append(l.accept()[0])
    except OSError:
        break
"""

# Log in with a 4096-byte password of spaces (12288 bytes once escaped in
# Auth-Pass), then wait for the answer and print it with the time taken.
BIG_LOGIN = r"""
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("::1", port), timeout=15)
f = s.makefile("rb")
f.readline()
pw = b" " * 4096
t0 = time.monotonic()
s.sendall(b"a LOGIN alice {%d+}\r\n%s\r\n" % (len(pw), pw))
try:
    line = f.readline()
except socket.timeout:
    line = b"(no answer)"
print(repr(line))
print(time.monotonic() - t0)
"""

HTTP_TIMEOUT = 2


def test_auth_http_server_that_never_reads_is_a_timeout(world, netns):
    r = run("ip", "netns", "exec", netns, "sysctl", "-q", "-w",
            "net.ipv4.tcp_wmem=4096 4096 4096")
    assert r.returncode == 0, r.stderr
    deaf = subprocess.Popen(["ip", "netns", "exec", netns, "/usr/bin/python3", "-c",
                             DEAF_SERVER], stdout=subprocess.PIPE, start_new_session=True)
    proc = None
    try:
        aport = int(deaf.stdout.readline())
        proc, port, log_path = start_in(
            netns, world, "deaf", passwd_file=None,
            http="http://127.0.0.1:%d/auth" % aport, auth_http_timeout=HTTP_TIMEOUT,
            auth_http_header=["X-Pad-%d: %s" % (i, "p" * 200) for i in range(8)])
        r = subprocess.run(["ip", "netns", "exec", netns, "/usr/bin/python3", "-c",
                            BIG_LOGIN, str(port)], capture_output=True,
                           timeout=HTTP_TIMEOUT + 40)
        assert r.returncode == 0, (r.stdout, r.stderr)
        line, took = r.stdout.decode().splitlines()
        took = float(took)
        assert "a NO [UNAVAILABLE] Temporary authentication failure." in line, \
            (line, took, read_log(log_path)[-2000:])
        # The timeout, then failure_delay's floor at most: not a hang.
        assert HTTP_TIMEOUT - 0.1 <= took <= HTTP_TIMEOUT + 5, took
        log = read_log(log_path)
        assert "auth_http server timed out" in log, log[-2000:]
    finally:
        if proc is not None:
            stop_in(netns, proc)
        try:
            os.killpg(deaf.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deaf.wait(timeout=5)
    no_sanitizer_report(read_log(log_path))
