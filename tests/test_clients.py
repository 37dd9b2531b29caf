"""The interoperability matrix (README.md, issue 13): every real client
against every mail server setup imapgate is tested with.

Columns (the `target` fixture): Dovecot's imap exec'd, a Dovecot daemon in
connect mode, Courier's imapd exec'd, Cyrus in connect mode, and a real
HAProxy (send-proxy-v2) in front of imapgate with Dovecot exec'd.  Every
gate offers STARTTLS.  Rows (one test each): imaplib, curl, mbsync,
openssl s_client and gnutls-cli (STARTTLS, commands written in one go),
fetchmail (plain and STARTTLS), neomutt (in a pseudo-terminal).

Each test first stores two messages through the gate with imaplib APPEND,
then has the client fetch them and compares the bytes.
"""

import email.utils
import imaplib
import os
import re
import shutil
import subprocess

import pytest

import conftest
import helpers
from test_courier import courier_world
from test_cyrus import cyrus, cyrus_server  # noqa: F401 (fixtures)
from test_haproxy import haproxy  # noqa: F401 (fixture)
from test_tls import NAME, gnutls_cli, interact, s_client

COLUMNS = ["dovecot-exec", "dovecot-connect", "courier-exec", "cyrus-connect", "haproxy"]
USER, PASSWORD = "alice", "secret"


class Target:
    def __init__(self, column, port, gate, certs):
        self.column = column
        self.port = port
        self.gate = gate
        self.certs = certs
        self.msgs = []

    def seed(self, n=2):
        """n messages stored through the gate; returns them."""
        for i in range(n):
            msg = ("From: Alice <alice@example.org>\r\nTo: alice@example.org\r\n"
                   "Subject: interop %s %d\r\nDate: %s\r\nMessage-ID: <%s@example.org>\r\n"
                   "\r\nbody of message %d, fetched by a real client\r\n"
                   % (self.column, i, email.utils.formatdate(), os.urandom(6).hex(), i)).encode()
            self.msgs.append(msg)
        with imaplib.IMAP4("127.0.0.1", self.port, timeout=20) as m:
            assert m.login(USER, PASSWORD)[0] == "OK"
            for msg in self.msgs[-n:]:
                typ, data = m.append("INBOX", None, None, msg)
                assert typ == "OK", data
            m.logout()
        return self.msgs[-n:]


@pytest.fixture(params=COLUMNS)
def target(request, start_gate, world, certs):
    col = request.param
    tls = conftest.tls_settings(certs, starttls="on")
    if col == "dovecot-exec":
        g = start_gate(**tls)
    elif col == "dovecot-connect":
        dovecot = request.getfixturevalue("dovecot")
        g = start_gate(exec=None, connect=[dovecot.addr()], **tls)
    elif col == "courier-exec":
        g = start_gate(exec=[courier_world(world), "Maildir"], **tls)
    elif col == "cyrus-connect":
        cy = request.getfixturevalue("cyrus")
        g = start_gate(exec=None, connect=[cy.addr()], **tls)
    else:
        g = start_gate(proxy_protocol=True, set_real_ip_from=["127.0.0.1"], **tls)
        h = request.getfixturevalue("haproxy")(g, "v2")
        return Target(col, h.port, g, certs)
    return Target(col, g.port, g, certs)


def need(tool):
    if not shutil.which(tool):
        pytest.fail("%s missing (tests/install-deps installs it)" % tool)


def unix(b):
    return b.replace(b"\r\n", b"\n")


def test_client_imaplib(target):
    msgs = target.seed()
    with imaplib.IMAP4("127.0.0.1", target.port, timeout=20) as m:
        assert m.login(USER, PASSWORD)[0] == "OK"
        typ, data = m.select("INBOX")
        assert (typ, data) == ("OK", [b"2"])
        got = []
        for i in (1, 2):
            typ, data = m.fetch(str(i), "(BODY.PEEK[])")
            assert typ == "OK", data
            got.append(data[0][1])
        m.logout()
    assert got == msgs


def test_client_curl(target):
    need("curl")
    msgs = target.seed()
    r = subprocess.run(["curl", "-sS", "--max-time", "20",
                        "--url", "imap://127.0.0.1:%d/INBOX;MAILINDEX=2" % target.port,
                        "-u", "%s:%s" % (USER, PASSWORD)], capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stderr, target.gate.log())
    assert r.stdout == msgs[1]


def test_client_mbsync(target, tmp_path):
    need("mbsync")
    msgs = target.seed()
    mb = helpers.Mbsync(tmp_path, target.port, USER, PASSWORD, host="localhost",
                        mech=None, ssl="STARTTLS", ca=target.certs.ca)
    mb.sync(target.gate.log())
    assert mb.messages() == sorted(unix(m) for m in msgs)


@pytest.mark.parametrize("tool", ["openssl", "gnutls-cli"])
def test_client_tls_cli(target, tool):
    """STARTTLS, then LOGIN and the next commands in one write."""
    need(tool)
    msgs = target.seed()
    make = s_client if tool == "openssl" else gnutls_cli
    cmd = make(target.port, target.certs, True)
    out, err, rc = interact(cmd, [b"x2 LOGIN alice secret\r\nx3 SELECT INBOX\r\n"
                                  b"x4 FETCH 2 BODY.PEEK[]\r\nx5 LOGOUT\r\n"], b"x5 OK",
                            timeout=20)
    text = out.replace(b"\r\n", b"\n")
    for tag in (b"x2", b"x3", b"x4", b"x5"):
        assert re.search(rb"(?m)^%s OK" % tag, text), (tag, out, err, target.gate.log())
    assert unix(msgs[1]) in text, (out, err)


@pytest.mark.parametrize("tls", ["plain", "starttls"])
def test_client_fetchmail(target, tmp_path, tls):
    need("fetchmail")
    msgs = target.seed()
    out = tmp_path / "mbox"
    rc = tmp_path / "fetchmailrc"
    ssl = ("sslproto '' " if tls == "plain" else
           "sslproto 'tls1.2+' sslcertck sslcertfile '%s' sslcommonname '%s' "
           % (target.certs.ca, NAME))
    rc.write_text(
        "set no syslog\n"
        "poll 127.0.0.1 port %d protocol IMAP auth password\n"
        "  user '%s' password '%s' is root here keep %s\n"
        "  mda \"/bin/sh -c 'cat >> %s; echo >> %s'\"\n"
        % (target.port, USER, PASSWORD, ssl, out, out))
    rc.chmod(0o600)
    env = dict(os.environ, FETCHMAILHOME=str(tmp_path), HOME=str(tmp_path))
    # Its own pid file: as root fetchmail locks /var/run/fetchmail.pid
    # whatever FETCHMAILHOME says, which the concurrent ASan pass shares.
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "-v", "--all",
                        "--pidfile", str(tmp_path / "fetchmail.pid")],
                       capture_output=True, timeout=60, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, (r.stdout, r.stderr, target.gate.log())
    if tls == "starttls":
        assert re.search(rb"STARTTLS|TLS connection", r.stdout + r.stderr), r.stdout
    got = out.read_bytes()
    for m in msgs:
        body = unix(m).split(b"\n\n", 1)[1]
        assert body in got, (got, r.stdout)
        assert re.search(rb"Subject: interop \S+ \d", got)


def test_client_neomutt(target, tmp_path):
    """neomutt, in a pseudo-terminal (script), opens INBOX over IMAP and
    pipes the second message to a file, then quits."""
    need("neomutt")
    need("script")
    msgs = target.seed()
    out = tmp_path / "piped"
    rc = tmp_path / "neomuttrc"
    rc.write_text(
        "set imap_user='%s'\nset imap_pass='%s'\n"
        "set ssl_starttls=yes\nset ssl_force_tls=yes\nset certificate_file='%s'\n"
        "set ssl_verify_host=no\n"
        "set header_cache='' message_cachedir=''\n"
        "set sort=date wait_key=no quit=yes beep=no pipe_decode=no\n"
        "set mbox_type=mbox record='' postponed='' folder='imap://127.0.0.1:%d/'\n"
        "set spoolfile='+INBOX'\n"
        % (USER, PASSWORD, tmp_path / "certs", target.port))
    # neomutt asks whether to trust a certificate it does not know: store
    # the test CA as already trusted.
    shutil.copy(target.certs.ca, tmp_path / "certs")
    push = 'push "<last-entry><pipe-message>cat > %s<enter><quit>"' % out
    cmd = "neomutt -n -F %s -f imap://127.0.0.1:%d/INBOX -e '%s'" % (rc, target.port, push)
    env = dict(os.environ, TERM="xterm", HOME=str(tmp_path))
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                       timeout=60, env=env, cwd=str(tmp_path), stdin=subprocess.DEVNULL)
    assert out.exists(), (r.returncode, r.stdout[-2000:], target.gate.log())
    assert unix(out.read_bytes()) == unix(msgs[1]), out.read_bytes()
