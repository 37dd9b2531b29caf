"""fail2ban (issue 11 item 5): etc/fail2ban/filter.d/imapgate.conf, run by
fail2ban-regex over log lines imapgate wrote in this test -- guesses from
several loopback addresses, too many errors, a forged user name, a
server-side failure and successful logins -- finds every guessing
address and no other."""
import os
import re
import shutil
import subprocess
import time

import pytest

import helpers
from test_connect import expect_logged_in

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILTER = os.path.join(ROOT, "etc", "fail2ban", "filter.d", "imapgate.conf")
FAIL2BAN_REGEX = "/usr/bin/fail2ban-regex"
COMMON = "/etc/fail2ban/filter.d/common.conf"


def login_fails(g, source, user, password, expect=b"a NO "):
    c = g.connect(source=source)
    c.sendline("a LOGIN %s %s" % (user, password))
    c.expect_prefix(expect)
    c.close()


def produce_lines(start_gate, start_proxy, world):
    """(imapgate's log lines, guessing addresses, innocent addresses)."""
    guessers, innocent = set(), set()
    g = start_gate(failure_delay=0.1, max_errors=2)
    for src in ("127.0.0.2", "127.0.0.3"):
        login_fails(g, src, "alice", "wrong")          # wrong password
        login_fails(g, src, "nosuch", "x")             # unknown user
        guessers.add(src)
    # A user name that tries to forge another address into the line.
    login_fails(g, "127.0.0.4",
                '"x\\" ip=127.0.0.99 reason=wrong password attempt=1"', "x")
    guessers.add("127.0.0.4")
    innocent.add("127.0.0.99")
    # Too many protocol errors.
    c = g.connect(source="127.0.0.5")
    for tag in ("a", "b"):
        c.sendline("%s FROB" % tag)
        c.expect_prefix(b"%s BAD " % tag.encode())
    c.expect(b"* BYE Too many invalid commands")
    c.assert_closed()
    guessers.add("127.0.0.5")
    # Successful logins.
    for src in ("127.0.0.6", "127.0.0.7"):
        c = g.connect(source=src)
        c.sendline("a LOGIN alice secret")
        expect_logged_in(c, "a")
        c.sendline("b LOGOUT")
        c.read_until_tagged("b")
        c.close()
        innocent.add(src)
    # The server's fault, not the client's: the passwd-file is missing.
    g2 = start_gate(failure_delay=0.1,
                    passwd_file=os.path.join(world.root, "no-such-passwd"))
    login_fails(g2, "127.0.0.8", "alice", "secret")
    innocent.add("127.0.0.8")
    # Connect mode, pass-through: the backend refuses the password.
    p = start_proxy(passwd_file=None, failure_delay=0.1)
    login_fails(p, "127.0.0.9", "alice", "wrong")
    guessers.add("127.0.0.9")
    # Every line written (the log is the super-server's stderr).
    want = {"login failed": 7, "session closed: reason=too many errors": 1,
            "login: ": 2}
    assert helpers.wait_for(lambda: all(
        (g.log() + g2.log() + p.log()).count(k) >= n for k, n in want.items()),
        timeout=5), g.log() + g2.log() + p.log()
    lines = [ln for gate in (g, g2, p) for ln in gate.log().splitlines()
             if ln.startswith("imapgate[")]
    return lines, guessers, innocent


def fail2ban_ips(tmp, lines):
    """fail2ban-regex's matched addresses over `lines`, with the filter
    next to fail2ban's own common.conf, as it is installed."""
    d = os.path.join(tmp, "filter.d")
    os.makedirs(d, exist_ok=True)
    shutil.copy(FILTER, d)
    shutil.copy(COMMON, d)
    log = os.path.join(tmp, "mail.log")
    with open(log, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run([FAIL2BAN_REGEX, "--out", "ip", log, os.path.join(d, "imapgate.conf")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    return [ln.strip() for ln in r.stdout.decode().splitlines() if ln.strip()]


def test_fail2ban_filter_finds_guessers_only(start_gate, start_proxy, world, tmp_path):
    if not os.access(FAIL2BAN_REGEX, os.X_OK):
        pytest.fail("fail2ban-regex missing (tests/install-deps installs fail2ban)")
    lines, guessers, innocent = produce_lines(start_gate, start_proxy, world)
    stamp = time.strftime("%b %e %H:%M:%S")
    # As syslog writes imapgate's lines (facility mail): the tag is
    # imapgate's own "imapgate[PID]:".
    syslog = ["%s mail1 %s" % (stamp, ln) for ln in lines]
    # As fail2ban's systemd backend shows a journal entry of fd 2
    # (SyslogIdentifier=imapgate): the journal's prefix, then imapgate's.
    journal = ["%s mail1 imapgate[4242]: %s" % (stamp, ln) for ln in lines]
    # systemd's own line for MaxConnectionsPerSource= (src/core/socket.c),
    # written here by hand: no systemd runs as PID 1 on the test machine.
    systemd = ["%s mail1 systemd[1]: imapgate.socket: Too many incoming connections "
               "(11) from source 127.0.0.10, dropping connection." % stamp]
    for shape, text in (("syslog", syslog), ("journal", journal)):
        ips = fail2ban_ips(os.path.join(str(tmp_path), shape), text + systemd)
        found = set(ips)
        assert found == guessers | {"127.0.0.10"}, (shape, ips, text)
        assert not found & innocent, (shape, ips)
        # One match per failure line: 2 guesses from each of .2 and .3,
        # one each from .4, .5 (the errors), .9 and .10.
        counts = {ip: ips.count(ip) for ip in found}
        assert counts == {"127.0.0.2": 2, "127.0.0.3": 2, "127.0.0.4": 1,
                          "127.0.0.5": 1, "127.0.0.9": 1, "127.0.0.10": 1}, (shape, counts)


def test_fail2ban_jail_example_loads(tmp_path):
    """fail2ban's own configuration test accepts the example jail, enabled,
    with the filter installed next to fail2ban's (Debian's sshd jail, which
    wants /var/log/auth.log, left out)."""
    if not os.access("/usr/bin/fail2ban-client", os.X_OK):
        pytest.fail("fail2ban-client missing (tests/install-deps installs fail2ban)")
    d = os.path.join(str(tmp_path), "fail2ban")
    shutil.copytree("/etc/fail2ban", d)
    for name in os.listdir(os.path.join(d, "jail.d")):
        os.unlink(os.path.join(d, "jail.d", name))
    shutil.copy(FILTER, os.path.join(d, "filter.d"))
    with open(os.path.join(ROOT, "etc", "fail2ban", "jail.d", "imapgate.conf")) as f:
        jail = f.read()
    assert re.search(r"^enabled\s*=\s*false$", jail, re.M)
    with open(os.path.join(d, "jail.d", "imapgate.conf"), "w") as f:
        f.write(re.sub(r"^enabled\s*=\s*false$", "enabled = true", jail, flags=re.M))
    r = subprocess.run(["/usr/bin/fail2ban-client", "-c", d, "-t"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0 and "configuration test is successful" in out, out
    # The jail is there, with our filter.
    r = subprocess.run(["/usr/bin/fail2ban-client", "-c", d, "-d"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode()
    assert "['add', 'imapgate', 'systemd']" in out, out[-3000:]
    assert "journalmatch" in out and "SYSLOG_IDENTIFIER=imapgate" in out, out[-3000:]
