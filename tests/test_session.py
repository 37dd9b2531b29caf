"""Whole sessions with real clients (imaplib, curl, mbsync) under each
super-server: imapgate in front, Dovecot behind."""

import email.utils
import imaplib
import os
import shutil
import subprocess

import pytest

import conftest
import helpers
from helpers import GREETING


def make_message(subject, size=0):
    body = "".join("line %d of the body, some text to fill it up\r\n" % i
                   for i in range(max(3, size // 44)))
    return ("From: Alice <alice@example.org>\r\n"
            "To: Bob <bob@example.org>\r\n"
            "Subject: %s\r\n"
            "Date: %s\r\n"
            "Message-ID: <%s@example.org>\r\n"
            "\r\n%s" % (subject, email.utils.formatdate(), os.urandom(6).hex(), body)).encode()


def append_message(port, user, pw, msg):
    with imaplib.IMAP4("127.0.0.1", port, timeout=10) as m:
        typ, _ = m.login(user, pw)
        assert typ == "OK"
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK", data
        m.logout()


def test_imaplib_full_session(start_gate, mode):
    g = start_gate(mode=mode)
    m = imaplib.IMAP4("127.0.0.1", g.port, timeout=10)
    try:
        assert m.welcome == GREETING
        typ, data = m.login("alice", "secret")
        assert typ == "OK" and data[0].endswith(b"Logged in"), data
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"0"], data
        msgs = [make_message("first"), make_message("second, larger", 20000)]
        for msg in msgs:
            typ, data = m.append("INBOX", "(\\Seen)", None, msg)
            assert typ == "OK", data
        typ, data = m.select("INBOX")
        assert data == [b"2"], data
        for i, msg in enumerate(msgs, 1):
            typ, data = m.fetch(str(i), "(BODY.PEEK[])")
            assert typ == "OK"
            assert data[0][1] == msg
        typ, data = m.search(None, "SUBJECT", "second")
        assert data == [b"2"], data
        typ, data = m.logout()
        assert typ == "BYE", data
    finally:
        try:
            m.shutdown()
        except OSError:
            pass
    # The mail landed in alice's Maildir, owned by the mail user.
    cur = os.path.join(g.world.maildir("alice"), "cur")
    files = os.listdir(cur)
    assert len(files) == 2, files
    for f in files:
        assert os.stat(os.path.join(cur, f)).st_uid == conftest.MAIL_UID


def test_imaplib_authenticate_plain(start_gate, mode):
    g = start_gate(mode=mode)
    with imaplib.IMAP4("127.0.0.1", g.port, timeout=10) as m:
        pw = conftest.USERS["carol"][0]
        typ, data = m.authenticate("PLAIN", lambda _: ("\0carol\0" + pw).encode())
        assert typ == "OK", data
        typ, data = m.list()
        assert typ == "OK" and any(b"INBOX" in d for d in data), data
        m.logout()


def test_imaplib_bad_login_raises(gate):
    with imaplib.IMAP4("127.0.0.1", gate.port, timeout=10) as m:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            m.login("alice", "nope")
        m.logout()


def curl(*args):
    if not shutil.which("curl"):
        pytest.fail("curl missing")
    return subprocess.run(["curl", "-s", "-S", "--max-time", "15"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


def test_curl_examine_and_fetch(start_gate, mode):
    g = start_gate(mode=mode)
    msg = make_message("for curl", 3000)
    append_message(g.port, "alice", "secret", msg)
    r = curl("--url", "imap://127.0.0.1:%d/INBOX" % g.port, "-u", "alice:secret",
             "-X", "EXAMINE INBOX")
    assert r.returncode == 0, r.stderr
    assert b"* 1 EXISTS" in r.stdout, r.stdout
    r = curl("--url", "imap://127.0.0.1:%d/INBOX;UID=1" % g.port, "-u", "alice:secret")
    assert r.returncode == 0, r.stderr
    assert r.stdout == msg


def test_curl_list(gate):
    r = curl("--url", "imap://127.0.0.1:%d/" % gate.port, "-u", "bob:" + conftest.USERS["bob"][0])
    assert r.returncode == 0, r.stderr
    assert b"INBOX" in r.stdout, r.stdout


@pytest.mark.parametrize("opt", ["AUTH=LOGIN", "AUTH=PLAIN"])
def test_curl_login_methods(start_gate, opt):
    g = start_gate(imap_auth=["plain", "login"])
    r = curl("--url", "imap://127.0.0.1:%d/INBOX" % g.port, "-u", "alice:secret",
             "--login-options", opt, "-X", "EXAMINE INBOX")
    assert r.returncode == 0, (r.stderr, g.log())
    assert b"EXISTS" in r.stdout, r.stdout


def test_curl_wrong_password(gate):
    r = curl("--url", "imap://127.0.0.1:%d/INBOX" % gate.port, "-u", "alice:nope",
             "-X", "EXAMINE INBOX")
    assert r.returncode == 67, (r.returncode, r.stderr)      # CURLE_LOGIN_DENIED


def test_mbsync_pulls_mailbox(start_gate, tmp_path):
    if not shutil.which("mbsync"):
        pytest.fail("mbsync missing")
    g = start_gate()
    msgs = [make_message("sync %d" % i) for i in range(3)]
    for msg in msgs:
        append_message(g.port, "alice", "secret", msg)
    mb = helpers.Mbsync(tmp_path, g.port, "alice", "secret", mech="PLAIN")
    mb.sync(g.log())
    assert mb.messages() == sorted(helpers.lf(m) for m in msgs)
