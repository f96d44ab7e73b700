"""Integration-test harness: drives the real portcullis binary.

Every test gets its own temporary directory, its own ports (bound to port 0
and read back) and its own systemd notify socket, on which the harness waits
for READY=1, so no test sleeps to guess when the proxy is up.  When a test
fails, the proxy's log is printed.  A sanitizer report anywhere in a proxy's
log fails the test that produced it.
"""

import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from h1util import STATUS_LINE, parse_one

SRCDIR = Path(__file__).resolve().parents[2]
BUILDDIR = Path(os.environ.get("PORTCULLIS_BUILDDIR", SRCDIR))
BINARY = Path(os.environ.get("PORTCULLIS_BIN", BUILDDIR / "portcullis"))

# Under AddressSanitizer everything is several times slower: deadlines
# that say "at once" are multiplied by this.
SLOWDOWN = 4 if os.environ.get("ASAN_OPTIONS") else 1

SANITIZER_PATTERNS = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"UndefinedBehaviorSanitizer|AddressSanitizer:DEADLYSIGNAL")

# What a child writes when its seccomp filter stops it (src/sandbox.c):
# every test fails on it, so that the whole suite proves the allow-lists
# are enough (a respawned worker would otherwise go unnoticed).
SANDBOX_PATTERN = re.compile(r"portcullis: sandbox: .* outside its "
                             r"allow-list")


_ports_given = set()

# tests/run-integration.sh runs test files in parallel processes and gives
# each its own range of ports, below the kernel's ephemeral range (where
# port 0 binds and outgoing connections take theirs): a port one process
# probed free is then never handed to another before its proxy binds it.
_port_range = None
if os.environ.get("PORTCULLIS_PORT_RANGE"):
    _lo, _hi = (int(x) for x in os.environ["PORTCULLIS_PORT_RANGE"].split("-"))
    _port_range = (_lo, _hi)


def _probe(family, host, port):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return None
        return s.getsockname()[1]


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A TCP port nobody listens on right now, and never handed out before
    in this run: the kernel may offer the same free port twice in a row,
    and one config must not get it for two listeners."""
    if _port_range is not None:
        lo, hi = _port_range
        start = random.randrange(lo, hi + 1)
        for i in range(hi - lo + 1):
            port = lo + (start - lo + i) % (hi - lo + 1)
            if port not in _ports_given and _probe(family, host, port):
                _ports_given.add(port)
                return port
        raise AssertionError(f"no free port left in {lo}-{hi}")
    while True:
        port = _probe(family, host, 0)
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def proc_status(pid):
    """The fields of /proc/PID/status as a dict of strings."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command may contain spaces and parentheses: split after ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(entry))
    return sorted(kids)


def argv0_of(pid):
    """A process's argv[0] (b"" once it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0]
    except OSError:
        return b""


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class NotifySocket:
    """A real sd_notify datagram socket, read continuously as systemd does
    (a full queue would block the sender)."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # A master started as an unprivileged user must be able to send.
        os.chmod(self.path, 0o777)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append(data.decode("utf-8", "replace"))

    def assignments(self):
        """Every KEY=VALUE line received so far, in order."""
        with self.lock:
            msgs = list(self.messages)
        out = []
        for msg in msgs:
            out.extend(line for line in msg.split("\n") if line)
        return out

    def wait_for(self, line, timeout=15.0, start=0):
        def seen():
            lines = self.assignments()
            return line in lines[start:]
        wait_until(seen, timeout, what=f"notify {line!r}")

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


class Certs:
    """Self-signed ECDSA certificates made once per test session."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._made = {}

    def get(self, name, sans=None):
        if name in self._made:
            return self._made[name]
        sans = sans or [name]
        cert = self.dir / f"{name}.crt"
        key = self.dir / f"{name}.key"
        alt = ",".join(f"DNS:{s}" for s in sans)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "30", "-subj", f"/CN={sans[0]}",
             "-addext", f"subjectAltName={alt}"],
            check=True, capture_output=True)
        os.chmod(key, 0o600)
        self._made[name] = (cert, key)
        return cert, key


def render_config(settings):
    """Render a dict as portcullis.conf text.  Values: str, int, bool,
    float, a tuple of str (a list option), dict (section) or a list of
    (title or None, dict) for repeated sections (key is the section
    name)."""
    lines = []

    def emit(d, indent):
        pad = "  " * indent
        for key, value in d.items():
            if isinstance(value, bool):
                lines.append(f"{pad}{key} = {'true' if value else 'false'}")
            elif isinstance(value, (int, float)):
                lines.append(f"{pad}{key} = {value}")
            elif isinstance(value, str):
                lines.append(f'{pad}{key} = "{value}"')
            elif isinstance(value, tuple):      # a list of strings
                items = ", ".join(f'"{v}"' for v in value)
                lines.append(f"{pad}{key} = {{ {items} }}")
            elif isinstance(value, dict):
                lines.append(f"{pad}{key} {{")
                emit(value, indent + 1)
                lines.append(f"{pad}}}")
            elif isinstance(value, list):
                for title, body in value:
                    head = f'{key} "{title}"' if title is not None else key
                    lines.append(f"{pad}{head} {{")
                    emit(body, indent + 1)
                    lines.append(f"{pad}}}")
            else:
                raise TypeError(f"cannot render {key}={value!r}")

    emit(settings, 0)
    return "\n".join(lines) + "\n"


class Proxy:
    """One portcullis master (and its workers) under test."""

    def __init__(self, tmp_path, certs, **overrides):
        self.dir = Path(tmp_path)
        self.certs = certs
        self.log_path = self.dir / "portcullis.log"
        self.conf_path = self.dir / "portcullis.conf"
        self.admin_path = self.dir / "admin.sock"
        self.https_port = free_port()
        self.http_port = free_port()
        self.health_port = free_port()
        self.proc = None
        self.notify = None
        self.stderr_path = self.dir / "stderr.log"
        cert, key = certs.get("localhost", ["localhost", "*.example.test"])
        self.settings = {
            "user": "nobody",
            "workers": 2,
            "health-check-port": self.health_port,
            "admin-socket": str(self.admin_path),
            "shutdown-timeout": 10,
            "logging": {"level": "debug", "format": "text",
                        "file": str(self.log_path)},
            "listener": [(None, {
                "bind": "127.0.0.1",
                "https-port": self.https_port,
                "http-port": self.http_port,
                "tls": {"mode": "manual", "cert": str(cert), "key": str(key)},
                "site": [("localhost", {"upstream": "127.0.0.1:9"}),
                         ("*.example.test", {"upstream": "127.0.0.1:9"})],
            })],
        }
        self.settings.update(overrides)
        self.write_config()

    # -- configuration --------------------------------------------------
    def write_config(self, text=None):
        if text is None:
            text = render_config(self.settings)
        self.conf_path.write_text(text)

    @property
    def listener(self):
        return self.settings["listener"][0][1]

    # -- process control ------------------------------------------------
    def start(self, wait=True, extra_args=(), env=None, preexec=None,
              user_cmd=()):
        self.notify = NotifySocket(self.dir / "notify.sock")
        environ = dict(os.environ)
        environ["NOTIFY_SOCKET"] = self.notify.path
        if env:
            environ.update(env)
        self.stderr = open(self.stderr_path, "ab")
        cmd = list(user_cmd) + [str(BINARY), "-c", str(self.conf_path),
                                *extra_args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr,
                                     env=environ, preexec_fn=preexec)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"portcullis exited with {self.proc.returncode} before "
                    f"READY=1\n{self.all_logs()}")
            return "READY=1" in self.notify.assignments()
        wait_until(ready, timeout, what="READY=1")

    @property
    def pid(self):
        return self.proc.pid

    def workers(self):
        """The master's children but the signer (which every instance
        has: it holds the private keys, issue 19)."""
        return [k for k in children_of(self.pid)
                if argv0_of(k) != b"portcullis-signer"]

    def signer(self):
        """The signer's pid, or None."""
        for k in children_of(self.pid):
            if argv0_of(k) == b"portcullis-signer":
                return k
        return None

    def wait_workers(self, n, timeout=10.0):
        return wait_until(lambda: (w := self.workers()) and len(w) == n and w,
                          timeout, what=f"{n} workers")

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise AssertionError(f"portcullis did not exit within {timeout}s")

    def kill_all(self):
        if self.proc is None:
            return
        pids = [self.pid] + self.workers() if self.proc.poll() is None else []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    # -- admin socket ---------------------------------------------------
    def ctl(self, command, timeout=60):
        r = subprocess.run([str(BINARY), "ctl", "--socket",
                            str(self.admin_path), command],
                           capture_output=True, text=True, timeout=timeout)
        reply = None
        if r.stdout.strip():
            reply = json.loads(r.stdout)
        return r.returncode, reply

    def admin_raw(self, data, timeout=10.0):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.admin_path))
            s.sendall(data)
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)

    # -- logs -----------------------------------------------------------
    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def all_logs(self):
        out = []
        for p in (self.stderr_path, self.log_path):
            if p.exists():
                out.append(f"--- {p.name} ---\n" + p.read_text(errors="replace"))
        return "\n".join(out)

    def wait_log(self, pattern, timeout=10.0, count=1):
        rx = re.compile(pattern)
        return wait_until(lambda: len(rx.findall(self.log())) >= count,
                          timeout, what=f"log {pattern!r} x{count}")


def lingering_socket():
    """A TCP socket whose close(2) waits: its send queue is full, the peer
    (a listener that never accepts) reads nothing, and SO_LINGER asks
    close to wait an hour for the queue to drain.  Returns it and the
    listener, which must stay open (closing it releases a stuck close)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    s = socket.create_connection(lst.getsockname())
    s.setblocking(False)
    try:
        while True:
            s.send(b"x" * 65536)
    except BlockingIOError:
        pass
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                 struct.pack("ii", 1, 3600))
    return s, lst


def offer_lingering_socket(proxy, chan, data):
    """Send data on chan (a Unix socket to the master) with a lingering
    socket attached, and check that status still answers.  The master is
    stopped while the message is sent and our copy is dropped, so that its
    copy, if it takes one, is the last whatever the timing: its close then
    blocks the master's loop until the listener behind it is closed, which
    this does last.  Returns the OSError that refused the send, or None."""
    s, lst = lingering_socket()
    refused = None
    os.kill(proxy.pid, signal.SIGSTOP)
    try:
        try:
            chan.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                   struct.pack("i", s.fileno()))])
        except OSError as e:
            # Refused: ours is the only copy, drop it without waiting.
            refused = e
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
        s.close()
    finally:
        os.kill(proxy.pid, signal.SIGCONT)
    try:
        try:
            rc, st = proxy.ctl("status", timeout=20)
        except subprocess.TimeoutExpired:
            rc, st = None, "no answer: the master is stuck in close(2)"
        assert rc == 0 and st is not None and st["status"] == "ok", st
    finally:
        lst.close()
    return refused


def http_get(port, path="/health", host="127.0.0.1", raw=None, timeout=5.0):
    """Send one request (or raw bytes) and return the whole reply."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        if raw is None:
            raw = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
                   f"Connection: close\r\n\r\n").encode()
        s.sendall(raw)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(reply):
    """The status of the response in reply, None if it is none."""
    m = STATUS_LINE.match(reply.split(b"\r\n", 1)[0])
    return int(m.group(2)) if m else None


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_configure(config):
    # An exception that ends a thread of the tests' own (a client, a
    # sampler, a server a test made by hand) fails the test, not only
    # warns: a check that fails there must not vanish.
    config.addinivalue_line(
        "filterwarnings",
        "error::pytest.PytestUnhandledThreadExceptionWarning")


# How long the end of a test waits for the threads it started (handlers
# of its upstreams among them) to finish, so that what fails in them
# fails this test and not a later one.
THREAD_GRACE = 10.0


@pytest.fixture(autouse=True)
def thread_checks():
    """Fail a test whose test upstream saw a check fail in its threads
    (an assertion in a handler, or a malformed request from the proxy),
    once the threads the test started are done (autouse: this ends after
    every other fixture of the test, the proxies already stopped)."""
    from upstream import Upstream
    Upstream.made.clear()
    before = set(threading.enumerate())
    yield
    made, Upstream.made[:] = list(Upstream.made), []
    for u in made:
        u.stop()
    deadline = time.monotonic() + THREAD_GRACE * SLOWDOWN
    for t in set(threading.enumerate()) - before:
        t.join(max(0.0, deadline - time.monotonic()))
    bad = [f"{u.addr}: {v}" for u in made for v in u.violations]
    if bad:
        pytest.fail("test upstream:\n" + "\n".join(bad), pytrace=False)


# How long a proxy a test left running gets to exit on SIGTERM when the
# test is over (sanitizer builds only, see end_proxy).
TEARDOWN_GRACE = 5.0


def end_proxy(p):
    """Stop a proxy the test left running.  Under the sanitizers, SIGTERM
    first: LeakSanitizer looks for leaks when a process exits by itself,
    and SIGKILL would skip that in every process.  A proxy still draining
    a connection the test left open after TEARDOWN_GRACE is killed, and
    goes unchecked for leaks (what it logged is still scanned)."""
    if SLOWDOWN > 1 and p.proc is not None and p.proc.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.proc.wait(TEARDOWN_GRACE)
        except subprocess.TimeoutExpired:
            pass
    p.kill_all()


def call_failed(request):
    """Whether the test itself (not a fixture) failed."""
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


@pytest.fixture
def make_proxy(request, tmp_path, certs):
    """Factory: make_proxy(**settings) -> Proxy (not started)."""
    made = []

    def factory(subdir=None, base=None, **overrides):
        d = Path(base) if base else tmp_path / (subdir or f"p{len(made)}")
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o755)
        p = Proxy(d, certs, **overrides)
        made.append(p)
        return p

    yield factory
    failed = call_failed(request)
    problems = []
    for p in made:
        end_proxy(p)
        if p.notify:
            p.notify.close()
        logs = p.all_logs()
        if SANITIZER_PATTERNS.search(logs) or SANDBOX_PATTERN.search(logs):
            problems.append(logs)
        if failed:
            sys.stdout.write(f"\n===== portcullis log ({p.dir}) =====\n{logs}\n")
    if problems:
        pytest.fail("sanitizer report or sandbox kill in the proxy log:\n" +
                    "\n".join(problems))


@pytest.fixture
def proxy(make_proxy):
    """A started proxy with the default test configuration."""
    return make_proxy().start()


# ---- the data path: real upstreams and raw TLS clients ----------------

import ssl  # noqa: E402

from upstream import Upstream  # noqa: E402


@pytest.fixture
def make_upstream():
    made = []

    def factory(*args, **kw):
        u = Upstream(*args, **kw)
        made.append(u)
        return u

    yield factory
    for u in made:
        u.stop()


@pytest.fixture
def upstream(make_upstream):
    return make_upstream()


def point_sites_at(proxy, upstream):
    for _, site in proxy.listener["site"]:
        site["upstream"] = upstream.addr
    proxy.write_config()


@pytest.fixture
def proxied(make_proxy, upstream):
    """A started proxy whose sites all go to one recording upstream."""
    p = make_proxy()
    point_sites_at(p, upstream)
    p.start()
    return p, upstream


# So that no rate limit a test does not ask for gets in the way (the
# largest burst the configuration takes).
NO_RATE_LIMIT = {"requests-per-second": 1000000, "burst": 1000000}


def start_proxy(make_proxy, upstream=None, workers=1, configure=None,
                **overrides):
    """A started proxy, without a rate limit unless overrides set one,
    whose sites all go to upstream (anything with an .addr), if given;
    configure(proxy), if given, may then change the settings (a site of
    its own with another upstream, say)."""
    overrides.setdefault("rate-limit", dict(NO_RATE_LIMIT))
    p = make_proxy(workers=workers, **overrides)
    if upstream is not None:
        point_sites_at(p, upstream)
    if configure is not None:
        configure(p)
    p.write_config()
    p.start()
    return p


def tls_context(alpn=("http/1.1",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def tls_connect(port, sni="localhost", host="127.0.0.1", timeout=10.0,
                ctx=None):
    raw = socket.create_connection((host, port), timeout=timeout)
    return (ctx or tls_context()).wrap_socket(raw, server_hostname=sni)


def read_all(s, limit=1 << 30):
    chunks, total = [], 0
    while total < limit:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError, socket.timeout):
            break
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def tls_exchange(port, raw, sni="localhost", timeout=10.0):
    """Send raw bytes over TLS and read until the server closes."""
    with tls_connect(port, sni=sni, timeout=timeout) as s:
        s.sendall(raw)
        return read_all(s)


def parse_response(data, method="GET"):
    """(status, fields, body, rest) of the response at the start of data
    (h1util's parser; fields: lower-cased name -> [values]); chunked
    bodies are decoded.  A response cut short fails the test."""
    r, rest = parse_one(data, method)
    assert r.complete, f"incomplete response: {data[:300]!r}"
    return r.status, r.fields, r.body, rest


def https_get(port, path="/", host="localhost", sni="localhost",
              extra=b"", method="GET"):
    raw = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
           f"Connection: close\r\n").encode() + extra + b"\r\n"
    return parse_response(tls_exchange(port, raw, sni=sni), method)
