"""Helpers for the TLS, streaming, timeout and load tests: certificates
of other kinds than the harness makes, openssl s_client runs, a
hand-made TLS ClientHello, streaming clients that never keep a body in
memory, worker RSS sampling and wrk runs."""

import hashlib
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import tls_connect

# Tests that take a minute or more (testssl, the 1 GiB bodies) carry this
# mark; PORTCULLIS_QUICK=1 skips them.
slow = pytest.mark.skipif(os.environ.get("PORTCULLIS_QUICK") == "1",
                          reason="slow test; PORTCULLIS_QUICK=1 skips it")

MiB = 1 << 20


# ---- certificates -----------------------------------------------------------

def _openssl(*args, cwd=None):
    subprocess.run(["openssl", *map(str, args)], check=True,
                   capture_output=True, cwd=cwd)


def rsa_cert(directory, name, sans=None):
    """A self-signed RSA-2048 certificate: (cert, key) paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    sans = sans or [name]
    cert, key = d / f"{name}.rsa.crt", d / f"{name}.rsa.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
             "-out", cert, "-days", "60", "-subj", f"/CN={sans[0]}",
             "-addext", "subjectAltName=" + ",".join(f"DNS:{s}" for s in sans))
    os.chmod(key, 0o600)
    return cert, key


def ca_chain(directory, name, sans=None, ca_name="Portcullis Test CA"):
    """A small CA and a leaf it signed.  Returns (chain, key, ca) where
    chain is the leaf followed by the CA certificate (PEM)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    sans = sans or [name]
    ca_key, ca_crt = d / f"{name}.ca.key", d / f"{name}.ca.crt"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca_key,
             "-out", ca_crt, "-days", "60", "-subj", f"/CN={ca_name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    key, csr = d / f"{name}.leaf.key", d / f"{name}.leaf.csr"
    leaf, chain = d / f"{name}.leaf.crt", d / f"{name}.chain.crt"
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{s}" for s in sans)
                   + "\nbasicConstraints=CA:FALSE\n"
                   "extendedKeyUsage=serverAuth\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", csr, "-subj", f"/CN={sans[0]}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
             "-CAcreateserial", "-out", leaf, "-days", "30",
             "-extfile", ext)
    chain.write_text(leaf.read_text() + ca_crt.read_text())
    os.chmod(key, 0o600)
    return chain, key, ca_crt


def pem_der(path):
    """The DER bytes of the first certificate in a PEM file."""
    return ssl.PEM_cert_to_DER_cert(Path(path).read_text())


def peer_cert(port, sni="localhost", ctx=None):
    """The DER certificate the proxy presents for this SNI (None: no
    SNI at all)."""
    with tls_connect(port, sni=sni, ctx=ctx) as s:
        return s.getpeercert(binary_form=True)


# ---- openssl s_client -------------------------------------------------------

def s_client(port, *args, stdin=b"", sni="localhost", timeout=15):
    """Run openssl s_client; (returncode, stdout+stderr as text).  With
    stdin, -ign_eof keeps it reading until the server closes."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}"]
    if sni is not None:
        cmd += ["-servername", sni]
    else:
        cmd += ["-noservername"]
    cmd += list(args)
    r = subprocess.run(cmd, input=stdin, capture_output=True,
                       timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def s_client_cipher(out):
    """(protocol, cipher) s_client reports as negotiated; cipher is
    "(NONE)" when the handshake failed."""
    m = re.search(r"^(New|Reused), (\S+), Cipher is (\S+)", out, re.M)
    return (m.group(2), m.group(3)) if m else (None, None)


def handshake_ok(out):
    proto, cipher = s_client_cipher(out)
    return proto is not None and cipher != "(NONE)"


def get_request(host="localhost", path="/", close=True):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


# ---- a hand-made ClientHello ------------------------------------------------

def _ext(t, data):
    return struct.pack("!HH", t, len(data)) + data


def _v16(b):
    return struct.pack("!H", len(b)) + b


def _v8(b):
    return struct.pack("!B", len(b)) + b


def client_hello(versions=(0x0304,), suites=(0x1301,), compression=(0,),
                 sni="localhost", renegotiation_info=True, p256_share=False,
                 session_id=None):
    """The bytes of one TLS record with a ClientHello, so that tests can
    offer what no TLS library offers any more (compression) or leave out
    what they always send (renegotiation_info).  TLS 1.3 in versions adds
    supported_versions and an X25519 key share (a P-256 one instead with
    p256_share, which the server, preferring X25519, answers with a
    HelloRetryRequest)."""
    exts = b""
    if sni:
        exts += _ext(0, _v16(b"\x00" + _v16(sni.encode())))
    exts += _ext(10, _v16(struct.pack("!HHH", 0x001d, 0x0017, 0x0018)))
    exts += _ext(11, _v8(b"\x00"))
    # ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    exts += _ext(13, _v16(struct.pack("!HHH", 0x0403, 0x0804, 0x0401)))
    if 0x0304 in versions:
        exts += _ext(43, _v8(b"".join(struct.pack("!H", v)
                                      for v in versions)))
        if p256_share:
            # The point is never looked at: the group is not the one
            # the server takes.
            share = struct.pack("!HH", 0x0017, 65) + b"\x04" + \
                os.urandom(64)
        else:
            # Any 32 bytes are an X25519 public key.
            share = struct.pack("!HH", 0x001d, 32) + os.urandom(32)
        exts += _ext(51, _v16(share))
    if renegotiation_info:
        exts += _ext(0xff01, b"\x00")
    body = b"\x03\x03" + os.urandom(32) + _v8(session_id or os.urandom(32))
    body += _v16(b"".join(struct.pack("!H", s) for s in suites))
    body += _v8(bytes(compression)) + _v16(exts)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + _v16(hs)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def hello_reply(port, hello, timeout=5.0):
    """Send a ClientHello; ("server_hello", fields) with the version in
    the record, the cipher suite and the compression method chosen,
    ("alert", (level, description)), or ("closed", None)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(hello)
        try:
            head = recv_exact(s, 5)
        except (ConnectionResetError, socket.timeout):
            return "closed", None
        if len(head) < 5:
            return "closed", None
        ctype, _, length = struct.unpack("!BHH", head)
        rec = recv_exact(s, length)
        if ctype == 21:
            return "alert", (rec[0], rec[1])
        if ctype != 22 or rec[0] != 2:
            return "other", (ctype, rec[:8])
        p = 4 + 2 + 32
        sid_len = rec[p]
        p += 1 + sid_len
        suite, comp = struct.unpack("!HB", rec[p:p + 3])
        return "server_hello", {"suite": suite, "compression": comp}


# ---- streaming --------------------------------------------------------------

def pattern(n, seed=0):
    """n bytes of a pattern that is cheap to make and to check: a 1 MiB
    block of random-looking bytes (fixed by seed), repeated."""
    block = hashlib.shake_256(b"portcullis%d" % seed).digest(MiB)
    full, rest = divmod(n, MiB)
    return block, full, rest


def stream_pattern(send, n, seed=0, piece=MiB):
    """Send the first n bytes of pattern(seed) -- its 1 MiB block over and
    over -- with send(bytes), `piece` bytes at a time."""
    block, _, _ = pattern(n, seed)
    double = block + block          # any piece <= 1 MiB is a slice of it
    assert piece <= MiB
    pos = 0
    while pos < n:
        k = min(piece, n - pos)
        off = pos % MiB
        send(block if (off == 0 and k == MiB) else double[off:off + k])
        pos += k


def pattern_digest(n, seed=0):
    h = hashlib.sha256()
    stream_pattern(h.update, n, seed)
    return h.hexdigest()


def drain_body(s, first, length, hasher=None, pace=None):
    """Read exactly `length` body bytes (the first of them already in
    `first`), keeping none: (bytes read, whether EOF came early).  pace,
    if given, is called after every read (to read slowly)."""
    got = 0
    buf = bytearray(256 * 1024)
    view = memoryview(buf)
    if first:
        got += len(first)
        if hasher:
            hasher.update(first)
    while got < length:
        try:
            n = s.recv_into(view, min(len(buf), length - got))
        except (ConnectionResetError, ssl.SSLError, socket.timeout):
            return got, True
        if n == 0:
            return got, True
        if hasher:
            hasher.update(view[:n])
        got += n
        if pace:
            pace(got)
    return got, False


# ---- worker memory ----------------------------------------------------------

def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class RssSampler:
    """Samples VmRSS of every worker of a proxy every `interval` seconds
    in a thread; .peak_growth() is the largest growth over the baseline
    taken at start, per worker pid."""

    def __init__(self, proxy, interval=0.05):
        self.proxy = proxy
        self.interval = interval
        self.baseline = {w: rss_bytes(w) for w in proxy.workers()}
        self.peak = dict(self.baseline)
        self.samples = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def sample(self):
        for w in self.baseline:
            r = rss_bytes(w)
            if r is not None and r > (self.peak.get(w) or 0):
                self.peak[w] = r
        self.samples += 1

    def _run(self):
        while self.running:
            self.sample()
            time.sleep(self.interval)

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sample()
        return self

    def peak_growth(self):
        return max((self.peak[w] or 0) - (self.baseline[w] or 0)
                   for w in self.baseline)

    def describe(self):
        return {w: (self.baseline[w], self.peak[w]) for w in self.baseline}


# ---- wrk --------------------------------------------------------------------

def run_wrk(port, seconds, connections=20, threads=1, path="/",
            headers=("Host: localhost",), timeout_s=5):
    """Start wrk against the proxy (its output is read by wrk_result)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
           "--timeout", f"{timeout_s}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(f"https://127.0.0.1:{port}{path}")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wrk_result(proc, timeout=120):
    """Wait for wrk; a dict with requests, the socket error counts,
    non2xx, and the full text."""
    out, _ = proc.communicate(timeout=timeout)
    res = {"text": out, "rc": proc.returncode, "connect": 0, "read": 0,
           "write": 0, "timeout": 0, "non2xx": 0}
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        res.update(connect=int(m.group(1)), read=int(m.group(2)),
                   write=int(m.group(3)), timeout=int(m.group(4)))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    res["errors"] = (res["connect"] + res["read"] + res["write"]
                     + res["timeout"])
    return res


def tls_connect_small(port, rcvbuf=16384, sni="localhost", timeout=10.0):
    """A TLS connection whose receive buffer is small, so that a client
    that does not read pushes back on the proxy at once."""
    from conftest import tls_context
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    return tls_context().wrap_socket(raw, server_hostname=sni)


def cpu_seconds(pid):
    """User + system CPU time a process used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def site_settings(**kw):
    """configure= for start_proxy: set these on every site."""
    def configure(p):
        for _, site in p.listener["site"]:
            site.update(kw)
    return configure


def client_connections(port):
    """{pid: number of established connections it holds on local port}."""
    r = subprocess.run(["ss", "-Htnp", "state", "established",
                        f"( sport = :{port} )"], capture_output=True,
                       text=True, check=True)
    out = {}
    for pid in re.findall(r"pid=(\d+)", r.stdout):
        out[int(pid)] = out.get(int(pid), 0) + 1
    return out
