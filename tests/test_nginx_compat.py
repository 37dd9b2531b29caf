""""imapgate sends what nginx sends", proven (issue 15): nginx's own mail
proxy (libnginx-mod-mail) and imapgate in front of the same recording
auth_http server; the same logins through each (LOGIN, AUTHENTICATE PLAIN,
AUTHENTICATE LOGIN, CRAM-MD5, a retry after Auth-Wait); the two requests
compared header by header.

The differences allowed, and why (everything else must be byte-equal,
header names, order and values):

- Auth-Salt (CRAM-MD5): each server makes its own challenge; both must be
  `<digits.digits@server_name>`, and each request carries the challenge
  that server sent its client.
- Auth-Pass (CRAM-MD5): the client's digest over that server's challenge;
  each must be the right HMAC-MD5 of the password and that challenge.
- nothing else: not Host, not Client-IP (both see 127.0.0.1; nginx sends
  no port for IMAP, and neither does imapgate).
"""

import base64
import hashlib
import hmac
import os
import re
import signal
import subprocess
import time

import pytest

import conftest
import helpers
from helpers import b64

NGINX_BIN = "/usr/sbin/nginx"
MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"
SERVER_NAME = "mail.example.test"

NGINX_MAIL_CONF = """\
# nginx's mail proxy for IMAP, in front of the recording auth_http server.
load_module {module};
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
mail {{
    server_name {server_name};
    auth_http {auth};
    auth_http_header X-Auth-Key "k-123";
    imap_auth plain login cram-md5;
    server {{
        listen 127.0.0.1:{port}{proxy_protocol};
        {real_ip}
        protocol imap;
    }}
}}
"""


class NginxMail:
    def __init__(self, root, auth_hostport_uri, proxy=False):
        self.root = root
        self.proxy = proxy
        self.auth = auth_hostport_uri
        self.conf = os.path.join(root, "nginx-mail.conf")
        self.proc = None
        self.port = None

    def start(self):
        conftest.require_tool(NGINX_BIN)
        assert os.path.exists(MAIL_MODULE), "missing " + MAIL_MODULE
        last = ""
        for _ in range(3):
            self.port = conftest.free_port()
            with open(self.conf, "w") as f:
                f.write(NGINX_MAIL_CONF.format(module=MAIL_MODULE, d=self.root, port=self.port,
                                               auth=self.auth, server_name=SERVER_NAME,
                                               proxy_protocol=" proxy_protocol" if self.proxy
                                               else "",
                                               real_ip="set_real_ip_from 127.0.0.1;"
                                               if self.proxy else ""))
            out = open(os.path.join(self.root, "nginx.out"), "ab")
            self.proc = subprocess.Popen([NGINX_BIN, "-c", self.conf, "-p", self.root + "/",
                                          "-g", "daemon off;"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)
            out.close()
            deadline = time.monotonic() + conftest.START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if conftest.port_listening(self.port):
                    return self
                time.sleep(0.02)
            last = self.log()
            self.stop()
        pytest.fail("nginx mail proxy did not listen; log:\n%s" % last)

    def log(self):
        return helpers.read_logs(self.root, ("nginx.out", "error.log"))

    def connect(self, header=b""):
        c = helpers.Client(self.port)
        if header:
            c.send(header)
        c.greeting = c.expect_prefix(b"* OK")
        return c

    def stop(self):
        if not self.proc:
            return
        helpers.stop_group(self.proc, grace=5)
        self.proc = None


@pytest.fixture
def nginx_mail(world, request):
    made = []

    def make(srv, proxy=False):
        root = os.path.join(world.root, "nginx-mail-%d" % len(made))
        os.mkdir(root, 0o755)
        n = NginxMail(root, "127.0.0.1:%d/auth" % srv.port, proxy=proxy)
        made.append(n)
        request.node._h5_nginx = made
        return n.start()

    yield make
    for n in made:
        n.stop()


# -- the logins, the same bytes to either server ---------------------------------

def challenge_of(line):
    assert line.startswith(b"+ "), line
    return base64.b64decode(line[2:])


def cram_response(user, pw, challenge):
    digest = hmac.new(pw.encode(), challenge, hashlib.md5).hexdigest()
    return b64(("%s %s" % (user, digest)).encode())


def do_login(c, how):
    """Log in as alice through c the way `how` says; returns the CRAM-MD5
    challenge the server sent (or None).  The tagged answer is checked by
    the caller."""
    if how == "LOGIN":
        c.sendline("a LOGIN alice secret")
    elif how == "LOGIN-escaped":
        # nginx's %XX for space, '%' and control bytes in Auth-User/Pass
        c.sendline('a LOGIN "al ice%" "se\tcr et%"')
    elif how == "PLAIN":
        c.sendline("a AUTHENTICATE PLAIN")
        c.expect_continuation()
        c.send(b64(b"\0alice\0secret") + b"\r\n")
    elif how == "AUTH-LOGIN":
        c.sendline("a AUTHENTICATE LOGIN")
        c.expect_continuation()
        c.send(b64(b"alice") + b"\r\n")
        c.expect_continuation()
        c.send(b64(b"secret") + b"\r\n")
    elif how == "CRAM-MD5":
        c.sendline("a AUTHENTICATE CRAM-MD5")
        line = c.readline()
        chal = challenge_of(line)
        c.send(cram_response("alice", "secret", chal) + b"\r\n")
        return chal
    else:
        raise ValueError(how)
    return None


def tagged_ok(c, tag="a"):
    lines = c.read_until_tagged(tag)
    assert lines[-1].startswith(tag.encode() + b" OK"), lines
    return lines


CHALLENGE_RE = re.compile(rb"^<\d+\.\d+@" + re.escape(SERVER_NAME.encode()) + rb">$")


def compare(ngx, gate, challenges=(None, None)):
    """ngx and gate are AuthRequests; assert they agree but for the
    documented differences."""
    assert ngx.complete and gate.complete, (ngx, gate)
    assert gate.request_line == ngx.request_line, (ngx.raw, gate.raw)
    assert [k for k, _ in gate.fields] == [k for k, _ in ngx.fields], \
        "header names or order differ:\n nginx:    %r\n imapgate: %r" % (ngx.names(), gate.names())
    for (k, nv), (_, gv) in zip(ngx.fields, gate.fields):
        if challenges[0] is not None and k == "Auth-Salt":
            for v, chal in ((nv, challenges[0]), (gv, challenges[1])):
                assert CHALLENGE_RE.match(v.encode()) and v.encode() == chal, (k, v, chal)
            continue
        if challenges[0] is not None and k == "Auth-Pass":
            for v, chal in ((nv, challenges[0]), (gv, challenges[1])):
                assert v == hmac.new(b"secret", chal, hashlib.md5).hexdigest(), (k, v)
            continue
        assert gv == nv, "%s differs: nginx %r, imapgate %r" % (k, nv, gv)
    # And the raw bytes: the same header lines, CRLF, one blank line.
    assert gate.raw.endswith(b"\r\n\r\n") and ngx.raw.endswith(b"\r\n\r\n")


def start_both(start_proxy, nginx_mail, srv, proxy=False, **gate_kw):
    n = nginx_mail(srv, proxy=proxy)
    if proxy:
        gate_kw.update(proxy_protocol=True, set_real_ip_from=["127.0.0.1"])
    g = start_proxy(passwd_file=None, http=srv.url(), server_name=SERVER_NAME,
                    imap_auth=["plain", "login", "cram-md5"],
                    auth_http_header=["X-Auth-Key: k-123"], **gate_kw)
    return n, g


@pytest.mark.parametrize("how", ["LOGIN", "LOGIN-escaped", "PLAIN", "AUTH-LOGIN", "CRAM-MD5"])
def test_same_auth_http_request_as_nginx(start_proxy, dovecot, auth_server, nginx_mail, how):
    # Auth-User, Auth-Pass: nginx needs the password back to log in to
    # the backend after CRAM-MD5, and the escaped name is not a Dovecot
    # user; both servers get the same answer.
    srv = auth_server(default=helpers.auth_ok(dovecot.port, user="alice", password="secret"))
    n, g = start_both(start_proxy, nginx_mail, srv)
    chal = []
    for server in (n, g):
        c = server.connect()
        chal.append(do_login(c, how))
        tagged_ok(c)
        c.close()
    assert srv.count() == 2, srv.requests
    compare(srv.requests[0], srv.requests[1], challenges=tuple(chal))


def test_same_requests_as_nginx_on_retry_after_auth_wait(start_proxy, dovecot, auth_server,
                                                         nginx_mail):
    """A refusal with Auth-Wait: 1, then the client tries again on the same
    connection: both servers send attempt 1 and attempt 2 alike."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port, password="secret"))
    n, g = start_both(start_proxy, nginx_mail, srv)
    for server in (n, g):
        srv.push(helpers.auth_error("Invalid login or password", wait=1))
        c = server.connect()
        c.sendline("a LOGIN alice wrong")
        line = c.readline(timeout=5)
        assert line.startswith(b"a NO"), line
        c.sendline("b LOGIN alice secret")
        tagged_ok(c, "b")
        c.close()
    assert srv.count() == 4, srv.requests
    ngx, gate = srv.requests[:2], srv.requests[2:]
    assert [r.get("Auth-Login-Attempt") for r in ngx] == ["1", "2"], ngx
    for a, b in zip(ngx, gate):
        compare(a, b)


def test_same_auth_http_request_as_nginx_after_proxy_header(start_proxy, dovecot, auth_server,
                                                            nginx_mail):
    """Behind a load balancer (a PROXY v1 header from a trusted address):
    Client-IP is the header's source, and the Proxy-Protocol-* lines
    follow, in nginx's order and spelling."""
    srv = auth_server(default=helpers.auth_ok(dovecot.port, user="alice", password="secret"))
    n, g = start_both(start_proxy, nginx_mail, srv, proxy=True)
    header = helpers.proxy_v1("192.0.2.7", "198.51.100.9", 40001, 143)
    for server in (n, g):
        if server is n:
            c = n.connect(header=header)
        else:
            c = g.connect(greeting=False)
            c.send(header)
            c.expect_prefix(b"* OK")
        do_login(c, "LOGIN")
        tagged_ok(c)
        c.close()
    assert srv.count() == 2, srv.requests
    assert srv.requests[0].get("Client-IP") == "192.0.2.7", srv.requests[0]
    compare(srv.requests[0], srv.requests[1])
