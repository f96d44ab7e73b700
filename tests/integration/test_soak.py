"""Soak: the sanitizer build under mixed load (h2load over HTTP/2 and
HTTP/1.1, curl over both, WebSocket tunnels) with a reload every second
and a worker killed with SIGKILL every 10 s, for PORTCULLIS_SOAK_SECONDS
(default 90; contrib/test.sh's sanitizer pass runs it so).  A longer run:

    PORTCULLIS_SOAK_SECONDS=3600 PORTCULLIS_BIN=build-asan/portcullis \\
    PORTCULLIS_BUILDDIR=build-asan ASAN_OPTIONS=detect_leaks=1 \\
    /usr/bin/python3 -m pytest -p no:cacheprovider -q -s \\
    tests/integration/test_soak.py

It passes when:
- no process wrote a sanitizer report: every process of the proxy has the
  log file as fd 2 (checked for each worker, the respawned ones too), and
  the log file and the master's stderr are read for reports;
- every reload was accepted, every killed worker was reported and
  replaced, and the proxy still serves at the end;
- no request failed but those in flight on a killed worker's connections.
  WebSocket tunnels are attributed exactly: the worker holding each one is
  looked up (ss) when it is opened, and a tunnel may break only if that
  worker was killed while it was open.  h2load and curl do not say which
  worker served a connection, so for them the rule is by time: a run (an
  h2load run of a few hundred requests, a curl request) may see
  connection errors only if a worker was killed while it ran; a wrong
  status (anything but 200, a 5xx included) always fails, kill or not.
  With a kill every 10 s and runs of a second or two, most runs overlap
  no kill and must be perfect.

In the plain build it is skipped (with that reason) unless
PORTCULLIS_SOAK_SECONDS is set; in a build with ASan it always runs, and
when ASAN_OPTIONS is set (the sanitizer pass) but the binary has no
AddressSanitizer, it fails rather than skips."""

import glob
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import (BINARY, SANITIZER_PATTERNS, SLOWDOWN, start_proxy,
                      tls_connect, wait_until)
from h1util import read_head
from nginx_upstream import NginxUpstream
from test_streaming import ws_accept, ws_handler, ws_request

SECONDS = int(os.environ.get("PORTCULLIS_SOAK_SECONDS", "90"))
RELOAD_EVERY = 1.0
KILL_EVERY = 10.0
# SIGKILL takes effect a moment after kill(2) returns: a request started
# this soon after a kill may still have reached the dying worker.
KILL_SLACK = 0.5
WORKERS = 2
WS_HOST = "ws.example.test"


def sanitized(binary):
    """Whether binary was linked with AddressSanitizer."""
    r = subprocess.run(["nm", "-D", str(binary)], capture_output=True,
                       text=True)
    return r.returncode == 0 and "__asan_init" in r.stdout


def soak_wanted():
    if sanitized(BINARY):
        return True
    if os.environ.get("ASAN_OPTIONS"):
        pytest.fail(f"ASAN_OPTIONS is set (the sanitizer pass) but {BINARY} "
                    "has no AddressSanitizer: the soak would not test what "
                    "it claims")
    if "PORTCULLIS_SOAK_SECONDS" in os.environ:
        return True
    pytest.skip("soak: runs in the ASan+UBSan build (contrib/test.sh's "
                "second pass); set PORTCULLIS_SOAK_SECONDS to run it in "
                "this plain build")


def worker_pids(p):
    """The master's children that are workers (not the helpers)."""
    out = []
    for pid in p.workers():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        if argv0 == b"portcullis-worker":
            out.append(pid)
    return out


def wait_workers(p, timeout):
    return wait_until(lambda: (w := worker_pids(p)) and len(w) == WORKERS
                      and w, timeout, what=f"{WORKERS} workers")


def conn_owner(port, local_port):
    """The pid of the process holding the proxy's end of our connection
    from local_port to port, or None."""
    r = subprocess.run(["ss", "-Htnp", "state", "established",
                        f"( sport = :{port} and dport = :{local_port} )"],
                       capture_output=True, text=True, check=True)
    pids = {int(x) for x in re.findall(r"pid=(\d+)", r.stdout)}
    return pids.pop() if len(pids) == 1 else None


class Soak:
    """The load, the reloads and the kills, and what each of them saw.
    Records are judged at the end, against the full list of kills."""

    def __init__(self, proxy, seconds):
        self.p = proxy
        self.seconds = seconds
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.kills = []             # (monotonic time, pid)
        self.runs = []              # the failed: (kind, t0, t1, ok, fatal,
        #                              detail, owner)
        self.requests = {"h2load-h2": 0, "h2load-h1": 0, "curl": 0,
                         "websocket": 0}
        self.reloads = 0
        self.threads = []

    def record(self, kind, t0, ok, fatal=False, detail="", owner=None,
               done=0):
        t1 = time.monotonic()
        with self.lock:
            if not ok:
                self.runs.append((kind, t0, t1, ok, fatal, detail, owner))
            self.requests[kind] = self.requests.get(kind, 0) + done

    def spawn(self, fn, *args):
        t = threading.Thread(target=self._guard, args=(fn,) + args,
                             daemon=True)
        t.start()
        self.threads.append(t)

    def _guard(self, fn, *args):
        try:
            while not self.stop.is_set():
                fn(*args)
        except Exception as e:      # noqa: BLE001 - recorded, and fails
            self.record(fn.__name__, time.monotonic(), False, True,
                        f"load thread died: {e!r}")

    # -- load ---------------------------------------------------------
    def h2load(self, h1):
        kind = "h2load-h1" if h1 else "h2load-h2"
        n = 200
        args = ["h2load", "-n", str(n), "-c", "4", "-N", "10"]
        args += ["--h1"] if h1 else ["-m", "4"]
        args.append(f"https://localhost:{self.p.https_port}/")
        t0 = time.monotonic()
        try:
            out = subprocess.run(args, capture_output=True, text=True,
                                 timeout=60 * SLOWDOWN).stdout
        except subprocess.TimeoutExpired:
            self.record(kind, t0, False, True, "h2load hung")
            return
        m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, "
                      r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
        s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, "
                      r"(\d+) 5xx", out)
        if not m or not s:
            self.record(kind, t0, False, True, f"h2load said:\n{out}")
            return
        total, done, ok, failed, errored = map(int, m.groups())
        s2xx, s3xx, s4xx, s5xx = map(int, s.groups())
        perfect = (done == ok == s2xx == total and failed == errored == 0)
        # A wrong status is never a killed connection's doing (h2load
        # counts errored requests among the failed ones too).
        # No protocol line when no connection got through: a run
        # started as its worker was killed; judged by the kill, as any.
        wrong = (failed > errored or s3xx or s4xx or s5xx
                 or (not h1 and done > 0 and "h2" not in out))
        self.record(kind, t0, perfect, bool(wrong),
                    f"{total} total, {done} done, {ok} ok, {failed} failed, "
                    f"{errored} errored, {s2xx} 2xx, {s5xx} 5xx",
                    done=s2xx)

    def curl(self, version):
        port = self.p.https_port
        t0 = time.monotonic()
        r = subprocess.run(
            ["curl", "-sk", version, "--max-time", str(10 * SLOWDOWN),
             "-o", "-", "-w", "\n%{http_code}",
             "--resolve", f"localhost:{port}:127.0.0.1",
             f"https://localhost:{port}/"],
            capture_output=True, timeout=30 * SLOWDOWN)
        body, _, code = r.stdout.rpartition(b"\n")
        if r.returncode == 0:
            ok = code == b"200" and body == b"ok\n"
            self.record("curl", t0, ok, not ok,
                        f"{version}: {code!r} {body[:80]!r}", done=ok)
        else:
            # A transport error (reset, EOF, TLS alert): curl's exit code.
            self.record("curl", t0, False, False,
                        f"{version}: curl exit {r.returncode}")

    def websocket(self):
        """One tunnel: open it, echo 20 messages over about 2 s, close."""
        port = self.p.https_port
        t0 = time.monotonic()
        owner = None
        try:
            with tls_connect(port, sni=WS_HOST, timeout=10 * SLOWDOWN) as s:
                owner = conn_owner(port, s.getsockname()[1])
                s.sendall(ws_request().replace(b"Host: localhost",
                                               f"Host: {WS_HOST}".encode()))
                status, headers, rest = read_head(s)
                if status != 101 or headers.get("sec-websocket-accept") != \
                        [ws_accept("dGhlIHNhbXBsZSBub25jZQ==")]:
                    self.record("websocket", t0, False, True,
                                f"upgrade answered {status}", owner)
                    return
                got = rest
                want = b"hello client"
                for i in range(20):
                    msg = b"message %d " % i * 10
                    s.sendall(msg)
                    want += msg
                    while len(got) < len(want):
                        chunk = s.recv(65536)
                        if not chunk:
                            raise EOFError(f"closed after {len(got)} bytes")
                        got += chunk
                    if got != want[:len(got)]:
                        self.record("websocket", t0, False, True,
                                    "echo corrupted", owner)
                        return
                    time.sleep(0.1)
            self.record("websocket", t0, True, owner=owner, done=1)
        except (OSError, EOFError) as e:
            self.record("websocket", t0, False, False, repr(e), owner)

    # -- operations ---------------------------------------------------
    def reload(self, i):
        """Reload, every other time with one more site, so that each
        reload publishes a different configuration."""
        sites = self.p.listener["site"]
        if i % 2:
            sites.append((f"extra{i}.test", {"upstream": "127.0.0.1:9"}))
        else:
            del sites[2:]
        self.p.write_config()
        rc, reply = self.p.ctl("reload")
        assert rc == 0 and reply["status"] == "ok", (i, rc, reply)
        self.reloads += 1

    def kill_one(self, n):
        workers = worker_pids(self.p)
        assert len(workers) == WORKERS, workers
        victim = workers[n % len(workers)]
        with self.lock:
            self.kills.append((time.monotonic(), victim))
        os.kill(victim, signal.SIGKILL)
        return victim

    # -- judging ------------------------------------------------------
    def killed_during(self, t0, t1, owner=None):
        return [(tk, pid) for tk, pid in self.kills
                if t0 <= tk + KILL_SLACK and t1 >= tk
                and (owner is None or pid == owner)]

    def verdict(self):
        """(failures that fail the test, failures a kill explains)."""
        bad, excused = [], []
        for kind, t0, t1, ok, fatal, detail, owner in self.runs:
            if ok:
                continue
            line = f"{kind} [{t0:.1f}..{t1:.1f}] {detail}"
            if fatal:
                bad.append(line + " (never excused)")
            elif kind == "websocket" and owner is None:
                bad.append(line + " (its worker unknown)")
            elif self.killed_during(t0, t1, owner if kind == "websocket"
                                    else None):
                excused.append(line)
            else:
                bad.append(line + " (no kill of its worker while it ran)")
        return bad, excused


def fd2_is_log(pid, log_path):
    try:
        return os.readlink(f"/proc/{pid}/fd/2") == str(log_path)
    except OSError:
        return None                 # gone meanwhile


def sanitizer_logs():
    """Files ASan/UBSan write to besides fd 2 (log_path=...)."""
    paths = []
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        m = re.search(r"(?:^|:)log_path=([^:]+)",
                      os.environ.get(var, ""))
        if m:
            paths += glob.glob(m.group(1) + "*")
    return paths


def test_soak(make_proxy, make_upstream, tmp_path):
    soak_wanted()
    nginx = NginxUpstream(tmp_path / "nginx")
    ws_up = make_upstream(handler=ws_handler)

    def configure(p):
        sites = p.listener["site"]
        sites[0][1]["upstream"] = nginx.addr
        sites[1][1]["upstream"] = ws_up.addr

    before = set(sanitizer_logs())
    try:
        # The access log is on (its code runs under the sanitizers too)
        # unless the run is long: it grows by about 0.5 MB a second.
        p = start_proxy(make_proxy, None, workers=WORKERS,
                        configure=configure, subdir="soak",
                        logging={"level": "info", "format": "text",
                                 "access": SECONDS <= 600,
                                 "file": str(tmp_path / "soak" /
                                             "portcullis.log")},
                        **{"shutdown-timeout": 5})
        soak = Soak(p, SECONDS)
        seen_workers = set()
        for w in wait_workers(p, 10 * SLOWDOWN):
            assert fd2_is_log(w, p.log_path), w
            seen_workers.add(w)
        soak.spawn(soak.h2load, False)
        soak.spawn(soak.h2load, True)
        soak.spawn(soak.curl, "--http1.1")
        soak.spawn(soak.curl, "--http2")
        soak.spawn(soak.websocket)
        soak.spawn(soak.websocket)
        start = time.monotonic()
        next_kill = start + KILL_EVERY
        victims = []
        kills = int((SECONDS - 1e-9) // KILL_EVERY)
        i = 0
        try:
            # A slow respawn may push a kill past the end: the run lasts
            # until every kill it owes has happened.
            while (time.monotonic() - start < SECONDS
                   or len(victims) < kills):
                i += 1
                soak.reload(i)
                now = time.monotonic()
                # The kills owed, not one more: a reload that began
                # before the end may finish past the next kill's time.
                if now >= next_kill and len(victims) < kills:
                    # The last kill's replacement is up and has its log
                    # as fd 2 (a respawn is a new process: check it).
                    workers = wait_workers(p, 10 * SLOWDOWN)
                    for w in set(workers) - seen_workers:
                        assert fd2_is_log(w, p.log_path) is not False, w
                        seen_workers.add(w)
                    victims.append(soak.kill_one(len(victims)))
                    next_kill += KILL_EVERY
                # Bounded memory for long runs: the echo upstream keeps
                # what it saw.
                with ws_up.lock:
                    ws_up.requests.clear()
                    ws_up.raw_chunks.clear()
                time.sleep(max(0.0, RELOAD_EVERY - (time.monotonic() - now)))
        finally:
            soak.stop.set()
            for t in soak.threads:
                t.join(90 * SLOWDOWN)
        assert not any(t.is_alive() for t in soak.threads), "load hangs"

        # Every kill was seen and the worker replaced.
        for v in victims:
            p.wait_log(rf"worker \d \(pid {v}\) killed by signal 9",
                       timeout=10 * SLOWDOWN)
        workers = wait_workers(p, 10 * SLOWDOWN)
        assert not set(workers) & set(victims)
        rc, st = p.ctl("status")
        assert rc == 0 and st["status"] == "ok" and st["workers"] == WORKERS

        bad, excused = soak.verdict()
        summary = (f"{SECONDS}s: {soak.reloads} reloads, "
                   f"{len(victims)} workers killed, requests {soak.requests}"
                   f", {len(excused)} failed runs on killed workers; kills at "
                   + ", ".join(f"{t:.1f}" for t, _ in soak.kills))
        print("\n" + summary + "".join("\n  excused: " + e
                                       for e in excused))
        assert not bad, summary + "\n" + "\n".join(bad)
        assert soak.reloads >= SECONDS * 0.8 / RELOAD_EVERY / SLOWDOWN, \
            summary
        assert len(victims) == kills, summary
        # Real load all along, of every kind.
        for kind, n in soak.requests.items():
            assert n >= SECONDS / 10, (kind, summary)

        # Sanitizer reports: every process writes to the log file (fd 2,
        # checked above); the master's stderr before it was opened, and
        # any log_path file, too.  The fixture checks the same after the
        # proxy's exit (leaks), this says it here.
        assert p.stop() == 0
        text = p.all_logs()
        for path in set(sanitizer_logs()) - before:
            text += open(path, errors="replace").read()
        found = SANITIZER_PATTERNS.search(text)
        assert not found, text[max(0, found.start() - 2000):][:8000]
    finally:
        nginx.stop()
