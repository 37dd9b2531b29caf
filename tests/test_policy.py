"""The policy that makes imapgate a gatekeeper (issue 15): what each process
is allowed after login, what a failure costs, what is hashed for a user that
does not exist, what the backend and the mail server are handed.  Each test
here is named in a tests/mutants/*.mutant file whose one-line change it
must notice (`make mutants`)."""

import os
import re
import time

import pytest

import conftest
import helpers
from conftest import tls_settings
from test_connect import expect_logged_in, fake_imap, login_line  # noqa: F401 (a fixture)

GATE_EXE = os.path.realpath(conftest.GATE_BIN)


# -- the sandbox, read back from /proc ---------------------------------------

def proc_limits(pid):
    """{"Max processes": (soft, hard), ...} from /proc/PID/limits."""
    out = {}
    with open("/proc/%d/limits" % pid) as f:
        next(f)
        for ln in f:
            m = re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", ln)
            if m:
                out[m.group(1)] = (m.group(2), m.group(3))
    return out


def sandbox_facts(pid):
    """What /proc says of a process's privileges: ids, groups, root,
    NoNewPrivs, the two rlimits the sandbox sets, and dumpability (a
    process that is not dumpable has its /proc files owned by root even
    when it runs as another uid)."""
    info = helpers.proc_info(pid)
    assert info, "process %d gone" % pid
    lim = proc_limits(pid)
    return {
        "uids": info["uids"], "gids": info["gids"], "groups": sorted(info["groups"]),
        "root": info["root"], "nonewprivs": info["nonewprivs"],
        "nproc": lim["Max processes"], "core": lim["Max core file size"],
        "status_owner": os.stat("/proc/%d/status" % pid).st_uid,
    }


def expected_sandbox(privsep_user, world):
    uid, gid = privsep_user.pw_uid, privsep_user.pw_gid
    return {
        "uids": [uid] * 4, "gids": [gid] * 4, "groups": [gid],
        "root": world.chroot, "nonewprivs": "1",
        "nproc": ("0", "0"), "core": ("0", "0"),
        "status_owner": 0,          # not dumpable (uid is not 0, see above)
    }


def gate_procs_with_client(g, client_port):
    """The imapgate processes that hold our client's connection (the
    listener and the spares of -L do not)."""
    return [p for p in g.processes()
            if p["exe"] == GATE_EXE and helpers.proc_has_peer(p["pid"], client_port)]


@pytest.mark.parametrize("mode", ["inetd", "listen"])
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_session_sandbox_from_proc(start_gate, certs, privsep_user, world, mode, tls):
    """Before login: the session has every restriction the sandbox sets
    (per connection and under -L, plaintext and TLS), the monitor none of
    them."""
    g = start_gate(mode=mode, **(tls_settings(certs, ssl=True) if tls else {}))
    c = g.connect_tls() if tls else g.connect()
    c.sendline("a NOOP")
    c.expect("a OK NOOP completed")
    port = c.sock.getsockname()[1]
    procs = helpers.wait_for(lambda: (lambda p: p if len(p) == 2 else None)(
        gate_procs_with_client(g, port)), timeout=5)
    assert procs, g.processes()
    pids = {p["pid"] for p in procs}
    session = [p for p in procs if p["ppid"] in pids]
    monitor = [p for p in procs if p["ppid"] not in pids]
    assert len(session) == 1 and len(monitor) == 1, procs
    assert sandbox_facts(session[0]["pid"]) == expected_sandbox(privsep_user, world)
    m = sandbox_facts(monitor[0]["pid"])
    assert (m["uids"], m["root"]) == ([0] * 4, "/"), m
    c.sendline("b LOGOUT")
    c.read_until_tagged("b")


@pytest.mark.parametrize("mode", ["inetd", "listen"])
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_relay_sandbox_from_proc(start_proxy, dovecot, certs, privsep_user, world, mode, tls):
    """Connect mode, logged in: every imapgate process left on the
    connection (plain: the monitor, now the relay; TLS: the session, which
    relays, and its monitor) is the privsep user, in the chroot, with
    NoNewPrivs, no processes, no core, not dumpable -- and still relays."""
    settings = tls_settings(certs, ssl=True) if tls else {}
    g = start_proxy(mode=mode, **settings)
    c = g.connect_tls() if tls else g.connect()
    c.send(login_line("a", "alice", "secret"))
    expect_logged_in(c, "a")
    port = c.sock.getsockname()[1]
    want = 2 if tls else 1

    def settled():
        p = gate_procs_with_client(g, port)
        return p if len(p) == want else None
    procs = helpers.wait_for(settled, timeout=5)
    assert procs, g.processes()
    expected = expected_sandbox(privsep_user, world)
    for p in procs:
        assert sandbox_facts(p["pid"]) == expected, p
    c.sendline("b SELECT INBOX")
    lines = c.read_until_tagged("b")
    assert lines[-1].startswith(b"b OK [READ-WRITE]"), lines
    c.sendline("c LOGOUT")
    c.read_until_tagged("c")


# -- the penalty: which failures grow it --------------------------------------

BASE = 0.4           # failure_delay
MAX = 4.0            # max_penalty, above failure_delay: the penalty can grow
SOURCE = "127.0.0.7"


def timed_failure(g, send, expect, source=SOURCE, tls=False):
    """Seconds from sending `send` on a fresh connection from `source` to
    the tagged NO starting `expect`."""
    c = g.connect(source=source)
    try:
        t0 = time.monotonic()
        c.send(send)
        line = c.expect_prefix(expect, timeout=MAX + 8)
        return time.monotonic() - t0, line
    finally:
        c.close()


def plain_ir(authzid, authcid, pw):
    return helpers.b64(("%s\0%s\0%s" % (authzid, authcid, pw)).encode())


# name -> (how to start the gate, what the client sends, what it gets, a guess?)
def failure_kinds(world, start_gate, start_proxy, auth_server, dovecot):
    wait_s = auth_server(default=helpers.auth_error("Invalid login", wait=0))
    no_s = auth_server(default=helpers.auth_error("Invalid login"))
    bad_s = auth_server(default=helpers.AuthReply(raw=b"this is not HTTP\r\n\r\n"))
    down = "http://127.0.0.1:%d/auth" % helpers.closed_port()
    gate_only = world.write_passwd(passwords={"alice": "gate-only-pw"}, name="passwd-gate")
    NO = b"a NO [AUTHENTICATIONFAILED]"
    TEMP = b"a NO [UNAVAILABLE]"
    return {
        # guesses: README's list
        "unknown-user": (lambda: start_gate(), b"a LOGIN nosuchuser pw\r\n", NO, True),
        "wrong-password": (lambda: start_gate(), b"a LOGIN alice wrong\r\n", NO, True),
        "authzid-of-another": (lambda: start_gate(),
                               b"a AUTHENTICATE PLAIN " + plain_ir("bob", "alice", "secret")
                               + b"\r\n", b"a NO [AUTHORIZATIONFAILED]", True),
        "auth-http-no": (lambda: start_gate(passwd_file=None, http=no_s.url()),
                         b"a LOGIN alice secret\r\n", b"a NO Invalid login", True),
        "auth-http-no-with-wait": (lambda: start_gate(passwd_file=None, http=wait_s.url()),
                                   b"a LOGIN alice secret\r\n", b"a NO Invalid login", True),
        "backend-refuses": (lambda: start_proxy(passwd_file=gate_only),
                            b"a LOGIN alice gate-only-pw\r\n", NO, True),
        "checkpassword-no": (lambda: start_proxy(passwd_file=None,
                                                 checkpassword=["/bin/sh", "-c", "exit 1", "c"]),
                             b"a LOGIN alice secret\r\n", NO, True),
        # temporary failures
        "passwd-file-missing": (lambda: start_gate(passwd_file=os.path.join(world.root, "none")),
                                b"a LOGIN alice secret\r\n", TEMP, False),
        "auth-http-down": (lambda: start_gate(passwd_file=None, http=down),
                           b"a LOGIN alice secret\r\n", TEMP, False),
        "auth-http-malformed": (lambda: start_gate(passwd_file=None, http=bad_s.url()),
                                b"a LOGIN alice secret\r\n", TEMP, False),
        "backend-down": (lambda: start_proxy(connect=["127.0.0.1:%d" % helpers.closed_port()]),
                         b"a LOGIN alice secret\r\n", TEMP, False),
        "checkpassword-111": (lambda: start_proxy(passwd_file=None,
                                                  checkpassword=["/bin/sh", "-c", "exit 111",
                                                                 "c"]),
                              b"a LOGIN alice secret\r\n", TEMP, False),
    }


KINDS = ["unknown-user", "wrong-password", "authzid-of-another", "auth-http-no",
         "auth-http-no-with-wait", "backend-refuses", "checkpassword-no",
         "passwd-file-missing", "auth-http-down", "auth-http-malformed", "backend-down",
         "checkpassword-111"]


@pytest.mark.parametrize("kind", KINDS)
def test_penalty_grows_for_guesses_only(start_gate, start_proxy, auth_server, dovecot,
                                        world, kind):
    """Two failures of one kind from an address, then a wrong password from
    it (all gates share the penalty file): after two guesses that probe
    waits 4 x failure_delay, after two temporary failures failure_delay
    only -- and a temporary failure itself waits failure_delay."""
    common = dict(failure_delay=BASE, max_penalty=MAX, max_attempts=1,
                  penalty_file=world.penalty_file)
    kinds = failure_kinds(world, lambda **kw: start_gate(**dict(common, **kw)),
                          lambda **kw: start_proxy(**dict(common, **kw)), auth_server, dovecot)
    make, send, expect, guess = kinds[kind]
    g = make()
    probe_gate = start_gate(**common)
    took = [timed_failure(g, send, expect)[0] for _ in range(2)]
    probe, _ = timed_failure(probe_gate, b"a LOGIN alice wrong\r\n",
                             b"a NO [AUTHENTICATIONFAILED]")
    if guess:
        assert 4 * BASE - 0.05 <= probe <= 4 * BASE + 1.0, (kind, took, probe)
    else:
        assert BASE - 0.05 <= probe <= 2 * BASE - 0.1, (kind, took, probe)
        assert all(BASE - 0.05 <= t <= 2 * BASE - 0.1 for t in took), (kind, took)
    # Another address pays nothing for it.
    other, _ = timed_failure(probe_gate, b"a LOGIN alice wrong\r\n",
                             b"a NO [AUTHENTICATIONFAILED]", source="127.0.0.8")
    assert BASE - 0.05 <= other <= 2 * BASE - 0.1, other


# -- unknown users cost a hash too ---------------------------------------------

SLOW_ROUNDS = 2500000        # SHA512-CRYPT rounds: about half a second here


def login_time(g, user, pw):
    c = g.connect()
    try:
        t0 = time.monotonic()
        c.sendline("a LOGIN %s %s" % (user, pw))
        c.expect(b"a" + helpers.AUTH_FAILED, timeout=30)
        return time.monotonic() - t0
    finally:
        c.close()


def test_unknown_user_is_hashed_with_a_slow_hash(start_gate, world):
    """failure_delay 0, so no delay pads the timing: a login as a user the
    passwd-file does not have takes as long as a wrong password for one it
    has (imapgate hashes with a setting borrowed from the file), not the
    instant a skipped hash would take."""
    slow = conftest._crypt("slow-pw", "$6$rounds=%d$%s" % (SLOW_ROUNDS, conftest._salt(16)))
    path = os.path.join(world.root, "passwd-slow")
    with open(path, "w") as f:
        f.write("slowuser:{SHA512-CRYPT}%s:%d:%d::%s::\n" % (
            slow, conftest.MAIL_UID, conftest.MAIL_GID, world.homes["alice"]))
    os.chmod(path, 0o600)
    g = start_gate(passwd_file=path, failure_delay=0.0, max_penalty=0.0)
    known = sorted(login_time(g, "slowuser", "wrong") for _ in range(3))[1]
    unknown = sorted(login_time(g, "nosuchuser", "wrong") for _ in range(3))[1]
    assert known >= 0.15, "the slow hash is not slow: %.3fs" % known
    assert unknown >= 0.6 * known, (unknown, known)


# -- {n+} exactly when the backend offers LITERAL+ ----------------------------

@pytest.mark.parametrize("plus", [True, False], ids=["literal-plus", "no-literal-plus"])
def test_backend_literal_plus_exactly_when_offered(start_proxy, fake_imap, plus):
    """A user name and password that need literals: with LITERAL+ offered
    imapgate sends {n+} and does not wait for a continuation; without it,
    {n} and a wait for each "+".  The LOGIN on the wire, line by line."""
    caps = b"IMAP4rev1 LITERAL+ AUTH=PLAIN" if plus else b"IMAP4rev1 AUTH=PLAIN"
    fake = fake_imap(caps=caps)
    g = start_proxy(connect=["127.0.0.1:%d" % fake.port], login="login", passwd_file=None)
    c = g.connect()
    c.send(login_line("a", 'al\\"ice', "se cr\\et"))
    lines = c.read_until_tagged("a")
    assert lines[-1] == b"a OK [CAPABILITY IMAP4rev1 X-FAKE-AFTER] Logged in", lines
    assert fake.credentials == [("LOGIN", [b'al\\"ice', b"se cr\\et"])], fake.commands
    login = [i for i, ln in enumerate(fake.commands) if b" LOGIN " in ln]
    assert len(login) == 1, fake.commands
    p = b"+" if plus else b""
    i = login[0]
    assert re.fullmatch(rb"\S+ LOGIN \{7%s\}" % re.escape(p), fake.commands[i]), fake.commands
    assert fake.commands[i + 1:i + 3] == [b" {8%s}" % p, b""], fake.commands
    assert fake.literal_waited == ([] if plus else [True, True]), fake.commands


# -- the exact environment of an exec'd mail server ---------------------------

# /proc/$$/environ is the block execve() got, untouched by the shell.
ENV_DUMP = """#!/bin/sh
cat /proc/$$/environ > "$1"
printf '%s OK [CAPABILITY IMAP4rev1] Logged in\\r\\n' "$IMAPLOGINTAG"
"""


def exec_env(g, world, outfile, login=b"a LOGIN alice secret\r\n", tls=False):
    c = g.connect_tls() if tls else g.connect()
    try:
        cport = c.sock.getsockname()[1]
        c.send(login)
        c.expect(b"a OK [CAPABILITY IMAP4rev1] Logged in")
        c.assert_closed()
    finally:
        c.close()
    with open(outfile, "rb") as f:
        raw = f.read()
    assert raw.endswith(b"\0"), raw
    entries = [e.decode() for e in raw[:-1].split(b"\0")]
    env = dict(e.split("=", 1) for e in entries)
    assert len(env) == len(entries), "a variable twice: %r" % entries
    return env, cport


@pytest.mark.parametrize("mode,tls", [("inetd", False), ("fd3", False), ("tcpserver", False),
                                      ("listen", False), ("inetd", True)])
@pytest.mark.parametrize("source", ["passwd_file", "checkpassword", "auth_http"])
def test_exec_environment_exactly(start_gate, world, auth_server, certs, mode, tls, source):
    """Every variable the mail server gets, every value, nothing else --
    whatever the super-server (tcpserver sets TCP* itself, systemd LISTEN_*)
    and the auth source.  After checkpassword and auth_http the user is the
    system account of that name (here `nobody`)."""
    script = os.path.join(world.root, "env-dump.sh")
    with open(script, "w") as f:
        f.write(ENV_DUMP)
    os.chmod(script, 0o755)
    outdir = os.path.join(world.root, "envout")
    os.mkdir(outdir)
    os.chmod(outdir, 0o777)
    outfile = os.path.join(outdir, "environ")
    settings = dict(exec=[script, outfile], mode=mode)
    if tls:
        settings.update(tls_settings(certs, ssl=True))
    if source == "passwd_file":
        user, home = "alice", world.homes["alice"]
    else:
        user, home = "nobody", conftest.pwd.getpwnam("nobody").pw_dir
        settings["passwd_file"] = None
        if source == "checkpassword":
            settings["checkpassword"] = ["/bin/sh", "-c", 'exec 3<&-; exit 0', "cpw"]
        else:
            settings["http"] = auth_server(default=helpers.auth_error("OK")).url()
    g = start_gate(**settings)
    env, cport = exec_env(g, world, outfile,
                          login=b"a LOGIN %s secret\r\n" % user.encode(), tls=tls)
    assert env == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "USER": user,
        "LOGNAME": user,
        "HOME": home,
        "AUTHENTICATED": user,
        "IMAPLOGINTAG": "a",
        "IP": "127.0.0.1",
        "LOCAL_IP": "127.0.0.1",
        "TCPREMOTEIP": "127.0.0.1",
        "TCPREMOTEPORT": str(cport),
        "TCPLOCALIP": "127.0.0.1",
        "TCPLOCALPORT": str(g.port),
        "CLIENT_INPUT": "MGEA",                  # base64 of "0a\0": no bytes after the login
        "DOVECOT_PRESERVE_ENVS": "IMAPLOGINTAG CLIENT_INPUT IP LOCAL_IP",
    }


@pytest.mark.parametrize("source", ["checkpassword", "auth_http"])
def test_exec_without_system_account_is_a_wrong_password(start_gate, world, auth_server, source):
    """checkpassword or auth_http says yes to a user with no system account:
    exec mode has no one to run the mail server as.  The client is told
    what a wrong password tells it (no oracle, issue 9 item 2); only the
    log, at notice level, says why."""
    settings = dict(passwd_file=None)
    if source == "checkpassword":
        settings["checkpassword"] = ["/bin/sh", "-c", "exit 0", "cpw"]
    else:
        settings["http"] = auth_server(default=helpers.auth_error("OK")).url()
    g = start_gate(**settings)
    c = g.connect()
    c.sendline("a LOGIN nosuchsystemuser secret")
    c.expect(b"a NO [AUTHENTICATIONFAILED] Authentication failed.")
    c.sendline("b NOOP")
    c.expect(b"b OK NOOP completed")
    assert helpers.wait_for(lambda: "notice: login refused: user=\"nosuchsystemuser\"" in g.log(),
                            timeout=3), g.log()
