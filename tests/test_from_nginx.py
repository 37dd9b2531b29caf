"""nginx configurations move over (issue 11 item 6): with auth.http,
backend.connect is optional -- the answer's Auth-Server/Auth-Port route,
an OK without them is a logged temporary failure, as in nginx -- and
README's side-by-side nginx `mail {}` block and imapgate.conf both run,
taken from README itself, against one recording auth_http server and one
Dovecot: the clients see the same logins, refusals and capabilities, and
the auth server gets the same requests."""
import os
import re
import signal
import subprocess
import time

import pytest

import conftest
import helpers
from helpers import auth_error, auth_ok, AuthReply
from test_connect import dovecot_login_re, expect_logged_in

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPFAIL = b"a NO [UNAVAILABLE] Temporary authentication failure."
MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"


def test_auth_http_alone_routes_by_the_answer(start_proxy, dovecot, auth_server):
    """No backend.connect at all: Auth-Server/Auth-Port are the route."""
    srv = auth_server(default=auth_ok(dovecot.port))
    g = start_proxy(connect=None, passwd_file=None, http=srv.url())
    assert "connect" not in open(g.conf_path).read()
    c = g.connect()
    c.sendline("a LOGIN alice secret")
    expect_logged_in(c, "a")
    c.sendline("b LOGOUT")
    assert c.read_until_tagged("b")[-1].startswith(b"b OK")
    assert dovecot.wait_log(dovecot_login_re("alice"), dovecot.log_mark)
    assert "login: user=\"alice\" method=LOGIN ip=127.0.0.1" in g.log(), g.log()


def test_auth_http_ok_without_route_is_tempfail_logged(start_proxy, dovecot, auth_server):
    """An OK naming no backend, with none configured: a temporary failure
    for the client (not a guess: no penalty), and its cause in the log."""
    srv = auth_server(default=AuthReply([("Auth-Status", "OK")]))
    g = start_proxy(connect=None, passwd_file=None, http=srv.url(), failure_delay=0.2,
                    max_penalty=5.0)
    c = g.connect()
    t0 = time.monotonic()
    c.sendline("a LOGIN alice secret")
    c.expect(TEMPFAIL)
    # The client may try again; a temporary failure costs no penalty.
    c.sendline("b LOGIN alice secret")
    c.expect(b"b NO [UNAVAILABLE] Temporary authentication failure.")
    assert time.monotonic() - t0 < 1.5
    c.sendline("c NOOP")
    c.expect(b"c OK NOOP completed")
    log = g.log()
    assert re.search(r'login failed: user="alice" method=LOGIN ip=127\.0\.0\.1 '
                     r'reason=auth_http gave no Auth-Server/Auth-Port attempt=1', log), log
    assert 'error: auth: auth_http gave no Auth-Server/Auth-Port (user "alice")' in log, log
    assert len(srv.requests) == 2


def test_auth_http_alone_cram_needs_auth_pass(start_proxy, dovecot, auth_server):
    """CRAM-MD5 leaves imapgate no password for the backend: with auth.http
    alone (connect mode by the answer's route), an OK without Auth-Pass is
    a temporary failure, as it is with backend.connect -- not a backend
    login with an empty password that would count as the client's guess."""
    from test_cram_oauth import cram_answer, cram_challenge
    srv = auth_server(default=auth_ok(dovecot.port))
    g = start_proxy(connect=None, passwd_file=None, http=srv.url(),
                    imap_auth=["plain", "cram-md5"], server_name="mail.example.org")
    c = g.connect()
    cram_answer(c, "alice", "secret", cram_challenge(c))
    c.expect(TEMPFAIL)
    assert "reason=auth_http gave no Auth-Pass for the backend login" in g.log(), g.log()


def test_auth_http_config_without_backend_checks(world):
    conftest.require_binary()
    conf = world.write_config("alone.conf", exec=None, passwd_file=None,
                              http="http://127.0.0.1:9/auth")
    r = subprocess.run([conftest.GATE_BIN, "-t", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 0, r.stderr.decode()
    # Without auth.http there is still no route: an error, as before.
    conf = world.write_config("none.conf", exec=None)
    r = subprocess.run([conftest.GATE_BIN, "-t", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 1
    assert "give exactly one of backend.exec and backend.connect" in r.stderr.decode()


# -- README's side-by-side ---------------------------------------------------------

def readme_blocks():
    """The nginx block and the imapgate.conf after it in "From nginx"."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    start = text.index("**From nginx.**")
    m = re.compile(r"```nginx\n(.*?)```\n\n```\n(.*?)```", re.S).search(text, start)
    assert m, "README's From nginx has no side-by-side"
    return m.group(1), m.group(2)


def nginx_conf(block, root, url, p143, p993, certs):
    text = block.replace("http://127.0.0.1:9000/auth", url)
    text = re.sub(r"listen   143;", "listen   127.0.0.1:%d;" % p143, text)
    text = re.sub(r"listen   993 ssl;", "listen   127.0.0.1:%d ssl;" % p993, text)
    text = text.replace("/etc/imapgate/tls/fullchain.pem", certs.server.cert)
    text = text.replace("/etc/imapgate/tls/privkey.pem", certs.server.key)
    assert str(p143) in text and str(p993) in text and url in text, text
    return ("load_module %s;\nworker_processes 1;\npid %s/nginx.pid;\n"
            "error_log %s/error.log info;\nevents { worker_connections 64; }\n%s"
            % (MAIL_MODULE, root, root, text))


def imapgate_conf(block, world, url, p143, p993, certs):
    text = block.replace("http://127.0.0.1:9000/auth", url)
    text = text.replace("port = 143;", "port = %d;" % p143)
    text = text.replace("port = 993;", "port = %d;" % p993)
    text = text.replace("/etc/imapgate/tls/fullchain.pem", certs.server.cert)
    text = text.replace("/etc/imapgate/tls/privkey.pem", certs.server.key)
    # The test machine's privsep and penalty table, not the example's.
    text = text.replace('auth: { http = "%s"; };' % url,
                        'auth: { http = "%s"; penalty_file = "%s"; failure_delay = 0.2; };'
                        % (url, world.penalty_file))
    assert "penalty_file" in text and str(p143) in text and str(p993) in text, text
    text += 'privsep: { user = "%s"; chroot = "%s"; };\n' % (conftest.PRIVSEP_USER,
                                                          world.chroot)
    return text


class Nginx:
    def __init__(self, root, conf):
        self.root = root
        self.path = os.path.join(root, "nginx.conf")
        with open(self.path, "w") as f:
            f.write(conf)
        out = open(os.path.join(root, "nginx.out"), "ab")
        self.proc = subprocess.Popen([conftest.NGINX_BIN, "-c", self.path, "-p", root + "/",
                                      "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=out, start_new_session=True)
        out.close()

    def log(self):
        text = ""
        for n in ("nginx.out", "error.log"):
            try:
                text += open(os.path.join(self.root, n), errors="replace").read()
            except FileNotFoundError:
                pass
        return text

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=5)


def session(port, certs, implicit, user, password, tag_out):
    """One client: CAPABILITY before login (plain side), STARTTLS or
    implicit TLS, LOGIN; returns (capabilities, login answer's last line)."""
    ctx = helpers.tls_context(certs.ca)
    c = helpers.Client(port)
    try:
        if implicit:
            c.start_tls(ctx, server_hostname="imap.example.test")
            c.expect_prefix(b"* OK")
            capa = None
        else:
            c.expect_prefix(b"* OK")
            c.sendline("c CAPABILITY")
            lines = c.read_until_tagged("c")
            capa = [ln for ln in lines if ln.startswith(b"* CAPABILITY ")][0].split()[2:]
            c.sendline("s STARTTLS")
            assert c.read_until_tagged("s")[-1].startswith(b"s OK"), "no STARTTLS"
            c.start_tls(ctx, server_hostname="imap.example.test")
        c.sendline('a LOGIN %s %s' % (user, password))
        last = c.read_until_tagged("a")[-1]
        if last.startswith(b"a OK"):
            c.sendline("b SELECT INBOX")
            assert c.read_until_tagged("b")[-1].startswith(b"b OK")
            c.sendline("%s LOGOUT" % tag_out)
            c.read_until_tagged(tag_out)
        return capa, last
    finally:
        c.close()


def wanted(req):
    """The request's headers that carry the login, as (name, value)."""
    keep = ("auth-method", "auth-user", "auth-pass", "auth-protocol", "auth-login-attempt",
            "client-ip")
    return sorted((k.lower(), v) for k, v in req.fields if k.lower() in keep)


def test_readme_nginx_block_and_imapgate_conf_side_by_side(world, certs, dovecot, auth_server):
    conftest.require_tool(conftest.NGINX_BIN)
    if not os.path.exists(MAIL_MODULE):
        pytest.fail("nginx mail module missing (libnginx-mod-mail, tests/install-deps)")
    nginx_block, gate_block = readme_blocks()
    srv = auth_server(default=auth_ok(dovecot.port))
    results = {}
    requests = {}
    for who in ("nginx", "imapgate"):
        p143, p993 = conftest.free_port(), conftest.free_port()
        if who == "nginx":
            root = os.path.join(world.root, "nginx-mail")
            os.mkdir(root)
            server = Nginx(root, nginx_conf(nginx_block, root, srv.url(), p143, p993, certs))
            stop = [server.stop]
            logs = server.log
            ready = helpers.wait_for(lambda: conftest.port_listening(p143) and
                                     conftest.port_listening(p993), timeout=10)
            assert ready, server.log()
        else:
            path = os.path.join(world.root, "from-nginx.conf")
            with open(path, "w") as f:
                f.write(imapgate_conf(gate_block, world, srv.url(), p143, p993, certs))
            gates = [conftest.Gate(world, "inetd", path,
                                   os.path.join(world.root, "from-nginx-%d.log" % p), )
                     for p in (p143, p993)]
            gates[0].start(port=p143)
            gates[1].start(port=p993)
            stop = [g.stop for g in gates]
            logs = lambda: gates[0].log() + gates[1].log()   # noqa: E731
        try:
            before = len(srv.requests)
            out = {}
            out["starttls"] = session(p143, certs, False, "alice", "secret", "z")
            out["implicit"] = session(p993, certs, True, "alice", "secret", "z")
            srv.push(auth_error("Invalid login or password"))
            out["refused"] = session(p993, certs, True, "alice", "wrong", "z")
            results[who] = out
            requests[who] = [wanted(r) for r in srv.requests[before:]]
        except BaseException:
            print(who, "log:\n", logs())
            raise
        finally:
            for s in stop:
                s()
    for who, out in results.items():
        capa, last = out["starttls"]
        assert {b"IMAP4rev1", b"UIDPLUS", b"STARTTLS", b"AUTH=PLAIN", b"AUTH=LOGIN"} <= set(capa), \
            (who, capa)
        assert re.match(rb"a OK .*Logged in", out["starttls"][1]), (who, out)
        assert re.match(rb"a OK .*Logged in", out["implicit"][1]), (who, out)
        assert out["refused"][1] == b"a NO Invalid login or password", (who, out)
    # The auth server cannot tell them apart.
    assert requests["nginx"] == requests["imapgate"], requests
    assert len(requests["nginx"]) == 3, requests
    assert ("auth-user", "alice") in requests["nginx"][0], requests
