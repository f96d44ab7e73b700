"""Logging to the journal (issue 20, section 4), against a real
systemd-journald.

There is no init system on the test machine: each test starts
systemd-journald itself, in a mount namespace of its own with a tmpfs on
/run (so its sockets, /run/systemd/journal/{socket,stdout}, and its
volatile journal, /run/log/journal, are private to the test and the host
is untouched) and a journald.conf bind-mounted over the host's
(Storage=volatile, no kernel messages, no rate limit).  portcullis runs
in that namespace (nsenter) with its stdout and stderr connected to
journald's stdout stream, and JOURNAL_STREAM set to that socket's
device:inode, as systemd starts a service.  The entries are read back
with journalctl -o json, and fail2ban-regex reads them with its systemd
backend (python3-systemd)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import (BINARY, SANITIZER_PATTERNS, NotifySocket,
                      point_sites_at, tls_connect, wait_until)
from f2butil import FILTER, JOURNAL_JAIL, PROBE_FILTER, Fail2ban
from h1util import read_response
JOURNALD = Path("/lib/systemd/systemd-journald")
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

pytestmark = pytest.mark.skipif(
    not JOURNALD.exists() or shutil.which("journalctl") is None
    or shutil.which("unshare") is None or os.geteuid() != 0,
    reason="needs systemd-journald, journalctl, unshare and root")

SETUP = """set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd/journal /run/log/journal
mount --bind "$1" /etc/systemd/journald.conf
exec {journald}
"""


QLEN = 512


class Journald:
    """systemd-journald in a mount namespace of its own."""

    def __init__(self, d):
        self.d = Path(d)
        conf = self.d / "journald.conf"
        conf.write_text("[Journal]\nStorage=volatile\nReadKMsg=no\n"
                        "ForwardToSyslog=no\nForwardToWall=no\n"
                        "ForwardToConsole=no\nRateLimitBurst=0\n")
        self.out = open(self.d / "journald.out", "ab")
        # The queue of journald's datagram socket is taken from
        # net.unix.max_dgram_qlen when it is made: systemd sets 512 at
        # boot (sysctl.d/50-default.conf), the kernel's default is 10.  As
        # on a systemd machine, then back as it was.
        qlen = Path("/proc/sys/net/unix/max_dgram_qlen")
        old_qlen = qlen.read_text()
        qlen.write_text(f"{QLEN}\n")
        try:
            self.proc = subprocess.Popen(
                ["unshare", "-m", "sh", "-c",
                 SETUP.format(journald=JOURNALD), "sh", str(conf)],
                stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out)
            self.root = Path(f"/proc/{self.proc.pid}/root")
            wait_until(lambda: self.proc.poll() is None and
                       (self.root / "run/systemd/journal/stdout").exists()
                       and (self.root / "run/systemd/journal/socket"
                            ).exists(),
                       timeout=15, what="journald's sockets")
        finally:
            qlen.write_text(old_qlen)
        self.ns = f"/proc/{self.proc.pid}/ns/mnt"
        self.dir = str(self.root / "run/log/journal")

    def stream(self, ident="portcullis"):
        """A stdout stream as systemd gives a service (StandardOutput=
        journal): connected, the header sent."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(self.root / "run/systemd/journal/stdout"))
        # identifier, unit, priority, level prefix, forward to syslog,
        # kmsg, console
        s.sendall(f"{ident}\n\n6\n1\n0\n0\n0\n".encode())
        s.shutdown(socket.SHUT_RD)
        return s

    def entries(self):
        r = subprocess.run(["journalctl", "-D", self.dir, "-o", "json",
                            "--no-pager", "-q"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def ours(self, pids):
        return [e for e in self.entries() if int(e.get("_PID", 0)) in pids
                or e.get("SYSLOG_IDENTIFIER") == "portcullis"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def systemd_hierarchy():
    """Where journald looks for a process's unit: the cgroup2 hierarchy
    (unified, or hybrid's /sys/fs/cgroup/unified), else None."""
    for d in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        if (d / "cgroup.procs").exists() and (d / "cgroup.subtree_control"
                                              ).exists():
            return d
    return None


@pytest.fixture
def unit_cgroup():
    """A cgroup named as systemd names a unit's, .../portcullis.service,
    in a slice of the test's own: journald gives what runs in it
    _SYSTEMD_UNIT=portcullis.service, which the shipped jails match on.
    None where there is no cgroup2 hierarchy to make it in."""
    top = systemd_hierarchy()
    if top is None:
        yield None
        return
    slice_ = top / f"portcullis-test-{os.getpid()}.slice"
    cg = slice_ / "portcullis.service"
    try:
        cg.mkdir(parents=True)
    except OSError:
        yield None
        return
    yield cg
    for d in (cg, slice_):
        wait_until(lambda: not (d / "cgroup.procs").exists() or
                   not (d / "cgroup.procs").read_text().strip(),
                   timeout=10, what=f"{d} empty")
        d.rmdir()


@pytest.fixture
def journald(tmp_path):
    d = tmp_path / "journald"
    d.mkdir()
    j = Journald(d)
    yield j
    j.stop()


def start_under_systemd(p, j, stream_env=True, cgroup=None):
    """Start proxy p as systemd would with StandardOutput=journal: in
    journald's namespace, fds 1 and 2 the stream, JOURNAL_STREAM naming
    it (or, with stream_env a string, that value instead), in cgroup if
    given."""
    s = j.stream()
    st = os.fstat(s.fileno())
    p.notify = NotifySocket(p.dir / "notify.sock")
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    env["NOTIFY_SOCKET"] = p.notify.path
    if stream_env is True:
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    elif stream_env:
        env["JOURNAL_STREAM"] = stream_env
    p.stderr = open(p.stderr_path, "ab")
    procs = str(cgroup / "cgroup.procs") if cgroup is not None else None

    def enter():
        if procs is not None:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
    p.proc = subprocess.Popen(
        ["nsenter", f"--mount={j.ns}", "--", str(BINARY), "-c",
         str(p.conf_path)],
        stdin=subprocess.DEVNULL, stdout=s.fileno(), stderr=s.fileno(),
        env=env, preexec_fn=enter)
    s.close()
    p.wait_ready()
    return p


def request(path, host="localhost"):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def limited_proxy(make_proxy, upstream, **logging):
    p = make_proxy(workers=2, seccomp="kill",
                   **{"rate-limit": {"requests-per-second": 0.1,
                                     "burst": 1}})
    p.settings["logging"] = {"level": "debug", "format": "text", **logging}
    point_sites_at(p, upstream)
    p.write_config()
    return p


# Paths of the rate-limited requests: a quote makes the logged value a
# quoted one in MESSAGE, while the journal field holds the raw bytes.
PATHS = ["/first", "/login", '/q"client_ip=1.2.3.6', "/.env",
         "/x%0APORTCULLIS_STATUS=200", "/login"]

def two_requests_then_stop(p):
    """One passes, one is rate limited; then SIGTERM.  The pids that
    logged."""
    pids = pids_of(p)
    s = tls_connect(p.https_port)
    for path in ("/a", "/b"):
        s.sendall(request(path))
        read_response(s)
    s.close()
    assert p.stop() == 0
    return pids


PRIORITY = {"error": "3", "warn": "4", "info": "6", "debug": "7"}


def pids_of(p):
    return {p.pid} | set(int(k) for k in
                         __import__("conftest").children_of(p.pid))


def test_structured_entries_in_a_real_journal(make_proxy, upstream,
                                              journald, unit_cgroup):
    p = limited_proxy(make_proxy, upstream)
    # A health-checked upstream that is down: the prober logs too, a
    # warning among its lines.
    p.listener["site"][1][1]["upstream"] = "127.0.0.1:9"
    p.listener["site"][1][1]["health-check"] = {
        "path": "/hc", "interval": 1, "timeout": 1, "passes": 2, "fails": 2}
    p.write_config()
    start_under_systemd(p, journald, cgroup=unit_cgroup)
    wait_until(lambda: any(e.get("PORTCULLIS_PROC") == "prober" and
                           e.get("PRIORITY") == "4"
                           for e in journald.ours(pids_of(p))),
               timeout=20, what="the prober's warning")
    pids = pids_of(p)
    s = tls_connect(p.https_port)
    got = []
    for path in PATHS:
        s.sendall(request(path))
        got.append(read_response(s)[0])
    s.close()
    assert got[0] == 200 and got[1:] == [429] * (len(PATHS) - 1), got
    assert p.stop() == 0

    def settled():
        es = journald.ours(pids)
        return (sum(e.get("PORTCULLIS_EVENT") == "access" for e in es)
                == len(PATHS) and any(e.get("MESSAGE", "").startswith(
                    "INFO proc=master") and "exiting" in e["MESSAGE"]
                    for e in es))
    wait_until(settled, timeout=15, what="the entries in the journal")
    es = journald.ours(pids)
    text = "\n".join(str(e.get("MESSAGE")) for e in es)
    # Nothing went through the stream: no sandbox kill, no sanitizer
    # report, no line without its fields.
    stream = [e for e in es if e.get("_TRANSPORT") != "journal"]
    assert stream == [], stream
    assert not SANITIZER_PATTERNS.search(text), text
    assert "sandbox:" not in text
    for e in es:
        assert e["SYSLOG_IDENTIFIER"] == "portcullis", e
        if unit_cgroup is not None:
            assert e["_SYSTEMD_UNIT"] == "portcullis.service", e
        assert not re.match(TS, e["MESSAGE"]), e    # no timestamp
        for k in e:
            assert re.fullmatch(r"_{0,2}[A-Z0-9_]+", k), k
    access = [e for e in es if e.get("PORTCULLIS_EVENT") == "access"]
    assert [e["PORTCULLIS_PATH"] for e in access] == PATHS
    for e, st in zip(access, got):
        assert e["PRIORITY"] == "6"
        assert e["PORTCULLIS_CLIENT_IP"] == "127.0.0.1"
        assert e["PORTCULLIS_METHOD"] == "GET"
        assert e["PORTCULLIS_HOST"] == "localhost"
        assert e["PORTCULLIS_PROTOCOL"] == "HTTP/1.1"
        assert e["PORTCULLIS_STATUS"] == str(st)
        for f in ("BYTES_IN", "BYTES_OUT", "DURATION_MS"):
            assert re.fullmatch(r"\d+", e["PORTCULLIS_" + f]), (f, e)
        assert "PORTCULLIS_UPSTREAM" in e
        assert e["MESSAGE"].startswith(
            "ACCESS client_ip=127.0.0.1 method=GET host=localhost path=")
        assert f" status={st} " in e["MESSAGE"]
    # The raw value in the field, the escaped one in MESSAGE.
    assert 'path="/q\\"client_ip=1.2.3.6"' in access[2]["MESSAGE"]
    limited = [e for e in es if e.get("PORTCULLIS_EVENT") == "rate_limit"]
    assert len(limited) == len(PATHS) - 1
    for e in limited:
        assert e["PRIORITY"] == "5"
        assert e["PORTCULLIS_STATUS"] == "429"
        assert e["PORTCULLIS_CLIENT_IP"] == "127.0.0.1"
        assert e["MESSAGE"].startswith("RATE_LIMIT client_ip=127.0.0.1 "
                                       "host=localhost path=")
    # Messages: PRIORITY from the level, from every kind of process
    # (each opened its socket before its sandbox: seccomp = "kill").
    msgs = [e for e in es if "PORTCULLIS_LEVEL" in e]
    for e in msgs:
        assert e["PRIORITY"] == PRIORITY[e["PORTCULLIS_LEVEL"]], e
        assert e["MESSAGE"].startswith(
            e["PORTCULLIS_LEVEL"].upper() + " proc=" + e["PORTCULLIS_PROC"])
    procs = {e["PORTCULLIS_PROC"] for e in msgs}
    assert {"master", "worker", "signer", "prober"} <= procs, procs
    workers = {e["_PID"] for e in msgs if e["PORTCULLIS_PROC"] == "worker"
               and "serving generation 1" in e["PORTCULLIS_MSG"]}
    assert len(workers) == 2, msgs

    # fail2ban's systemd backend, through the shipped filters and with
    # the shipped jails' journalmatch (in a unit's cgroup; without one,
    # SYSLOG_IDENTIFIER alone): every RATE_LIMIT entry, the client's
    # address; the probe filter finds the refused /.env.
    match = re.search(r"^journalmatch\s*=\s*(.*?)\s*$",
                      JOURNAL_JAIL.read_text(), re.M).group(1)
    if unit_cgroup is None:
        match = "SYSLOG_IDENTIFIER=portcullis"
    src = f"systemd-journal[journalpath={journald.dir}]"
    r = subprocess.run(["fail2ban-regex", "--raw", "-o", "ip", "-m", match,
                        src, str(FILTER)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["127.0.0.1"] * (len(PATHS) - 1), r.stdout
    r = subprocess.run(["fail2ban-regex", "--raw", "-o", "ip", "-m", match,
                        src, str(PROBE_FILTER)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["127.0.0.1"], r.stdout


def test_journal_stream_of_another_fd_changes_nothing(make_proxy, upstream,
                                                      journald):
    """JOURNAL_STREAM that does not name fd 2: text lines on the stream,
    as before."""
    p = limited_proxy(make_proxy, upstream)
    start_under_systemd(p, journald, stream_env="1:2")
    pids = two_requests_then_stop(p)
    wait_until(lambda: sum(" RATE_LIMIT " in e.get("MESSAGE", "")
                           for e in journald.ours(pids)) == 1,
               timeout=15, what="the stream's lines")
    es = journald.ours(pids)
    assert es and all(e["_TRANSPORT"] == "stdout" for e in es), es
    assert not any(k.startswith("PORTCULLIS_") for e in es for k in e)
    assert all(re.match(TS + " [A-Z_]+ ", e["MESSAGE"]) for e in es), es


def test_log_file_wins_over_the_journal(make_proxy, upstream, journald):
    p = limited_proxy(make_proxy, upstream)
    p.settings["logging"]["file"] = str(p.log_path)
    p.write_config()
    start_under_systemd(p, journald)
    pids = two_requests_then_stop(p)
    log = p.log()
    assert re.search(rf"^{TS} RATE_LIMIT client_ip=127.0.0.1 ", log, re.M)
    assert len(re.findall(rf"^{TS} ACCESS ", log, re.M)) == 2
    es = journald.ours(pids)
    assert not any(k.startswith("PORTCULLIS_") for e in es for k in e), es


def test_journal_jails_are_disabled_and_read_the_unit():
    text = JOURNAL_JAIL.read_text()
    sections = re.findall(r"^\[([^\]]+)\]\n(.*?)(?=^\[|\Z)", text,
                          re.M | re.S)
    assert [n for n, _ in sections] == ["portcullis-ratelimit-journal",
                                        "portcullis-probe-journal"]
    for name, body in sections:
        kv = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", body, re.M))
        assert kv["enabled"] == "false", name
        assert kv["backend"] == "systemd", name
        assert "logpath" not in kv, name
        assert kv["journalmatch"] == ("_SYSTEMD_UNIT=portcullis.service "
                                      "SYSLOG_IDENTIFIER=portcullis")


def jail_settings(name):
    section = re.split(rf"^\[{re.escape(name)}\]$", JOURNAL_JAIL.read_text(),
                       flags=re.M)[1].split("\n[")[0]
    return dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", section, re.M))


def test_fail2ban_server_bans_from_the_journal(make_proxy, upstream,
                                               journald, unit_cgroup,
                                               tmp_path):
    """The shipped portcullis-ratelimit-journal jail, enabled in a real
    fail2ban-server whose systemd backend reads the real journal (only
    its path, the action and enabled are the test's): maxretry refusals
    of one client, and it is banned."""
    if unit_cgroup is None:
        pytest.skip("no cgroup2 hierarchy to make a unit's cgroup in")
    jail = "portcullis-ratelimit-journal"
    maxretry = int(jail_settings(jail)["maxretry"])
    f2b = Fail2ban(tmp_path / "f2b", jail=jail, local={
        "portcullis-ratelimit": {"enabled": "false"},
        jail: {"enabled": "true",
               "backend": f"systemd[journalpath={journald.dir}]"}})
    try:
        assert f2b.status()["Currently banned"] == "0"
        p = limited_proxy(make_proxy, upstream)
        start_under_systemd(p, journald, cgroup=unit_cgroup)
        s = tls_connect(p.https_port)
        got = []
        for i in range(maxretry):
            s.sendall(request(f"/login/{i}"))
            got.append(read_response(s)[0])
        assert got == [200] + [429] * (maxretry - 1)
        wait_until(lambda: f2b.status()["Total failed"] == str(maxretry - 1),
                   timeout=20, what="fail2ban read the entries")
        assert f2b.banned() == [], f2b.text()
        s.sendall(request("/login/last"))
        assert read_response(s)[0] == 429
        s.close()
        wait_until(f2b.banned, timeout=20, what="a ban")
        assert f2b.banned() == ["127.0.0.1"], f2b.text()
        assert p.stop() == 0
    finally:
        f2b.stop()


def test_a_stalled_journald_stalls_nothing(make_proxy, upstream, journald):
    """journald stopped: its queue fills (net.unix.max_dgram_qlen), and
    the proxy goes on serving at its usual pace; the lines it could not
    take are dropped, not waited for (nor written to the stream), and
    once it runs again a LOG_LOST entry says how many."""
    p = make_proxy(workers=1, seccomp="kill")
    p.settings["logging"] = {"level": "info", "format": "text"}
    point_sites_at(p, upstream)
    p.write_config()
    start_under_systemd(p, journald)
    pids = pids_of(p)
    s = tls_connect(p.https_port, timeout=5)
    s.sendall(request("/before"))
    assert read_response(s)[0] in (200, 429)
    journald.proc.send_signal(signal.SIGSTOP)
    try:
        # Many more lines (ACCESS, RATE_LIMIT) than the queue holds; a
        # worker that waited for journald would not answer within the
        # timeout.
        for i in range(3 * QLEN):
            s.sendall(request(f"/stalled/{i}"))
            assert read_response(s)[0] in (200, 429)
    finally:
        journald.proc.send_signal(signal.SIGCONT)

    def lost():
        return [e for e in journald.ours(pids)
                if e.get("MESSAGE", "").startswith("LOG_LOST ")]

    def one_more_then_lost():
        s.sendall(request("/after"))
        assert read_response(s)[0] in (200, 429)
        return lost()
    wait_until(one_more_then_lost, timeout=20, what="the LOG_LOST entry")
    s.close()
    e = lost()[0]
    assert e["_TRANSPORT"] == "journal", e
    assert e["PORTCULLIS_PROC"] == "worker", e
    assert 0 < int(e["PORTCULLIS_LINES"]) <= 2 * 3 * QLEN, e
    assert e["PRIORITY"] == "4", e
    assert p.stop() == 0
    es = journald.ours(pids)
    assert not [x for x in es if x.get("_TRANSPORT") != "journal"], es
