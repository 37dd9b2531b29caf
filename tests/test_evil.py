"""The compromised-session harness itself (issue 10 item 1,
tests/harness/README.md): loaded into imapgate, it acts in the sandboxed
session only -- never in the root monitor -- and answers on the wire."""

import pytest

import helpers
from conftest import evil


@pytest.mark.parametrize("mode", ["inetd", "listen"])
def test_harness_acts_in_the_session_only(start_gate, privsep_user, mode):
    """EVIL PID answers with the session's pid (a process of the privsep
    user whose parent, the monitor, runs as root); EVIL UID with the
    privsep user's uid; imapgate never sees the EVIL line (the next
    command is answered as the first)."""
    g = start_gate(mode=mode, evil=True)
    c = g.connect()
    ok, pid = evil(c, "PID")
    assert ok, pid
    ok, uid = evil(c, "UID")
    assert ok and uid == "%d %d" % (privsep_user.pw_uid, privsep_user.pw_uid), uid
    info = helpers.proc_info(int(pid))
    assert info and info["uids"][0] == privsep_user.pw_uid, info
    assert info["nonewprivs"] == "1", info
    monitor = helpers.proc_info(info["ppid"])
    assert monitor and monitor["uids"][0] == 0, monitor
    # The line went to the harness, not to the IMAP parser: no BAD for it.
    c.sendline("a NOOP")
    c.expect("a OK NOOP completed")
    ok, text = evil(c, "NO-SUCH-ACTION")
    assert ok is False and "unknown action" in text, text
    c.sendline("b LOGOUT")
    c.expect("* BYE Logging out")


def test_harness_idle_without_the_fixture_option(start_gate):
    """Without evil=True an EVIL line is only a bad command."""
    g = start_gate()
    c = g.connect()
    c.sendline("EVIL PID")
    line = c.readline()
    assert line.startswith(b"EVIL BAD") or b"BAD" in line, line
