"""Raw IMAP client and small utilities for the imapgate integration tests.

Every test asserts on the bytes that cross the wire, so the client here does
no IMAP parsing of its own: it sends bytes, reads CRLF-terminated lines and
checks them.  Every read has a deadline; nothing here can block forever.
"""

import base64
import os
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
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

    def __init__(self, port, host=HOST, timeout=DEFAULT_TIMEOUT, source=None):
        """source: a local address to bind to first (e.g. "127.0.0.2")."""
        self.timeout = timeout
        self.buf = b""
        self.lines = []          # every line read, for failure messages
        self.eof = False
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
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
        # TLS: a record already decrypted and buffered by OpenSSL does not
        # make the socket readable.
        if not (self.tls and self.sock.pending()):
            r, _, _ = select.select([self.sock], [], [], remaining)
            if not r:
                raise TimeoutError
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.reset = True
            data = b""
        except ssl.SSLWantReadError:
            return True         # a partial record or a post-handshake message
        except (ssl.SSLError, OSError) as e:
            self.tls_error = e  # an alert, a close without close_notify, ...
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    reset = False               # the connection ended with a RST, not a FIN
    tls = False                 # self.sock is an ssl.SSLSocket
    tls_error = None            # the TLS error that ended the connection

    def start_tls(self, context, server_hostname=None, session=None):
        """TLS handshake on this connection (implicit TLS, or after the
        server's STARTTLS OK).  Bytes read but unconsumed before would be
        pre-TLS plaintext mixed into the TLS stream: there must be none.
        Raises ssl.SSLError / OSError when the handshake fails."""
        assert self.buf == b"", "plaintext bytes after STARTTLS's OK: %r" % self.buf
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname,
                                        session=session, do_handshake_on_connect=False)
        self.sock.settimeout(self.timeout)
        self.sock.do_handshake()
        self.tls = True
        return self.sock

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


# -- TLS --------------------------------------------------------------------------

def tls_context(ca=None, cert=None, alpn=None, verify=True, min_version=None,
                max_version=None):
    """A client ssl.SSLContext: trusting `ca` (a PEM file), presenting the
    client certificate `cert` (a tlscerts.Pair) if given, offering the
    `alpn` protocols if given.  verify=False accepts any server."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify and ca:
        ctx.load_verify_locations(ca)
    elif not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def client_hello(server_hostname="imap.example.test", alpn=None):
    """The bytes of a real TLS ClientHello (from a memory-BIO handshake that
    goes no further)."""
    ctx = tls_context(verify=False, alpn=alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = out.read()
    assert data[:1] == b"\x16", data[:10]
    return data


def bio_handshake(sock, context, server_hostname=None, timeout=DEFAULT_TIMEOUT):
    """A TLS handshake driven by hand over `sock`, keeping every raw byte
    the server sent: returns (sslobj or None, raw bytes received, error).
    sslobj is None when the handshake failed (error says how: an
    ssl.SSLError, "eof" or "timeout")."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context.wrap_bio(inc, out, server_hostname=server_hostname)
    raw = b""
    deadline = time.monotonic() + timeout
    while True:
        try:
            obj.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        except ssl.SSLError as e:
            try:
                sock.sendall(out.read())
            except OSError:
                pass
            return None, raw, e
        pending = out.read()
        if pending:
            try:
                sock.sendall(pending)
            except OSError as e:
                return None, raw, e
        if done:
            return obj, raw, None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, raw, "timeout"
        r, _, _ = select.select([sock], [], [], remaining)
        if not r:
            return None, raw, "timeout"
        try:
            data = sock.recv(65536)
        except OSError as e:
            return None, raw, e
        if not data:
            return None, raw, "eof"
        raw += data
        inc.write(data)


def tls_refused(client, context, server_hostname="imap.example.test", timeout=DEFAULT_TIMEOUT):
    """Try a TLS handshake on `client` (a Client) and read what follows.
    Returns (refused, lines): refused is True when the handshake failed, or
    (TLS 1.3: the server judges the client's certificate after the client
    has finished) the server then closed or sent an alert; lines are the
    lines read before that."""
    try:
        client.start_tls(context, server_hostname=server_hostname)
    except (ssl.SSLError, OSError):
        return True, []
    lines = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not client._fill(deadline):
                break
        except TimeoutError:
            return False, lines
        while b"\r\n" in client.buf:
            line, client.buf = client.buf.split(b"\r\n", 1)
            lines.append(line)
    return True, lines


def peer_names(sock):
    """The DNS names in the server certificate's subjectAltName (needs a
    verifying context)."""
    cert = sock.getpeercert()
    return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")


def caps_of(line):
    """The capability tokens of `* CAPABILITY ...` or a `[CAPABILITY ...]`
    response code, as a list of str."""
    m = re.search(rb"(?:^\* CAPABILITY |\[CAPABILITY )([^\]\r\n]*)", line)
    assert m, "no capability list in %r" % line
    return m.group(1).decode().split()


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
        "state": st.get("State", ""),
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


# -- PROXY protocol headers (haproxy's proxy-protocol.txt) ---------------------

PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(src, dst, sport, dport):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def proxy_v2(src, dst, sport, dport, command=1):
    """A v2 header, PROXY command (1) or LOCAL (0), TCP over IPv4/IPv6."""
    if ":" in src:
        fam = 0x21
        addrs = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    else:
        fam = 0x11
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack("!HH", sport, dport)
    return PROXY_V2_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(body)) + body


# -- scripted stand-ins on 127.0.0.1 -------------------------------------------

class Conn:
    """The server side of one accepted connection, for scripted backends:
    bounded reads, and a record of every byte received."""

    def __init__(self, sock, timeout=DEFAULT_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.received = b""
        self.sent = b""
        self.eof = False

    def send(self, data):
        data = _b(data)
        self.sent += data
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.eof:
            return False
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            return False
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        self.received += data
        return True

    def readline(self, timeout=None):
        """Next CRLF line without CRLF, or None on timeout/EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n" not in self.buf:
            if not self._fill(deadline):
                return None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self, n, timeout=None):
        """Exactly n bytes, or None."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def pending(self, wait):
        """Bytes that arrive within `wait` seconds without being asked for."""
        deadline = time.monotonic() + wait
        while self._fill(deadline):
            pass
        return self.buf

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class ScriptedServer:
    """A listener on 127.0.0.1:port; each accepted connection runs
    handler(Conn) in its own thread.  Exceptions are kept in .errors and
    every Conn in .conns."""

    def __init__(self, handler, port=0):
        self.handler = handler
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, port))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.errors = []
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closing:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            c = Conn(s)
            self.conns.append(c)
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            self.handler(c)
        except Exception as e:          # reported by the test
            self.errors.append(e)
        finally:
            c.close()

    def close(self):
        self.closing = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        for c in self.conns:
            c.close()


def forwarder(target_port):
    """A ScriptedServer that relays each connection to 127.0.0.1:target_port."""

    def relay(c):
        up = socket.create_connection((HOST, target_port), timeout=DEFAULT_TIMEOUT)
        try:
            socks = [c.sock, up]
            while True:
                r, _, _ = select.select(socks, [], [], 30)
                if not r:
                    return
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (up if s is c.sock else c.sock).sendall(data)
        finally:
            up.close()

    return relay


def blackhole_listener():
    """A listening socket whose accept queue is full, so that further
    connects to it neither succeed nor get refused (SYNs are dropped):
    a connect timeout.  Returns (port, [sockets to close])."""
    l = socket.socket()
    l.bind((HOST, 0))
    l.listen(0)
    port = l.getsockname()[1]
    held = [l]
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((HOST, port))
        except BlockingIOError:
            pass
        held.append(s)
    time.sleep(0.1)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect((HOST, port))
        filled = False
    except socket.timeout:
        filled = True
    except OSError:
        filled = False
    finally:
        probe.close()
    if not filled:
        for s in held:
            s.close()
        return None, []
    return port, held


def closed_port():
    """A 127.0.0.1 port nothing listens on (connects are refused)."""
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -- a recording auth_http server (nginx's mail auth protocol) -----------------

class AuthReply:
    """One scripted answer of AuthHTTPServer: response headers (a list of
    (name, value)), or `raw` bytes sent as they are (malformed answers);
    sent after `delay` seconds.  close_only: close without answering."""

    def __init__(self, headers=(), raw=None, delay=0.0, status=b"HTTP/1.0 200 OK",
                 close_only=False):
        self.headers = list(headers)
        self.raw = raw
        self.delay = delay
        self.status = status
        self.close_only = close_only

    def encode(self):
        if self.raw is not None:
            return _b(self.raw)
        out = _b(self.status) + b"\r\n"
        for k, v in self.headers:
            out += _b(k) + b": " + _b(str(v)) + b"\r\n"
        return out + b"\r\n"


def auth_ok(port, server="127.0.0.1", user=None, password=None):
    """Auth-Status: OK routing to server:port, optionally with the
    credentials to use on the backend."""
    h = [("Auth-Status", "OK"), ("Auth-Server", server), ("Auth-Port", port)]
    if user is not None:
        h.append(("Auth-User", user))
    if password is not None:
        h.append(("Auth-Pass", password))
    return AuthReply(h)


def auth_error(text, wait=None):
    h = [("Auth-Status", text)]
    if wait is not None:
        h.append(("Auth-Wait", wait))
    return AuthReply(h)


def auth_wait(seconds):
    return AuthReply([("Auth-Status", "WAIT"), ("Auth-Wait", seconds)])


class AuthRequest:
    """One request as received: raw bytes, the request line and the header
    lines (bytes, without CRLF), `fields` [(name, value)] as str."""

    def __init__(self, raw, complete, when):
        self.raw = raw
        self.complete = complete
        self.time = when
        head = raw.split(b"\r\n\r\n", 1)[0]
        lines = head.split(b"\r\n")
        self.request_line = lines[0]
        self.header_lines = [ln for ln in lines[1:] if ln]
        self.fields = []
        for ln in self.header_lines:
            name, _, value = ln.partition(b":")
            self.fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))

    def get(self, name, default=None):
        """The value of header `name` (case-insensitive), or default."""
        for k, v in self.fields:
            if k.lower() == name.lower():
                return v
        return default

    def names(self):
        return [k for k, _ in self.fields]

    def as_dict(self):
        """{name: value}; a name sent twice makes this fail."""
        d = {}
        for k, v in self.fields:
            assert k not in d, "header %r sent twice: %r" % (k, self.header_lines)
            d[k] = v
        return d

    def __repr__(self):
        return "AuthRequest(%r)" % self.raw


class AuthHTTPServer:
    """A threaded HTTP/1.0 server on 127.0.0.1 (or a unix socket) that
    records every request and answers from a script: a queue of AuthReply
    (push), then `default` for every request after the queue is empty."""

    def __init__(self, default=None, unix_path=None):
        self.default = default or auth_error("no scripted reply")
        self.queue = []
        self.requests = []
        self.errors = []
        self.unix_path = unix_path
        self.lock = threading.Lock()
        self.closing = threading.Event()
        if unix_path:
            self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.lsock.bind(unix_path)
            os.chmod(unix_path, 0o666)
            self.port = None
        else:
            self.lsock = socket.socket()
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.lsock.bind((HOST, 0))
            self.port = self.lsock.getsockname()[1]
        self.lsock.listen(64)
        self.socks = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path="/auth"):
        if self.unix_path:
            return "unix:%s:%s" % (self.unix_path, path)
        return "http://%s:%d%s" % (HOST, self.port, path)

    def push(self, *replies):
        with self.lock:
            self.queue.extend(replies)

    def _next_reply(self):
        with self.lock:
            return self.queue.pop(0) if self.queue else self.default

    def _accept(self):
        while not self.closing.is_set():
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            self.socks.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        try:
            raw, complete = b"", False
            deadline = time.monotonic() + DEFAULT_TIMEOUT
            while b"\r\n\r\n" not in raw:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                r, _, _ = select.select([s], [], [], remaining)
                if not r:
                    break
                data = s.recv(65536)
                if not data:
                    break
                raw += data
            complete = b"\r\n\r\n" in raw
            with self.lock:
                self.requests.append(AuthRequest(raw, complete, time.monotonic()))
            reply = self._next_reply()
            if reply.delay and self.closing.wait(reply.delay):
                return
            if not reply.close_only:
                s.sendall(reply.encode())
        except OSError:
            pass                     # imapgate gave up on us first
        except Exception as e:       # reported by the test
            self.errors.append(e)
        finally:
            try:
                s.close()
            except OSError:
                pass

    def count(self):
        with self.lock:
            return len(self.requests)

    def wait_requests(self, n, timeout=5.0):
        """True once at least n requests have been received."""
        return bool(wait_for(lambda: self.count() >= n, timeout=timeout, interval=0.02))

    def close(self):
        self.closing.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass
        # A failure inside the server thread (a reply that could not be
        # encoded, a bug here) fails the test that used it.
        assert not self.errors, "auth_http test server failed: %r" % self.errors


def mail_roundtrip(m, msgs):
    """APPEND msgs to an empty INBOX through imaplib connection m, then
    FETCH each back and compare, byte for byte."""
    for msg in msgs:
        assert m.append("INBOX", None, None, msg)[0] == "OK"
    assert m.select("INBOX") == ("OK", [str(len(msgs)).encode()])
    for i, msg in enumerate(msgs, 1):
        assert m.fetch(str(i), "(BODY.PEEK[])")[1][0][1] == msg


def proc_has_peer(pid, peer_port):
    """Does process pid hold a TCP socket whose peer is at port peer_port
    (our client's end)?"""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[2].rsplit(":", 1)[1], 16) == peer_port:
                inodes.add(cols[9])
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        link = readlink("/proc/%d/fd/%s" % (pid, fd)) or ""
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


# -- mbsync, a real client that syncs a mailbox ---------------------------------

class Mbsync:
    """mbsync with a private config under `work`: the far store is
    imapgate at 127.0.0.1:port (or `host`), the near one a maildir in
    work/mail.  ssl: "None", or "STARTTLS"/"IMAPS" with `ca`."""

    def __init__(self, work, port, user, password, box="INBOX", mech="LOGIN",
                 host="127.0.0.1", ssl="None", ca=None):
        self.work, self.box = work, box
        self.local = os.path.join(str(work), "mail")
        os.makedirs(self.local, exist_ok=True)
        self.rc = os.path.join(str(work), "mbsyncrc")
        tls = "SSLType %s\n" % ssl + ("CertificateFile %s\n" % ca if ca else "")
        auth = "AuthMechs %s\n" % mech if mech else ""
        with open(self.rc, "w") as f:
            f.write("IMAPAccount acc\nHost %s\nPort %d\nUser %s\nPass %s\n%s%s\n"
                    "IMAPStore far\nAccount acc\n\n"
                    "MaildirStore near\nPath %s/\nInbox %s/INBOX\n\n"
                    "Channel ch\nFar :far:\nNear :near:\nPatterns %s\n"
                    "Create Near\nSyncState *\n"
                    % (host, port, user, password, tls, auth, self.local,
                       self.local, box))

    def sync(self, log=""):
        """One `mbsync -a`; it must succeed (log: what to show if not)."""
        r = subprocess.run(["mbsync", "-c", self.rc, "-a"], capture_output=True,
                           timeout=60, cwd=str(self.work))
        assert r.returncode == 0, (r.stdout, r.stderr, log)

    def messages(self):
        """The near side's messages, without the X-TUID header mbsync adds
        (mbsync stores LF line ends)."""
        got = []
        for sub in ("new", "cur"):
            d = os.path.join(self.local, self.box, sub)
            if os.path.isdir(d):
                for name in os.listdir(d):
                    with open(os.path.join(d, name), "rb") as f:
                        got.append(f.read())
        return sorted(re.sub(rb"(?m)^X-TUID: .*\n", b"", m) for m in got)


def lf(msg):
    """A message as mbsync stores it locally: LF line ends."""
    return msg.replace(b"\r\n", b"\n")


def stop_group(proc, grace=5):
    """Stop a server started in its own session (start_new_session=True):
    SIGTERM to it, `grace` seconds to exit, then SIGKILL to its process
    group for children that outlived it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def read_logs(root, names):
    """The files names under root, those that exist, as one text."""
    out = ""
    for name in names:
        try:
            with open(os.path.join(root, name), "rb") as f:
                out += f.read().decode("utf-8", "backslashreplace")
        except FileNotFoundError:
            pass
    return out
