"""A real ACME server for the tests: Debian's pebble, with
pebble-challtestsrv as its DNS server, both on loopback.

    base = acme_base                     # a directory the service user
                                         # (nobody) can reach
    p = make_proxy(base=base / "p")      # its ports decide pebble's
    pb = make_pebble(p)                  # httpPort/tlsPort = p's ports
    pb.start()                           # waits until /dir answers
    acme_site_config(p, pb, ["a.test", "b.test"])
    p.start()
    c = wait_cert(p.https_port, "a.test", pb)   # served, chains to
                                                # pebble's root

Pebble gets its own HTTPS certificate, signed by a CA made once per
session (PebbleTLS.ca is what the proxy's acme-ca-file names).  Every
test gets a fresh pebble (it starts in a fifth of a second), so that its
httpPort and tlsPort can be that test's proxy ports and nothing is shared
between tests.  challtestsrv answers every A query with 127.0.0.1 (and
no AAAA), so any name (a.test, b.test ...) reaches the proxy; its
management API (add_a, clear_a) points a name elsewhere.  Its own
challenge listeners are off.  PEBBLE_VA_NOSLEEP=1 and PEBBLE_AUTHZREUSE=0
(a renewal validates again) unless a test says otherwise.

A pebble or challtestsrv that exits on its own fails the test that made
it, with its log.  Pebble missing is a failure, not a skip.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from conftest import BINARY, SLOWDOWN, call_failed, free_port, wait_until

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or \
    "/usr/bin/pebble-challtestsrv"

# How long a first issuance against pebble may take (no VA sleeps: a
# second or two in practice).
ISSUE_TIMEOUT = 30.0 * SLOWDOWN

# pebble's EAB example keys (base64url HMAC keys).
EAB_KEYS = {
    "kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W",
    "kid-2": "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH",
}


def require_pebble():
    """Fail (never skip) when pebble is not installed."""
    missing = [p for p in (PEBBLE, CHALLTESTSRV) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: contrib/install-deps.sh "
                    "test installs pebble", pytrace=False)


def _openssl(*args):
    subprocess.run(["openssl", *map(str, args)], check=True,
                   capture_output=True)


def free_dual_port():
    """A port free for both TCP and UDP on 127.0.0.1 (challtestsrv's DNS
    server binds both)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


class PebbleTLS:
    """A CA and, signed by it, pebble's own HTTPS certificate (for
    127.0.0.1 and localhost).  Made once per session."""

    def __init__(self, directory):
        d = self.dir = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        self.ca, ca_key = d / "ca.pem", d / "ca.key"
        self.cert, self.key = d / "pebble.pem", d / "pebble.key"
        csr, ext = d / "pebble.csr", d / "pebble.ext"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca_key,
                 "-out", self.ca, "-days", "30",
                 "-subj", "/CN=Portcullis test ACME server CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                 self.key, "-out", csr, "-subj", "/CN=localhost")
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                       "basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\n"
                       "extendedKeyUsage=serverAuth\n")
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey",
                 ca_key, "-CAcreateserial", "-out", self.cert, "-days", "30",
                 "-extfile", ext)
        for f in (self.ca, self.cert):
            os.chmod(f, 0o644)
        self.context = ssl.create_default_context(cafile=str(self.ca))


class Pebble:
    """One pebble and its challtestsrv.  Not started by the constructor:
    a test may want the ACME server down at first."""

    def __init__(self, directory, tls, https_port, http_port, eab=False,
                 env=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.port = free_port()
        self.mgmt_port = free_port()
        self.dns_port = free_dual_port()
        self.cts_port = free_port()
        self.https_port, self.http_port = https_port, http_port
        self.eab = eab
        self.validity = None    # seconds: certificateValidityPeriod
        self.env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0"}
        self.env.update(env or {})
        self.config = self.dir / "pebble.json"
        self.log_path = self.dir / "pebble.log"
        self.cts_log_path = self.dir / "challtestsrv.log"
        self.proc = self.cts = None
        self.crashed = []       # logs of processes that ended on their own
        self.launches = 0
        self.root = self.dir / "root.pem"                # of this launch
        self.intermediate = self.dir / "intermediate.pem"
        self.chain = self.dir / "pebble-ca.pem"          # both

    @property
    def directory(self):
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def mgmt(self):
        return f"https://127.0.0.1:{self.mgmt_port}"

    def write_config(self):
        conf = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": str(self.tls.cert),
            "privateKey": str(self.tls.key),
            "httpPort": self.http_port,
            "tlsPort": self.https_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(self.eab),
        }
        if self.eab:
            conf["externalAccountMACKeys"] = dict(EAB_KEYS)
        if self.validity is not None:
            conf["certificateValidityPeriod"] = int(self.validity)
        self.config.write_text(json.dumps({"pebble": conf}, indent=2))

    # -- processes -------------------------------------------------------
    def _spawn(self, cmd, log, env=None):
        environ = dict(os.environ)
        environ.update(env or {})
        with open(log, "ab") as out:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    env=environ)

    def start_dns(self):
        """challtestsrv: DNS only (every A query: 127.0.0.1, no AAAA),
        and its management API on loopback."""
        if self.cts is not None:
            return
        self.cts = self._spawn(
            [CHALLTESTSRV, "-dns01", f"127.0.0.1:{self.dns_port}",
             "-management", f"127.0.0.1:{self.cts_port}",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
             "-http01", "", "-https01", "", "-tlsalpn01", ""],
            self.cts_log_path)

        def up():
            self._check_alive()
            return _connects(self.dns_port) and _connects(self.cts_port)
        wait_until(up, 10.0 * SLOWDOWN, what="pebble-challtestsrv")

    def start(self, timeout=15.0):
        """Start pebble (and challtestsrv, the first time), wait until the
        directory answers, and fetch this launch's root and intermediate
        (pebble makes new ones at every launch)."""
        require_pebble()
        self.start_dns()
        assert self.proc is None or self.proc.poll() is not None
        self.write_config()
        self.log_offset = self.log_path.stat().st_size \
            if self.log_path.exists() else 0
        self.proc = self._spawn(
            [PEBBLE, "-config", str(self.config),
             "-dnsserver", f"127.0.0.1:{self.dns_port}"],
            self.log_path, self.env)
        self.launches += 1

        def answers():
            self._check_alive()
            try:
                d = json.loads(self.get(self.directory))
            except OSError:
                return False
            return "newNonce" in d and d
        self.dir_doc = wait_until(answers, timeout * SLOWDOWN,
                                  what="pebble's directory")
        root = self.get(f"{self.mgmt}/roots/0")
        inter = self.get(f"{self.mgmt}/intermediates/0")
        self.root.write_bytes(root)
        self.intermediate.write_bytes(inter)
        self.chain.write_bytes(inter + root)
        return self

    def stop(self):
        """Stop pebble (challtestsrv keeps running); a pebble that had
        exited on its own is reported at teardown."""
        self._check_alive(record=True)
        _terminate(self.proc)
        self.proc = None

    def close(self):
        self._check_alive(record=True)
        _terminate(self.proc)
        _terminate(self.cts)
        self.proc = self.cts = None

    def _check_alive(self, record=False):
        for name, proc, log in (("pebble", self.proc, self.log_path),
                                ("pebble-challtestsrv", self.cts,
                                 self.cts_log_path)):
            if proc is None or proc.poll() is None:
                continue
            msg = (f"{name} exited with {proc.returncode}:\n"
                   + Path(log).read_text(errors="replace")[-4000:])
            if record:
                if msg not in self.crashed:
                    self.crashed.append(msg)
            else:
                raise AssertionError(msg)

    # -- HTTPS to pebble and HTTP to challtestsrv -----------------------
    def get(self, url, timeout=5.0):
        with urllib.request.urlopen(url, timeout=timeout,
                                    context=self.tls.context) as r:
            return r.read()

    def cts_post(self, path, body):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.cts_port}{path}",
            data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5.0) as r:
            assert r.status == 200, (path, r.status)

    def add_a(self, host, addresses):
        """Answer A queries for host with addresses (instead of the
        default 127.0.0.1)."""
        self.cts_post("/add-a", {"host": host, "addresses": list(addresses)})

    def clear_a(self, host):
        self.cts_post("/clear-a", {"host": host})

    # -- what pebble did --------------------------------------------------
    def log(self):
        p = self.log_path
        return p.read_text(errors="replace") if p.exists() else ""

    def new_orders(self):
        """How many orders pebble made, all launches (not the newOrder
        requests: pebble refuses 5% of good nonces by default, and the
        retry of a refused one is the same order)."""
        return len(re.findall(r"Added order \S+ to the db", self.log()))

    def issued_serials(self):
        """The serials pebble issued (as ints), in order."""
        return [int(s, 16) for s in
                re.findall(r"Issued certificate serial ([0-9a-fA-F]+)",
                           self.log())]

    def http01_validations(self):
        """The http-01 URLs pebble fetched."""
        return re.findall(r"Attempting to validate w/ HTTP: (\S+)",
                          self.log())


def _connects(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _terminate(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def pebble_tls():
    require_pebble()
    d = Path(tempfile.mkdtemp(prefix="portcullis-pebble-tls-"))
    try:
        yield PebbleTLS(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def acme_base():
    """A directory outside pytest's (which only root may enter), that the
    service user can traverse: the ACME process, as nobody, works in a
    cache directory below it."""
    d = Path(tempfile.mkdtemp(prefix="portcullis-acme-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_pebble(request, pebble_tls, acme_base):
    """Factory: make_pebble(proxy or (https_port, http_port), eab=False,
    env=None, start=True) -> Pebble.  Stopped at teardown; one that
    exited on its own fails the test."""
    made = []

    def factory(ports, eab=False, env=None, start=True):
        if hasattr(ports, "https_port"):
            ports = (ports.https_port, ports.http_port)
        pb = Pebble(acme_base / f"pebble{len(made)}", pebble_tls, *ports,
                    eab=eab, env=env)
        made.append(pb)
        if start:
            pb.start()
        return pb

    yield factory
    failed = call_failed(request)
    crashed = []
    for pb in made:
        pb.close()
        crashed += pb.crashed
        if failed:
            sys.stdout.write(f"\n===== pebble log ({pb.dir}) =====\n"
                             f"{pb.log()[-20000:]}\n")
    if crashed:
        pytest.fail("\n".join(crashed), pytrace=False)


# ---- the proxy's side ---------------------------------------------------

def nobody_uid():
    import pwd
    return pwd.getpwnam("nobody").pw_uid


def cache_dir_for(base):
    """An acme-cache-dir as a systemd StateDirectory= would give it: made
    beforehand, the service user's, 0700."""
    d = Path(base) / "acme-cache"
    d.mkdir(mode=0o700)
    os.chown(d, nobody_uid(), -1)
    return d


def acme_tls(pebble, cache_dir, challenge="tls-alpn-01", **extra):
    """The tls { } section for mode acme against pebble."""
    tls = {
        "mode": "acme",
        "acme-directory": pebble.directory,
        "acme-ca-file": str(pebble.tls.ca),
        "acme-challenge": challenge,
        "acme-cache-dir": str(cache_dir),
        "acme-contact": "mailto:admin@a.test",
    }
    tls.update(extra)
    return tls


class AcmeEnv:
    """What an ACME test works with: env.proxy(...) makes a proxy and
    its pebble."""

    def __init__(self, base, make_proxy, make_pebble, upstream):
        self.base = base
        self.make_proxy = make_proxy
        self.make_pebble = make_pebble
        self.upstream = upstream
        self.n = 0

    def proxy(self, names, challenge="tls-alpn-01", http_port=True,
              eab=False, pebble_env=None, start_pebble=True,
              manual_sites=(), **tls_extra):
        """A proxy (not started) whose one listener, on 127.0.0.1, gets
        its certificates from a fresh pebble for its sites names, each
        going to the test upstream; manual_sites: (name, cert, key) sites with their
        own certificate.  Returns (proxy, pebble, cache_dir)."""
        base = self.base / f"p{self.n}"
        self.n += 1
        p = self.make_proxy(base=base, workers=2)
        if not http_port:
            p.http_port = 0
        pb = self.make_pebble(
            (p.https_port, p.http_port or free_port()), eab=eab,
            env=pebble_env, start=start_pebble)
        cache = cache_dir_for(base)
        up = self.upstream.addr
        sites = [(n, {"upstream": up}) for n in names]
        sites += [(n, {"upstream": up, "cert": str(c), "key": str(k)})
                  for n, c, k in manual_sites]
        p.settings["listener"] = [(None, {
            "bind": "127.0.0.1",
            "https-port": p.https_port,
            "http-port": p.http_port,
            "tls": acme_tls(pb, cache, challenge, **tls_extra),
            "site": sites,
        })]
        p.settings["rate-limit"] = {"requests-per-second": 1000000,
                                    "burst": 1000000}
        p.write_config()
        return p, pb, cache


@pytest.fixture
def acme(acme_base, make_proxy, make_pebble, upstream):
    """An AcmeEnv.  acme_base comes first, so that it is removed after
    the proxies and pebbles are stopped (and their logs shown)."""
    return AcmeEnv(acme_base, make_proxy, make_pebble, upstream)


def restart(p, timeout=15.0):
    """Stop the proxy (SIGTERM, clean exit) and start it again with the
    same configuration, log and directories."""
    assert p.stop() == 0, p.all_logs()
    p.notify.close()
    try:
        os.unlink(p.notify.path)
    except FileNotFoundError:
        pass
    p.start()
    return p


def ctl(p, *args, timeout=120):
    """portcullis ctl --socket S ARGS... -> (returncode, reply or None,
    stderr)."""
    r = subprocess.run([str(BINARY), "ctl", "--socket", str(p.admin_path),
                        *args], capture_output=True, text=True,
                       timeout=timeout)
    reply = json.loads(r.stdout) if r.stdout.strip() else None
    return r.returncode, reply, r.stderr


# ---- what the proxy serves ----------------------------------------------

class Served:
    """What openssl s_client saw for one SNI name."""

    def __init__(self, out, leaf_pem):
        self.out = out
        self.pem = leaf_pem
        m = re.search(r"Verify return code: (\d+) \(([^)]*)\)", out)
        self.verify = (int(m.group(1)), m.group(2)) if m else (None, None)
        self.verified = self.verify[0] == 0
        text = subprocess.run(
            ["openssl", "x509", "-noout", "-text", "-serial", "-startdate",
             "-enddate", "-issuer", "-nameopt", "RFC2253"],
            input=leaf_pem, capture_output=True, check=True,
            text=True).stdout
        self.text = text
        self.serial = int(re.search(r"^serial=([0-9A-Fa-f]+)$", text,
                                    re.M).group(1), 16)
        end = re.search(r"^notAfter=(.*)$", text, re.M).group(1)
        self.not_after = int(ssl.cert_time_to_seconds(end))
        start = re.search(r"^notBefore=(.*)$", text, re.M).group(1)
        self.not_before = int(ssl.cert_time_to_seconds(start))
        self.issuer = re.search(r"^issuer=(.*)$", text, re.M).group(1)
        sans = re.search(r"X509v3 Subject Alternative Name:.*?\n\s*(.*)\n",
                         text)
        self.sans = sorted(s.strip()[4:] for s in sans.group(1).split(",")
                           if s.strip().startswith("DNS:")) if sans else []
        self.ec_p256 = ("id-ecPublicKey" in text
                        and ("prime256v1" in text or "P-256" in text))


def served(port, name, pebble=None, timeout=10):
    """The certificate the proxy serves for SNI name (None: the handshake
    failed), verified against pebble's root of this launch (only the
    root: the intermediate must come from the proxy) and name."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
           "-servername", name, "-showcerts", "-alpn", "http/1.1"]
    if pebble is not None:
        cmd += ["-CAfile", str(pebble.root), "-verify_hostname", name]
    r = subprocess.run(cmd, input=b"", capture_output=True, timeout=timeout)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?"
                      r"-----END CERTIFICATE-----\n?", out, re.S)
    if not pems:
        return None
    s = Served(out, pems[0])
    s.chain_len = len(pems)
    return s


def wait_cert(port, name, pebble, timeout=ISSUE_TIMEOUT, other_than=None,
              proxy=None):
    """Wait until the proxy serves name a certificate from this pebble
    (verified up to its root) whose serial is not other_than; fail at
    once if the proxy exits."""
    def got():
        if proxy is not None and proxy.proc.poll() is not None:
            raise AssertionError(f"portcullis exited with "
                                 f"{proxy.proc.returncode}\n"
                                 f"{proxy.all_logs()}")
        s = served(port, name, pebble)
        if s is None or not s.verified or s.serial == other_than:
            return None
        return s
    return wait_until(got, timeout, interval=0.2,
                      what=f"an ACME certificate for {name}")


def check_acme_cert(s, name, pebble):
    """A certificate pebble issued for name: only that name, an ECDSA
    P-256 key of its own, the chain served up to pebble's root."""
    assert s is not None, f"no certificate served for {name}"
    assert s.verified, (s.verify, s.out[-2000:])
    assert s.sans == [name], s.sans
    assert s.ec_p256, s.text
    assert "Pebble Intermediate CA" in s.issuer, s.issuer
    assert s.chain_len >= 2, "the intermediate is not served"
    assert s.serial in pebble.issued_serials(), \
        (hex(s.serial), pebble.issued_serials())


def leaf_key(s):
    """The leaf's public key (PEM), to tell two certificates' keys apart."""
    return subprocess.run(["openssl", "x509", "-noout", "-pubkey"],
                          input=s.pem, capture_output=True,
                          check=True, text=True).stdout


# ---- the proxy's ACME log lines -------------------------------------------

def acme_lines(log, *words):
    """The log lines saying ACME (as a word, any case) and every one of
    words (case-insensitive)."""
    out = []
    for line in log.splitlines():
        low = line.lower()
        if re.search(r"\bacme\b", low) and all(w.lower() in low
                                               for w in words):
            out.append(line)
    return out


def wait_acme(p, *words, timeout=ISSUE_TIMEOUT, count=1, start=0):
    """Wait for count ACME lines (after byte offset start of the log)
    with every one of words; returns them."""
    def seen():
        if p.proc is not None and p.proc.poll() is not None:
            raise AssertionError(f"portcullis exited with "
                                 f"{p.proc.returncode}\n{p.all_logs()}")
        lines = acme_lines(p.log()[start:], *words)
        return len(lines) >= count and lines
    return wait_until(seen, timeout, interval=0.1,
                      what=f"ACME log line with {words!r} x{count}")


# ---- ctl status ----------------------------------------------------------

def to_epoch(v):
    """A time from the status JSON: epoch seconds, or an RFC 3339 /
    ISO 8601 string; None, 0 and "" mean none."""
    if v in (None, 0, ""):
        return None
    if isinstance(v, (int, float)):
        return int(v)
    from datetime import datetime
    return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp())


def status_certs(p):
    """ctl status's certificate list, as {name: entry}."""
    rc, st = p.ctl("status")
    assert rc == 0 and st["status"] == "ok", st
    assert isinstance(st.get("certificates"), list), st
    out = {}
    for e in st["certificates"]:
        assert {"name", "source", "not_after", "next_renewal",
                "last_error"} <= set(e), e
        out.setdefault(e["name"], []).append(e)
    return out


def status_cert(p, name, source="acme"):
    entries = [e for e in status_certs(p).get(name, [])
               if e["source"] == source]
    assert len(entries) == 1, (name, source, status_certs(p))
    return entries[0]
