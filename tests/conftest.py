"""Fixtures for the imapgate integration suite.

A test gets a private world (temp dir, mail users with homes, a passwd-file,
a Dovecot config for running /usr/lib/dovecot/imap standalone, an empty
chroot dir) and starts imapgate under a real super-server on 127.0.0.1:

    def test_x(start_gate):
        gate = start_gate(mode="inetd", failure_delay=0.2, max_errors=3)
        with gate.connect() as c:          # greeting already read
            c.sendline("a NOOP")
            c.expect("a OK NOOP completed")

Modes: "inetd" (systemd-socket-activate -a --inetd: socket on fd 0/1),
"fd3" (systemd-socket-activate -a: socket on fd 3, LISTEN_FDS=1),
"tcpserver" (ucspi-tcp); listening sockets passed on: "inetd-wait"
(systemd-socket-activate --inetd without -a: a listening fd 0/1),
"accept-no" (systemd Accept=no: a listening fd 3), and "listen" (imapgate
-L, no super-server).  The super-server's stderr, which carries
imapgate's and Dovecot's log lines, goes to gate.log_path.

Connect mode: `dovecot` is a private Dovecot daemon (one per session, mail
emptied per test, log in dovecot.log_path) and `start_proxy(**overrides)`
starts imapgate with backend.connect pointing at it instead of exec.

Run: /usr/bin/python3 -m pytest -q tests/   (as root)
Environment: IMAPGATE_BIN overrides the binary; IMAPGATE_KEEP=1 keeps the
temp dirs.
"""

import fcntl
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # deprecated in 3.11 but present; only makes test hashes

sys.path.insert(0, os.path.dirname(__file__))
import helpers  # noqa: E402
import tlscerts  # noqa: E402

GATE_BIN = os.environ.get(
    "IMAPGATE_BIN",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "imapgate"))
DOVECOT_IMAP = "/usr/lib/dovecot/imap"
SSA = "/usr/bin/systemd-socket-activate"
TCPSERVER = "/usr/bin/tcpserver"
PRIVSEP_USER = "imapgate"
MAIL_UID = 65534
MAIL_GID = 65534
START_TIMEOUT = 10.0
MODES = ("inetd", "fd3", "tcpserver")

# name -> (password, how to store it).  Passwords are distinctive so the log
# checks can search for them.
USERS = {
    "alice": ("secret", "PLAIN"),
    "bob": ('b0b p"a\\ss', "SHA512-CRYPT"),
    "carol": ("c4rol-yescrypt", "RAW-YESCRYPT"),
    "dave": ("dave-blf-pw", "BLF-CRYPT"),
    "erin": ("erin-sha256-pw", "SHA256-CRYPT"),
    "frank": ("frankpw", "CRYPT"),          # traditional DES: <= 8 chars
    "gina": ("gina-raw6-pw", "RAW-SHA512"),
    "hank": ("hank-raw2b-pw", "RAW-BCRYPT"),
}

SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _crypt(pw, salt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = crypt.crypt(pw, salt)
    assert h and not h.startswith("*"), "crypt() refused salt %r" % salt
    return h


def _salt(n):
    return "".join(SALT_CHARS[b % 64] for b in os.urandom(n))


_GATE_WORDS = {}


def gate_knows(word):
    """Does the imapgate binary contain `word` (a config key name)?  Lets
    the suite run against a build that predates a key."""
    if word not in _GATE_WORDS:
        try:
            with open(GATE_BIN, "rb") as f:
                _GATE_WORDS[word] = word.encode() in f.read()
        except OSError:
            _GATE_WORDS[word] = False
    return _GATE_WORDS[word]


def make_hash(pw, how):
    """The passwd-file password field for `pw` stored as `how`."""
    if how == "PLAIN":
        return "{PLAIN}" + pw
    if how == "SHA512-CRYPT":
        return "{SHA512-CRYPT}" + _crypt(pw, "$6$" + _salt(16))
    if how == "SHA256-CRYPT":
        return "{SHA256-CRYPT}" + _crypt(pw, "$5$" + _salt(16))
    if how == "BLF-CRYPT":
        return "{BLF-CRYPT}" + _crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))
    if how == "CRYPT":
        return "{CRYPT}" + _crypt(pw, _salt(2))
    if how == "RAW-YESCRYPT":
        return _crypt(pw, "$y$j9T$" + _salt(16))
    if how == "RAW-SHA512":
        return _crypt(pw, "$6$" + _salt(16))
    if how == "RAW-BCRYPT":
        return _crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))
    raise ValueError(how)


# -- libconfig rendering -------------------------------------------------------

SECTION_OF = {
    "imap_capabilities": None, "imap_auth": None, "imap_client_buffer": None,
    "greeting": None, "timeout": None, "max_errors": None,
    # listener mode's limits
    "max_connections": None, "max_preauth": None, "max_preauth_per_source": None,
    "passwd_file": "auth", "failure_delay": "auth", "max_attempts": "auth",
    "exec": "backend",
    # connect mode
    "connect": "backend", "connect_timeout": "backend", "login": "backend",
    "master_user": "backend", "master_password": "backend", "forward_client": "backend",
    "proxy_timeout": None, "proxy_pass_error_message": None, "proxy_protocol": None,
    "set_real_ip_from": None,
    "user": "privsep", "chroot": "privsep",
    # auth services
    "checkpassword": "auth", "http": "auth", "max_penalty": "auth", "penalty_file": "auth",
    "auth_http_header": None, "auth_http_timeout": None, "server_name": None,
    # TLS (top level; each may also appear inside a `listen` group)
    "ssl": None, "starttls": None, "ssl_certificate": None, "ssl_certificate_key": None,
    "ssl_priority": None, "ssl_protocols": None, "ssl_session_ticket_key": None, "ssl_verify_client": None,
    "ssl_client_certificate": None, "ssl_handshake_timeout": None,
    "ssl_external_trust_session": None,
    "listen": None,
    # TLS to the backend: flat names, rendered without the prefix in backend {}
    "backend_ssl": "backend", "backend_starttls": "backend",
    "backend_ssl_trusted_certificate": "backend", "backend_ssl_name": "backend",
}

# Flat names whose key inside their section differs from the flat name.
KEY_IN_SECTION = {
    "backend_ssl": "ssl", "backend_starttls": "starttls",
    "backend_ssl_trusted_certificate": "ssl_trusted_certificate",
    "backend_ssl_name": "ssl_name",
}


def cfg_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        s = repr(v)
        return s if ("." in s or "e" in s) else s + ".0"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(cfg_value(x) for x in v) + "]"
    raise TypeError(v)


def render_group_lines(settings):
    """The lines of one libconfig group's body from flat names: top-level
    keys as they are, section keys (SECTION_OF) gathered in `auth = {...};`
    etc.  A dict value is a nested group as given (`{"auth": {"http": u}}`);
    names not in SECTION_OF (e.g. a listen group's `port`) stay top-level."""
    top, sections = [], {}
    for k, v in settings.items():
        if v is None:
            continue
        if isinstance(v, dict):
            sections.setdefault(k, []).extend(_verbatim_lines(v))
            continue
        sec = SECTION_OF.get(k)
        line = "%s = %s;" % (KEY_IN_SECTION.get(k, k), cfg_value(v))
        (top if sec is None else sections.setdefault(sec, [])).append(line)
    for sec, lines in sections.items():
        top.append("%s = { %s };" % (sec, " ".join(lines)))
    return top


def _verbatim_lines(group):
    """A group's body with its keys as given (no flat-name mapping)."""
    out = []
    for k, v in group.items():
        if v is None:
            continue
        if isinstance(v, dict):
            out += ["%s = { %s };" % (k, " ".join(_verbatim_lines(v)))]
        else:
            out.append("%s = %s;" % (k, cfg_value(v)))
    return out


def cfg_listen(groups):
    """`listen` as a libconfig list of groups: [{"port": 993, "ssl": True}]
    -> ( { port = 993; ssl = true; } )."""
    out = []
    for g in groups:
        out.append("{ " + " ".join(render_group_lines(g)) + " }")
    return "( " + ", ".join(out) + " )"


def render_config(settings, extra_top="", extra_sections=None):
    """settings: {key: value} with flat key names (see SECTION_OF);
    `listen` is a list of dicts, each rendered like settings."""
    extra_sections = extra_sections or {}
    top, sections = [], {"auth": [], "backend": [], "privsep": []}
    for k, v in settings.items():
        if v is None:
            continue
        sec = SECTION_OF[k]
        if k == "listen":
            line = "listen = %s;" % cfg_listen(v)
        else:
            line = "%s = %s;" % (KEY_IN_SECTION.get(k, k), cfg_value(v))
        (top if sec is None else sections[sec]).append(line)
    out = ["# imapgate test configuration"] + top
    for sec, lines in sections.items():
        lines = lines + list(extra_sections.get(sec, []))
        out.append("%s: {" % sec)
        out += ["  " + ln for ln in lines]
        out.append("};")
    if extra_top:
        out.append(extra_top)
    return "\n".join(out) + "\n"


# -- the world: users, homes, passwd-file, Dovecot config, chroot ------------

DOVECOT_CONF = """\
# Private Dovecot config: /usr/lib/dovecot/imap run standalone as the mail
# user, exec'd by imapgate after login.
base_dir = {d}/dovecot-run
state_dir = {d}/dovecot-run
log_path = /dev/stderr
info_log_path = /dev/stderr
debug_log_path = /dev/stderr
ssl = no
protocols = imap
listen =
mail_location = maildir:~/Maildir
first_valid_uid = 1
first_valid_gid = 1
# Show the addresses imapgate passed (IP, LOCAL_IP) in Dovecot's log lines.
mail_log_prefix = "%s(%u)<rip=%{{rip}}><lip=%{{lip}}>: "
"""


@pytest.fixture(scope="session")
def privsep_user():
    """The `imapgate` system user (created here if the install script has
    not yet)."""
    try:
        pw = pwd.getpwnam(PRIVSEP_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", PRIVSEP_USER],
                       check=True, timeout=30)
        pw = pwd.getpwnam(PRIVSEP_USER)
    return pw


@pytest.fixture(scope="session")
def user_hashes():
    return {u: make_hash(pw, how) for u, (pw, how) in USERS.items()}


class World:
    certs = None             # tlscerts.Certs when the test uses `tls_certs`

    def __init__(self, root, hashes):
        self.root = root
        self.hashes = hashes
        self.homes = {}
        self.passwords = {u: pw for u, (pw, _) in USERS.items()}
        os.chmod(root, 0o755)
        os.mkdir(os.path.join(root, "home"), 0o755)
        for u in USERS:
            h = os.path.join(root, "home", u)
            os.mkdir(h, 0o700)
            os.chown(h, MAIL_UID, MAIL_GID)
            self.homes[u] = h
        self.chroot = os.path.join(root, "empty")
        os.mkdir(self.chroot, 0o755)
        run = os.path.join(root, "dovecot-run")
        os.mkdir(run, 0o755)
        self.dovecot_conf = os.path.join(root, "dovecot.conf")
        with open(self.dovecot_conf, "w") as f:
            f.write(DOVECOT_CONF.format(d=root))
        os.chmod(self.dovecot_conf, 0o644)
        self.penalty_file = os.path.join(root, "penalty")
        self.passwd_file = os.path.join(root, "passwd")
        lines = ["# Dovecot-style passwd-file for the imapgate tests"]
        for u in USERS:
            lines.append("%s:%s:%d:%d::%s::" % (u, hashes[u], MAIL_UID, MAIL_GID, self.homes[u]))
        with open(self.passwd_file, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.passwd_file, 0o600)

    def base_settings(self):
        """The config every test starts from; defaults are left out on
        purpose so the defaults are what gets tested."""
        s = {
            "passwd_file": self.passwd_file,
            "failure_delay": 0.2,
            "exec": [DOVECOT_IMAP, "-c", self.dovecot_conf],
            "user": PRIVSEP_USER,
            "chroot": self.chroot,
        }
        # The per-address failure penalty table is private to each test, so
        # that failures in one test never slow another.
        if gate_knows("penalty_file"):
            s["penalty_file"] = self.penalty_file
        # And it does not grow unless a test asks (test_penalty.py): tests
        # that time several failures in a row compare like with like.
        if gate_knows("max_penalty"):
            s["max_penalty"] = s["failure_delay"]
        return s

    def write_passwd(self, extra=None, passwords=None, name="passwd"):
        """Rewrite the passwd-file (or write another one named `name`):
        `extra` maps a user to the 8th field (e.g. "host=127.0.0.1 port=N"),
        `passwords` maps a user to a different cleartext password (stored
        {PLAIN}).  Returns the path."""
        extra = extra or {}
        passwords = passwords or {}
        path = os.path.join(self.root, name)
        lines = ["# Dovecot-style passwd-file for the imapgate tests"]
        for u in USERS:
            h = ("{PLAIN}" + passwords[u]) if u in passwords else self.hashes[u]
            lines.append("%s:%s:%d:%d::%s::%s" % (u, h, MAIL_UID, MAIL_GID, self.homes[u],
                                                   extra.get(u, "")))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        return path

    def write_config(self, name="imapgate.conf", extra_top="", extra_sections=None, **overrides):
        settings = self.base_settings()
        settings.update(overrides)
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            f.write(render_config(settings, extra_top, extra_sections))
        return path

    def maildir(self, user):
        return os.path.join(self.homes[user], "Maildir")


@pytest.fixture
def world(privsep_user, user_hashes):
    root = tempfile.mkdtemp(prefix="imapgate-test-", dir="/tmp")
    try:
        w = World(root, user_hashes)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    yield w
    if not os.environ.get("IMAPGATE_KEEP"):
        shutil.rmtree(root, ignore_errors=True)


# -- super-server management ---------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_listening(port, addr="127.0.0.1"):
    """True when addr:port (IPv4) is in LISTEN state (no probe connection,
    which would spawn an imapgate)."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(addr), "little"), port)
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for ln in f:
                p = ln.split()
                if p[1] == want and p[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def require_binary():
    if not (os.path.isfile(GATE_BIN) and os.access(GATE_BIN, os.X_OK)):
        pytest.fail("imapgate binary not found at %s (run make)" % GATE_BIN)


def require_tool(path):
    if not os.access(path, os.X_OK):
        pytest.fail("required tool missing: %s" % path)


class Gate:
    """One super-server listening on 127.0.0.1:port, spawning imapgate."""

    def __init__(self, world, mode, conf_path, log_path, env=None):
        self.world = world
        self.mode = mode
        self.conf_path = conf_path
        self.log_path = log_path
        self.port = None
        self.proc = None
        self.env = env or {}      # for imapgate only (evil=True)
        self.pass_fds = ()        # more descriptors the super-server inherits

    def command(self):
        gate = [GATE_BIN, "-c", self.conf_path]
        addr = "127.0.0.1:%d" % self.port
        # systemd-socket-activate passes only the variables named with -E.
        ssa_env = [a for k, v in sorted(self.env.items()) for a in ("-E", "%s=%s" % (k, v))]
        if self.mode == "inetd":
            return [SSA, "-a", "--inetd", "-l", addr] + ssa_env + gate
        if self.mode == "fd3":
            return [SSA, "-a", "-l", addr] + ssa_env + gate
        if self.mode == "inetd-wait":       # inetd "wait": a listening fd 0 and 1
            return [SSA, "--inetd", "-l", addr] + ssa_env + gate
        if self.mode == "tcpserver":
            return [TCPSERVER, "-R", "-H", "-l", "localhost", "127.0.0.1", str(self.port)] + gate
        if self.mode == "listen":           # imapgate -L: no super-server
            return gate + ["-L", addr]
        if self.mode == "accept-no":        # systemd Accept=no: a listening fd 3
            return [SSA, "-l", addr] + ssa_env + gate
        raise ValueError(self.mode)

    def start(self, port=None):
        """port: listen on this port (a config naming it, e.g. a `listen`
        group, was written first); by default a free one is picked."""
        require_binary()
        require_tool(SSA if self.mode != "tcpserver" else TCPSERVER)
        last = None
        for _ in range(1 if port else 3):     # a port race is retried, not fatal
            self.port = port or free_port()
            logf = open(self.log_path, "ab")
            env = None
            if self.env and self.mode in ("tcpserver", "listen"):
                env = dict(os.environ, **self.env)
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, start_new_session=True,
                                         env=env, pass_fds=self.pass_fds)
            logf.close()
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if port_listening(self.port):
                    return self
                time.sleep(0.02)
            last = self.log()
            self.stop()
        pytest.fail("super-server %s did not listen; log:\n%s" % (self.mode, last))

    def connect(self, greeting=True, timeout=helpers.DEFAULT_TIMEOUT, source=None):
        """A raw client; with greeting=True the greeting has been read and
        checked to be an untagged OK (in c.greeting).  source: a local
        address to connect from (e.g. "127.0.0.2")."""
        c = helpers.Client(self.port, timeout=timeout, source=source)
        if greeting:
            try:
                c.greeting = c.expect_prefix("* OK ")
            except AssertionError:
                c.close()
                raise AssertionError("no greeting; imapgate log:\n%s" % self.log())
        return c

    def connect_tls(self, context=None, server_hostname="imap.example.test", greeting=True,
                    timeout=helpers.DEFAULT_TIMEOUT, source=None, session=None):
        """An implicit-TLS client (handshake done; with greeting=True the
        greeting has been read, in c.greeting).  context: an ssl.SSLContext,
        by default helpers.tls_context() trusting the test CA."""
        if context is None:
            context = helpers.tls_context(self.world.certs.ca if self.world.certs else None)
        c = helpers.Client(self.port, timeout=timeout, source=source)
        try:
            c.start_tls(context, server_hostname=server_hostname, session=session)
        except BaseException:
            c.close()
            raise
        if greeting:
            try:
                c.greeting = c.expect_prefix("* OK ")
            except AssertionError:
                c.close()
                raise AssertionError("no greeting over TLS; imapgate log:\n%s" % self.log())
        return c

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "backslashreplace")
        except FileNotFoundError:
            return ""

    def log_bytes(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def processes(self):
        """helpers.proc_info() of every live descendant of the super-server."""
        if not self.proc:
            return []
        out = []
        for pid in helpers.descendants(self.proc.pid):
            info = helpers.proc_info(pid)
            if info:
                out.append(info)
        return out

    def stop(self):
        if not self.proc:
            return
        root = self.proc.pid
        victims = set(helpers.descendants(root))
        for pid in helpers.all_pids():
            st = helpers.proc_stat(pid)
            if st and (st[1] == root or st[2] == root) and pid != root:
                victims.add(pid)
        for pid in [root] + sorted(victims):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


@pytest.fixture
def start_gate(world, request):
    """Factory: start_gate(mode="inetd", extra_top="", extra_sections=None,
    **config_overrides) -> Gate (listening).  Override value None removes a
    key from the config.  evil=True (with evil_files, evil_rewrite) loads
    the compromised-session harness (tests/harness/README.md); pass_fds:
    descriptors the super-server (and so imapgate) inherits, as a leaky
    one would pass them."""
    gates = []
    counter = [0]
    request.node._imapgate_gates = gates

    def start(mode="inetd", extra_top="", extra_sections=None, port=None, evil=False,
              evil_files=(), evil_rewrite=None, pass_fds=(), **overrides):
        counter[0] += 1
        n = counter[0]
        conf = world.write_config("imapgate-%d.conf" % n, extra_top, extra_sections, **overrides)
        env = evil_env(evil_files, evil_rewrite) if evil else None
        g = Gate(world, mode, conf, os.path.join(world.root, "gate-%d.log" % n), env=env)
        g.pass_fds = tuple(pass_fds)
        gates.append(g)
        return g.start(port)

    yield start
    for g in gates:
        g.stop()
    # A sanitizer build (IMAPGATE_BIN, see `make check`) reports memory and
    # undefined-behaviour errors on stderr, which is this log: any report
    # fails the test, even one whose client saw nothing wrong.
    for g in gates:
        text = g.log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, "sanitizer report in %s:\n%s" % (
                g.log_path, text[-4000:])


# -- the compromised-session harness (tests/harness/README.md) ----------------

EVIL_SO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness", "evil.so")


def evil_env(files=(), rewrite=None):
    """imapgate's environment for start_gate(..., evil=True): the harness
    preloaded; `files` read by it before the sandbox (EVIL_FILES);
    `rewrite` a dict or list of (field, value) for EVIL_REWRITE (values
    may use \\r \\n \\xHH escapes, which the harness decodes)."""
    if not os.path.isfile(EVIL_SO):
        pytest.fail("%s not built (make tests/harness/evil.so, or make check)" % EVIL_SO)
    env = {"LD_PRELOAD": EVIL_SO}
    if files:
        env["EVIL_FILES"] = ":".join(files)
    if rewrite:
        items = rewrite.items() if isinstance(rewrite, dict) else rewrite
        env["EVIL_REWRITE"] = "\n".join("%s=%s" % kv for kv in items)
    # An ASan build checks that its runtime comes first among the
    # libraries; the harness is preloaded before it.
    asan = os.environ.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = ((asan + ":") if asan else "") + "verify_asan_link_order=0"
    return env


def evil(client, action, timeout=10.0):
    """Send "EVIL <action>" on a plain client (helpers.Client) and return
    (ok, text) from its "* EVIL OK|ERR text" line; (None, "EOF") when the
    session ended instead (seccomp killed it)."""
    client.send(b"EVIL " + (action.encode() if isinstance(action, str) else action) + b"\r\n",
                ignore_errors=True)
    try:
        line = client.readline(timeout=timeout)
    except AssertionError:
        if client.eof:
            return None, "EOF"
        raise
    text = line.decode("utf-8", "backslashreplace")
    assert text.startswith("* EVIL "), "not an EVIL reply: %r" % text
    word, _, rest = text[len("* EVIL "):].partition(" ")
    return word == "OK", rest


# What AddressSanitizer and UndefinedBehaviorSanitizer print on an error.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:")


@pytest.fixture(autouse=True)
def _sanitizer_scan_of_direct_runs(monkeypatch):
    """imapgate run by a test itself (`-t`, `-V`, a bad `-L`...) through
    subprocess.run: a sanitizer report in its captured output fails the
    test, as one in a start_gate log does."""
    runs = []
    real_run = subprocess.run

    def run(cmd, *a, **kw):
        r = real_run(cmd, *a, **kw)
        if isinstance(cmd, (list, tuple)) and cmd and cmd[0] == GATE_BIN:
            runs.append((cmd, r))
        return r

    monkeypatch.setattr(subprocess, "run", run)
    yield runs
    for cmd, r in runs:
        text = ""
        for out in (r.stdout, r.stderr):
            if isinstance(out, bytes):
                out = out.decode("utf-8", "backslashreplace")
            text += out or ""
        for marker in SANITIZER_MARKERS:
            assert marker not in text, "sanitizer report from %r:\n%s" % (cmd, text[-4000:])


@pytest.fixture
def gate(start_gate):
    """Default server: inetd mode, failure_delay 0.2, everything else default."""
    return start_gate()


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the log of every server the test started."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("call", "setup"):
        for g in getattr(item, "_imapgate_gates", []):
            text = g.log()
            if len(text) > 6000:
                text = "...\n" + text[-6000:]
            rep.sections.append(("imapgate log %s (%s)" % (os.path.basename(g.log_path), g.mode), text))
        for attr, title in (("_imapgate_dovecot", "dovecot log (this test)"),
                            ("_imapgate_dovecot_tls", "TLS dovecot log (this test)")):
            d = getattr(item, attr, None)
            if d is None:
                continue
            text = d.log(getattr(d, "log_mark", 0))
            if len(text) > 6000:
                text = "...\n" + text[-6000:]
            rep.sections.append((title, text))


# -- a real Dovecot daemon: the backend for connect mode -----------------------

DOVECOT_BIN = "/usr/sbin/dovecot"
MASTER_USER = "master"
MASTER_PASSWORD = "m4ster-pw"
# A Dovecot-only user whose successful password check is followed by a
# refusal with Dovecot's own text (passdb extra fields nologin + reason).
NOLOGIN_USER = "nolo"
NOLOGIN_PASSWORD = "nolo-pw"
NOLOGIN_REASON = "Mailbox-moved-to-the-archive"

DOVECOT_DAEMON_CONF = """\
# Private Dovecot daemon for the connect-mode tests: imapgate logs in here.
instance_name = imapgate-test-{tag}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# No delay of Dovecot's own on failed logins (imapgate's failure_delay is
# what the tests measure); failures are still answered 0.5 s late at most.
auth_failure_delay = 0
auth_master_user_separator = *
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
# imapgate (127.0.0.1) may forward the client address with ID or PROXY.
login_trusted_networks = 127.0.0.0/8
haproxy_trusted_networks = 127.0.0.0/8
imap_id_log = *
login_log_format_elements = user=<%u> method=%m rip=%r rport=%{{rport}} lip=%l mpid=%e %c session=<%{{session}}>
passdb {{
  driver = passwd-file
  args = {d}/master-users
  master = yes
}}
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  inet_listener imap_haproxy {{
    address = 127.0.0.1
    port = {haproxy_port}
    haproxy = yes
  }}
  unix_listener {d}/imap.sock {{
    mode = 0666
  }}
}}
# Dovecot 2.3 delays every auth from an IP with recent failures by up to
# 15 s (anvil's auth penalty), across connections and tests, with no
# setting to turn it off; without its socket the auth process skips it.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def ports_listening(ports):
    return all(port_listening(p) for p in ports)


class Dovecot:
    """`/usr/sbin/dovecot -F` with a private config, base_dir, state and
    log in a temp dir, listening on 127.0.0.1 only: `port` (plain IMAP),
    `haproxy_port` (PROXY v1/v2 header required), `unix_path`."""

    def __init__(self, root, hashes):
        self.root = root
        self.conf = os.path.join(root, "dovecot.conf")
        self.log_path = os.path.join(root, "dovecot.log")
        self.unix_path = os.path.join(root, "imap.sock")
        self.passwords = {u: pw for u, (pw, _) in USERS.items()}
        self.homes = {}
        self.proc = None
        self.port = self.haproxy_port = None
        os.chmod(root, 0o755)
        os.mkdir(os.path.join(root, "home"), 0o755)
        lines = []
        for u in USERS:
            h = os.path.join(root, "home", u)
            os.mkdir(h, 0o700)
            os.chown(h, MAIL_UID, MAIL_GID)
            self.homes[u] = h
            lines.append("%s:%s:%d:%d::%s::" % (u, hashes[u], MAIL_UID, MAIL_GID, h))
        h = os.path.join(root, "home", NOLOGIN_USER)
        os.mkdir(h, 0o700)
        os.chown(h, MAIL_UID, MAIL_GID)
        lines.append("%s:{PLAIN}%s:%d:%d::%s::nologin reason=%s"
                     % (NOLOGIN_USER, NOLOGIN_PASSWORD, MAIL_UID, MAIL_GID, h, NOLOGIN_REASON))
        with open(os.path.join(root, "passwd"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(root, "master-users"), "w") as f:
            f.write("%s:{PLAIN}%s::::::\n" % (MASTER_USER, MASTER_PASSWORD))
        # Dovecot's auth process reads them as default_internal_user.
        gid = grp.getgrnam("dovecot").gr_gid
        for name in ("passwd", "master-users"):
            os.chown(os.path.join(root, name), 0, gid)
            os.chmod(os.path.join(root, name), 0o640)

    def write_conf(self):
        with open(self.conf, "w") as f:
            f.write(DOVECOT_DAEMON_CONF.format(d=self.root, tag=os.path.basename(self.root),
                                               port=self.port, haproxy_port=self.haproxy_port))

    def start(self):
        require_tool(DOVECOT_BIN)
        last = None
        for _ in range(3):            # a port race is retried, not fatal
            if not self._pick_ports():
                continue
            self.write_conf()
            out = open(os.path.join(self.root, "dovecot.out"), "ab")
            self.proc = subprocess.Popen([DOVECOT_BIN, "-F", "-c", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)
            out.close()
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._ready():
                    return self
                time.sleep(0.02)
            last = self.log() + self._out()
            self.stop()
        pytest.fail("dovecot did not listen; log:\n%s" % last)

    def _pick_ports(self):
        self.port, self.haproxy_port = free_port(), free_port()
        return self.port != self.haproxy_port

    def _ready(self):
        return ports_listening((self.port, self.haproxy_port)) \
            and os.path.exists(self.unix_path)

    def _out(self):
        try:
            with open(os.path.join(self.root, "dovecot.out"), "rb") as f:
                return f.read().decode("utf-8", "backslashreplace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if not self.proc:
            return
        helpers.stop_group(self.proc, grace=10)
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- per test -----------------------------------------------------------
    def reset_mail(self):
        """Empty every user's mail (the daemon lives for the whole session)."""
        for h in self.homes.values():
            for name in os.listdir(h):
                p = os.path.join(h, name)
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    try:
                        os.unlink(p)
                    except OSError:
                        pass

    def maildir(self, user):
        return os.path.join(self.homes[user], "Maildir")

    def addr(self, port=None):
        return "127.0.0.1:%d" % (port or self.port)

    # -- the log ------------------------------------------------------------
    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "backslashreplace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, since=0, timeout=5.0):
        """The first match of regex `pattern` in the log written after
        offset `since` (Dovecot writes its log asynchronously), or None."""
        rx = re.compile(pattern, re.M)
        return helpers.wait_for(lambda: rx.search(self.log(since)), timeout=timeout)


@pytest.fixture(scope="session")
def dovecot_server(privsep_user, user_hashes):
    """One Dovecot daemon for the whole session (see `dovecot`)."""
    root = tempfile.mkdtemp(prefix="imapgate-dovecot-", dir="/tmp")
    d = None
    try:
        d = Dovecot(root, user_hashes)
        d.start()
        yield d
    finally:
        if d:
            d.stop()
        if not os.environ.get("IMAPGATE_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_server, request):
    """The session's Dovecot daemon, with every mailbox emptied and
    `log_mark` set to the log offset at the start of the test."""
    if not dovecot_server.alive():
        dovecot_server.stop()
        dovecot_server.start()
    dovecot_server.reset_mail()
    dovecot_server.log_mark = dovecot_server.log_size()
    request.node._imapgate_dovecot = dovecot_server
    return dovecot_server


@pytest.fixture
def start_proxy(start_gate, dovecot):
    """Factory: imapgate in connect mode in front of the `dovecot` fixture.
    start_proxy(mode="inetd", **overrides); by default backend.connect is
    Dovecot's plain listener, exec is removed and passwd_file kept (pass
    passwd_file=None for pass-through)."""

    def start(mode="inetd", extra_top="", extra_sections=None, **overrides):
        settings = {"exec": None, "connect": [dovecot.addr()]}
        settings.update(overrides)
        return start_gate(mode=mode, extra_top=extra_top, extra_sections=extra_sections,
                          **settings)

    return start


# -- auth_http servers: a recording Python one, and nginx's http module --------

@pytest.fixture
def auth_server(world):
    """Factory: auth_server(default=None, unix=False) -> helpers.AuthHTTPServer,
    recording every request and answering from its script (push());
    closed at the end of the test.  unix=True listens on a unix socket in
    the world's directory (url() gives the "unix:/path:/uri" form)."""
    servers = []

    def make(default=None, unix=False):
        path = os.path.join(world.root, "auth-%d.sock" % len(servers)) if unix else None
        s = helpers.AuthHTTPServer(default=default, unix_path=path)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


NGINX_BIN = "/usr/sbin/nginx"

NGINX_CONF = """\
# nginx as an auth_http server, the way nginx mail proxy users run it.
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format auth '$request|$http_auth_method|$http_auth_user|$http_auth_pass|'
                    '$http_auth_protocol|$http_auth_login_attempt|$http_client_ip';
    access_log {d}/access.log auth;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /auth {{
            add_header Auth-Status OK;
            add_header Auth-Server 127.0.0.1;
            add_header Auth-Port {backend_port};
            return 204;
        }}
        location = /auth-fail {{
            add_header Auth-Status "Invalid login";
            add_header Auth-Wait 1;
            return 204;
        }}
    }}
}}
"""


class Nginx:
    """`nginx -g 'daemon off;'` with a private prefix and config, on
    127.0.0.1:port: /auth routes to backend_port, /auth-fail refuses with
    Auth-Wait 1.  The access log records the Auth-* headers it got."""

    def __init__(self, root, backend_port):
        self.root = root
        self.backend_port = backend_port
        self.conf = os.path.join(root, "nginx.conf")
        self.proc = None
        self.port = None

    def start(self):
        require_tool(NGINX_BIN)
        last = ""
        for _ in range(3):
            self.port = free_port()
            with open(self.conf, "w") as f:
                f.write(NGINX_CONF.format(d=self.root, port=self.port,
                                          backend_port=self.backend_port))
            out = open(os.path.join(self.root, "nginx.out"), "ab")
            self.proc = subprocess.Popen([NGINX_BIN, "-c", self.conf, "-p", self.root + "/",
                                          "-g", "daemon off;"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)
            out.close()
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if port_listening(self.port):
                    return self
                time.sleep(0.02)
            last = self.log()
            self.stop()
        pytest.fail("nginx did not listen; log:\n%s" % last)

    def url(self, path="/auth"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def log(self):
        return helpers.read_logs(self.root, ("nginx.out", "error.log"))

    def access_log(self):
        try:
            with open(os.path.join(self.root, "access.log"), "rb") as f:
                return f.read().decode("utf-8", "backslashreplace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if not self.proc:
            return
        helpers.stop_group(self.proc, grace=5)
        self.proc = None


@pytest.fixture
def nginx_auth(world, dovecot):
    """nginx's http module as the auth server, routing to `dovecot`."""
    root = os.path.join(world.root, "nginx")
    os.mkdir(root, 0o755)
    n = Nginx(root, dovecot.port).start()
    yield n
    n.stop()


# -- TLS: a private test PKI, and a Dovecot daemon that speaks TLS ------------

@pytest.fixture(scope="session")
def tls_certs():
    """The session's test PKI (tlscerts.make_certs): CA, server certificates
    for imap.example.test (+ localhost, 127.0.0.1), other.example.test and
    wrong.example.test, client certificates CN=alice (CA-signed and
    self-signed), an unrelated CA, two ticket key files."""
    root = tempfile.mkdtemp(prefix="imapgate-certs-", dir="/tmp")
    try:
        yield tlscerts.make_certs(os.path.join(root, "certs"))
    finally:
        if not os.environ.get("IMAPGATE_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def certs(world, tls_certs):
    """tls_certs, made known to this test's world (gate.connect_tls()
    then trusts the test CA by default)."""
    world.certs = tls_certs
    return tls_certs


def tls_settings(certs, *pairs, **more):
    """Config overrides for a TLS-capable gate: ssl_certificate and
    ssl_certificate_key from the given tlscerts.Pair objects (default: the
    imap.example.test one; several give lists), plus `more`."""
    pairs = pairs or (certs.server,)
    if len(pairs) == 1:
        s = {"ssl_certificate": pairs[0].cert, "ssl_certificate_key": pairs[0].key}
    else:
        s = {"ssl_certificate": [p.cert for p in pairs],
             "ssl_certificate_key": [p.key for p in pairs]}
    s.update(more)
    return s


DOVECOT_TLS_CONF = """\
# Private Dovecot daemon with TLS, the backend for imapgate's backend.ssl and
# backend.starttls tests.  On 127.0.0.1 it shows imap.example.test's
# certificate, on 127.0.0.2 wrong.example.test's (same CA, other name).
instance_name = imapgate-test-{tag}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1 127.0.0.2
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
local 127.0.0.2 {{
  ssl_cert = <{wrong_cert}
  ssl_key = <{wrong_key}
}}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
login_trusted_networks = 127.0.0.0/8
imap_id_log = *
# %c is "TLS" for a login over TLS: the tests read it.
login_log_format_elements = user=<%u> method=%m rip=%r rport=%{{rport}} lip=%l mpid=%e %c session=<%{{session}}>
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1 127.0.0.2
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1 127.0.0.2
    port = {ssl_port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class TLSDovecot(Dovecot):
    """A Dovecot daemon with TLS.  On both 127.0.0.1 and 127.0.0.2:
    `port` is plain IMAP offering STARTTLS, `ssl_port` implicit TLS.
    127.0.0.1 presents certs.server (imap.example.test, localhost,
    127.0.0.1), 127.0.0.2 certs.wrong (wrong.example.test only); both are
    signed by the test CA.  Same users and passwords as `dovecot`."""

    WRONG_HOST = "127.0.0.2"

    def __init__(self, root, hashes, certs):
        super().__init__(root, hashes)
        self.certs = certs
        self.ssl_port = None

    def _pick_ports(self):
        self.port, self.ssl_port = free_port(), free_port()
        self.haproxy_port = None
        return self.port != self.ssl_port

    def _ready(self):
        return all(port_listening(p, a) for p in (self.port, self.ssl_port)
                   for a in ("127.0.0.1", self.WRONG_HOST))

    def write_conf(self):
        c = self.certs
        with open(self.conf, "w") as f:
            f.write(DOVECOT_TLS_CONF.format(
                d=self.root, tag=os.path.basename(self.root), port=self.port,
                ssl_port=self.ssl_port, cert=c.server.cert, key=c.server.key,
                wrong_cert=c.wrong.cert, wrong_key=c.wrong.key))

    def addr(self, port=None, host="127.0.0.1"):
        return "%s:%d" % (host, port or self.port)

    def ssl_addr(self, host="127.0.0.1"):
        return "%s:%d" % (host, self.ssl_port)


@pytest.fixture(scope="session")
def dovecot_tls_server(privsep_user, user_hashes, tls_certs):
    """One TLS Dovecot daemon for the whole session (see `dovecot_tls`)."""
    root = tempfile.mkdtemp(prefix="imapgate-dovecot-tls-", dir="/tmp")
    d = None
    try:
        d = TLSDovecot(root, user_hashes, tls_certs)
        d.start()
        yield d
    finally:
        if d:
            d.stop()
        if not os.environ.get("IMAPGATE_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot_tls(dovecot_tls_server, certs, request):
    """The session's TLS Dovecot daemon (TLSDovecot), mail emptied and
    `log_mark` set for this test; its log is attached to a failure report."""
    if not dovecot_tls_server.alive():
        dovecot_tls_server.stop()
        dovecot_tls_server.start()
    dovecot_tls_server.reset_mail()
    dovecot_tls_server.log_mark = dovecot_tls_server.log_size()
    request.node._imapgate_dovecot_tls = dovecot_tls_server
    return dovecot_tls_server


# -- what is machine-wide ------------------------------------------------------

@pytest.fixture
def machine_lock():
    """machine_lock(name): hold a lock on something machine-wide (fixed
    ports, the default penalty table) for the rest of the test, so that
    tests/run's two concurrent passes (plain and ASan) take turns at it."""
    held = []

    def take(name):
        f = open("/tmp/imapgate-tests-%s.lock" % name, "w")
        fcntl.flock(f, fcntl.LOCK_EX)
        held.append(f)
    yield take
    for f in held:
        f.close()
