"""Active health checks (issue 17): health-check { } made by the prober,
one process for all workers.  Real upstreams (the project's test server,
whose /healthz answers what a test says, or hangs), the real binary: an
upstream whose checks fail is marked down once and gets no traffic, and
up again when they pass; checks are made once per upstream whatever the
number of workers; a timeout fails; all down is 503; the prober's
privileges, its respawn with the verdicts kept, reloads that remove, add
and change health-check, the bound on checks in flight, and checks of
https backends over TLS (a Python TLS upstream whose /healthz answers
what the test says; a certificate that fails verification; real nginx
requiring a client certificate, which sees the server name, the
certificate and resumed sessions).  Intervals of 1 s: the whole file
takes some forty seconds."""

import os
import re
import selectors
import ssl
import signal
import socket
import threading
import time
from pathlib import Path

from conftest import (SLOWDOWN, free_port, proc_status, start_proxy,
                      wait_until)
from proxyutil_http import access_events
from test_upstream_tls import make_nginx, pki   # noqa: F401 (fixtures)
from nginx_upstream import NginxUpstream
from test_upstreams import (Client, Load, counts, nginxes,  # noqa: F401
                            reload_ok, upstream_states)
from upstream import Upstream

HC = "/healthz"


class Checked:
    """A test upstream whose /healthz answers .status (or hangs while
    .hang is set: until it is cleared, at most 5 s); anything else gets
    200 and the upstream's name."""

    def __init__(self, name, status=200, tls=None):
        self.name = name
        self.status = status
        self.hang = threading.Event()
        # stopped by conftest; tls: an ssl.SSLContext, HTTPS
        self.up = Upstream(handler=self._handle, tls=tls)
        self.addr = self.up.addr

    def _handle(self, req, conn):
        if req.target.split("?")[0] == HC:
            deadline = time.monotonic() + 5
            while self.hang.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
            conn.respond(self.status, [], b"health\n")
            conn.close()
            return
        conn.respond(200, [], f"{self.name}\n".encode())

    def checks(self):
        with self.up.lock:
            return [r for r in self.up.requests
                    if r.target.split("?")[0] == HC]

    def traffic(self):
        """Requests that are not checks."""
        with self.up.lock:
            return [r for r in self.up.requests
                    if r.target.split("?")[0] != HC]


def health(**kw):
    d = {"path": HC, "interval": 1, "timeout": 1, "passes": 2, "fails": 2}
    d.update(kw)
    return d


def proxy_with(make_proxy, ups, workers=2, hc=None, **site_opts):
    """A started proxy whose site "localhost" goes to ups (Checked or
    "host:port"), with this health-check (None: none)."""
    addrs = tuple(u if isinstance(u, str) else u.addr for u in ups)
    site = {"upstream": addrs if len(addrs) > 1 else addrs[0],
            "max-fails": 0}
    site.update(site_opts)
    if hc is not None:
        site["health-check"] = hc

    def configure(p):
        p.listener["site"] = [("localhost", site)]
    p = start_proxy(make_proxy, workers=workers, configure=configure)
    p.site = site
    return p


def probers(p):
    """The pids of the master's children that are the prober."""
    out = []
    for pid in p.workers():
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if argv0 == b"portcullis-prober":
            out.append(pid)
    return out


def one_prober(p, other_than=None):
    def got():
        pids = probers(p)
        return pids if len(pids) == 1 and pids[0] != other_than else None
    return wait_until(got, 10 * SLOWDOWN, what="one prober")[0]


def verdict_lines(p, u, word):
    rx = re.compile(rf"upstream {re.escape(u.addr)} \([^)]*\) health "
                    rf"check: {word} after")
    return [line for line in p.log().splitlines() if rx.search(line)]


def wait_verdict(p, u, check, timeout=10, path=None):
    """Until ctl status says check ("up", "down", "none") for u (a
    Checked, or an address; of the site, or of its path block path)."""
    addr = u if isinstance(u, str) else u.addr

    def got():
        st = upstream_states(p, path)[addr]
        return st if st["check"] == check else None
    return wait_until(got, timeout * SLOWDOWN, interval=0.1,
                      what=f"{addr} check {check}")


def get_all(p, n):
    c = Client(p.https_port)
    out = []
    for _ in range(n):
        status, body, _ = c.get()
        out.append((status, body.decode().strip()))
    c.close()
    return out


# ---- down and up ---------------------------------------------------------

def test_down_after_fails_then_up_after_passes(make_proxy):
    """/healthz answering 500: down after `fails` checks, one log line,
    ctl status says so, no request reaches it; 200 again: up after
    `passes` checks, one line, and it gets its share again."""
    a, b, c = Checked("a"), Checked("b", status=500), Checked("c")
    p = proxy_with(make_proxy, [a, b, c], hc=health())
    p.wait_log(rf"upstream {re.escape(b.addr)} \({re.escape(b.addr)}, "
               r"site localhost\) health check: down after 2 failed checks, "
               r"the last: status 500", timeout=10 * SLOWDOWN)
    for u in (a, c):
        wait_verdict(p, u, "up")
    st = upstream_states(p)
    assert st[b.addr]["check"] == "down" and st[b.addr]["state"] == "down"
    assert not st[b.addr]["passive_down"]
    assert all(st[u.addr]["state"] == "up" for u in (a, c))
    got = get_all(p, 20)
    assert all(s == 200 for s, _ in got), got
    assert {body for _, body in got} == {"a", "c"}
    assert b.traffic() == []
    # Still failing, still down: said once.
    n = len(b.checks())
    wait_until(lambda: len(b.checks()) >= n + 2, 5 * SLOWDOWN,
               what="two more checks")
    assert len(verdict_lines(p, b, "down")) == 1
    assert verdict_lines(p, b, "up") == []
    # Healthy again.
    b.status = 200
    p.wait_log(rf"upstream {re.escape(b.addr)} \(.*\) health check: up "
               r"after 2 good checks", timeout=10 * SLOWDOWN)
    wait_verdict(p, b, "up")
    got = get_all(p, 30)
    assert sorted(body for _, body in got) == ["a"] * 10 + ["b"] * 10 + \
        ["c"] * 10
    assert len(verdict_lines(p, b, "up")) == 1
    # The first verdicts of a and c were up, and nobody else's down.
    assert len(verdict_lines(p, a, "up")) == 1
    assert verdict_lines(p, a, "down") == verdict_lines(p, c, "down") == []


def test_checks_once_per_upstream_not_per_worker(make_proxy):
    """Four workers, one prober: about one check per interval, each the
    request the man page describes."""
    u = Checked("u")
    p = proxy_with(make_proxy, [u], workers=4, hc=health())
    wait_until(lambda: u.checks(), 5 * SLOWDOWN, what="a first check")
    n0, t0 = len(u.checks()), time.monotonic()
    time.sleep(4)
    n, dt = len(u.checks()) - n0, time.monotonic() - t0
    # dt / interval, give or take one: four workers would make 16.
    assert dt - 1.5 <= n <= dt + 1.5, (n, dt)
    r = u.checks()[0]
    assert r.method == "GET" and r.target == HC and r.version == "HTTP/1.1"
    assert r.headers == [("Host", u.addr),
                         ("User-Agent", "portcullis-prober"),
                         ("Connection", "close")], r.headers
    assert len(probers(p)) == 1
    rc, st = p.ctl("status")
    assert st["workers"] == 4 and st["prober"]["pid"] == probers(p)[0]


def test_timeout_and_refused_fail(make_proxy):
    """A /healthz that does not answer within timeout fails, and so does
    an upstream that refuses the connection; all down: 503, nothing
    sent upstream, "all upstreams down" in the access log."""
    slow = Checked("slow")
    slow.hang.set()
    dead = f"127.0.0.1:{free_port()}"
    p = proxy_with(make_proxy, [slow, dead], hc=health(fails=1),
                   workers=1)
    try:
        p.wait_log(rf"upstream {re.escape(slow.addr)} \(.*\) health check: "
                   r"down after 1 failed check, the last: no response head "
                   r"within 1 s", timeout=10 * SLOWDOWN)
        p.wait_log(rf"upstream {re.escape(dead)} \(.*\) health check: down "
                   r"after 1 failed check, the last: connect: Connection "
                   r"refused", timeout=10 * SLOWDOWN)
        st = upstream_states(p)
        assert st[slow.addr]["check"] == st[dead]["check"] == "down"
        got = get_all(p, 3)
        assert [s for s, _ in got] == [503] * 3
        assert slow.traffic() == []
        # A line may be written just after its response went out.
        ev = wait_until(lambda: (ev := [
            e for e in access_events(p.log()) if e["host"] == "localhost"])
            and len(ev) >= 3 and ev, what="3 access lines")
        assert len(ev) == 3 and all(
            e["status"] == "503" and e["upstream"] == "-" and
            e["upstream_error"].strip('"') == "all upstreams down"
            for e in ev), [e["_line"] for e in ev]
    finally:
        slow.hang.clear()


# ---- the process ---------------------------------------------------------

def test_prober_privileges_respawn_and_verdicts_kept(make_proxy):
    """One prober, the service user's, no capability, no_new_privs; killed,
    it is respawned, the verdicts stay meanwhile and after (no second
    "down" line), and its checks go on."""
    a, b = Checked("a"), Checked("b", status=503)
    p = proxy_with(make_proxy, [a, b], hc=health())
    pid = one_prober(p)
    st = proc_status(pid)
    nobody = Path("/etc/passwd").read_text()
    uid = next(line.split(":")[2] for line in nobody.splitlines()
               if line.startswith("nobody:"))
    assert st["Uid"].split() == [uid] * 4, st["Uid"]
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0
    assert st["NoNewPrivs"] == "1"
    # Its descriptors: a worker's, without listeners.
    fds = sorted(int(f.name) for f in Path(f"/proc/{pid}/fd").iterdir())
    assert fds[:7] == [0, 1, 2, 3, 4, 5, 6], fds
    p.wait_log(rf"upstream {re.escape(b.addr)} \(.*\) health check: down",
               timeout=10 * SLOWDOWN)
    wait_verdict(p, a, "up")
    os.kill(pid, signal.SIGKILL)
    # Meanwhile, and after: b stays down, a up.
    st = upstream_states(p)
    assert st[b.addr]["check"] == "down" and st[a.addr]["check"] == "up"
    new = one_prober(p, other_than=pid)
    p.wait_log(rf"the prober \(pid {pid}\) killed by signal 9")
    n = len(b.checks())
    wait_until(lambda: len(b.checks()) >= n + 2, 5 * SLOWDOWN,
               what="checks by the new prober")
    assert upstream_states(p)[b.addr]["check"] == "down"
    assert len(verdict_lines(p, b, "down")) == 1
    assert {body for _, body in get_all(p, 6)} == {"a"}
    b.status = 200
    p.wait_log(rf"upstream {re.escape(b.addr)} \(.*\) health check: up",
               timeout=10 * SLOWDOWN)
    assert probers(p) == [new]
    # A shutdown stops it too.
    assert p.stop() == 0
    assert not Path(f"/proc/{new}").exists() or \
        "zombie" in Path(f"/proc/{new}/status").read_text()


def test_no_prober_without_health_check_reload_removes_and_adds(make_proxy):
    """No backend with a health-check: no prober.  A reload that removes
    the health-check of a backend whose upstream was down by its checks:
    it is used again at once, and the prober stops with the last one; a
    reload that adds it back starts the prober and the checks, from no
    verdict."""
    a, b = Checked("a"), Checked("b", status=500)
    p = proxy_with(make_proxy, [a, b])
    assert probers(p) == []
    rc, st = p.ctl("status")
    assert st["prober"] is None
    time.sleep(1.2)
    assert b.checks() == []
    # Added: checks start, b goes down.
    p.site["health-check"] = health()
    reload_ok(p)
    pid = one_prober(p)
    wait_verdict(p, b, "down")
    assert {body for _, body in get_all(p, 4)} == {"a"}
    # Removed: b at once, and the prober goes.
    del p.site["health-check"]
    reload_ok(p)
    st = upstream_states(p)
    assert st[b.addr]["check"] == "none" and st[b.addr]["state"] == "up"
    assert sorted(body for _, body in get_all(p, 4)) == ["a", "a", "b", "b"]
    p.wait_log(r"no backend has a health-check any more: stopping the "
               r"prober")
    wait_until(lambda: probers(p) == [], 10 * SLOWDOWN, what="no prober")
    p.wait_log(rf"the prober \(pid {pid}\) exited")
    assert p.ctl("status")[1]["prober"] is None
    n = len(b.checks())
    time.sleep(1.2)
    assert len(b.checks()) == n
    # Back again: no stale verdict, a new prober, down again.
    p.site["health-check"] = health()
    reload_ok(p)
    assert upstream_states(p)[b.addr]["check"] == "none"
    one_prober(p, other_than=pid)
    wait_verdict(p, b, "down")
    assert len(verdict_lines(p, b, "down")) == 2


def test_reload_keeps_verdicts_and_changes_at_once(make_proxy):
    """A reload keeps the verdict of the upstreams it keeps (no new line),
    a new upstream starts from none, and a changed path or interval takes
    effect at once."""
    a, b = Checked("a"), Checked("b", status=500)
    p = proxy_with(make_proxy, [a, b], hc=health(interval=3600, passes=1,
                                                 fails=1))
    # interval 3600: the first checks are spread over the hour, but the
    # first of them is made at once.
    wait_until(lambda: len(a.checks()) + len(b.checks()) >= 1,
               5 * SLOWDOWN, what="a first check")
    # A new interval: at once, not in an hour.
    p.site["health-check"] = health(passes=1, fails=1)
    reload_ok(p)
    wait_verdict(p, b, "down")
    wait_verdict(p, a, "up")
    assert len(verdict_lines(p, b, "down")) == 1
    # A new path (b answers it), a new upstream: b keeps "down" until a
    # check of the new path says otherwise, c starts from none.
    c = Checked("c")
    b_handle = b._handle

    def alive(req, conn):
        if req.target == "/alive":
            conn.respond(200, [], b"alive\n")
            conn.close()
            return
        b_handle(req, conn)
    b.up.handler = alive
    p.site["upstream"] = (a.addr, b.addr, c.addr)
    p.site["health-check"] = health(path="/alive", passes=2, fails=1)
    reload_ok(p)
    st = upstream_states(p)
    assert st[b.addr]["check"] == "down" and st[a.addr]["check"] == "up"
    assert st[c.addr]["check"] == "none"
    p.wait_log(rf"upstream {re.escape(b.addr)} \(.*\) health check: up "
               r"after 2 good checks", timeout=10 * SLOWDOWN)
    wait_verdict(p, c, "up")
    assert len(verdict_lines(p, b, "down")) == 1
    # a was up and stayed up: no second line.
    assert len(verdict_lines(p, a, "up")) == 1


class Silent:
    """Listeners that accept and never answer, one thread for all: how
    many connections are open at once, at most (.peak)."""

    def __init__(self, n):
        self.sel = selectors.DefaultSelector()
        self.listeners = []
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(128)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, "listen")
            self.listeners.append(s)
        self.addrs = [f"127.0.0.1:{s.getsockname()[1]}"
                      for s in self.listeners]
        self.open = self.peak = self.total = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            # Closes first: a check ends before the one waiting starts.
            events = sorted(self.sel.select(0.05),
                            key=lambda e: e[0].data == "listen")
            for key, _ in events:
                if key.data == "listen":
                    try:
                        c, _ = key.fileobj.accept()
                    except BlockingIOError:
                        continue
                    c.setblocking(False)
                    self.sel.register(c, selectors.EVENT_READ, "conn")
                    self.open += 1
                    self.total += 1
                    self.peak = max(self.peak, self.open)
                    continue
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                if not data:
                    self.sel.unregister(key.fileobj)
                    key.fileobj.close()
                    self.open -= 1

    def stop(self):
        self.running = False
        self.thread.join(5)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def test_concurrency_is_bounded(make_proxy):
    """70 upstreams that never answer, checked every second with a 1 s
    timeout: at most 64 checks in flight, the others wait their turn, and
    every upstream is checked and found down."""
    silent = Silent(70)
    try:
        def configure(p):
            p.listener["site"] = [("localhost", {
                "upstream": tuple(silent.addrs[:35]),
                "max-fails": 0,
                "health-check": health(fails=1),
                "path": [("/p/", {"upstream": tuple(silent.addrs[35:])})],
            })]
        p = start_proxy(make_proxy, workers=1, configure=configure)
        p.wait_log(r"health check: down after 1 failed check, the last: "
                   r"no response head within 1 s", count=70,
                   timeout=15 * SLOWDOWN)
        assert silent.peak == 64, silent.peak
        assert silent.total >= 70
        for b in (None, "/p/"):
            st = upstream_states(p, b)
            assert len(st) == 35 and all(
                u["check"] == "down" for u in st.values()), st
    finally:
        silent.stop()


# ---- passive and active together -------------------------------------------

def test_killed_under_load_back_when_the_check_passes(make_proxy, nginxes,
                                                      tmp_path):
    """An upstream killed under load: no client request fails (each goes
    to the next upstream), it is marked down by the requests at once and
    by its checks, and the others take everything.  Restarted on its
    port, it is back as soon as its checks pass, long before its
    fail-timeout (60 s) would let a request try it: the check ends the
    passive mark, one line says so, and it gets its share again."""
    ups = nginxes(3)
    p = proxy_with(make_proxy, [u.addr for u in ups], workers=2,
                   hc=health(passes=2, fails=1), **{"max-fails": 1,
                                                    "fail-timeout": 60})
    for u in ups:
        wait_verdict(p, u.addr, "up")
    load = Load(p.https_port, threads=4, each=400)
    done = load.seen
    try:
        wait_until(lambda: len(done) >= 200, 30 * SLOWDOWN,
                   what="load going")
        ups[1].kill()
        killed_at = len(done)
        wait_until(lambda: len(done) >= killed_at + 300, 60 * SLOWDOWN,
                   what="load after the kill")
        wait_verdict(p, ups[1].addr, "down")
    finally:
        load.join(stop=False)
    assert load.failures == [], load.failures[:10]
    assert "u1" not in done[killed_at + 50:]
    st = upstream_states(p)[ups[1].addr]
    assert st["state"] == "down" and st["passive_down"], st
    back = NginxUpstream(tmp_path / "nginx1b", body="u1\n",
                         port=ups[1].port)
    try:
        # Within 15 s: the fail-timeout (60 s) did not bring it back.
        p.wait_log(rf"upstream {re.escape(ups[1].addr)} \(.*\) is up again: "
                   r"a health check passed", timeout=15 * SLOWDOWN)
        wait_verdict(p, ups[1].addr, "up")
        st = upstream_states(p)[ups[1].addr]
        assert st["state"] == "up" and not st["passive_down"], st
        got = counts(body for _, body in get_all(p, 30))
        assert got == {"u0": 10, "u1": 10, "u2": 10}, got
    finally:
        back.stop()


# ---- https backends: checks over TLS ---------------------------------------

def tls_server(pki, cert):
    """A server context showing cert (a (cert, key) pair of pki)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def https_site(ups, pki, **opts):
    site = {"upstream": ups if len(ups) > 1 else ups[0],
            "upstream-scheme": "https", "upstream-ca-file": str(pki.ca),
            "max-fails": 0}
    site.update(opts)
    return site


def start_site(make_proxy, site, workers=1):
    def configure(p):
        p.listener["site"] = [("localhost", site)]
    p = start_proxy(make_proxy, workers=workers, configure=configure)
    p.site = site
    return p


def test_https_backend_checked_over_tls(make_proxy, pki):
    """upstream-scheme "https": the check is made over TLS, verified as a
    request is (here an IP address against the certificate's IP SAN, no
    SNI), with the Host of the address; a /healthz that fails takes the
    upstream down and one passing again brings it back, as over HTTP.
    The upstreams speak TLS only: a check that reached them in clear
    text would be no request at all."""
    ctx = tls_server(pki, pki.good)
    a, b = Checked("a", tls=ctx), Checked("b", tls=ctx)
    p = start_site(make_proxy, https_site(
        (a.addr, b.addr), pki, **{"health-check": health(passes=1,
                                                         fails=1)}))
    for u in (a, b):
        wait_verdict(p, u, "up")
        check = u.checks()[0]
        assert check.one("Host") == u.addr
        assert check.one("User-Agent") == "portcullis-prober"
    assert len(verdict_lines(p, a, "up")) == 1
    got = get_all(p, 10)
    assert sorted(got) == [(200, "a")] * 5 + [(200, "b")] * 5
    a.status = 503
    p.wait_log(rf"upstream {re.escape(a.addr)} \(.*\) health check: down "
               r"after 1 failed check, the last: status 503",
               timeout=10 * SLOWDOWN)
    wait_verdict(p, a, "down")
    n = len(a.traffic())
    assert get_all(p, 6) == [(200, "b")] * 6
    assert len(a.traffic()) == n
    a.status = 200
    wait_verdict(p, a, "up")
    assert len(verdict_lines(p, a, "up")) == 2
    assert {body for _, body in get_all(p, 6)} == {"a", "b"}


def test_https_check_fails_verification(make_proxy, pki):
    """A certificate the check cannot verify (another CA; the wrong name)
    is a failed check: down, with one line that says why as a request's
    502 would, and no request reaches the upstream, check or not.  With
    upstream-verify = false the same upstream is up."""
    stranger = Checked("stranger", tls=tls_server(pki, pki.stranger))
    good = Checked("good", tls=tls_server(pki, pki.good))
    p = start_site(make_proxy, https_site(
        (stranger.addr, good.addr), pki, **{
            "upstream-server-name": "up.test",
            "health-check": health(passes=1, fails=1),
            "path": [("/wrong/", {"upstream": good.addr,
                                  "upstream-server-name": "wrong.test"})]}))
    p.wait_log(rf"upstream {re.escape(stranger.addr)} \(.*\) health check: "
               r"down after 1 failed check, the last: TLS: the certificate "
               r'for \\"up.test\\" failed verification: The certificate '
               r"issuer is unknown\.", timeout=10 * SLOWDOWN)
    p.wait_log(rf"upstream {re.escape(good.addr)} \(.*path /wrong/\) health "
               r"check: down after 1 failed check, the last: TLS: the "
               r'certificate for \\"wrong.test\\" failed verification: '
               r"The name in the certificate does not match the expected\.",
               timeout=10 * SLOWDOWN)
    wait_verdict(p, good, "up")
    wait_verdict(p, good, "down", path="/wrong/")
    assert stranger.up.requests == []
    # Still failing: said once.
    time.sleep(1.5 * SLOWDOWN)
    assert len(verdict_lines(p, stranger, "down")) == 1
    assert get_all(p, 4) == [(200, "good")] * 4
    assert stranger.up.requests == []
    # Verification off: the check passes.
    p.site["upstream-verify"] = False
    reload_ok(p)
    wait_verdict(p, stranger, "up")
    assert stranger.checks() != []


def test_https_check_nginx_client_cert_sni_resumption(make_proxy,
                                                      make_nginx, pki):
    """Real nginx requiring a client certificate: the checks carry
    upstream-server-name as SNI and Host, the proxy's certificate, and
    resume their TLS session after the first; a reload that drops the
    client certificate makes the checks fail (nginx answers 400) at
    once, and one that puts it back brings the upstream up."""
    n = make_nginx(client_ca=pki.ca)
    cert = {"upstream-client-cert": str(pki.client[0]),
            "upstream-client-key": str(pki.client[1])}
    site = https_site((n.addr,), pki, **{
        "upstream-server-name": "up.test",
        "health-check": health(passes=1, fails=1), **cert})
    p = start_site(make_proxy, site)
    wait_verdict(p, n.addr, "up")
    lines = n.wait_lines(3)
    checks = [x for x in lines if x["uri"] == HC]
    assert len(checks) >= 3, lines
    assert all(x["sni"] == "up.test" and x["verify"] == "SUCCESS" and
               "CN=portcullis-proxy" in x["client_dn"] for x in checks), lines
    # One connection per check, each after the first resumed.
    assert len({x["conn"] for x in checks}) == len(checks), lines
    assert checks[0]["reused"] == "." and \
        all(x["reused"] == "r" for x in checks[1:]), lines
    # Without the client certificate: nginx says 400, the check fails.
    for k in cert:
        del site[k]
    reload_ok(p)
    p.wait_log(rf"upstream {re.escape(n.addr)} \(.*\) health check: down "
               r"after 1 failed check, the last: status 400",
               timeout=10 * SLOWDOWN)
    assert upstream_states(p)[n.addr]["check"] == "down"
    site.update(cert)
    reload_ok(p)
    wait_verdict(p, n.addr, "up")
