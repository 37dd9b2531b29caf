"""Cyrus IMAP 3.6 as a connect-mode backend (issue 13).

Debian's cyrus-imapd conflicts with dovecot-imapd, so tests/install-deps
installs its dependencies (cyrus-common, sasl2-bin) with apt and unpacks
it into tests/pkgs/.  One private Cyrus per test session: its own
imapd.conf with every path in a temp dir, a cyrus.conf whose imap
service is the unpacked imapd on a loopback port, users in a private
sasldb (saslpasswd2 -c), mailboxes created by the admin over IMAP; no
system service.  Cyrus logs only to syslog: its master runs in a mount
namespace whose /dev/log is the test's socket, so what it recorded (the
ID imapgate sent) can be checked.
"""

import imaplib
import os
import re
import shutil
import subprocess
import socket
import tempfile
import threading

import pytest

import conftest
import helpers
from helpers import AUTH_FAILED, b64
from test_haproxy import haproxy  # noqa: F401 (fixture)

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CYRUS_IMAPD = os.path.join(TOP, "tests", "pkgs", "cyrus-imapd", "usr", "lib", "cyrus", "bin",
                           "imapd")
MASTER = "/usr/lib/cyrus/bin/master"
CTL_CYRUSDB = "/usr/lib/cyrus/bin/ctl_cyrusdb"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"
SERVERNAME = "cyrustest"
ADMIN, ADMIN_PW = "cyrus", "cyrus-admin-pw"
USERS = ("alice", "bob")

IMAPD_CONF = """\
configdirectory: {d}/lib
partition-default: {d}/spool
sievedir: {d}/sieve
temp_path: {d}/tmp
idlesocket: {d}/socket/idle
lmtpsocket: {d}/socket/lmtp
notifysocket: {d}/socket/notify
proc_path: {d}/proc
mboxname_lockpath: {d}/lock
admins: {admin}
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {d}/sasldb2
sasl_mech_list: PLAIN LOGIN
unixhierarchysep: no
altnamespace: no
servername: {servername}
syslog_prefix: imapgate-test-cyrus
failedloginpause: 0
"""

CYRUS_CONF = """\
START {{
  recover cmd="{ctl} -r -C {d}/imapd.conf"
}}
SERVICES {{
  imap cmd="{imapd} -C {d}/imapd.conf" listen="127.0.0.1:{port}" prefork=0
}}
EVENTS {{
}}
"""


# Cyrus logs only through syslog(3), to /dev/log, which this machine need
# not have and which the tests must not create for everyone: master runs
# in a mount namespace of its own whose /dev is a copy of the few device
# nodes it uses plus /dev/log bound to the test's own datagram socket.
SYSLOG_NS = """\
set -e
mkdir -p %(dev)s
for n in null zero random urandom full; do
    touch %(dev)s/$n; mount --bind /dev/$n %(dev)s/$n
done
touch %(dev)s/log; mount --bind %(log)s %(dev)s/log
mount --rbind %(dev)s /dev
exec "$@"
"""


class Syslog:
    """A datagram socket collecting syslog messages, in a thread."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.lock:
                self.lines.append(data.decode("utf-8", "replace"))

    def text(self):
        with self.lock:
            return "\n".join(self.lines)

    def close(self):
        self.sock.close()


class Cyrus:
    def __init__(self):
        for t in (CYRUS_IMAPD, MASTER, CTL_CYRUSDB, SASLPASSWD2):
            conftest.require_tool(t)
        self.root = tempfile.mkdtemp(prefix="imapgate-cyrus-", dir="/tmp")
        self.proc = None
        self.syslog = Syslog(os.path.join(self.root, "log.sock"))
        for sub in ("lib", "lib/db", "lib/socket", "spool", "sieve", "tmp", "socket", "proc",
                    "lock"):
            os.mkdir(os.path.join(self.root, sub))
        self.passwords = {u: conftest.USERS[u][0] for u in USERS}

    def start(self):
        d = self.root
        for _ in range(3):
            self.port = conftest.free_port()
            with open(os.path.join(d, "imapd.conf"), "w") as f:
                f.write(IMAPD_CONF.format(d=d, admin=ADMIN, servername=SERVERNAME))
            # A copy the cyrus user can reach wherever the checkout is.
            imapd = os.path.join(d, "imapd")
            shutil.copy2(CYRUS_IMAPD, imapd)
            with open(os.path.join(d, "cyrus.conf"), "w") as f:
                f.write(CYRUS_CONF.format(d=d, ctl=CTL_CYRUSDB, imapd=imapd, port=self.port))
            for user, pw in [(ADMIN, ADMIN_PW)] + list(self.passwords.items()):
                subprocess.run([SASLPASSWD2, "-p", "-c", "-f", os.path.join(d, "sasldb2"),
                                "-u", SERVERNAME, user], input=pw.encode(), check=True)
            subprocess.run(["chown", "-R", "cyrus:mail", d], check=True)
            os.chmod(d, 0o750)
            out = open(os.path.join(d, "master.out"), "ab")
            master = [MASTER, "-C", os.path.join(d, "imapd.conf"), "-M",
                      os.path.join(d, "cyrus.conf"), "-p", os.path.join(d, "master.pid"), "-D"]
            self.proc = subprocess.Popen(
                ["unshare", "-m", "sh", "-c", SYSLOG_NS % {"dev": os.path.join(d, "dev"),
                                                          "log": self.syslog.path},
                 "sh"] + master,
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
            out.close()
            if helpers.wait_for(lambda: conftest.port_listening(self.port), timeout=10):
                break
            self.stop()
        else:
            pytest.fail("cyrus master did not listen: " +
                        open(os.path.join(d, "master.out")).read())
        with self.imap(ADMIN, ADMIN_PW) as m:
            for u in USERS:
                typ, data = m.create("user.%s" % u)
                assert typ == "OK", data
        return self

    def imap(self, user, pw):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=20)
        typ, data = m.login(user, pw)
        assert typ == "OK", data
        return m

    def empty(self, user):
        with self.imap(user, self.passwords[user]) as m:
            m.select("INBOX")
            m.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            m.expunge()
            m.logout()

    def addr(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
            self.proc = None


@pytest.fixture(scope="session")
def cyrus_server():
    c = Cyrus()
    try:
        c.start()
        yield c
    finally:
        c.stop()
        c.syslog.close()
        if not os.environ.get("IMAPGATE_KEEP"):
            shutil.rmtree(c.root, ignore_errors=True)


@pytest.fixture
def cyrus(cyrus_server):
    for u in USERS:
        cyrus_server.empty(u)
    return cyrus_server


@pytest.fixture
def start_cyrus_gate(start_gate, cyrus):
    """imapgate in connect mode in front of Cyrus (passwd_file kept unless
    passwd_file=None: then Cyrus alone checks the password)."""
    def start(mode="inetd", **overrides):
        s = {"exec": None, "connect": [cyrus.addr()]}
        s.update(overrides)
        return start_gate(mode=mode, **s)
    return start


# Cyrus's answer to a login, passed on as it is.
CYRUS_LOGGED_IN = rb"^%s OK \[CAPABILITY [^\]]*\] (User logged in|Success)"


def expect_cyrus_logged_in(c, tag):
    lines = c.read_until_tagged(tag)
    assert re.match(CYRUS_LOGGED_IN % re.escape(tag.encode()), lines[-1]), lines
    return lines


def select_logout(c, sel="b", out="c", exists=0):
    lines = c.read_until_tagged(sel)
    assert b"* %d EXISTS" % exists in lines, lines
    assert lines[-1].startswith(sel.encode() + b" OK [READ-WRITE]"), lines
    lines = c.read_until_tagged(out)
    assert lines[0].startswith(b"* BYE"), lines
    assert lines[-1].startswith(out.encode() + b" OK"), lines
    c.assert_closed()


@pytest.mark.parametrize("backend_login", ["login", "plain"])
def test_cyrus_login_pipelined(start_cyrus_gate, backend_login, mode):
    """LOGIN with the next commands in the same write; imapgate logs in to
    Cyrus with LOGIN (literals, LITERAL+) or AUTHENTICATE PLAIN (SASL-IR)."""
    g = start_cyrus_gate(mode=mode, login=backend_login)
    c = g.connect()
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_cyrus_logged_in(c, "a")
    select_logout(c)


def test_cyrus_authenticate_plain_ir_passthrough(start_cyrus_gate):
    """AUTHENTICATE PLAIN with an initial response, Cyrus alone checking
    the password (no passwd-file)."""
    g = start_cyrus_gate(passwd_file=None)
    c = g.connect()
    c.send(b"a AUTHENTICATE PLAIN " + b64("\0bob\0" + conftest.USERS["bob"][0]) +
           b"\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_cyrus_logged_in(c, "a")
    select_logout(c)


@pytest.mark.parametrize("pass_message", [False, True])
def test_cyrus_refusal_passed_on(start_cyrus_gate, world, pass_message):
    """imapgate's passwd-file accepts the password, Cyrus refuses it: the
    client gets a NO, the connection stays usable."""
    path = world.write_passwd(passwords={"alice": "not-cyrus-password"}, name="passwd-other")
    g = start_cyrus_gate(passwd_file=path, proxy_pass_error_message=pass_message)
    c = g.connect()
    c.sendline("a LOGIN alice not-cyrus-password")
    line = c.readline()
    if pass_message:
        assert line == b"a NO Login failed: authentication failure", line
    else:
        assert line == b"a" + AUTH_FAILED, line
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    assert helpers.wait_for(lambda: "backend refused the login" in g.log(), timeout=3), g.log()


def test_cyrus_10mb_roundtrip(start_cyrus_gate, cyrus):
    size = 10 * 1024 * 1024
    body = b"".join(b"line %07d of a ten mebibyte message, through imapgate\r\n" % i
                    for i in range(size // 56))
    msg = b"From: a@example.org\r\nSubject: big\r\n\r\n" + body
    g = start_cyrus_gate()
    with imaplib.IMAP4("127.0.0.1", g.port, timeout=60) as m:
        assert m.login("alice", "secret")[0] == "OK"
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK", data
        typ, data = m.select("INBOX")
        assert (typ, data) == ("OK", [b"1"])
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK"
        assert data[0][1] == msg
        m.logout()
    assert helpers.wait_for(lambda: re.search(
        r'session: user="alice" ip=127\.0\.0\.1 backend=127\.0\.0\.1:%d in=(\d+) out=(\d+)'
        % cyrus.port, g.log()), timeout=5), g.log()
    m = re.search(r"in=(\d+) out=(\d+)", g.log())
    assert int(m.group(1)) > len(msg) and int(m.group(2)) > len(msg), m.group(0)


def cyrus_id_of_login(cyrus, user, timeout=5):
    """The ID Cyrus logged for the session in which `user` last logged in:
    {"x-originating-ip": ..., ...}, or {} if that session sent none."""
    def find():
        text = cyrus.syslog.text()
        logins = re.findall(r"login: \S+ \[[^\]]*\] %s \S+ User logged in SESSIONID=<([^>]+)>"
                            % re.escape(user), text)
        return logins and (logins[-1], text)
    got = helpers.wait_for(find, timeout=timeout)
    assert got, cyrus.syslog.text()[-3000:]
    sid, text = got
    m = re.search(r"client id sessionid=<%s>: (.*)" % re.escape(sid), text)
    if not m:
        return {}
    items = re.findall(r'"([^"]*)"', m.group(1))
    return dict(zip(items[::2], items[1::2]))


def test_cyrus_id_forwards_client_address(start_cyrus_gate, cyrus):
    """forward_client = "id" (the default): Cyrus takes imapgate's ID and
    records the client's address and port (in syslog, captured here);
    its login line keeps imapgate's address, as it does for any proxy."""
    g = start_cyrus_gate()
    c = g.connect(source="127.0.0.2")
    port = c.sock.getsockname()[1]
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_cyrus_logged_in(c, "a")
    select_logout(c)
    ident = cyrus_id_of_login(cyrus, "alice")
    assert ident.get("x-originating-ip") == "127.0.0.2", ident
    assert ident.get("x-originating-port") == str(port), ident


def test_cyrus_forward_client_none(start_cyrus_gate, cyrus):
    g = start_cyrus_gate(forward_client="none")
    c = g.connect(source="127.0.0.2")
    c.send(b"a LOGIN alice secret\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    expect_cyrus_logged_in(c, "a")
    select_logout(c)
    assert cyrus_id_of_login(cyrus, "alice") == {}


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_cyrus_behind_haproxy(start_cyrus_gate, cyrus, haproxy, version):
    """HAProxy -> imapgate -> Cyrus: the address HAProxy saw reaches Cyrus
    in the ID."""
    g = start_cyrus_gate(proxy_protocol=True, set_real_ip_from=["127.0.0.1"])
    h = haproxy(g, version)
    c = h.connect()
    port = c.sock.getsockname()[1]
    c.send(b"a AUTHENTICATE PLAIN " + b64("\0alice\0secret") + b"\r\nb SELECT INBOX\r\n"
           b"c LOGOUT\r\n")
    expect_cyrus_logged_in(c, "a")
    select_logout(c)
    ident = cyrus_id_of_login(cyrus, "alice")
    assert ident.get("x-originating-ip") == "127.0.0.2", ident
    assert ident.get("x-originating-port") == str(port), ident


def test_cyrus_curl(start_cyrus_gate, cyrus):
    msg = b"From: a@example.org\r\nSubject: for curl\r\n\r\nhello curl\r\n"
    with cyrus.imap("alice", "secret") as m:
        m.append("INBOX", None, None, msg)
    g = start_cyrus_gate()
    r = subprocess.run(["curl", "-sS", "--max-time", "20",
                        "--url", "imap://127.0.0.1:%d/INBOX;MAILINDEX=1" % g.port,
                        "-u", "alice:secret"], capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stderr, g.log())
    assert r.stdout == msg


def test_cyrus_mbsync(start_cyrus_gate, cyrus, tmp_path):
    if not shutil.which("mbsync"):
        pytest.fail("mbsync missing")
    msgs = [b"From: a@example.org\r\nSubject: sync %d\r\n\r\nbody %d\r\n" % (i, i)
            for i in range(3)]
    with cyrus.imap("alice", "secret") as m:
        for msg in msgs:
            m.append("INBOX", None, None, msg)
    g = start_cyrus_gate()
    mb = helpers.Mbsync(tmp_path, g.port, "alice", "secret", mech="PLAIN")
    mb.sync(g.log())
    assert mb.messages() == sorted(helpers.lf(m) for m in msgs)
