"""What a failed login tells the client (issue 9, items 1 and 2): nothing.

An unknown user, a wrong password, a password the hash function refuses
(libxcrypt: 512 bytes or more) and an account exec mode will never run
(uid 0, no uid:gid) all get the same NO [AUTHENTICATIONFAILED], after at
least failure_delay, and each counts as a guess in the address's penalty
(asserted on the penalty table itself: delays on a loaded machine are
only checked against their lower bound)."""

import os
import struct
import time

import pytest

import conftest
from helpers import AUTH_FAILED

DELAY = 0.3


# -- the penalty table (src/penalty.c's layout) ----------------------------------

def penalty_failures(path, ip="127.0.0.1"):
    """The failure count the table holds for an IPv4 address (0: none)."""
    key = b"\0" * 10 + b"\xff\xff" + bytes(int(x) for x in ip.split("."))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    assert data[:8] == b"IGPEN1\0\0", data[:16]
    slots = struct.unpack_from("<I", data, 12)[0]
    total = 0
    for i in range(slots):
        k, failures = struct.unpack_from("<16sI", data, 16 + 40 * i)
        if k == key:
            total += failures
    return total


def long_password(n):
    return (b"pw" + b"p" * n)[:n]


def fail_once(c, world, tag, user, pw):
    """Send LOGIN with pw as a non-synchronizing literal; assert the
    failure reply, a wait of at least DELAY and one more failure in the
    penalty table.  Returns the seconds it took."""
    before = penalty_failures(world.penalty_file)
    t0 = time.monotonic()
    c.send(b"%s LOGIN %s {%d+}\r\n%s\r\n" % (tag, user, len(pw), pw))
    c.expect(tag + AUTH_FAILED, timeout=20)
    took = time.monotonic() - t0
    assert took >= DELAY - 0.02, (user, len(pw), took)
    after = penalty_failures(world.penalty_file)
    assert after == before + 1, (user, len(pw), before, after)
    return took


def no_error_lines(g):
    errors = [ln for ln in g.log().splitlines() if "error:" in ln]
    assert not errors, errors


# -- item 1: over-long passwords ---------------------------------------------------

@pytest.mark.parametrize("length", [511, 512, 4000])
def test_long_password_is_a_wrong_password_for_every_scheme(start_gate, world, length):
    g = start_gate(failure_delay=DELAY, max_penalty=DELAY, max_attempts=50)
    c = g.connect()
    pw = long_password(length)
    users = sorted(conftest.USERS) + ["nobody-here", "zz-unknown"]
    for i, user in enumerate(users):
        fail_once(c, world, b"t%d" % i, user.encode(), pw)
    # The same connection still logs in: nothing was refused for good.
    c.sendline("z NOOP")
    c.expect(b"z OK NOOP completed")
    no_error_lines(g)


def test_long_password_known_and_unknown_user_same_wait(start_gate, world):
    """The unknown user's dummy hash and a known crypt user's hash refuse
    the same passphrase the same way: no faster answer for either."""
    g = start_gate(failure_delay=DELAY, max_penalty=DELAY, max_attempts=50)
    c = g.connect()
    pw = long_password(512)
    known, unknown = [], []
    for i in range(3):
        known.append(fail_once(c, world, b"k%d" % i, b"bob", pw))
        unknown.append(fail_once(c, world, b"u%d" % i, b"nobody-here", pw))
    # Generous: the machine is shared; a TEMPFAIL-style instant answer
    # would be DELAY faster.
    assert abs(sorted(known)[1] - sorted(unknown)[1]) < DELAY / 2, (known, unknown)
    no_error_lines(g)


# -- item 2: accounts exec mode refuses ---------------------------------------------

REFUSED = {
    # name: (password, passwd-file line after the name and password)
    "root": ("r00t-right-pw", "0:0::/root::"),
    "noids": ("noids-right-pw", ":::/tmp::"),
    "badids": ("badids-right-pw", "no-such-account-xyz:no-such-group-xyz::/tmp::"),
}


def refused_passwd(world):
    """The world's passwd-file plus the refused accounts."""
    path = os.path.join(world.root, "passwd-refused")
    with open(world.passwd_file) as f:
        text = f.read()
    for user, (pw, rest) in REFUSED.items():
        text += "%s:{PLAIN}%s:%s\n" % (user, pw, rest)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


@pytest.mark.parametrize("user", sorted(REFUSED))
def test_refused_account_right_password_answers_as_wrong(start_gate, world, user):
    g = start_gate(passwd_file=refused_passwd(world), failure_delay=DELAY,
                   max_penalty=DELAY, max_attempts=10)
    c = g.connect()
    right = REFUSED[user][0].encode()
    times = {"right": [], "wrong": []}
    for i in range(2):
        times["right"].append(fail_once(c, world, b"r%d" % i, user.encode(), right))
        times["wrong"].append(fail_once(c, world, b"w%d" % i, user.encode(), b"wrong-pw"))
    assert abs(min(times["right"]) - min(times["wrong"])) < DELAY / 2, times
    c.sendline("z NOOP")
    c.expect(b"z OK NOOP completed")
    c.close()
    # The operator sees why, at notice level (no error line: a client
    # can cause it at will).
    log = g.log()
    assert "notice: login refused: user=\"%s\" ip=127.0.0.1: " % user in log, log[-2000:]
    no_error_lines(g)


@pytest.mark.parametrize("user,pw", [(b"root", REFUSED["root"][0].encode()),
                                     (b"bob", long_password(512)),
                                     (b"nobody-here", long_password(4000))],
                         ids=["refused-root", "long-known", "long-unknown"])
def test_penalty_grows(start_gate, world, user, pw):
    """With max_penalty above failure_delay, the right password of a
    refused account, and a password crypt refuses, double the address's
    delay as a wrong one does: 0.2, 0.4, 0.8."""
    g = start_gate(passwd_file=refused_passwd(world), failure_delay=0.2,
                   max_penalty=3.0, max_attempts=10)
    c = g.connect()
    t = []
    for i in range(3):
        t0 = time.monotonic()
        c.send(b"r%d LOGIN %s {%d+}\r\n%s\r\n" % (i, user, len(pw), pw))
        c.expect(b"r%d" % i + AUTH_FAILED, timeout=20)
        t.append(time.monotonic() - t0)
    assert penalty_failures(world.penalty_file) == 3
    assert t[0] >= 0.18 and t[1] >= 0.38 and t[2] >= 0.78, t
    no_error_lines(g)


@pytest.mark.parametrize("user", ["root", "ghost-no-system-account"])
def test_checkpassword_refused_account_gets_no_oracle(start_gate, world, user):
    """A checkpassword program that accepts root (PAM, /etc/shadow), or a
    user with no system account to run as, must not turn exec mode's
    refusal into a password oracle."""
    script = os.path.join(world.root, "cpw-accept.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n"
                "data=$(tr '\\0' '\\n' <&3)\n"
                "user=$(printf '%%s\\n' \"$data\" | sed -n 1p)\n"
                "pw=$(printf '%%s\\n' \"$data\" | sed -n 2p)\n"
                "[ \"$user\" = %s ] && [ \"$pw\" = right-pw ] && exec \"$@\"\n"
                "exit 1\n" % user)
    os.chmod(script, 0o755)
    g = start_gate(passwd_file=None, checkpassword=[script], failure_delay=DELAY,
                   max_penalty=DELAY, max_attempts=10)
    c = g.connect()
    fail_once(c, world, b"r1", user.encode(), b"right-pw")
    fail_once(c, world, b"w1", user.encode(), b"wrong-pw")
    fail_once(c, world, b"r2", user.encode(), b"right-pw")
    log = g.log()
    assert "notice: login refused: user=\"%s\"" % user in log, log[-2000:]
    no_error_lines(g)
