"""`make demo` (tests/demo), driven the way a terminal drives it (issue 12).

A shell with job control starts a foreground job in a process group of its
own and Ctrl-C sends SIGINT to that whole group.  Each run must log in,
and after the SIGINT nothing of it may be left: no listener on 1143 or
1993, no process, no temp directory.  A second run right after must work.
"""

import imaplib
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import conftest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(TOP, "tests", "demo")
PORTS = (1143, 1993)
START_TIMEOUT = 30.0


def listening(port):
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"],
                         capture_output=True, text=True).stdout
    return out.strip() != ""


def demo_processes(demo_dir):
    """Processes whose command line names this run's directory."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if demo_dir in cmd:
            found.append((int(pid), cmd))
    return found


@pytest.fixture
def ports_free(machine_lock):
    machine_lock("demo-ports")          # 1143 and 1993 are fixed
    taken = [p for p in PORTS if listening(p)]
    assert not taken, f"demo ports already in use before the test: {taken}"


def start_demo(log):
    # process_group=0: the job's own group, as a shell with job control
    # makes for a foreground job.
    return subprocess.Popen([DEMO], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, process_group=0,
                            env=dict(os.environ, DEMO_PORT="1143",
                                     DEMO_TLS_PORT="1993", IMAPGATE_BIN=conftest.GATE_BIN))


def wait_ready(proc, log_path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, open(log_path).read()
        if all(listening(p) for p in PORTS):
            text = open(log_path).read()
            m = re.search(r"(/tmp/imapgate-demo\.\w+)/cert\.pem", text)
            if m:
                return m.group(1)
        time.sleep(0.1)
    raise AssertionError("demo did not start: " + open(log_path).read())


def check_stopped(demo_dir, what):
    """Nothing of the run is left; whatever is, is killed (so that a
    failure here does not break the tests that follow)."""
    left = demo_processes(demo_dir)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    ports = [p for p in PORTS if listening(p)]
    assert not left, f"processes left after {what}: {left}"
    assert not ports, f"ports still listening after {what}: {ports}"
    assert not os.path.exists(demo_dir), "demo directory left behind"


def one_run(tmp_path, n):
    log_path = tmp_path / f"demo{n}.log"
    with open(log_path, "w") as log:
        proc = start_demo(log)
    try:
        demo_dir = wait_ready(proc, log_path)
        m = imaplib.IMAP4("127.0.0.1", 1143, timeout=10)
        typ, _ = m.login("demo", "demo")
        assert typ == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"]
        m.logout()
        # Ctrl-C: SIGINT to the foreground job's whole group.
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    check_stopped(demo_dir, "Ctrl-C")
    text = open(log_path).read()
    for marker in conftest.SANITIZER_MARKERS:
        assert marker not in text, text[-4000:]


def test_demo_twice_ctrl_c(ports_free, tmp_path):
    one_run(tmp_path, 1)
    one_run(tmp_path, 2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_demo_term_hup_stop_everything(ports_free, tmp_path, sig):
    log_path = tmp_path / "demo.log"
    with open(log_path, "w") as log:
        proc = start_demo(log)
    try:
        demo_dir = wait_ready(proc, log_path)
        # A connection left open: its imapgate must go too.
        s = socket.create_connection(("127.0.0.1", 1143), timeout=10)
        assert s.recv(100).startswith(b"* OK")
        proc.send_signal(sig)       # the demo's shell alone, as kill does
        proc.wait(timeout=15)
        s.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    check_stopped(demo_dir, sig.name)


def test_demo_refuses_taken_port(ports_free, tmp_path):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 1993))
    holder.listen(1)
    try:
        r = subprocess.run([DEMO], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, DEMO_PORT="1143",
                                    DEMO_TLS_PORT="1993"))
        assert r.returncode != 0
        assert "port 1993 is already in use" in r.stderr
        assert f"pid={os.getpid()}" in r.stderr, r.stderr   # ss -ltnp's holder
        assert not listening(1143), "half-started despite the taken port"
    finally:
        holder.close()
