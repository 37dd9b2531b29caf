"""A link-local IPv6 client gets its failure penalty like any other
(issue 9, item 7).

Its address comes with a scope ("fe80::1%lo"); keyed with the scope, the
penalty table found no address in it and such a client was never slowed
down.  The test runs imapgate and the client in a private network
namespace whose loopback carries fe80::1 (no traffic leaves it), and reads
the penalty table, which the namespace shares with the host."""

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


def test_link_local_client_gets_its_penalty(world, netns):
    conf = world.write_config("imapgate-ll.conf", failure_delay=BASE, max_penalty=MAX,
                              max_attempts=1)
    log_path = os.path.join(world.root, "gate-ll.log")
    port = conftest.free_port()
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, conftest.SSA, "-a", "--inetd",
             "-l", "[::]:%d" % port, conftest.GATE_BIN, "-c", conf],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
    try:
        assert helpers.wait_for(lambda: tcp6_listening(proc.pid, port), timeout=10), \
            open(log_path).read()
        times = []
        for _ in range(3):
            r = subprocess.run(["ip", "netns", "exec", netns, "/usr/bin/python3", "-c",
                                CLIENT, str(port)], capture_output=True, timeout=30)
            assert r.returncode == 0, (r.stdout, r.stderr)
            greeting, line, took = r.stdout.decode().splitlines()
            assert "a NO [AUTHENTICATIONFAILED]" in line, r.stdout
            times.append(float(took))
        with open(log_path, "rb") as f:
            log = f.read().decode("utf-8", "backslashreplace")
        assert "ip=fe80::1%lo" in log, log[-2000:]
        # Three failures under fe80::/64 (the table is keyed without the
        # scope), and the delay doubled: 0.2, 0.4, 0.8.
        assert penalty_failures_v6(world.penalty_file, b"\xfe\x80" + b"\0" * 6) == 3, log[-2000:]
        assert times[2] >= 0.75, times
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)
        # imapgate processes still in the namespace go with it (their
        # sockets keep it alive): kill whatever runs there.
        r = run("ip", "netns", "pids", netns)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    for marker in conftest.SANITIZER_MARKERS:
        assert marker not in log, log[-4000:]
