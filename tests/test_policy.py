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
from test_connect import expect_logged_in, login_line

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
def test_session_sandbox_from_proc(start_gate, privsep_user, world, mode):
    """Before login: the session has every restriction the sandbox sets
    (per connection and under -L), the monitor none of them."""
    g = start_gate(mode=mode)
    c = g.connect()
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
