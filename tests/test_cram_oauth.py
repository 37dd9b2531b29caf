"""CRAM-MD5 (RFC 2195), OAUTHBEARER (RFC 7628) and XOAUTH2: the challenge,
the verification against passwd-file {PLAIN} entries, the auth_http
request nginx would send for them, the RFC 7628 error continuation, and
advertising/accepting only what imap_auth lists."""

import base64
import hashlib
import hmac
import json
import re
import socket
import subprocess
import time

import pytest

import helpers
from helpers import AUTH_FAILED, b64, logged_in_re
from test_auth_http import check_request, expected_lines
from test_connect import dovecot_login_re, expect_logged_in

NO_MECH = b" NO Unsupported authentication mechanism"
CURL = "/usr/bin/curl"
ALL_MECHS = ["plain", "login", "cram-md5", "oauthbearer", "xoauth2"]


def cram_digest(pw, challenge):
    return hmac.new(pw.encode(), challenge, hashlib.md5).hexdigest()


def cram_challenge(c, tag="a"):
    """Start AUTHENTICATE CRAM-MD5; the decoded challenge."""
    c.sendline(tag + " AUTHENTICATE CRAM-MD5")
    line = c.expect_re(rb"^\+ [A-Za-z0-9+/]+={0,2}$")
    return base64.b64decode(line[2:], validate=True)


def cram_answer(c, user, pw, challenge):
    digest = cram_digest(pw, challenge)
    c.send(b64("%s %s" % (user, digest)) + b"\r\n")
    return digest


CHALLENGE_RE = rb"^<[^<>@\s]+\.\d+@%s>$"


def caps_of(line):
    m = re.match(rb"^(?:\* OK )?\[?CAPABILITY ([^\]]*)\]?", line) or \
        re.match(rb"^\* CAPABILITY (.*)$", line)
    assert m, line
    return set(m.group(1).split())


def start_cram_gate(start_gate, **kw):
    return start_gate(imap_auth=["plain", "cram-md5"], server_name="mail.example.org", **kw)


# -- CRAM-MD5 against the passwd-file ---------------------------------------------

def test_cram_md5_plain_entry_ok(start_gate):
    g = start_cram_gate(start_gate)
    c = g.connect()
    assert b"AUTH=CRAM-MD5" in caps_of(c.greeting)
    ch = cram_challenge(c)
    assert re.match(CHALLENGE_RE % rb"mail\.example\.org", ch), ch
    cram_answer(c, "alice", "secret", ch)
    c.expect_re(logged_in_re("a"))
    c.sendline("z LOGOUT")
    lines = c.read_until_tagged("z")
    assert lines[-1].startswith(b"z OK"), lines


def test_cram_md5_wrong_digest(start_gate):
    g = start_cram_gate(start_gate)
    c = g.connect()
    ch = cram_challenge(c)
    t0 = time.monotonic()
    cram_answer(c, "alice", "wrong", ch)
    c.expect(b"a" + AUTH_FAILED)
    assert time.monotonic() - t0 >= 0.18
    # a digest for another challenge is no good either
    ch2 = cram_challenge(c, "b")
    assert ch2 != ch
    cram_answer(c, "alice", "secret", ch)
    c.expect(b"b" + AUTH_FAILED)
    c.sendline("c NOOP")
    c.expect(b"c OK NOOP completed")


@pytest.mark.parametrize("user", ["bob", "carol"])
def test_cram_md5_non_plain_entry_refused(start_gate, world, user):
    g = start_cram_gate(start_gate)
    c = g.connect()
    ch = cram_challenge(c)
    cram_answer(c, user, world.passwords[user], ch)
    c.expect(b"a" + AUTH_FAILED)


def test_cram_md5_default_server_name_is_host_name(start_gate):
    g = start_gate(imap_auth=["plain", "cram-md5"])
    seen = set()
    for _ in range(2):
        c = g.connect()
        ch = cram_challenge(c)
        assert re.match(CHALLENGE_RE % re.escape(socket.gethostname().encode()), ch), ch
        seen.add(ch)
        c.close()
    assert len(seen) == 2, seen


def _curl(port, user, pw):
    return subprocess.run([CURL, "-sS", "-v", "--max-time", "10", "--login-options",
                           "AUTH=CRAM-MD5", "-u", "%s:%s" % (user, pw),
                           "imap://127.0.0.1:%d/" % port],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)


def test_cram_md5_with_curl(start_gate):
    g = start_cram_gate(start_gate)
    r = _curl(g.port, "alice", "secret")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, err
    assert "AUTHENTICATE CRAM-MD5" in err, err
    assert b"INBOX" in r.stdout, r.stdout
    r = _curl(g.port, "alice", "wrong")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0, err
    assert "AUTHENTICATE CRAM-MD5" in err and "AUTHENTICATIONFAILED" in err, err


# -- CRAM-MD5 through auth_http ------------------------------------------------------

def test_cram_md5_through_http(start_proxy, dovecot, auth_server):
    srv = auth_server(default=helpers.auth_ok(dovecot.port, user="alice", password="secret"))
    g = start_proxy(passwd_file=None, http=srv.url(), imap_auth=["plain", "cram-md5"],
                    server_name="mail.example.org")
    c = g.connect()
    ch = cram_challenge(c)
    digest = cram_answer(c, "alice", "secret", ch)
    expect_logged_in(c, "a")
    assert srv.count() == 1
    check_request(srv.requests[0],
                  expected_lines("alice", digest, method="cram-md5", salt=ch), server=srv)
    assert dovecot.wait_log(dovecot_login_re("alice"), dovecot.log_mark)


# -- OAUTHBEARER and XOAUTH2 through auth_http ---------------------------------------

TOKEN = "ya29.A0ARrdaM-tok_en/x+y="


def oauth_message(mech, user, token):
    if mech == "oauthbearer":
        return ("n,a=%s,\x01host=127.0.0.1\x01port=143\x01auth=Bearer %s\x01\x01"
                % (user, token))
    return "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)


def start_oauth(start_proxy, srv):
    return start_proxy(passwd_file=None, http=srv.url(), imap_auth=ALL_MECHS)


def send_oauth(c, mech, msg, ir):
    if ir:
        c.send(b"a AUTHENTICATE " + mech.upper().encode() + b" " + b64(msg) + b"\r\n")
    else:
        c.send(b"a AUTHENTICATE " + mech.upper().encode() + b"\r\n")
        c.expect_continuation()
        c.send(b64(msg) + b"\r\n")


@pytest.mark.parametrize("ir", [True, False], ids=["sasl-ir", "continuation"])
@pytest.mark.parametrize("mech", ["oauthbearer", "xoauth2"])
def test_oauth_success(start_proxy, dovecot, auth_server, mech, ir):
    srv = auth_server(default=helpers.auth_ok(dovecot.port, user="alice", password="secret"))
    g = start_oauth(start_proxy, srv)
    c = g.connect()
    send_oauth(c, mech, oauth_message(mech, "alice@example.org", TOKEN), ir)
    expect_logged_in(c, "a")
    assert srv.count() == 1
    check_request(srv.requests[0], expected_lines("alice@example.org", TOKEN, method=mech),
                  server=srv)
    assert dovecot.wait_log(dovecot_login_re("alice"), dovecot.log_mark)


@pytest.mark.parametrize("ir", [True, False], ids=["sasl-ir", "continuation"])
@pytest.mark.parametrize("mech", ["oauthbearer", "xoauth2"])
def test_oauth_failure_error_continuation(start_proxy, dovecot, auth_server, mech, ir):
    srv = auth_server(default=helpers.auth_error("Invalid token"))
    g = start_oauth(start_proxy, srv)
    c = g.connect()
    send_oauth(c, mech, oauth_message(mech, "alice", "bad-token"), ir)
    line = c.expect_re(rb"^\+ [A-Za-z0-9+/]+={0,2}$")
    # The error as README and imapgate(8) give it, byte for byte.
    err = base64.b64decode(line[2:], validate=True)
    assert err == {"oauthbearer": b'{"status":"invalid_token","schemes":"bearer"}',
                   "xoauth2": b'{"status":"401","schemes":"bearer"}'}[mech], err
    assert isinstance(json.loads(err), dict), err
    c.send(b"AQ==\r\n" if mech == "oauthbearer" else b"\r\n")
    c.expect(b"a" + AUTH_FAILED)
    assert srv.count() == 1
    assert srv.requests[0].get("Auth-Method") == mech
    assert srv.requests[0].get("Auth-Pass") == "bad-token"
    assert not dovecot.wait_log(r"Login: user=<alice>", dovecot.log_mark, timeout=0.3)


# -- advertised and accepted only when listed ------------------------------------------

@pytest.mark.parametrize("listed", [
    ["plain"], ["plain", "cram-md5"], ["plain", "oauthbearer"], ["plain", "xoauth2"],
    ALL_MECHS])
def test_mechanisms_advertised_and_accepted_only_when_listed(start_proxy, dovecot,
                                                             auth_server, listed):
    srv = auth_server(default=helpers.auth_ok(dovecot.port, user="alice", password="secret"))
    # six refusals below; each is an error that counts against max_errors
    g = start_proxy(passwd_file=None, http=srv.url(), imap_auth=listed, max_errors=20)
    c = g.connect()
    caps = caps_of(c.greeting)
    c.sendline("k CAPABILITY")
    lines = c.read_until_tagged("k")
    assert lines[-1] == b"k OK CAPABILITY completed" or lines[-1].startswith(b"k OK"), lines
    assert caps_of(lines[0]) == caps, lines
    for mech in ("cram-md5", "oauthbearer", "xoauth2", "login"):
        assert (b"AUTH=" + mech.upper().encode() in caps) == (mech in listed), caps
    for n, mech in enumerate(("CRAM-MD5", "OAUTHBEARER", "XOAUTH2")):
        if mech.lower() in listed:
            continue
        c.sendline("m%d AUTHENTICATE %s" % (n, mech))
        c.expect(b"m%d" % n + NO_MECH)
        ir = b64(oauth_message("xoauth2", "alice", TOKEN))
        c.send(b"i%d AUTHENTICATE %s %s\r\n" % (n, mech.encode(), ir))
        c.expect(b"i%d" % n + NO_MECH)
    c.sendline("z NOOP")
    c.expect(b"z OK NOOP completed")
    assert srv.count() == 0, srv.requests


def test_cram_md5_refused_when_not_listed_with_passwd_file(start_gate):
    g = start_gate()
    c = g.connect()
    assert not any(t.startswith(b"AUTH=CRAM") for t in caps_of(c.greeting))
    c.sendline("a AUTHENTICATE CRAM-MD5")
    c.expect(b"a" + NO_MECH)
