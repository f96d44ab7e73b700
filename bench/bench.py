#!/usr/bin/python3
"""Benchmark portcullis against nginx and HAProxy (issue 6).

Run through bench/run, which installs the tools, builds portcullis and
makes the certificate first.  This script starts the upstreams and, for
every measurement, a fresh proxy; it alternates the proxies (A B C A B C)
and writes the medians to bench/results/latest.{md,json} and PNG charts.

The primary figure is the proxy's own CPU time per request: utime+stime of
all its processes (from /proc/PID/stat, before and after the load), divided
by the requests completed.  How each scenario is measured is in the Notes
that end bench/results/latest.md.
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parent
CONF = HERE / "conf"
PROXIES = ("portcullis", "nginx", "haproxy")
PROXY_CPUS = "0"
LOAD_CPUS = "1"
TICK = os.sysconf("SC_CLK_TCK")
BODY = "x" * 99 + "\\n"      # 100-byte response body (nginx string escape)

# Targets of issue 6: (metric, comparison proxy, bound, "max" or "min").
TARGETS = {
    "s1": [("cpu_us_per_req", "nginx", 0.67, "max"),
           ("p99_ms", "nginx", 1.0, "max")],
    "s2": [("cpu_us_per_req", "haproxy", 0.8, "max")],
    "s3": [("cpu_us_per_req", "nginx", 1.0, "max")],
    # s3r: none (issue 6 set none for resumed handshakes).
    "s4": [("rss_kib_per_conn", "nginx", 0.5, "max")],
    "s5": [("download_mbps", "nginx", 1.0, "min"),
           ("upload_mbps", "nginx", 1.0, "min"),
           ("peak_rss_mib", None, 64, "max")],
    "s6": [("instr_per_req", "nginx", 0.7, "max")],
    # s7: none (issue 17 asks for the comparison, sets no bound).
}

# Scenarios 3 and 3r: HS_CLIENTS openssl s_time processes at once, each
# one connection at a time.  The request goes in through s_time's -www
# path, which it formats as "GET %s HTTP/1.0\r\n\r\n": the path ends the
# request line and adds the Host field s_time does not send; the trailing
# " HTTP/1.0" becomes the value of a field of its own.  The client offers
# one TLS 1.3 suite so that all three do the same key schedule
# (portcullis prefers AES-128-GCM-SHA256, HAProxy AES-256-GCM-SHA384 and
# nginx takes the client's first; SHA-384 costs more per handshake).
HS_CLIENTS = 8
HS_SUITE = "TLS_AES_128_GCM_SHA256"
HS_PATH = "/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Bench:"
HS_REQUEST = f"GET {HS_PATH} HTTP/1.0\r\n\r\n"
# The client verifies nothing (s_time's default), so it needs no CA store:
# without these OpenSSL 3.0 reads the directory /etc/ssl/certs (CAstore)
# on every connection, a quarter of the client's CPU per handshake (about
# 2.5 ms with, 1.8 without, on the development VM).
HS_NO_CA = ["-no-CAfile", "-no-CApath", "-no-CAstore"]
# The share of resumed handshakes each scenario must show (client's count).
HS_REUSE = {"s3": (0.0, 0.01), "s3r": (0.99, 1.0)}

# Session resumption in each proxy, per state: "off" for scenario 3
# (no tickets, no session cache), "on" for 3r (both), None for the others
# (each proxy's defaults; they keep their connections open).  portcullis
# has no switch: it always issues tickets, under per-certificate keys, and
# keeps no session cache (src/tls.c); in "off" the client offers nothing
# to resume (s_time -new starts every connection without a session).
SESSIONS = {
    "nginx": {
        None: {"SESSIONS": "# (nginx's defaults)"},
        "off": {"SESSIONS": "ssl_session_tickets off;\n"
                "  ssl_session_cache off;"},
        "on": {"SESSIONS": "ssl_session_tickets on;\n"
               "  ssl_session_cache shared:SSL:10m;"},
    },
    "haproxy": {
        None: {"SESSIONS": "# (HAProxy's defaults)", "TICKETS": ""},
        "off": {"SESSIONS": "tune.ssl.cachesize 0",
                "TICKETS": "no-tls-tickets"},
        "on": {"SESSIONS": "tune.ssl.cachesize 20000", "TICKETS": ""},
    },
    "portcullis": {None: {}, "off": {}, "on": {}},
}

TITLES = {
    "s1": "1. HTTPS HTTP/1.1 keep-alive, 50 conns, small response (wrk)",
    "s2": "2. HTTP/2, 50 conns x 10 streams (h2load)",
    "s3": "3. Full TLS handshake per request (openssl s_time -new)",
    "s3r": "3r. Resumed TLS handshake per request (openssl s_time -reuse)",
    "s4": "4. {idle} idle TLS connections held open",
    "s5": "5. {mib} MiB download and upload (curl)",
    "s6": "6. Instructions per request of scenario 1",
    "s7": "7. Scenario 1 with HTTPS to the upstream (TLS, keep-alive)",
    "w1": "2 workers: scenario 1",
    "w2": "2 workers: scenario 2",
}

# --------------------------------------------------------------------------
# processes


class Procs:
    """Every process this script starts, each in its own process group, so
    that cleanup ends exactly those (by id), on success and failure."""

    def __init__(self):
        self.live = []

    def start(self, argv, log=None, cpus=None, **kw):
        if cpus is not None:
            argv = ["taskset", "-c", cpus] + list(argv)
        out = open(log, "ab") if log else subprocess.DEVNULL
        kw.setdefault("stdout", out)
        kw.setdefault("stderr", out)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, start_new_session=True,
                             preexec_fn=raise_nofile, **kw)
        if log:
            out.close()
        self.live.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=15):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in reversed(list(self.live)):
            self.stop(p, timeout=5)


def raise_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} not listening after {timeout}s")


def tree(root):
    """root and all its descendants (from /proc/*/stat)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            parent[int(d)] = int(st.rsplit(")", 1)[1].split()[1])
    pids, todo = [], [root]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return pids


def cpu_split(pids):
    """(utime, stime) in seconds, summed over pids."""
    user = system = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(f[11])                   # utime (field 14)
        system += int(f[12])                 # stime (field 15)
    return user / TICK, system / TICK


def cpu_seconds(pids):
    return sum(cpu_split(pids))


def status_kib(pids, field):
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def run_cmd(argv, timeout, cpus=None):
    if cpus is not None:
        argv = ["taskset", "-c", cpus] + list(argv)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout,
                       preexec_fn=raise_nofile, start_new_session=True)
    return r.returncode, r.stdout.decode(errors="replace")


# --------------------------------------------------------------------------
# the environment: upstreams, proxies


def fill(template, values):
    text = (CONF / template).read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = re.findall(r"@[A-Z]+@", text)
    if left:
        raise RuntimeError(f"{template}: unfilled {left}")
    return text


class Bench:
    def __init__(self, args, procs):
        self.a = args
        self.procs = procs
        self.dir = Path(tempfile.mkdtemp(prefix="portcullis-bench.",
                                         dir="/dev/shm"))
        os.chmod(self.dir, 0o755)
        self.cert = self.dir / "cert.pem"
        self.key = self.dir / "key.pem"
        shutil.copy(args.cert, self.cert)
        shutil.copy(args.key, self.key)
        os.chmod(self.key, 0o644)    # a throwaway key the workers must read
        self.pem = self.dir / "cert+key.pem"
        self.pem.write_text(self.cert.read_text() + self.key.read_text())
        self.upstream = free_port()
        self.upstream_tls = free_port()
        self.sink = free_port()
        (self.dir / "www").mkdir(mode=0o755)
        self.big = self.dir / "www" / "big"
        with open(self.big, "wb") as f:   # sparse: costs no memory on tmpfs
            f.truncate(args.transfer_mib << 20)
        self.h2_ok = {}

    def log(self, name):
        return self.dir / f"{name}.out"

    def start_upstreams(self):
        self.upstream_procs = []
        conf = self.dir / "nginx-upstream.conf"
        conf.write_text(fill("nginx-upstream.conf.in", {
            "DIR": self.dir, "UPSTREAM": self.upstream, "BODY": BODY,
            "UPSTREAM_TLS": self.upstream_tls, "CERT": self.cert,
            "KEY": self.key}))
        p = self.procs.start(["nginx", "-p", str(self.dir), "-c", str(conf)],
                             log=self.log("nginx-upstream"), cpus=LOAD_CPUS)
        wait_port(self.upstream, p)
        wait_port(self.upstream_tls, p)
        self.upstream_procs.append(p)
        s = self.procs.start([sys.executable, str(HERE / "sink.py"),
                              str(self.sink)], log=self.log("sink"),
                             cpus=LOAD_CPUS)
        wait_port(self.sink, s)
        self.upstream_procs.append(s)

    def upstream_pids(self):
        return [pid for p in self.upstream_procs for pid in tree(p.pid)]

    def proxy_argv(self, name, port, workers, valgrind=None, sessions=None):
        v = {"DIR": self.dir, "PORT": port, "UPSTREAM": self.upstream,
             "UPSTREAM_TLS": self.upstream_tls,
             "SINK": self.sink, "WORKERS": workers, "CERT": self.cert,
             "KEY": self.key, "PEM": self.pem,
             "MASTER": "master_process off;" if valgrind else "",
             **SESSIONS[name][sessions]}
        if name == "portcullis":
            conf = self.dir / "portcullis.conf"
            text = fill("portcullis.conf.in", v)
            if valgrind:
                # Under valgrind the children cannot install their
                # seccomp filters (EINVAL): the signer would exit.
                text += '\nseccomp = "off"\n'
            conf.write_text(text)
            argv = [str(self.a.portcullis), "-c", str(conf)]
        elif name == "nginx":
            conf = self.dir / "nginx-proxy.conf"
            conf.write_text(fill("nginx-proxy.conf.in", v))
            argv = ["nginx", "-p", str(self.dir), "-c", str(conf)]
        else:
            conf = self.dir / "haproxy.cfg"
            conf.write_text(fill("haproxy.cfg.in", v))
            argv = ["haproxy", "-db", "-f", str(conf)]
        if valgrind:
            argv = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                    "--vgdb=no",
                    f"--callgrind-out-file={valgrind}/callgrind.out.%p",
                    "--dump-instr=no", "--collect-jumps=no"] + argv
        return argv

    def start_proxy(self, name, workers=1, valgrind=None, sessions=None):
        port = free_port()
        cpus = PROXY_CPUS if workers == 1 else "0,1"
        log = self.log(name)
        mark = log.stat().st_size if log.exists() else 0
        p = self.procs.start(self.proxy_argv(name, port, workers, valgrind,
                                             sessions),
                             log=log, cpus=cpus)
        try:
            self.wait_ready(name, p, port, 120 if valgrind else 30)
        except Exception as e:
            self.procs.stop(p)
            with open(log, "rb") as f:
                f.seek(mark)
                tail = f.read().decode(errors="replace")
            raise RuntimeError(f"{e}; log: {tail[-600:]}") from None
        return p, port

    def wait_ready(self, name, p, port, timeout):
        wait_port(port, p, timeout)
        # Ready means a request goes through to the upstream.
        end = time.monotonic() + timeout
        while True:
            rc, out = run_cmd(["curl", "-ksS", "-o", "/dev/null", "-w",
                               "%{http_code}", "--http1.1",
                               f"https://localhost:{port}/"], 60)
            if out.strip() == "200":
                break
            if time.monotonic() > end or p.poll() is not None:
                raise RuntimeError(f"{name} not answering 200: {out!r}")
            time.sleep(0.2)

    def check_host(self, name, port, host):
        """A request for host answers 200 with the small body: the site is
        there and reaches its upstream (scenario 7: over TLS)."""
        rc, out = run_cmd(["curl", "-ksS", "--http1.1", "-H",
                           f"Host: {host}", "-w", " %{http_code}",
                           f"https://localhost:{port}/"], 60)
        if not out.endswith(" 200") or len(out) != 100 + 4:
            raise RuntimeError(f"{name}: Host {host}: {out[-300:]!r}")

    def stop_proxy(self, p):
        self.procs.stop(p, timeout=60)

    def h2_offered(self, port):
        rc, out = run_cmd(["curl", "-ksS", "-o", "/dev/null", "-w",
                           "%{http_version}", "--http2",
                           f"https://localhost:{port}/"], 30)
        return out.strip() == "2"


# --------------------------------------------------------------------------
# load generators and their output

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNIT[m.group(2)]


def parse_wrk(out):
    r = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    if not m:
        raise RuntimeError("wrk output not understood:\n" + out)
    r["requests"] = int(m.group(1))
    r["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        if m:
            r[key] = ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    r["socket_errors"] = sum(map(int, m.groups())) if m else 0
    return r


def parse_h2load(out):
    r = {}
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    if not m:
        raise RuntimeError("h2load output not understood:\n" + out)
    r["requests"] = int(m.group(4))
    r["failed"] = int(m.group(5)) + int(m.group(6))
    r["rps"] = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s",
                               out).group(1))
    m = re.search(r"Application protocol: (\S+)", out)
    r["protocol"] = m.group(1) if m else None
    return r


def cpu_jiffies(cpus):
    """(busy, total) jiffies of the CPUs in the list "cpus" (/proc/stat).
    Steal counts as busy: the CPU was not ours (another guest had it)."""
    want = {f"cpu{c}" for c in cpus.split(",")}
    busy = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f and f[0] in want:
            n = list(map(int, f[1:9]))   # user nice system idle iowait
            total += sum(n)              # irq softirq steal
            busy += sum(n) - n[3] - n[4]
    return busy, total


def children_cpu():
    """CPU seconds of this script's ended (and reaped) children: the load
    generators, which are the only children that end during a measurement."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def sample(pids, b=None):
    s = {"t": time.monotonic(), "proxy": cpu_split(pids),
         "load": children_cpu(), "cpu": cpu_jiffies(LOAD_CPUS)}
    if b is not None:
        s["upstream"] = cpu_seconds(b.upstream_pids())
    return s


def with_cpu(pids, before, result, b=None, pinned=True):
    """The proxy's CPU over the measurement and, to tell which side limits
    it, the load side's: the load generator's own CPU, the upstreams' and,
    when the load generator is pinned, how busy its CPU was in all (other
    processes of the machine included)."""
    after = sample(pids, b)
    dt = after["t"] - before["t"]
    (u1, s1), (u0, s0) = after["proxy"], before["proxy"]
    c1, c0 = u1 + s1, u0 + s0
    result["proxy_cpu_s"] = c1 - c0
    # Where the time goes: callgrind (scenario 6) sees user space only.
    result["proxy_sys_share"] = (s1 - s0) / (c1 - c0) if c1 > c0 else 0.0
    result["proxy_cpu_util"] = (c1 - c0) / dt
    if result.get("requests"):
        result["cpu_us_per_req"] = (c1 - c0) / result["requests"] * 1e6
    result["load_cpu_util"] = (after["load"] - before["load"]) / dt
    if b is not None:
        result["upstream_cpu_util"] = (after["upstream"] -
                                       before["upstream"]) / dt
    if pinned:
        busy = after["cpu"][0] - before["cpu"][0]
        total = after["cpu"][1] - before["cpu"][1]
        result["load_cpus_busy"] = busy / total if total else 0.0
    return result


# The load side limits a measurement when its CPU is (nearly) all busy
# while the proxy's is not.
SATURATED = 0.9


def load_bound(fig):
    return (fig.get("load_cpus_busy", 0) >= SATURATED and
            fig.get("proxy_cpu_util", 1) < SATURATED)


def none_bound(fig):
    """Neither CPU saturated: the load generator's concurrency set the pace
    (or other processes of the machine took the CPUs in between)."""
    return ("load_cpus_busy" in fig and
            fig["load_cpus_busy"] < SATURATED and
            fig.get("proxy_cpu_util", 1) < SATURATED)


# --------------------------------------------------------------------------
# scenarios: each takes (bench, proxy name) and returns a dict of figures


def wrk_argv(port, conns, threads, secs, extra=()):
    return ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{secs}s",
            "--latency", *extra, f"https://localhost:{port}/"]


# Scenario 7's site: the same response, from the upstream's TLS port.
TLS_HOST = "tls.test"


def scenario_wrk(b, name, workers=1, host=None):
    """wrk, as scenario 1; with host, every request for that site (the
    Host field; the TLS name stays localhost)."""
    p, port = b.start_proxy(name, workers)
    try:
        extra = ("-H", f"Host: {host}") if host else ()
        if host:
            b.check_host(name, port, host)
        threads = 1 if workers == 1 else 2
        cpus = LOAD_CPUS if workers == 1 else None
        run_cmd(wrk_argv(port, 50, threads, b.a.warmup, extra), 120, cpus)
        pids = tree(p.pid)
        before = sample(pids, b)
        rc, out = run_cmd(wrk_argv(port, 50, threads, b.a.duration, extra),
                          b.a.duration + 120, cpus)
        r = with_cpu(pids, before, parse_wrk(out), b, cpus is not None)
        if r["non2xx"]:
            raise RuntimeError(f"{r['non2xx']} non-2xx responses:\n{out}")
        return r
    finally:
        b.stop_proxy(p)


def scenario_h2(b, name, workers=1):
    p, port = b.start_proxy(name, workers)
    try:
        if not b.h2_offered(port):
            return {"na": "ALPN h2 not offered"}
        threads = 1 if workers == 1 else 2
        cpus = LOAD_CPUS if workers == 1 else None
        argv = ["h2load", "-c", "50", "-m", "10", "-t", str(threads)]
        run_cmd(argv + ["-D", str(b.a.warmup), f"https://localhost:{port}/"],
                120, cpus)
        pids = tree(p.pid)
        before = sample(pids, b)
        rc, out = run_cmd(argv + ["-D", str(b.a.duration),
                                  f"https://localhost:{port}/"],
                          b.a.duration + 120, cpus)
        r = with_cpu(pids, before, parse_h2load(out), b, cpus is not None)
        if r["protocol"] != "h2":
            return {"na": f"negotiated {r['protocol']}"}
        if r["failed"]:
            raise RuntimeError(f"{r['failed']} failed requests:\n{out}")
        return r
    finally:
        b.stop_proxy(p)


def handshake_probe(port):
    """One connection as s_time makes them (no SNI, the same suite and
    request), with openssl s_client: what was negotiated, and the answer,
    whose length every s_time connection must then read."""
    r = subprocess.run(["openssl", "s_client", "-brief", "-ign_eof",
                        "-noservername", "-connect", f"127.0.0.1:{port}",
                        "-ciphersuites", HS_SUITE, *HS_NO_CA],
                       input=HS_REQUEST.encode(), capture_output=True,
                       timeout=30, start_new_session=True)
    err = r.stderr.decode(errors="replace")
    info = {}
    for key, pat in (("tls_version", r"^Protocol version: (\S+)"),
                     ("tls_suite", r"^Ciphersuite: (\S+)"),
                     ("tls_group", r"^(?:Server|Peer) Temp Key: ([^,\s]+)")):
        m = re.search(pat, err, re.M)
        info[key] = m.group(1) if m else "?"
    head = r.stdout.split(b"\r\n", 1)[0].decode(errors="replace")
    if not head.startswith("HTTP/1.1 200 "):
        raise RuntimeError(f"probe: answer {head!r}; {err[-400:]}")
    info["answer_bytes"] = len(r.stdout)
    return info


def stime_argv(port, resume, secs):
    return ["openssl", "s_time", "-connect", f"127.0.0.1:{port}",
            "-www", HS_PATH, "-reuse" if resume else "-new",
            "-ciphersuites", HS_SUITE, *HS_NO_CA, "-time", str(secs)]


def run_stime(b, port, resume, secs):
    """HS_CLIENTS s_time processes at once on the load CPU; their outputs."""
    ps = [b.procs.start(stime_argv(port, resume, secs), cpus=LOAD_CPUS,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
          for _ in range(HS_CLIENTS)]
    outs = []
    try:
        for p in ps:
            out, _ = p.communicate(timeout=secs + 60)
            outs.append((p.returncode, out.decode(errors="replace")))
    finally:
        for p in ps:
            b.procs.stop(p, timeout=5)
    return outs


def parse_stime(rc, out, answer_bytes):
    """(connections, resumed) of one s_time run.  It prints a mark per
    connection, 'r' when the session was resumed (SSL_session_reused) and
    '*' when not; and the bytes read in all, which must be the probe's
    answer once per connection (a 200 each, read to the end)."""
    m = re.search(r"^(\d+) connections in [\d.]+s; .*bytes read (\d+)$",
                  out, re.M)
    if rc != 0 or not m:
        raise RuntimeError(f"s_time rc {rc}:\n{out[-1000:]}")
    conns, got = int(m.group(1)), int(m.group(2))
    marks = "".join(re.findall(r"^[*rt3]+$", out, re.M))
    if len(marks) != conns:
        raise RuntimeError(f"s_time: {len(marks)} marks, {conns} "
                           f"connections:\n{out[-1000:]}")
    if got != conns * answer_bytes:
        raise RuntimeError(f"s_time: {got} bytes read in {conns} "
                           f"connections, not {answer_bytes} each")
    return conns, marks.count("r")


def scenario_handshake(b, name, sc):
    """A new TLS connection per request, with resumption off in every
    peer (s3) or on (s3r); the share of resumed handshakes is counted by
    the client and must be what the scenario claims."""
    resume = sc == "s3r"
    p, port = b.start_proxy(name, sessions="on" if resume else "off")
    try:
        r = handshake_probe(port)
        run_stime(b, port, resume, b.a.warmup)
        pids = tree(p.pid)
        before = sample(pids, b)
        outs = run_stime(b, port, resume, b.a.duration)
        after_t = time.monotonic()
        conns = resumed = 0
        for rc, out in outs:
            c, n = parse_stime(rc, out, r["answer_bytes"])
            conns += c
            resumed += n
        r.update(requests=conns, resumed=resumed,
                 reuse=resumed / conns if conns else 0.0,
                 rps=conns / (after_t - before["t"]))
        r = with_cpu(pids, before, r, b)
        low, high = HS_REUSE[sc]
        if not low <= r["reuse"] <= high:
            # Not the scenario it claims: keep the figures for the record,
            # but no median is taken from them.
            r["error"] = (f"{resumed} of {conns} handshakes resumed "
                          f"({r['reuse']:.1%}), must be {low:.0%}-"
                          f"{high:.0%}")
        return r
    finally:
        b.stop_proxy(p)


def scenario_idle(b, name):
    p, port = b.start_proxy(name)
    client = None
    try:
        time.sleep(0.5)
        pids = tree(p.pid)
        before = status_kib(pids, "VmRSS")
        client = b.procs.start([sys.executable, str(HERE / "idle.py"),
                                str(port), str(b.a.idle)],
                               cpus=LOAD_CPUS, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        line = client.stdout.readline().decode().strip()
        if not line.startswith("ready"):
            rest = client.stdout.read(4000).decode(errors="replace") \
                if client.poll() is not None else ""
            raise RuntimeError(f"idle client: {line} {rest}")
        time.sleep(2)                    # let the proxy settle
        pids = tree(p.pid)
        after = status_kib(pids, "VmRSS")
        return {"conns": b.a.idle, "rss_before_kib": before,
                "rss_after_kib": after,
                "rss_kib_per_conn": (after - before) / b.a.idle}
    finally:
        if client is not None:
            try:
                client.stdin.close()
            except OSError:
                pass
            b.procs.stop(client, timeout=30)
        b.stop_proxy(p)


def curl_transfer(port, kind, upload):
    """One transfer with curl (pinned with the load generator): downloads
    /big from the nginx upstream, uploads to the sink (site "sink.test")."""
    argv = ["curl", "-ksS", "--http1.1", "-o", "/dev/null", "-w",
            "%{http_code} %{size_download} %{size_upload} %{time_total}"]
    if kind == "download":
        url = f"https://localhost:{port}/big"
    else:
        argv += ["--resolve", f"sink.test:{port}:127.0.0.1", "-T", str(upload)]
        url = f"https://sink.test:{port}/upload"
    return run_cmd(argv + [url], 900, LOAD_CPUS)


def scenario_transfer(b, name):
    p, port = b.start_proxy(name)
    try:
        pids = tree(p.pid)
        size = b.a.transfer_mib << 20
        r = {"bytes": size}
        for kind in ("download", "upload"):
            c0 = cpu_seconds(pids)
            rc, out = curl_transfer(port, kind, b.big)
            c1 = cpu_seconds(pids)
            f = out.split()[-4:]
            ok = rc == 0 and len(f) == 4 and f[0] == "200"
            if ok:
                moved = int(f[1]) if kind == "download" else int(f[2])
                ok = moved == size
            if not ok:
                raise RuntimeError(f"{kind}: curl rc {rc}: {out}")
            r[f"{kind}_mbps"] = size / float(f[3]) / 1e6
            r[f"{kind}_cpu_s"] = c1 - c0
        r["peak_rss_mib"] = status_kib(tree(p.pid), "VmHWM") / 1024
        return r
    finally:
        b.stop_proxy(p)


def perf_works():
    try:
        rc, out = run_cmd(["perf", "stat", "-x,", "-e", "instructions",
                           "true"], 30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return rc == 0 and re.search(r"^\d+,", out, re.M) is not None


def scenario_instr(b, name):
    if b.perf:
        return instr_perf(b, name)
    return instr_callgrind(b, name)


def instr_perf(b, name):
    """perf stat on the proxy's processes while wrk runs scenario 1."""
    p, port = b.start_proxy(name)
    try:
        run_cmd(wrk_argv(port, 50, 1, b.a.warmup), 120, LOAD_CPUS)
        pids = ",".join(map(str, tree(p.pid)))
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "instructions",
                                 "-p", pids], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        b.procs.live.append(perf)
        time.sleep(0.5)
        rc, out = run_cmd(wrk_argv(port, 50, 1, b.a.duration),
                          b.a.duration + 120, LOAD_CPUS)
        os.killpg(perf.pid, signal.SIGINT)
        err = perf.communicate(timeout=30)[1].decode()
        b.procs.live.remove(perf)
        r = parse_wrk(out)
        instr = int(re.search(r"^(\d+),", err, re.M).group(1))
        return {"method": "perf stat -e instructions", "instructions": instr,
                "requests": r["requests"],
                "instr_per_req": instr / r["requests"]}
    finally:
        b.stop_proxy(p)


def callgrind_total(outdir):
    total = 0
    for f in Path(outdir).glob("callgrind.out.*"):
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                total += int(line.split()[1])
                break
    return total


def instr_callgrind(b, name):
    """The proxy under callgrind, twice: n1 then n2 keep-alive requests
    (h2load --h1, 50 connections, so the count is exact); the difference
    of the instruction totals over n2 - n1 cancels start-up and shutdown."""
    n1, n2 = b.a.cg_requests
    totals = []
    for n in (n1, n2):
        # A fresh directory per measurement (the scenario runs 3 times).
        outdir = Path(tempfile.mkdtemp(prefix=f"callgrind-{name}-{n}-",
                                       dir=b.dir))
        os.chmod(outdir, 0o1777)     # portcullis workers write as nobody
        p, port = b.start_proxy(name, valgrind=outdir)
        try:
            rc, out = run_cmd(["h2load", "--h1", "-c", "50", "-t", "1",
                               "-n", str(n), f"https://localhost:{port}/"],
                              1800, LOAD_CPUS)
            r = parse_h2load(out)
            if r["requests"] != n:
                raise RuntimeError(f"h2load: {r['requests']} of {n}:\n{out}")
        finally:
            b.stop_proxy(p)
        totals.append(callgrind_total(outdir))
        if not totals[-1]:
            raise RuntimeError(f"no callgrind output in {outdir}")
    return {"method": "callgrind (difference of two runs)",
            "instructions": totals[1] - totals[0], "requests": n2 - n1,
            "instr_per_req": (totals[1] - totals[0]) / (n2 - n1)}


SCENARIOS = {
    "s1": lambda b, n: scenario_wrk(b, n),
    "s2": lambda b, n: scenario_h2(b, n),
    "s3": lambda b, n: scenario_handshake(b, n, "s3"),
    "s3r": lambda b, n: scenario_handshake(b, n, "s3r"),
    "s4": scenario_idle,
    "s5": scenario_transfer,
    "s6": scenario_instr,
    "s7": lambda b, n: scenario_wrk(b, n, host=TLS_HOST),
    "w1": lambda b, n: scenario_wrk(b, n, workers=2),
    "w2": lambda b, n: scenario_h2(b, n, workers=2),
}

# Figures shown per scenario: (key, label, format).
LOAD_SIDE = [("load_cpu_util", "load generator CPU", "{:.0%}"),
             ("upstream_cpu_util", "upstream CPU", "{:.0%}"),
             ("load_cpus_busy", f"CPU {LOAD_CPUS} busy (all processes)",
              "{:.0%}")]
HANDSHAKE = [("cpu_us_per_req", "CPU µs/handshake", "{:.1f}"),
             ("rps", "handshakes/s", "{:.0f}"),
             ("proxy_cpu_util", "proxy CPU", "{:.0%}"),
             ("reuse", "resumed (client's count)", "{:.1%}")] + LOAD_SIDE
FIGURES = {
    "s1": [("cpu_us_per_req", "CPU µs/req", "{:.1f}"),
           ("rps", "req/s", "{:.0f}"), ("p50_ms", "p50 ms", "{:.2f}"),
           ("p99_ms", "p99 ms", "{:.2f}"), ("proxy_cpu_util", "proxy CPU",
                                            "{:.0%}"),
           ("proxy_sys_share", "of which kernel", "{:.0%}")] + LOAD_SIDE,
    "s2": [("cpu_us_per_req", "CPU µs/req", "{:.1f}"),
           ("rps", "req/s", "{:.0f}"), ("proxy_cpu_util", "proxy CPU",
                                        "{:.0%}")] + LOAD_SIDE,
    "s3": HANDSHAKE,
    "s3r": HANDSHAKE,
    "s4": [("rss_kib_per_conn", "RSS KiB/conn", "{:.2f}"),
           ("rss_after_kib", "RSS KiB total", "{:.0f}")],
    "s5": [("download_mbps", "download MB/s", "{:.0f}"),
           ("upload_mbps", "upload MB/s", "{:.0f}"),
           ("download_cpu_s", "download CPU s", "{:.2f}"),
           ("upload_cpu_s", "upload CPU s", "{:.2f}"),
           ("peak_rss_mib", "peak RSS MiB", "{:.1f}")],
    "s6": [("instr_per_req", "instructions/req", "{:.0f}")],
    "s7": [("cpu_us_per_req", "CPU µs/req", "{:.1f}"),
           ("rps", "req/s", "{:.0f}"), ("p50_ms", "p50 ms", "{:.2f}"),
           ("p99_ms", "p99 ms", "{:.2f}"), ("proxy_cpu_util", "proxy CPU",
                                            "{:.0%}"),
           ("proxy_sys_share", "of which kernel", "{:.0%}")] + LOAD_SIDE,
    "w1": [("cpu_us_per_req", "CPU µs/req", "{:.1f}"),
           ("rps", "req/s", "{:.0f}"), ("p99_ms", "p99 ms", "{:.2f}"),
           ("proxy_cpu_util", "proxy CPU", "{:.0%}"),
           ("load_cpu_util", "load generator CPU", "{:.0%}")],
    "w2": [("cpu_us_per_req", "CPU µs/req", "{:.1f}"),
           ("rps", "req/s", "{:.0f}"), ("proxy_cpu_util", "proxy CPU",
                                        "{:.0%}"),
           ("load_cpu_util", "load generator CPU", "{:.0%}")],
}
# Shown with their range over the runs: median (lowest-highest).
SPREAD = ("cpu_us_per_req", "rps")
# Text figures carried into the summary (one value per proxy).
TEXT = ("method", "tls_version", "tls_suite", "tls_group")


# --------------------------------------------------------------------------
# summary, table, charts


def summarize(raw):
    """Median of every numeric figure over the runs that produced one."""
    out = {}
    for sc, per in raw.items():
        out[sc] = {}
        for proxy, runs in per.items():
            ok = [r for r in runs if "error" not in r and "na" not in r]
            if not ok:
                bad = runs[0] if runs else {}
                out[sc][proxy] = {"na": bad.get("na") or bad.get("error",
                                                                 "no run")}
                continue
            keys = {k for r in ok for k, v in r.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)}
            out[sc][proxy] = {k: statistics.median(r[k] for r in ok if k in r)
                              for k in sorted(keys)}
            for k in SPREAD:
                vals = [r[k] for r in ok if k in r]
                if vals:
                    out[sc][proxy][k + "_range"] = [min(vals), max(vals)]
            out[sc][proxy]["runs"] = len(ok)
            bad = [r["error"] for r in runs if "error" in r]
            if bad:
                out[sc][proxy]["not_counted"] = bad
            for k in TEXT:
                vals = {r.get(k) for r in ok} - {None}
                if vals:
                    out[sc][proxy][k] = " / ".join(sorted(vals))
    return out


def verdicts(summary):
    res = {}
    for sc, targets in TARGETS.items():
        if sc not in summary:
            continue
        pc = summary[sc].get("portcullis", {})
        for metric, ref, bound, kind in targets:
            mine = pc.get(metric)
            other = summary[sc].get(ref, {}).get(metric) if ref else 1.0
            if mine is None or not other:
                res[(sc, metric)] = (None, "n/a")
                continue
            value = mine / other
            good = value <= bound if kind == "max" else value >= bound
            res[(sc, metric)] = (value, "PASS" if good else "MISS")
    return res


def fmt(spec, v):
    return "n/a" if v is None else spec.format(v)


def write_markdown(path, meta, summary):
    v = verdicts(summary)
    L = ["# portcullis benchmark", "",
         f"{meta['date']} · {meta['host']} · portcullis {meta['commit']} · "
         f"{meta['runs']} run(s) each, median · "
         f"{'quick' if meta['quick'] else 'full'} mode", "",
         "Proxy on CPU 0, load generator and upstream on CPU 1 (2-worker "
         "runs: proxy on CPUs 0-1, load generator unpinned). "
         "CPU figures are the proxy's own utime+stime (all its processes) "
         "per completed request.", ""]
    for sc, title in TITLES.items():
        if sc not in summary:
            continue
        title = title.format(idle=meta["idle_conns"],
                             mib=meta["transfer_mib"])
        L += [f"## {title}", ""]
        show_haproxy_ratio = sc in ("s2", "w2", "s7")
        head = ["figure"] + list(PROXIES) + ["portcullis/nginx"]
        if show_haproxy_ratio:
            head.append("portcullis/haproxy")
        head += ["target", "result"]
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "---|" * len(head))
        for key, label, spec in FIGURES[sc]:
            vals = [summary[sc].get(px, {}).get(key) for px in PROXIES]
            row = [label]
            for px, x in zip(PROXIES, vals):
                cell = fmt(spec, x)
                lo_hi = summary[sc].get(px, {}).get(key + "_range")
                if lo_hi and summary[sc][px].get("runs", 0) > 1:
                    cell += " ({}-{})".format(*(spec.format(y)
                                                for y in lo_hi))
                row.append(cell)
            for ref in (["nginx", "haproxy"] if show_haproxy_ratio
                        else ["nginx"]):
                a, o = vals[0], summary[sc].get(ref, {}).get(key)
                row.append(f"{a / o:.2f}" if a is not None and o else "n/a")
            target = [t for t in TARGETS.get(sc, []) if t[0] == key]
            if target:
                _, ref, bound, kind = target[0]
                op = "≤" if kind == "max" else "≥"
                row.append(f"{op} {bound} × {ref}" if ref else
                           f"{op} {bound}")
                row.append(v[(sc, key)][1])
            else:
                row += ["", ""]
            L.append("| " + " | ".join(row) + " |")
        notes = [f"{px}: " + " ".join(summary[sc][px]["na"].split())[:300]
                 for px in PROXIES if "na" in summary[sc].get(px, {})]
        for px in PROXIES:
            fig = summary[sc].get(px, {})
            if "not_counted" in fig and "na" not in fig:
                notes.append(f"{px}: {len(fig['not_counted'])} run(s) not "
                             f"counted: " + " ".join(
                                 fig["not_counted"][0].split())[:300])
        meth = {summary[sc][px].get("method") for px in PROXIES
                if px in summary[sc]} - {None}
        if meth:
            notes.append("method: " + ", ".join(sorted(meth)))
        tls = [f"{px} {fig['tls_version']} {fig.get('tls_suite', '?')} "
               f"{fig.get('tls_group', '?')}" for px in PROXIES
               for fig in [summary[sc].get(px, {})] if "tls_version" in fig]
        if tls:
            notes.append("negotiated: " + "; ".join(tls))
        bound = [px for px in PROXIES if load_bound(summary[sc].get(px, {}))]
        if bound:
            notes.append(
                "limited by the load side, not the proxy: " +
                ", ".join(bound) + f" (CPU {LOAD_CPUS}, where the load "
                f"generator and the upstream run, busy ≥ {SATURATED:.0%} "
                f"while the proxy's CPU was below {SATURATED:.0%}); "
                "CPU per request stays comparable, requests/s do not")
        idle = [px for px in PROXIES if none_bound(summary[sc].get(px, {}))]
        if idle:
            notes.append(
                "neither the proxy's CPU nor the load CPU saturated: " +
                ", ".join(idle) + " (the load generator's concurrency set "
                "the pace, or other processes took the CPUs in between)")
        if notes:
            L += [""] + [f"- {n}" for n in notes]
        L.append("")
    L += ["## Notes", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    path.write_text("\n".join(L))


def charts(outdir, summary):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["matplotlib missing: no charts"]
    made = []
    panels = [("cpu", "proxy CPU µs per request (lower is better)",
               [("s1", "cpu_us_per_req"), ("s2", "cpu_us_per_req"),
                ("s3", "cpu_us_per_req"), ("s3r", "cpu_us_per_req"),
                ("s7", "cpu_us_per_req"),
                ("w1", "cpu_us_per_req"), ("w2", "cpu_us_per_req")]),
              ("rps", "requests/s (higher is better)",
               [("s1", "rps"), ("s2", "rps"), ("s3", "rps"), ("s3r", "rps"),
                ("s7", "rps"),
                ("w1", "rps"), ("w2", "rps")]),
              ("memory", "KiB per idle connection / peak RSS MiB",
               [("s4", "rss_kib_per_conn"), ("s5", "peak_rss_mib")]),
              ("transfer", "MB/s through the proxy (higher is better)",
               [("s5", "download_mbps"), ("s5", "upload_mbps")]),
              ("instructions", "instructions per request (lower is better)",
               [("s6", "instr_per_req")])]
    colors = {"portcullis": "#1f77b4", "nginx": "#2ca02c",
              "haproxy": "#d62728"}
    for fname, title, series in panels:
        series = [(sc, k) for sc, k in series if sc in summary]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(series), 4))
        w = 0.8 / len(PROXIES)
        for i, px in enumerate(PROXIES):
            ys = [summary[sc].get(px, {}).get(k) or 0 for sc, k in series]
            ax.bar([x + i * w for x in range(len(series))], ys, w, label=px,
                   color=colors[px])
        ax.set_xticks([x + w for x in range(len(series))])
        ax.set_xticklabels([f"{sc}\n{k}" for sc, k in series], fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(outdir / f"{fname}.png", dpi=100)
        plt.close(fig)
        made.append(f"{fname}.png")
    return made


# --------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: short runs, 1 run each, 1,000 idle "
                    "connections, 256 MiB transfers")
    ap.add_argument("--runs", type=int, help="runs per proxy (default 3)")
    ap.add_argument("--duration", type=int, help="seconds per load run "
                    "(default 10)")
    ap.add_argument("--idle", type=int, help="idle connections (default "
                    "10000)")
    ap.add_argument("--transfer-mib", type=int, help="transfer size "
                    "(default 1024)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="comma-separated subset of " + ",".join(SCENARIOS))
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--portcullis", type=Path, required=True)
    ap.add_argument("--cert", type=Path, required=True)
    ap.add_argument("--key", type=Path, required=True)
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    q = a.quick
    a.runs = a.runs or (1 if q else 3)
    a.duration = a.duration or (3 if q else 10)
    a.warmup = 1 if q else 2
    a.idle = a.idle or (1000 if q else 10000)
    a.transfer_mib = a.transfer_mib or (256 if q else 1024)
    a.cg_requests = (500, 2500) if q else (2000, 12000)
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.proxies = [p for p in a.proxies.split(",") if p]
    for s in a.scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    for p in a.proxies:
        if p not in PROXIES:
            ap.error(f"unknown proxy {p}")
    return a


def commit():
    try:
        return subprocess.run(["git", "-C", str(TOP), "describe", "--always",
                               "--dirty"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "?"


def main(argv):
    a = parse_args(argv)
    procs = Procs()

    def on_signal(sig, frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    b = Bench(a, procs)
    raw = {sc: {px: [] for px in a.proxies} for sc in a.scenarios}
    notes = [
        "Access logs are off for all three (portcullis: logging { access "
        "= false }); portcullis logs warnings to a file on tmpfs.",
        "Every measurement starts a fresh proxy, warms it up "
        f"({a.warmup}s) and then measures {a.duration}s; proxies alternate "
        "(A B C A B C ...).",
        "Scenarios 3 and 3r: one request per TLS connection, from "
        f"{HS_CLIENTS} openssl s_time processes at once on CPU {LOAD_CPUS} "
        "(each one connection at a time: connect, handshake, 'GET / "
        "HTTP/1.1' with 'Connection: close', read to the end). All three "
        "proxies offer TLS 1.2 and 1.3 and the client offers TLS 1.3 with "
        f"one suite ({HS_SUITE}); the notes under each table say what was "
        "negotiated. Scenario 3 (s_time -new: no session offered) runs "
        "every proxy with session tickets and session caches off (nginx "
        "ssl_session_tickets off + ssl_session_cache off; HAProxy "
        "no-tls-tickets + tune.ssl.cachesize 0; portcullis has no switch "
        "and still issues its tickets; all three send two TLS 1.3 "
        "NewSessionTickets a handshake, nginx's and HAProxy's then name "
        "sessions that no cache keeps). Scenario 3r (s_time "
        "-reuse: every connection offers the last session) runs them with "
        "both on (nginx ssl_session_tickets on + ssl_session_cache "
        "shared:SSL:10m; HAProxy's defaults: tickets, tune.ssl.cachesize "
        "20000; portcullis's tickets). The client counts the handshakes "
        "that resumed (SSL_session_reused); a run counts only if that "
        f"share is {HS_REUSE['s3'][0]:.0%}-{HS_REUSE['s3'][1]:.0%} (3) or "
        f"{HS_REUSE['s3r'][0]:.0%}-{HS_REUSE['s3r'][1]:.0%} (3r), and only "
        "if every connection read the whole 200 answer (bytes read = "
        "connections x the answer's length). handshakes/s = connections / "
        "wall time of the measurement.",
        "Load side: 'load generator CPU' is the load generator's own CPU "
        "(utime+stime of the ended load generator processes, from "
        "getrusage(RUSAGE_CHILDREN)) over the wall time; 'upstream CPU' "
        "that of the nginx upstream and the sink; the CPU-busy row is "
        "/proc/stat for the load CPU, every process on it (other guests' "
        "steal included). Where that CPU is saturated and the proxy's is "
        "not, the load side limits the scenario: requests/s then measure "
        "the client, CPU per request still measures the proxy.",
        f"Scenario 4 holds {a.idle} connections, each after one keep-alive "
        "request; figure = (sum of VmRSS of the proxy's processes after - "
        "before) / connections.",
        "Scenario 7 is scenario 1 (wrk, 50 connections, keep-alive) with "
        f"every request for the site {TLS_HOST} (Host field; the TLS name "
        "stays localhost), whose upstream is the same nginx on a TLS port "
        "(the bench certificate, TLS 1.2 and 1.3): each proxy keeps its "
        "upstream connections alive (portcullis upstream-keepalive 1024, "
        "nginx keepalive 1024, HAProxy http-reuse always) and verifies the "
        "upstream's certificate against that certificate and the name "
        "localhost (portcullis upstream-ca-file + upstream-server-name; "
        "nginx proxy_ssl_verify on + proxy_ssl_trusted_certificate + "
        "proxy_ssl_name, proxy_ssl_session_reuse on; HAProxy ssl verify "
        "required ca-file + verifyhost + sni). A request for the site is "
        "checked to answer 200 before each run.",
        f"Scenario 5 moves {a.transfer_mib} MiB each way with curl over "
        "HTTP/1.1; the download comes from the nginx upstream (file on "
        "tmpfs, sendfile), the upload goes to bench/sink.py (reads the body, "
        "then answers 200). Peak RSS is the sum of VmHWM over the proxy's "
        "processes (a fresh proxy per run, so it covers start-up too). "
        "MB = 10^6 bytes.",
    ]
    b.perf = "s6" in a.scenarios and perf_works()
    if "s6" in a.scenarios:
        notes.append(
            "Scenario 6: perf stat -e instructions on the proxy's processes "
            "during scenario 1." if b.perf else
            "Scenario 6: hardware counters are not available here (perf "
            "stat -e instructions: <not supported>), so callgrind is used: "
            f"the proxy under valgrind, {a.cg_requests[0]} then "
            f"{a.cg_requests[1]} keep-alive requests (h2load --h1 -c 50), "
            "instructions per request = difference of totals / difference "
            "of requests. nginx runs with master_process off under it.")
    t0 = time.time()
    try:
        b.start_upstreams()
        for sc in a.scenarios:
            for run in range(a.runs):
                for px in a.proxies:
                    label = f"[{sc} run {run + 1}/{a.runs}] {px}"
                    print(label, "...", end=" ", flush=True)
                    try:
                        r = SCENARIOS[sc](b, px)
                    except KeyboardInterrupt:
                        raise
                    except Exception as e:     # one failure must not end all
                        r = {"error": f"{type(e).__name__}: {e}"[:2000]}
                    raw[sc][px].append(r)
                    shown = {k: (round(v, 2) if isinstance(v, float) else v)
                             for k, v in r.items()}
                    print(json.dumps(shown), flush=True)
    except KeyboardInterrupt as e:
        print(f"\ninterrupted ({e}); cleaning up", file=sys.stderr)
        procs.stop_all()
        keep_logs(b, a.results)
        shutil.rmtree(b.dir, ignore_errors=True)
        return 130
    finally:
        procs.stop_all()

    summary = summarize(raw)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "host": os.uname().nodename, "commit": commit(),
            "cpus": os.cpu_count(), "runs": a.runs, "quick": a.quick,
            "duration_s": a.duration, "idle_conns": a.idle,
            "transfer_mib": a.transfer_mib,
            "elapsed_s": round(time.time() - t0), "notes": notes,
            "versions": versions(a)}
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "latest.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "raw": raw,
         "verdicts": {f"{sc}.{m}": {"ratio": r, "result": res}
                      for (sc, m), (r, res) in verdicts(summary).items()}},
        indent=1, sort_keys=True) + "\n")
    made = charts(a.results, summary)
    if made:
        notes.append("Charts: " + ", ".join(made))
    write_markdown(a.results / "latest.md", meta, summary)
    keep_logs(b, a.results)
    shutil.rmtree(b.dir, ignore_errors=True)
    print((a.results / "latest.md").read_text())
    errors = sum(1 for per in raw.values() for runs in per.values()
                 for r in runs if "error" in r)
    if errors:
        print(f"{errors} measurement(s) failed; see latest.json and logs/",
              file=sys.stderr)
    return 1 if errors else 0


def versions(a):
    out = {}
    for name, argv in (("nginx", ["nginx", "-v"]),
                       ("haproxy", ["haproxy", "-v"]),
                       ("wrk", ["wrk", "-v"]),
                       ("h2load", ["h2load", "--version"]),
                       ("portcullis", [str(a.portcullis), "--version"])):
        try:
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=10)
            out[name] = (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            out[name] = "?"
    return out


def keep_logs(b, results):
    logs = results / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    for f in list(b.dir.glob("*.out")) + list(b.dir.glob("*.log")):
        if f.stat().st_size <= 4 << 20:
            shutil.copy(f, logs / f.name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
