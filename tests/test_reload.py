"""Listener mode run for months (issue 11 items 1 and 2): SIGHUP reloads
the configuration, certificates and keys without dropping anyone; SIGTERM
stops taking connections, tells the clients that have not logged in, and
leaves the logged-in ones to their end.  A real -L listener, real clients:
what they see on the wire, and the log."""
import os
import re
import shutil
import signal
import socket
import time

import pytest

import helpers
from conftest import tls_settings


def _copy_pair(world, pair, name):
    """pair's certificate and key as world files `name`.crt/.key (what an
    ACME client renews in place): the paths the configuration names."""
    cert = os.path.join(world.root, name + ".crt")
    key = os.path.join(world.root, name + ".key")
    shutil.copyfile(pair.cert, cert + ".new")
    shutil.copyfile(pair.key, key + ".new")
    os.chmod(key + ".new", 0o600)
    os.rename(key + ".new", key)
    os.rename(cert + ".new", cert)
    return cert, key


def _fingerprint(g):
    """The server certificate a new implicit-TLS client is shown (SHA-1 of
    its DER), and the greeting text after the capability list."""
    ctx = helpers.tls_context(g.world.certs.ca)
    ctx.check_hostname = False
    c = g.connect_tls(context=ctx)
    try:
        import hashlib
        der = c.sock.getpeercert(binary_form=True)
        return hashlib.sha1(der).hexdigest(), c.greeting
    finally:
        c.close()


def _many_at_once(g, n):
    """n clients connected at once (before any handshake), each held open
    until all have theirs: the certificates' fingerprints, in order."""
    import hashlib
    import ssl
    ctx = helpers.tls_context(g.world.certs.ca)
    ctx.check_hostname = False
    socks = [socket.create_connection(("127.0.0.1", g.port), timeout=5)
             for _ in range(n)]
    out = []
    try:
        for i, s in enumerate(socks):
            socks[i] = ctx.wrap_socket(s, server_hostname="imap.example.test")
            out.append(hashlib.sha1(socks[i].getpeercert(True)).hexdigest())
    finally:
        for s in socks:
            s.close()
    return out


def _login(g):
    """A TLS client logged in to the mail server (exec mode), INBOX open."""
    c = g.connect_tls()
    c.send(b"a LOGIN alice secret\r\n")
    c.expect_re(helpers.logged_in_re("a"))
    c.send(b"b SELECT INBOX\r\n")
    c.read_until_tagged(b"b")
    return c


def _still_works(c):
    c.send(b"c NOOP\r\n")
    c.read_until_tagged(b"c")
    c.send(b"d SELECT INBOX\r\n")
    lines = c.read_until_tagged(b"d")
    assert lines[-1].startswith(b"d OK"), lines


def _listener_pid(g):
    return g.proc.pid


def _rewrite(g, **overrides):
    g.world.write_config(os.path.basename(g.conf_path), **overrides)


def _settings(world, cert, key, greeting):
    return dict(tls_settings(world.certs), ssl=True, ssl_certificate=cert,
                ssl_certificate_key=key, greeting=greeting)


# -L, and a listening socket from systemd (Accept=no): the same listener.
LISTEN_MODES = ("listen", "accept-no")


@pytest.mark.parametrize("mode", LISTEN_MODES)
def test_reload_new_certificate_and_greeting(start_gate, world, certs, mode):
    cert, key = _copy_pair(world, certs.server, "served")
    g = start_gate(mode=mode, **_settings(world, cert, key, "before reload"))
    fp, greeting = _fingerprint(g)
    assert fp == certs.server.sha1()
    assert greeting.endswith(b"] before reload"), greeting
    old = _login(g)

    # Renewal in place (another certificate, same names in the file),
    # a new greeting, then `systemctl reload`: SIGHUP.
    _copy_pair(world, certs.other, "served")
    _rewrite(g, **_settings(world, cert, key, "after reload"))
    os.kill(_listener_pid(g), signal.SIGHUP)

    assert helpers.wait_for(lambda: "reloaded " in g.log(), timeout=5), g.log()
    # Every new client from now on, not one lucky spare: several at once,
    # more than the spares, so that whatever waits in accept() takes one.
    # (One client at a time would use up spares left over from before.)
    assert _many_at_once(g, 8) == [certs.other.sha1()] * 8
    assert _fingerprint(g) == (certs.other.sha1(),
                               greeting.replace(b"before", b"after"))
    # Logged in before the reload: its session is as it was.
    _still_works(old)
    old.send(b"z LOGOUT\r\n")
    old.expect_prefix(b"* BYE")
    old.close()
    assert "reloaded " in g.log()
    assert "reload failed" not in g.log()


def test_reload_broken_file_keeps_old(start_gate, world, certs):
    cert, key = _copy_pair(world, certs.server, "served")
    g = start_gate(mode="listen", **_settings(world, cert, key, "the old one"))
    _, greeting = _fingerprint(g)
    # A typo: the value is not an integer (line 2 of the file names it).
    _rewrite(g, **dict(_settings(world, cert, key, "never served"),
                      timeout="sixty"))
    with open(g.conf_path) as f:
        lineno = [i for i, ln in enumerate(f.read().splitlines(), 1)
                  if ln.startswith("timeout")][0]
    os.kill(_listener_pid(g), signal.SIGHUP)
    want = "%s:%d" % (g.conf_path, lineno)
    assert helpers.wait_for(lambda: want in g.log(), timeout=5), g.log()
    time.sleep(0.5)
    for _ in range(4):
        fp, gr = _fingerprint(g)
        assert (fp, gr) == (certs.server.sha1(), greeting)
    lines = [ln for ln in g.log().splitlines() if want in ln]
    assert len(lines) == 1, lines
    assert "timeout" in lines[0] and "reload failed" in lines[0], lines

    # A certificate that does not match its key: refused the same way.
    _copy_pair(world, certs.other, "mismatch")
    _rewrite(g, **_settings(world, os.path.join(world.root, "mismatch.crt"),
                            key, "never served either"))
    before = g.log().count("reload failed")
    os.kill(_listener_pid(g), signal.SIGHUP)
    assert helpers.wait_for(lambda: g.log().count("reload failed") > before,
                            timeout=5), g.log()
    time.sleep(0.3)
    assert g.log().count("reload failed") == before + 1, g.log()
    for _ in range(4):
        assert _fingerprint(g) == (certs.server.sha1(), greeting)
    # And a good file after the broken ones is taken.
    _rewrite(g, **_settings(world, cert, key, "fixed"))
    os.kill(_listener_pid(g), signal.SIGHUP)
    assert helpers.wait_for(
        lambda: _fingerprint(g)[1].endswith(b"] fixed"), timeout=5), g.log()


def test_reload_keeps_secrets_out_of_the_listener(start_proxy, dovecot,
                                                  privsep_user):
    """backend.master_password is read by each monitor after its fork,
    after a reload as at the start: neither the listener nor a session
    holds it, a spare's monitor does (so the search works), and the master
    login works with the reloaded file."""
    from conftest import MASTER_PASSWORD, MASTER_USER
    from test_tls import memory_holds
    master = {"master_user": MASTER_USER, "master_password": MASTER_PASSWORD}
    g = start_proxy(mode="listen", **master)
    settings = {"exec": None, "connect": [dovecot.addr()],
                "greeting": "reloaded"}
    settings.update(master)
    _rewrite(g, **settings)
    os.kill(_listener_pid(g), signal.SIGHUP)
    assert helpers.wait_for(lambda: "reloaded " in g.log(), timeout=5), g.log()
    c = g.connect()
    assert c.greeting.endswith(b"] reloaded")
    needle = [MASTER_PASSWORD.encode()]
    listener = _listener_pid(g)
    procs = g.processes()
    sessions = [p["pid"] for p in procs if p["uids"][0] == privsep_user.pw_uid]
    monitors = [p["pid"] for p in procs if p["ppid"] == listener]
    assert sessions and monitors, procs

    def holds(pid):
        """memory_holds(), or None for a process gone meanwhile (a
        client's session ending)."""
        try:
            return memory_holds(pid, needle)
        except (FileNotFoundError, ProcessLookupError):
            return None

    assert any(holds(m) for m in monitors), "the search works"
    assert holds(listener) is False, "the listener holds it"
    seen = [s for s in sessions if holds(s) is not None]
    assert seen, sessions
    for s in seen:
        assert not holds(s), "session %d holds it" % s
    for s in seen:
        fds = _fd_targets(s)
        assert not [t for t in fds if "memfd:" in t], (s, fds)
    c.sendline("a LOGIN alice secret")
    c.expect_prefix("a OK")
    c.sendline("b LOGOUT")
    c.expect("* BYE Logging out")

    # A broken file with the secrets in it: the reload fails, and the
    # monitors forked after it still read their secrets from the file as
    # it was loaded, not as it is now (every spare would die on it).
    settings["greeting"] = "broken"
    settings["timeout"] = "sixty"
    _rewrite(g, **settings)
    os.kill(listener, signal.SIGHUP)
    assert helpers.wait_for(lambda: "reload failed" in g.log(), timeout=5), g.log()
    for i in range(4):                    # past the spares of before
        c = g.connect()
        assert c.greeting.endswith(b"] reloaded"), c.greeting
        c.sendline("a%d LOGIN alice secret" % i)
        c.expect_prefix("a%d OK" % i)
        c.close()


def _fd_targets(pid):
    d = "/proc/%d/fd" % pid
    out = []
    try:
        for fd in os.listdir(d):
            try:
                out.append(os.readlink(os.path.join(d, fd)))
            except OSError:
                pass
    except OSError:
        pass
    return out


def test_reload_rotates_the_ticket_key(start_gate, world, certs):
    """The session-ticket key file is read again too: a ticket made before
    the key changed no longer resumes after the reload (a full handshake,
    which works); one made after does."""
    tkey = os.path.join(world.root, "ticket.key")
    shutil.copyfile(certs.ticket_key, tkey)
    os.chmod(tkey, 0o600)
    settings = tls_settings(certs, ssl=True, ssl_session_ticket_key=tkey)
    g = start_gate(mode="listen", **settings)
    ctx = helpers.tls_context(certs.ca)

    def session():
        c = g.connect_tls(ctx)
        s = c.sock.session
        c.close()
        assert s is not None and s.has_ticket
        return s

    def resumed(s):
        c = g.connect_tls(ctx, session=s)
        try:
            return c.sock.session_reused
        finally:
            c.close()

    old = session()
    assert resumed(old)
    shutil.copyfile(certs.ticket_key2, tkey + ".new")
    os.rename(tkey + ".new", tkey)
    os.kill(_listener_pid(g), signal.SIGHUP)
    assert helpers.wait_for(lambda: "reloaded " in g.log(), timeout=5), g.log()
    assert not resumed(old)
    assert resumed(session())


# -- stop: SIGTERM ------------------------------------------------------------

@pytest.mark.parametrize("mode", LISTEN_MODES)
def test_stop_preauth_bye_loggedin_continues(start_gate, world, mode):
    """SIGTERM: the listener exits at once, the port refuses new clients,
    a client that has not logged in gets BYE (long before its timeout), a
    logged-in one carries on."""
    g = start_gate(mode=mode, timeout=30)
    logged = g.connect()
    logged.send(b"a LOGIN alice secret\r\n")
    logged.expect_re(helpers.logged_in_re("a"))
    logged.send(b"b SELECT INBOX\r\n")
    logged.read_until_tagged(b"b")
    waiting = g.connect()
    waiting.send(b"x NOOP\r\n")
    waiting.expect(b"x OK NOOP completed")
    pid = _listener_pid(g)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    assert g.proc.wait(timeout=3) == 0, g.log()
    # Gone at once, and the socket with it: a new client is refused.
    assert time.monotonic() - t0 < 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", g.port), timeout=2).close()
    waiting.expect(b"* BYE Server shutting down", timeout=5)
    waiting.assert_closed()
    assert time.monotonic() - t0 < 5
    # The logged-in client's mail server is still there.
    _still_works(logged)
    logged.send(b"e LOGOUT\r\n")
    logged.expect(b"* BYE Logging out")
    logged.close()


def test_stop_preauth_bye_over_tls(start_gate, world, certs):
    """The BYE goes through the session's TLS, which only it has."""
    g = start_gate(mode="listen", ssl=True, timeout=30, **tls_settings(certs))
    waiting = g.connect_tls()
    logged = _login(g)
    os.kill(_listener_pid(g), signal.SIGTERM)
    assert g.proc.wait(timeout=3) == 0, g.log()
    waiting.expect(b"* BYE Server shutting down", timeout=5)
    _still_works(logged)
    logged.close()
