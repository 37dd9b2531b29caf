"""The per-address failure penalty: every failed login from an address
doubles that address's delay (starting at auth.failure_delay, at most
auth.max_penalty), across all imapgate processes through the shared
table in auth.penalty_file; a success clears it; a deleted or corrupt
table is recreated.  Exec mode, max_attempts 1: every login is its own
connection and its own imapgate process."""

import os
import threading
import time

import pytest

from helpers import AUTH_FAILED, logged_in_re

BASE = 0.2
MAX = 3.0
SLACK = 1.5          # scheduling, process start, Dovecot: never a doubling


def start(start_gate, world):
    return start_gate(failure_delay=BASE, max_attempts=1, max_penalty=MAX,
                      penalty_file=world.penalty_file)


def fail_time(g, source):
    """Seconds from a wrong LOGIN from `source` to its NO (then the
    connection closes: max_attempts 1)."""
    c = g.connect(source=source)
    try:
        t0 = time.monotonic()
        c.sendline("a LOGIN alice wrong")
        c.expect(b"a" + AUTH_FAILED, timeout=MAX + 6)
        took = time.monotonic() - t0
        c.expect(b"* BYE Too many authentication failures", timeout=3)
        c.assert_closed(timeout=3)
        return took
    finally:
        c.close()


def login_ok(g, source):
    c = g.connect(source=source)
    try:
        c.sendline("a LOGIN alice secret")
        c.expect_re(logged_in_re("a"), timeout=MAX + 6)
        c.sendline("z LOGOUT")
        lines = c.read_until_tagged("z")
        assert lines[-1].startswith(b"z OK"), lines
    finally:
        c.close()


def near(t, expected):
    return expected - 0.03 <= t <= expected + 0.45


def test_ten_parallel_failures_slow_that_address_only(start_gate, world):
    g = start(start_gate, world)
    times, errors = [], []

    def one():
        try:
            times.append(fail_time(g, "127.0.0.2"))
        except BaseException as e:          # reported below
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(MAX + 15)
    assert not errors, errors
    assert len(times) == 10, times
    assert max(times) <= MAX + SLACK, sorted(times)       # capped at max_penalty
    assert os.path.exists(world.penalty_file)

    later = fail_time(g, "127.0.0.2")
    assert 2.0 <= later <= MAX + SLACK, (later, sorted(times))
    other = fail_time(g, "127.0.0.3")
    assert near(other, BASE), other

    login_ok(g, "127.0.0.2")                # a success clears the address
    after = fail_time(g, "127.0.0.2")
    assert near(after, BASE), after


def test_sequential_failures_double(start_gate, world):
    g = start(start_gate, world)
    t = [fail_time(g, "127.0.0.2") for _ in range(3)]
    assert near(t[0], BASE) and near(t[1], 2 * BASE) and near(t[2], 4 * BASE), t
    assert near(fail_time(g, "127.0.0.3"), BASE)


def test_table_deleted_mid_test_is_recreated(start_gate, world):
    g = start(start_gate, world)
    fail_time(g, "127.0.0.2")
    assert near(fail_time(g, "127.0.0.2"), 2 * BASE)
    assert os.path.exists(world.penalty_file)
    os.unlink(world.penalty_file)
    t = fail_time(g, "127.0.0.2")
    assert near(t, BASE), t
    assert os.path.exists(world.penalty_file)
    t = fail_time(g, "127.0.0.2")
    assert near(t, 2 * BASE), t             # and the new table works
    login_ok(g, "127.0.0.2")


@pytest.mark.parametrize("garbage", ["random", "short", "text"])
def test_corrupt_table_still_works(start_gate, world, garbage):
    g = start(start_gate, world)
    fail_time(g, "127.0.0.2")
    assert os.path.exists(world.penalty_file)
    data = {"random": os.urandom(8192), "short": b"\x01\x02\x03\x04\x05",
            "text": b"127.0.0.2 999999\n" * 500}[garbage]
    with open(world.penalty_file, "wb") as f:
        f.write(data)
    t = fail_time(g, "127.0.0.2")
    assert t <= MAX + SLACK, t
    login_ok(g, "127.0.0.2")
    t1 = fail_time(g, "127.0.0.2")
    t2 = fail_time(g, "127.0.0.2")
    assert near(t1, BASE) and near(t2, 2 * BASE), (t1, t2)
    assert near(fail_time(g, "127.0.0.3"), BASE)
