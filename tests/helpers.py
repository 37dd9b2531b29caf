"""Raw IMAP client and small utilities for the imapgate integration tests.

Every test asserts on the bytes that cross the wire, so the client here does
no IMAP parsing of its own: it sends bytes, reads CRLF-terminated lines and
checks them.  Every read has a deadline; nothing here can block forever.
"""

import base64
import os
import re
import select
import socket
import time

HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 5.0

BASE_CAPS = "IMAP4 IMAP4rev1 UIDPLUS ID SASL-IR LITERAL- AUTH=PLAIN"
GREETING = b"* OK [CAPABILITY " + BASE_CAPS.encode() + b"] imapgate ready"
LOGGED_IN_RE = rb"^%s OK \[CAPABILITY [^\]\r\n]*\] Logged in$"
AUTH_FAILED = b" NO [AUTHENTICATIONFAILED] Authentication failed."


def logged_in_re(tag):
    """Regex for Dovecot's tagged OK of a LOGIN/AUTHENTICATE."""
    return LOGGED_IN_RE % re.escape(tag.encode() if isinstance(tag, str) else tag)


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data)


def _b(x):
    return x.encode() if isinstance(x, str) else x


class Client:
    """A raw IMAP client over TCP with bounded reads."""

    def __init__(self, port, host=HOST, timeout=DEFAULT_TIMEOUT):
        self.timeout = timeout
        self.buf = b""
        self.lines = []          # every line read, for failure messages
        self.eof = False
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- sending -----------------------------------------------------------
    def send(self, data, ignore_errors=False):
        """Send all bytes.  With ignore_errors, a reset/broken pipe is
        tolerated (the server may close while we are still writing)."""
        try:
            self.sock.sendall(_b(data))
        except (BrokenPipeError, ConnectionResetError):
            if not ignore_errors:
                raise

    def sendline(self, line):
        self.send(_b(line) + b"\r\n")

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    # -- receiving ---------------------------------------------------------
    def _fill(self, deadline):
        """Read more bytes into buf.  Returns False on EOF/reset, raises
        TimeoutError when the deadline passes."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            raise TimeoutError
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _context(self):
        last = self.lines[-5:]
        return "last lines read: %r; unread buffer: %r" % (last, self.buf[:300])

    def readline(self, timeout=None):
        """Return the next line without its CRLF.  Fails the test on
        timeout or when the connection closes first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n" not in self.buf:
            try:
                if not self._fill(deadline):
                    raise AssertionError(
                        "connection closed while waiting for a line; " + self._context())
            except TimeoutError:
                raise AssertionError(
                    "timed out waiting for a line; " + self._context()) from None
        line, self.buf = self.buf.split(b"\r\n", 1)
        self.lines.append(line)
        return line

    def expect(self, expected, timeout=None):
        """Next line must equal `expected` exactly (without CRLF)."""
        line = self.readline(timeout)
        assert line == _b(expected), "expected %r, got %r" % (_b(expected), line)
        return line

    def expect_prefix(self, prefix, timeout=None):
        line = self.readline(timeout)
        assert line.startswith(_b(prefix)), "expected prefix %r, got %r" % (_b(prefix), line)
        return line

    def expect_re(self, pattern, timeout=None):
        line = self.readline(timeout)
        assert re.match(_b(pattern), line), "expected /%s/, got %r" % (_b(pattern), line)
        return line

    def read_until_tagged(self, tag, timeout=None):
        """Read lines until one starts with `tag ` and return all of them."""
        tag = _b(tag) + b" "
        out = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            line = self.readline(max(0.01, deadline - time.monotonic()))
            out.append(line)
            if line.startswith(tag):
                return out

    def expect_continuation(self, timeout=None):
        """A command continuation request: '+' then optional text."""
        line = self.readline(timeout)
        assert re.match(rb"^\+( .*)?$", line), "expected a continuation '+', got %r" % line
        return line

    def assert_closed(self, timeout=None):
        """The server must close the connection without sending more."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            raise AssertionError("connection still open; " + self._context()) from None
        assert self.buf == b"", "unexpected bytes before close: %r" % self.buf[:300]

    def assert_silent(self, duration=0.5):
        """Nothing must arrive for `duration` seconds (and no close)."""
        assert self.buf == b"", "unexpected bytes: %r" % self.buf[:300]
        deadline = time.monotonic() + duration
        try:
            alive = self._fill(deadline)
        except TimeoutError:
            return
        if alive:
            raise AssertionError("unexpected bytes: %r" % self.buf[:300])
        raise AssertionError("connection closed unexpectedly; " + self._context())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# -- /proc helpers ------------------------------------------------------------

def proc_status(pid):
    """Parsed /proc/PID/status, or None when the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    out = {}
    for ln in text.splitlines():
        k, _, v = ln.partition(":")
        out[k] = v.strip()
    return out


def proc_stat(pid):
    """(ppid, pgid, sid) of a process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[2]), int(fields[3])


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root_pid):
    """All live descendants of root_pid (not including it)."""
    children = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            children.setdefault(st[0], []).append(pid)
    out, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def children_of(pid):
    return [p for p in all_pids() if (proc_stat(p) or (None,))[0] == pid]


def readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def proc_info(pid):
    st = proc_status(pid)
    if st is None:
        return None
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    groups = [int(x) for x in st.get("Groups", "").split()]
    return {
        "pid": pid,
        "ppid": int(st["PPid"]),
        "uids": uids,
        "gids": gids,
        "groups": groups,
        "exe": readlink("/proc/%d/exe" % pid),
        "root": readlink("/proc/%d/root" % pid),
        "name": st.get("Name"),
        "nonewprivs": st.get("NoNewPrivs"),
    }


def wait_for(predicate, timeout=5.0, interval=0.05):
    """Poll until predicate() is truthy; return its value or None."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)
