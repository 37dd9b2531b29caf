"""The test environment itself: the private Dovecot config works when
/usr/lib/dovecot/imap is exec'd the way imapgate execs it (as the mail user,
socket on fd 0/1, env USER/HOME/IP/LOCAL_IP/IMAPLOGINTAG or CLIENT_INPUT and
DOVECOT_PRESERVE_ENVS).  If these fail, the imapgate tests cannot pass."""

import base64
import os
import re
import socket
import subprocess
import time

import conftest
import helpers

PRESERVE = "IMAPLOGINTAG CLIENT_INPUT IP LOCAL_IP"


def run_dovecot(world, user, env_extra, send=b"", timeout=10):
    a, b = socket.socketpair()
    env = {"USER": user, "HOME": world.homes[user], "IP": "127.0.0.1",
           "LOCAL_IP": "127.0.0.1", "DOVECOT_PRESERVE_ENVS": PRESERVE}
    env.update(env_extra)

    def drop():
        os.setgroups([])
        os.setgid(conftest.MAIL_GID)
        os.setuid(conftest.MAIL_UID)
        os.chdir(env["HOME"])

    p = subprocess.Popen([conftest.DOVECOT_IMAP, "-c", world.dovecot_conf],
                         stdin=b, stdout=b, stderr=subprocess.PIPE, env=env,
                         preexec_fn=drop)
    b.close()
    a.settimeout(timeout)
    if send:
        a.sendall(send)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            d = a.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    finally:
        a.close()
    try:
        err = p.communicate(timeout=5)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        err = p.communicate()[1]
    return out, err, p.returncode


def test_dovecot_standalone_imaplogintag(world):
    out, err, rc = run_dovecot(world, "alice", {"IMAPLOGINTAG": "a1"},
                               b"b SELECT INBOX\r\nc LOGOUT\r\n")
    lines = out.split(b"\r\n")
    assert re.match(helpers.logged_in_re("a1"), lines[0]), (out, err)
    assert any(ln.startswith(b"b OK [READ-WRITE]") for ln in lines), (out, err)
    assert b"c OK Logout completed" in out, (out, err)
    assert rc == 0, err
    st = os.stat(world.maildir("alice"))
    assert (st.st_uid, st.st_gid) == (conftest.MAIL_UID, conftest.MAIL_GID)


def test_dovecot_standalone_client_input(world):
    ci = base64.b64encode(b"0a1\0b SELECT INBOX\r\nc LOGOUT\r\n").decode()
    out, err, rc = run_dovecot(world, "bob", {"CLIENT_INPUT": ci})
    lines = out.split(b"\r\n")
    assert re.match(helpers.logged_in_re("a1"), lines[0]), (out, err)
    assert any(ln.startswith(b"b OK [READ-WRITE]") for ln in lines), (out, err)
    assert b"c OK Logout completed" in out, (out, err)


def test_tools_present():
    for tool in (conftest.DOVECOT_IMAP, conftest.SSA, conftest.TCPSERVER, "/usr/bin/curl"):
        assert os.access(tool, os.X_OK), "missing tool " + tool
