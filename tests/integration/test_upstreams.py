"""Several upstreams per site (issue 17): load balancing (round-robin,
least-connections, ip-hash, sticky-cookie), passive health (max-fails,
fail-timeout), retries to the next upstream, 503 when all are down, the
access log's upstream and upstream_error, `ctl status`, reloads that change
the lists under load, an upstream killed under load.  Real upstreams:
Debian's nginx (killed with SIGKILL for a crash) and the project's test
server where a test needs a slow one."""

import http.client
import json
import re
import subprocess
import threading
import time

import pytest

from conftest import BINARY, free_port, start_proxy, tls_context, wait_until
from h2util import H2Client
from nginx_upstream import NginxUpstream
from proxyutil_http import access_events


@pytest.fixture
def nginxes(tmp_path):
    """nginxes(n) -> n nginx upstreams answering "u0\\n", "u1\\n", ..."""
    made = []

    def factory(n, first=0):
        out = []
        for i in range(first, first + n):
            u = NginxUpstream(tmp_path / f"nginx{i}", body=f"u{i}\n",
                              count=True)
            u.name = f"u{i}"
            made.append(u)
            out.append(u)
        return out

    yield factory
    for u in made:
        u.stop()


def site(upstreams, **opts):
    """The settings of site "localhost" over these upstreams."""
    addrs = tuple(u if isinstance(u, str) else u.addr for u in upstreams)
    d = {"upstream": addrs if len(addrs) > 1 else addrs[0]}
    d.update(opts)
    return d


def proxy_with(make_proxy, sites, workers=2, **overrides):
    """A started proxy whose listener has exactly these sites."""
    def configure(p):
        p.listener["site"] = list(sites.items())
    return start_proxy(make_proxy, workers=workers, configure=configure,
                       **overrides)


class Client:
    """HTTP/1.1 over TLS with keep-alive, optionally from a given loopback
    address.  Strict: a connection the proxy closes or resets is the
    caller's failure (it raises), as nothing in these tests makes the
    proxy close one (no idle timeout is reached)."""

    def __init__(self, port, source=None, host="localhost"):
        self.port = port
        self.source = source
        self.host = host
        self.conn = None

    def get(self, path="/", headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=tls_context(), timeout=15,
                source_address=(self.source, 0) if self.source else None)
        try:
            self.conn.request("GET", path, headers={
                "Host": self.host, **(headers or {})})
            r = self.conn.getresponse()
            body = r.read()
        except Exception:
            self.close()
            raise
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return r.status, body, r

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def reload_ok(p):
    """Write the settings and reload; every worker on the new generation
    when it returns."""
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0 and reply["status"] == "ok", reply


class Load:
    """Client threads, each sending GETs on its own keep-alive connection
    until stopped or `each` are done: every failure (an exception, a status
    other than 200) in .failures, every body in .seen."""

    def __init__(self, port, threads, each=5000):
        self.failures, self.seen = [], []
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(port, each))
                        for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, port, each):
        c = Client(port)
        for _ in range(each):
            if self.stop_ev.is_set():
                break
            try:
                status, body, _ = c.get()
            except Exception as e:      # noqa: BLE001 - counted
                self.failures.append(repr(e))
                c.close()
                continue
            if status != 200:
                self.failures.append(status)
            self.seen.append(body.decode().strip())

    def join(self, stop=True, timeout=120):
        if stop:
            self.stop_ev.set()
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads)


def access(p, n):
    """The ACCESS events of host localhost, once there are n of them (a
    line may be written just after its response went out)."""
    def got():
        ev = [e for e in access_events(p.log()) if e["host"] == "localhost"]
        return ev if len(ev) >= n else None
    ev = wait_until(got, what=f"{n} access lines")
    assert len(ev) == n, [e["_line"] for e in ev]
    return ev


def counts(bodies):
    out = {}
    for b in bodies:
        out[b] = out.get(b, 0) + 1
    return out


def backends(p):
    rc, st = p.ctl("status")
    assert rc == 0, st
    return st["backends"]


def upstream_states(p, path=None):
    """{name: entry} of site localhost's backend (or its path block)."""
    for b in backends(p):
        if b["site"] == "localhost" and b["path"] == path:
            return {u["name"]: u for u in b["upstreams"]}
    raise AssertionError(f"no backend for localhost {path}")


# ---- load balancing ---------------------------------------------------

def test_round_robin_exact_over_workers(make_proxy, nginxes):
    ups = nginxes(3)
    p = proxy_with(make_proxy, {"localhost": site(ups)})
    clients = [Client(p.https_port) for _ in range(3)]
    bodies = []
    for i in range(300):
        status, body, _ = clients[i % 3].get()
        assert status == 200
        bodies.append(body.decode().strip())
    # One counter for the backend, shared by both workers: exactly even.
    assert counts(bodies) == {"u0": 100, "u1": 100, "u2": 100}
    # HTTP/2 goes through the same choice.
    with H2Client(p.https_port) as c:
        got = [c.response(c.request("GET", "/")).body.decode().strip()
               for _ in range(30)]
    assert counts(got) == {"u0": 10, "u1": 10, "u2": 10}
    st = upstream_states(p)
    assert [st[u.addr]["requests"] for u in ups] == [110, 110, 110]
    assert all(e["state"] == "up" and e["in_flight"] == 0
               for e in st.values())


def test_least_connections_avoids_the_busy_one(make_proxy, make_upstream):
    gate = threading.Event()

    def slow(req, conn):
        gate.wait(10)
        conn.respond(200, [("Content-Length", "5")], b"slow\n")

    def fast(req, conn):
        conn.respond(200, [("Content-Length", "5")], b"fast\n")

    s, f = make_upstream(handler=slow), make_upstream(handler=fast)
    results = []

    def one():
        results.append(Client(p.https_port).get()[1].decode().strip())

    for policy, most_slow in (("least-connections", 1),
                              ("round-robin", None)):
        p = proxy_with(make_proxy, {"localhost": site(
            [s, f], **{"load-balance": policy})})
        gate.clear()
        results.clear()
        threads = []
        for _ in range(12):
            t = threading.Thread(target=one)
            t.start()
            threads.append(t)
            time.sleep(0.05)
        # Every request is in flight or answered before the slow ones go.
        wait_until(lambda: len(results) + len(s.requests) >= 12,
                   what="every request placed")
        in_slow = len(s.requests)
        gate.set()
        for t in threads:
            t.join(15)
        assert len(results) == 12
        if most_slow is not None:
            # One in flight there: every later one goes to the other.
            assert in_slow <= most_slow, (policy, in_slow)
        else:
            assert in_slow == 6, (policy, in_slow)
        with s.lock:
            s.requests.clear()
        p.stop()


def test_ip_hash_keeps_clients_and_moves_few(make_proxy, nginxes):
    ups = nginxes(4)
    p = proxy_with(make_proxy, {"localhost": site(
        ups, **{"load-balance": "ip-hash"})})
    sources = [f"127.0.0.{i}" for i in range(10, 70)]

    def placement():
        where = {}
        for src in sources:
            c = Client(p.https_port, source=src)
            seen = {c.get()[1].decode().strip() for _ in range(3)}
            c.close()
            assert len(seen) == 1, (src, seen)     # always the same one
            where[src] = seen.pop()
        return where

    before = placement()
    assert len(set(before.values())) == 4, counts(before.values())
    # Without u3: only its clients move; the others stay where they were.
    p.listener["site"] = [("localhost", site(
        ups[:3], **{"load-balance": "ip-hash"}))]
    reload_ok(p)
    after = placement()
    for src in sources:
        if before[src] != "u3":
            assert after[src] == before[src], src
        else:
            assert after[src] != "u3"
    moved = sum(before[s] != after[s] for s in sources)
    assert moved == sum(v == "u3" for v in before.values())
    assert 0 < moved < len(sources) / 2


COOKIE_RE = re.compile(r"^portcullis_upstream=([0-9a-f]{32}); Path=/; "
                       r"Secure; HttpOnly; SameSite=Lax$")


def sticky_get(c, cookie=None):
    """(body, the Set-Cookie value or None)."""
    status, body, r = c.get(headers={"Cookie": cookie} if cookie else None)
    assert status == 200
    sc = r.getheader("Set-Cookie")
    if sc is not None:
        assert COOKIE_RE.match(sc), sc
        assert len(r.headers.get_all("Set-Cookie")) == 1
    return body.decode().strip(), sc


def test_sticky_cookie(make_proxy, nginxes):
    ups = nginxes(3)
    opts = {"load-balance": "sticky-cookie", "max-fails": 1,
            "fail-timeout": 30}
    p = proxy_with(make_proxy, {"localhost": site(ups, **opts)})
    c = Client(p.https_port)
    jar = {}
    # Without a cookie: balanced, and told which one it got.
    for _ in range(3):
        name, sc = sticky_get(c)
        assert sc is not None
        jar[name] = sc.split(";")[0]
    assert sorted(jar) == ["u0", "u1", "u2"]
    assert len(set(jar.values())) == 3
    # With one: always that one, nothing set again; over HTTP/2 too, and
    # among other cookies.
    for name, cookie in jar.items():
        for _ in range(5):
            assert sticky_get(c, f"a=1; {cookie}; b=2") == (name, None)
        with H2Client(p.https_port) as h:
            r = h.response(h.request("GET", "/", headers=[
                ("cookie", "x=y"), ("cookie", cookie)]))
            assert r.body.decode().strip() == name
            assert "set-cookie" not in dict(r.headers)
    # Forged, or cut: balanced as if absent, and a real one is set.
    for forged in ("portcullis_upstream=" + "0" * 32,
                   jar["u1"][:-1], jar["u1"] + "0"):
        name, sc = sticky_get(c, forged)
        assert sc is not None and sc.split(";")[0] == jar[name]
    # A reload that keeps an upstream keeps its value; one that drops
    # it makes its value stale: balanced among the rest, and set anew.
    p.listener["site"] = [("localhost", site([ups[2], ups[0]], **opts))]
    reload_ok(p)
    assert sticky_get(c, jar["u2"]) == ("u2", None)
    assert sticky_get(c, jar["u0"]) == ("u0", None)
    name, sc = sticky_get(c, jar["u1"])
    assert name in ("u0", "u2") and sc.split(";")[0] == jar[name]
    # The one it names is down: another, and the cookie moves with it.
    ups[2].kill()
    name, sc = sticky_get(c, jar["u2"])
    assert name == "u0" and sc.split(";")[0] == jar["u0"]
    assert sticky_get(c, jar["u2"]) == ("u0", sc)


def test_sticky_cookie_path_block(make_proxy, nginxes):
    a, b = nginxes(2)
    p = proxy_with(make_proxy, {"localhost": site(
        [a], path=[("/app/", {"upstream": (a.addr, b.addr),
                              "load-balance": "sticky-cookie"})])})
    c = Client(p.https_port)
    status, body, r = c.get("/app/x")
    sc = r.getheader("Set-Cookie")
    assert re.match(r"^portcullis_upstream=[0-9a-f]{32}; Path=/app/; "
                    r"Secure; HttpOnly; SameSite=Lax$", sc), sc
    cookie = sc.split(";")[0]
    for _ in range(4):
        status, again, r = c.get("/app/y", headers={"Cookie": cookie})
        assert again == body and r.getheader("Set-Cookie") is None
    # The site's own backend is not sticky: no cookie there.
    assert c.get("/other")[2].getheader("Set-Cookie") is None


# ---- health and retries -----------------------------------------------

DOWN_RE = re.compile(r'upstream (\S+) \((\S+), site localhost\) is down: '
                     r'1 failure in a row, the last: connect: Connection '
                     r'refused; not used for 30 s')


def test_refused_goes_to_next_and_is_marked_down(make_proxy, nginxes):
    (u,) = nginxes(1)
    dead = f"127.0.0.1:{free_port()}"
    p = proxy_with(make_proxy, {"localhost": site(
        [dead, u], **{"max-fails": 1, "fail-timeout": 30})}, workers=2)
    c = Client(p.https_port)
    for _ in range(20):
        status, body, _ = c.get()
        assert (status, body) == (200, b"u0\n")
    # Tried once, by one request, and marked down for every worker.
    wait_until(lambda: DOWN_RE.search(p.log()), what="the down line")
    assert len(DOWN_RE.findall(p.log())) == 1, p.log()
    st = upstream_states(p)
    assert st[dead]["state"] == "down" and st[dead]["passive_down"]
    assert st[dead]["failures"] == 1 and st[dead]["requests"] == 1
    assert st[u.addr]["state"] == "up" and st[u.addr]["requests"] == 20
    ev = access(p, 20)
    assert all(e["status"] == "200" for e in ev)
    assert all(e["upstream"] == u.addr for e in ev)
    failed = [e for e in ev if e["upstream_error"] != "-"]
    assert len(failed) == 1
    assert failed[0]["upstream_error"] == \
        f"{dead} connect: Connection refused"


def test_all_down_is_503_with_a_reason(make_proxy):
    dead = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    p = proxy_with(make_proxy, {"localhost": site(
        dead, **{"max-fails": 1, "fail-timeout": 30})}, workers=1)
    c = Client(p.https_port)
    # The first tries both: the last failure is its answer.
    assert c.get()[0] == 502
    # Then both are down: 503 at once, nothing tried.
    for _ in range(3):
        status, body, _ = c.get()
        assert status == 503
    with H2Client(p.https_port) as h:
        assert int(h.response(h.request("GET", "/")).status) == 503
    ev = access(p, 5)
    assert [e["status"] for e in ev] == ["502", "503", "503", "503", "503"]
    assert ev[0]["upstream_error"].count("connect: Connection refused") == 2
    assert all(e["upstream_error"] == '"all upstreams down"'
               or e["upstream_error"] == "all upstreams down"
               for e in ev[1:]), [e["_line"] for e in ev]
    assert all(e["upstream"] == "-" for e in ev[1:])
    st = upstream_states(p)
    assert all(e["state"] == "down" for e in st.values())


def test_single_upstream_is_never_skipped(make_proxy):
    """As nginx with one server: its failures are its answers (502), and
    it gets every request (no 503 for a backend of one)."""
    dead = f"127.0.0.1:{free_port()}"
    p = proxy_with(make_proxy, {"localhost": site([dead])}, workers=1)
    c = Client(p.https_port)
    assert [c.get()[0] for _ in range(4)] == [502] * 4


def test_post_is_sent_to_next_when_first_refuses(make_proxy, make_upstream):
    up = make_upstream()
    dead = f"127.0.0.1:{free_port()}"
    p = proxy_with(make_proxy, {"localhost": site([dead, up])}, workers=1)
    for _ in range(2):
        conn = http.client.HTTPSConnection("127.0.0.1", p.https_port,
                                           context=tls_context(), timeout=10)
        conn.request("POST", "/form", body=b"a=1&b=2",
                     headers={"Host": "localhost"})
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["body_len"] == 7
        conn.close()
    assert [r.body for r in up.requests] == [b"a=1&b=2"] * 2
    ev = access(p, 2)
    assert [e["status"] for e in ev] == ["200", "200"]
    # The first marked the dead one down: only it tried it.
    assert ev[0]["upstream_error"] == f"{dead} connect: Connection refused"
    assert ev[1]["upstream_error"] == "-"


def test_reset_before_head_replays_only_replayable(make_proxy,
                                                  make_upstream):
    """An upstream that takes the request and closes without answering
    (a crash mid-request): a GET goes to the next upstream; a POST with a
    body was sent and may have been acted on: 502, never sent twice."""
    def crash(req, conn):
        conn.close()

    bad, good = make_upstream(handler=crash), make_upstream()
    p = proxy_with(make_proxy, {"localhost": site(
        [bad, good], **{"max-fails": 0})}, workers=1)
    c = Client(p.https_port)
    for i in range(4):
        assert c.get(f"/g{i}")[0] == 200
    # Round-robin: two went to the crashing one first, then to the next.
    assert [r.target for r in bad.requests] == ["/g0", "/g2"]
    assert [r.target for r in good.requests] == ["/g0", "/g1", "/g2", "/g3"]
    statuses = []
    for i in range(2):
        conn = http.client.HTTPSConnection("127.0.0.1", p.https_port,
                                           context=tls_context(), timeout=10)
        conn.request("POST", f"/p{i}", body=b"x=1",
                     headers={"Host": "localhost"})
        statuses.append(conn.getresponse().status)
        conn.close()
    assert sorted(statuses) == [200, 502]
    posts = [r.target for r in bad.requests + good.requests
             if r.method == "POST"]
    assert sorted(posts) == ["/p0", "/p1"]      # each sent once
    ev = access(p, 6)
    assert [e["status"] for e in ev][:4] == ["200"] * 4
    assert ev[0]["upstream_error"] == (
        f"{bad.addr} closed before a complete response head")


def test_killed_under_load_no_failed_request(make_proxy, nginxes, tmp_path):
    ups = nginxes(3)
    p = proxy_with(make_proxy, {"localhost": site(
        ups, **{"max-fails": 1, "fail-timeout": 2})}, workers=2)
    workers = sorted(p.wait_workers(2))
    load = Load(p.https_port, threads=4, each=400)
    done = load.seen
    wait_until(lambda: len(done) >= 200, timeout=30, what="load going")
    ups[1].kill()
    killed_at = len(done)
    wait_until(lambda: len(done) >= killed_at + 400, timeout=60,
               what="load after the kill")
    # Marked down: the others take everything (with the fail-timeout
    # passing, a request now and then tries it again and is retried).
    wait_until(lambda: "is down" in p.log(), what="the down line")
    load.join(stop=False)
    assert load.failures == [], load.failures[:10]
    # Not a worker lost on the way.
    assert sorted(p.wait_workers(2)) == workers
    assert " exited" not in p.log() and "killed by signal" not in p.log()
    after = done[killed_at + 50:]
    assert "u1" not in after
    assert counts(after).get("u0", 0) > 100 and \
        counts(after).get("u2", 0) > 100
    # It comes back (same port): after fail-timeout a request tries it,
    # it answers, it is up again and gets its share.
    back = NginxUpstream(tmp_path / "nginx1b", body="u1\n",
                         port=ups[1].port)
    try:
        time.sleep(2.2)
        c = Client(p.https_port)
        got = [c.get()[1].decode().strip() for _ in range(30)]
        assert "u1" in got
        assert counts(got[-15:]).get("u1", 0) >= 4, got
        wait_until(lambda: "is up again" in p.log(), what="the up line")
        assert upstream_states(p)[ups[1].addr]["state"] == "up"
    finally:
        back.stop()


def test_reload_changes_lists_under_load(make_proxy, nginxes):
    a, b, c3 = nginxes(3)
    p = proxy_with(make_proxy, {"localhost": site([a, b])}, workers=2)
    workers = sorted(p.wait_workers(2))
    load = Load(p.https_port, threads=3, each=2000)
    try:
        for ups in ([b, c3], [a, c3], [a, b, c3], [c3]):
            time.sleep(0.4)
            p.listener["site"] = [("localhost", site(ups))]
            reload_ok(p)
    finally:
        time.sleep(0.4)
        load.join()
    assert load.failures == [], load.failures[:10]
    assert len(load.seen) > 100
    assert sorted(p.wait_workers(2)) == workers
    assert " exited" not in p.log() and "killed by signal" not in p.log()
    # The last list only, once the reload is acknowledged by all.
    c = Client(p.https_port)
    assert {c.get()[1] for _ in range(10)} == {b"u2\n"}
    st = upstream_states(p)
    assert list(st) == [c3.addr]


def test_status_per_site_and_path(make_proxy, nginxes):
    a, b, c3 = nginxes(3)
    p = proxy_with(make_proxy, {"localhost": site(
        [a, b], **{"load-balance": "least-connections", "max-fails": 3,
                   "fail-timeout": 7},
        path=[("/api/", {"upstream": c3.addr})])})
    Client(p.https_port).get("/api/x")
    bs = [x for x in backends(p) if x["site"] == "localhost"]
    assert [(x["path"], x["load_balance"], x["max_fails"],
             x["fail_timeout"]) for x in bs] == [
        (None, "least-connections", 3, 7), ("/api/", "least-connections",
                                            3, 7)]
    assert [u["name"] for u in bs[0]["upstreams"]] == [a.addr, b.addr]
    (api,) = bs[1]["upstreams"]
    assert api["requests"] == 1 and api["state"] == "up"
    for u in bs[0]["upstreams"] + bs[1]["upstreams"]:
        assert set(u) == {"name", "address", "state", "passive_down",
                          "check", "in_flight", "fails", "failures",
                          "requests"}


@pytest.mark.parametrize("lines,line,msg", [
    ('upstream = { "127.0.0.1:1", "127.0.0.1:1" }', 5,
     'site "a.test": upstream "127.0.0.1:1" is listed twice'),
    ('upstream = "127.0.0.1:1"\n    load-balance = "random"', 6,
     'site "a.test": load-balance must be "round-robin", '
     '"least-connections", "ip-hash" or "sticky-cookie", not "random"'),
    ('upstream = "127.0.0.1:1"\n    max-fails = -1', 6,
     "'max-fails' must be between 0 and 1000, not -1"),
    ('upstream = "127.0.0.1:1"\n    fail-timeout = 0', 6,
     "'fail-timeout' must be between 1 and 3600, not 0"),
])
def test_validate_errors(tmp_path, certs, lines, line, msg):
    cert, key = certs.get("localhost", ["localhost"])
    conf = tmp_path / "p.conf"
    conf.write_text(
        f'listener {{\n  bind = "127.0.0.1"\n  tls {{ cert = "{cert}" '
        f'key = "{key}" }}\n  site "a.test" {{\n    {lines}\n  }}\n}}\n')
    r = subprocess.run([BINARY, "--validate", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f"{conf}:{line}: {msg}" in r.stderr, r.stderr
