"""A private test PKI made with the `openssl` command line tool.

    certs = make_certs("/tmp/some/dir")
    certs.ca                      # the test CA's certificate (PEM)
    certs.server.cert, .key       # imap.example.test, localhost, 127.0.0.1 (RSA)
    certs.other                   # other.example.test (for SNI)
    certs.wrong                   # wrong.example.test only (name mismatch)
    certs.alice                   # client, CN=alice, signed by the CA
    certs.alice_selfsigned        # client, CN=alice, self-signed
    certs.mallory                 # client, CN=mallory (no such user), signed by the CA
    certs.other_ca                # a second CA that signed nothing we serve
    certs.ticket_key              # 80 random bytes (ssl_session_ticket_key)
    certs.ticket_key2             # another 80 random bytes

Private keys are 0600 root, as a deployment would keep them; certificates
and the directory are world-readable.  Every file is made once per test
session (conftest's `tls_certs` fixture)."""

import hashlib
import os
import ssl
import subprocess

CA_SUBJECT = "/O=imapgate tests/CN=imapgate Test CA"
OTHER_CA_SUBJECT = "/O=imapgate tests/CN=Unrelated Test CA"
DAYS = "30"


class Pair:
    """A certificate and its key, as absolute paths."""

    def __init__(self, cert, key, names=()):
        self.cert = cert
        self.key = key
        self.names = list(names)

    def der(self):
        with open(self.cert) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def sha1(self):
        """SHA-1 of the DER certificate: lowercase hex, no colons."""
        return hashlib.sha1(self.der()).hexdigest()

    def serial(self):
        """The serial number as lowercase hex without leading zeros."""
        out = _run(["openssl", "x509", "-in", self.cert, "-noout", "-serial"])
        return out.strip().split("=", 1)[1].lower().lstrip("0") or "0"

    def __repr__(self):
        return "Pair(%r)" % self.cert


def _run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def _key(path, kind):
    if kind == "rsa":
        _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
              "-out", path])
    else:
        _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", path])
    os.chmod(path, 0o600)


def _ext_file(d, name, lines):
    path = os.path.join(d, name + ".ext")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _ca(d, name, subject):
    key = os.path.join(d, name + ".key")
    crt = os.path.join(d, name + ".crt")
    _key(key, "ec")
    _run(["openssl", "req", "-x509", "-new", "-key", key, "-out", crt, "-days", DAYS,
          "-subj", subject, "-sha256",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign",
          "-addext", "subjectKeyIdentifier=hash"])
    return Pair(crt, key)


def _signed(d, name, subject, ca, ext_lines, kind="ec"):
    key = os.path.join(d, name + ".key")
    csr = os.path.join(d, name + ".csr")
    crt = os.path.join(d, name + ".crt")
    _key(key, kind)
    _run(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", subject])
    ext = _ext_file(d, name, ext_lines)
    _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
          "-CAcreateserial", "-out", crt, "-days", DAYS, "-sha256", "-extfile", ext])
    os.unlink(csr)
    return crt, key


def _server(d, name, cn, sans, ca, kind="ec"):
    san = ",".join(sans)
    crt, key = _signed(d, name, "/O=imapgate tests/CN=" + cn, ca, [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth",
        "subjectAltName=" + san,
    ], kind)
    names = [s.split(":", 1)[1] for s in sans]
    return Pair(crt, key, names)


class Certs:
    pass


def make_certs(d):
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    c = Certs()
    c.dir = d
    ca = _ca(d, "ca", CA_SUBJECT)
    c.ca = ca.cert
    c.ca_pair = ca
    other_ca = _ca(d, "other-ca", OTHER_CA_SUBJECT)
    c.other_ca = other_ca.cert
    c.server = _server(d, "imap", "imap.example.test",
                       ["DNS:imap.example.test", "DNS:localhost", "IP:127.0.0.1"], ca, "rsa")
    c.other = _server(d, "other", "other.example.test", ["DNS:other.example.test"], ca)
    c.wrong = _server(d, "wrong", "wrong.example.test", ["DNS:wrong.example.test"], ca)
    crt, key = _signed(d, "alice", "/CN=alice", ca, [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=clientAuth",
    ])
    c.alice = Pair(crt, key, ["alice"])
    crt, key = _signed(d, "mallory", "/CN=mallory", ca, [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=clientAuth",
    ])
    c.mallory = Pair(crt, key, ["mallory"])
    key = os.path.join(d, "alice-self.key")
    crt = os.path.join(d, "alice-self.crt")
    _key(key, "ec")
    _run(["openssl", "req", "-x509", "-new", "-key", key, "-out", crt, "-days", DAYS,
          "-subj", "/CN=alice", "-sha256",
          "-addext", "extendedKeyUsage=clientAuth"])
    c.alice_selfsigned = Pair(crt, key, ["alice"])
    for name in ("ticket.key", "ticket2.key"):
        path = os.path.join(d, name)
        _run(["openssl", "rand", "-out", path, "80"])
        os.chmod(path, 0o600)
    c.ticket_key = os.path.join(d, "ticket.key")
    c.ticket_key2 = os.path.join(d, "ticket2.key")
    for f in os.listdir(d):
        p = os.path.join(d, f)
        if f.endswith(".crt"):
            os.chmod(p, 0o644)
    return c
