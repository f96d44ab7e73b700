"""Rate limiting: 429 with Retry-After and a RATE_LIMIT line, one limit for
the whole server whatever the worker, every request of a keep-alive or
pipelined connection counted, per-site limits, reloads that keep the
buckets, the counters in "status", and the fail2ban filter run with the
real fail2ban-regex over a log the proxy wrote."""

import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import free_port, point_sites_at, tls_connect, wait_until
from f2butil import FILTER, JAIL, PROBE_FILTER, Fail2ban
from h1util import read_response
from proxyutil_http import TS, access_events, parse_text_event


def start(make_proxy, upstream, rate, burst, workers=1, **overrides):
    limit = {"requests-per-second": rate, "burst": burst}
    limit.update(overrides.pop("limit_extra", {}))
    p = make_proxy(workers=workers, **{"rate-limit": limit}, **overrides)
    point_sites_at(p, upstream)
    p.start()
    return p


def request(host="localhost", path="/", close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
            + ("Connection: close\r\n" if close else "")
            + "\r\n").encode()


class Client:
    """One keep-alive TLS connection; get() sends a request and reads its
    response: (status, headers)."""

    def __init__(self, port, host="127.0.0.1"):
        self.s = tls_connect(port, host=host)

    def get(self, path="/", host="localhost"):
        self.s.sendall(request(host, path))
        status, headers, _ = read_response(self.s)
        return status, headers

    def close(self):
        self.s.close()


def statuses(client, n, path="/"):
    return [client.get(path)[0] for _ in range(n)]


def rate_limit_lines(log):
    return [l for l in log.splitlines() if re.match(rf"^{TS} RATE_LIMIT ", l)]


def test_429_with_retry_after_and_log_line(make_proxy, upstream):
    p = start(make_proxy, upstream, rate=0.25, burst=3)
    c = Client(p.https_port)
    assert statuses(c, 3, "/login") == [200, 200, 200]
    status, headers = c.get("/login")
    assert status == 429
    # One token in 4 s, most of which is still to come.
    assert headers["retry-after"] in (["4"], ["3"]), headers
    assert "connection" not in headers, headers
    # The connection stays usable (and the next one is refused too).
    assert c.get("/login?x=1")[0] == 429
    c.close()
    assert len(upstream.requests) == 3
    p.wait_log(r"RATE_LIMIT .*x=1", count=1)
    lines = rate_limit_lines(p.log())
    assert len(lines) == 2, lines
    assert re.fullmatch(rf"{TS} RATE_LIMIT client_ip=127\.0\.0\.1 "
                        r"host=localhost path=/login status=429", lines[0])
    assert lines[1].endswith(" path=/login?x=1 status=429")
    # Each 429 also ends in its ACCESS line, as every request does.
    p.wait_log(r"ACCESS .*status=429", count=2)
    refused = [e for e in access_events(p.log()) if e["status"] == "429"]
    assert [e["path"] for e in refused] == ["/login", "/login?x=1"]
    assert all(e["upstream"] == "-" for e in refused)


def test_json_rate_limit_event(make_proxy, upstream):
    p = make_proxy(workers=1, **{"rate-limit": {"requests-per-second": 0.1,
                                                "burst": 1}})
    p.settings["logging"]["format"] = "json"
    point_sites_at(p, upstream)
    p.start()
    c = Client(p.https_port)
    assert statuses(c, 2, "/a%0Ab") == [200, 429]
    c.close()
    p.wait_log(r'"event":"rate_limit"')
    events = [json.loads(l) for l in p.log().splitlines()
              if '"event":"rate_limit"' in l]
    assert len(events) == 1
    ev = events[0]
    assert list(ev) == ["time", "event", "client_ip", "host", "path",
                        "status"]
    assert re.fullmatch(TS, ev["time"])
    assert ev == {"time": ev["time"], "event": "rate_limit",
                  "client_ip": "127.0.0.1", "host": "localhost",
                  "path": "/a%0Ab", "status": 429}


def test_pipelined_and_keep_alive_requests_each_count(make_proxy, upstream):
    p = start(make_proxy, upstream, rate=0.1, burst=4)
    s = tls_connect(p.https_port)
    s.sendall(b"".join(request(path=f"/p{i}") for i in range(6)))
    got = [read_response(s)[0] for _ in range(6)]
    assert got == [200, 200, 200, 200, 429, 429]
    # Still open, still limited: a keep-alive request after them.
    s.sendall(request(path="/after"))
    assert read_response(s)[0] == 429
    s.close()
    p.wait_log(r"RATE_LIMIT .*path=/after")
    assert [l.split(" path=")[1].split()[0]
            for l in rate_limit_lines(p.log())] == ["/p4", "/p5", "/after"]


def test_per_site_limit_is_separate(make_proxy, upstream):
    p = make_proxy(workers=1, **{"rate-limit": {"requests-per-second": 0.1,
                                                "burst": 2}})
    point_sites_at(p, upstream)
    # login.example.test gets its own, tighter limit.
    p.listener["site"].insert(0, ("login.example.test", {
        "upstream": upstream.addr,
        "rate-limit": {"requests-per-second": 0.1, "burst": 1}}))
    p.write_config()
    p.start()
    c = Client(p.https_port)
    assert [c.get("/", host="login.example.test")[0] for _ in range(2)] \
        == [200, 429]
    # Its requests did not use the global bucket...
    assert [c.get("/", host="www.example.test")[0] for _ in range(3)] \
        == [200, 200, 429]
    # ...and the global one running out does not touch the site's.
    assert c.get("/", host="login.example.test")[0] == 429
    c.close()


def test_unknown_hosts_count_against_the_global_limit(make_proxy, upstream):
    p = start(make_proxy, upstream, rate=0.1, burst=2)
    c = Client(p.https_port)
    assert [c.get("/", host="nowhere.test")[0] for _ in range(3)] \
        == [404, 404, 429]
    assert c.get("/")[0] == 429
    c.close()


def test_one_limit_across_workers(make_proxy, upstream):
    """Many connections from one address land on both workers; the 200s
    they get together are burst + rate x elapsed, within 5%."""
    rate, burst, seconds = 40.0, 20, 4.0
    p = start(make_proxy, upstream, rate=rate, burst=burst, workers=2)
    counts = {"ok": 0, "limited": 0, "other": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            c = Client(p.https_port)
            try:
                for _ in range(8):
                    status = c.get("/")[0]
                    key = {200: "ok", 429: "limited"}.get(status, "other")
                    with lock:
                        counts[key] += 1
            finally:
                c.close()

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    start_t = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - start_t
    expected = burst + rate * elapsed
    assert counts["other"] == 0, counts
    assert counts["limited"] > counts["ok"], counts
    assert abs(counts["ok"] - expected) <= 0.05 * expected, \
        (counts, elapsed, expected)
    # Both workers served some of them (else this proves nothing).
    rc, st = p.ctl("status")
    per = st["worker_counters"]
    assert len(per) == 2 and all(w["requests"] > 0 for w in per), per
    assert sum(w["rate_limited"] for w in per) == counts["limited"]
    print(f"\n200s: {counts['ok']}, expected {expected:.1f} "
          f"({elapsed:.2f} s); 429s: {counts['limited']}; per worker: "
          f"{[w['requests'] for w in per]}")


def test_reload_keeps_buckets_and_changes_rates(make_proxy, upstream):
    p = start(make_proxy, upstream, rate=0.1, burst=4)
    c = Client(p.https_port)
    assert statuses(c, 4) == [200] * 4
    status, headers = c.get()
    assert status == 429 and headers["retry-after"] in (["10"], ["9"])
    t_empty = time.monotonic()
    p.settings["rate-limit"] = {"requests-per-second": 1, "burst": 4}
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    got = statuses(c, 4)
    waited = time.monotonic() - t_empty
    # An emptied (reset) table would give four 200s.  At most what the
    # new rate refilled since the bucket ran dry passed.
    assert got.count(200) <= int(waited * 1) + 0, (got, waited)
    assert got[-1] == 429, got
    # The new rate is live: one token a second, and Retry-After says so.
    status, headers = c.get()
    assert status == 429 and headers["retry-after"] == ["1"], headers
    time.sleep(1.1)
    assert statuses(c, 2) == [200, 429]
    c.close()


def test_table_size_needs_a_restart(make_proxy, upstream):
    p = start(make_proxy, upstream, rate=10, burst=20)
    p.settings["rate-limit"]["table-size"] = 4096
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 1
    assert "'rate-limit table-size' changed, which needs a restart" \
        in reply["message"]


def test_status_reports_counters(make_proxy, upstream):
    p = start(make_proxy, upstream, rate=0.1, burst=2, workers=2)
    rc, st = p.ctl("status")
    assert rc == 0
    assert set(st["counters"]) == {"requests", "rate_limited",
                                   "active_connections", "bytes_in",
                                   "bytes_out", "errors"}
    assert st["counters"]["requests"] == 0
    c = Client(p.https_port)
    assert statuses(c, 3) == [200, 200, 429]
    # A request is counted once its response is out, which the client
    # may see a moment before the worker gets to it.
    want_in = 3 * len(request())
    st = wait_until(lambda: (s := p.ctl("status")[1])["counters"][
        "bytes_in"] == want_in and s, what="3 requests counted")
    total = st["counters"]
    # The connection is still open: it counts as active.
    assert total["requests"] == 3 and total["rate_limited"] == 1, st
    assert total["active_connections"] == 1, st
    assert total["bytes_in"] == want_in, st
    assert total["bytes_out"] > 0 and total["errors"] == 0, st
    per = st["worker_counters"]
    assert [w["worker"] for w in per] == [0, 1]
    assert sorted(w["pid"] for w in per) == sorted(p.workers())
    for key in total:
        assert sum(w[key] for w in per) == total[key], (key, st)
    c.close()
    wait_until(lambda: p.ctl("status")[1]["counters"][
        "active_connections"] == 0, what="the connection closed")


# ---- fail2ban ------------------------------------------------------------

def fail2ban_ips(log_path, filter_path=FILTER):
    """The address of every line fail2ban-regex matched, in order, and
    its summary line."""
    r = subprocess.run(["fail2ban-regex", "--raw", "-o", "ip",
                        str(log_path), str(filter_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ips = [l.strip() for l in r.stdout.splitlines() if l.strip()]
    r = subprocess.run(["fail2ban-regex", "--raw", str(log_path),
                        str(filter_path)],
                       capture_output=True, text=True, timeout=60)
    summary = re.search(r"^Lines: .*$", r.stdout, re.M).group(0)
    return ips, summary


def v6_listener(p, certs):
    cert, key = certs.get("localhost", ["localhost", "*.example.test"])
    port = free_port(__import__("socket").AF_INET6, "::1")
    p.settings["listener"].append((None, {
        "bind": "::1", "https-port": port, "http-port": 0,
        "tls": {"mode": "manual", "cert": str(cert), "key": str(key)},
        "site": [("localhost", {"upstream": p.listener["site"][0][1][
            "upstream"]})]}))
    return port


INJECTIONS = [
    "/login?client_ip=1.2.3.4",
    "/x%0A2026-01-01T00:00:00.000Z%20RATE_LIMIT%20client_ip=1.2.3.5",
    '/q"client_ip=1.2.3.6',
    "/client_ip=1.2.3.7%20host=x",
]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fail2ban_filter_matches_every_rate_limit_line(make_proxy, upstream,
                                                       certs, fmt):
    p = make_proxy(workers=2, **{"rate-limit": {"requests-per-second": 0.1,
                                                "burst": 1}})
    p.settings["logging"]["format"] = fmt
    point_sites_at(p, upstream)
    port6 = v6_listener(p, certs)
    p.write_config()
    p.start()
    c4 = Client(p.https_port)
    c6 = Client(port6, host="::1")
    sent = []
    for path in ["/first"] + INJECTIONS:
        for c, ip in ((c4, "127.0.0.1"), (c6, "::1")):
            sent.append((ip, c.get(path)[0]))
    # A raw newline in the request line never becomes a log line of its
    # own: the parser refuses it (400) before any limit.
    s = tls_connect(p.https_port)
    s.sendall(b"GET /a\nRATE_LIMIT client_ip=1.2.3.8 HTTP/1.1\r\n"
              b"Host: localhost\r\n\r\n")
    assert read_response(s)[0] == 400
    s.close()
    c4.close()
    c6.close()
    # What fail2ban counts: the IPv4 address, the IPv6 client's /64.
    limited = [{"::1": "::/64"}.get(ip, ip) for ip, st in sent if st == 429]
    # The first request of each address passes, every later one is refused.
    assert [st for _, st in sent[:2]] == [200, 200]
    assert len(limited) == 2 * len(INJECTIONS)
    p.stop()
    log = p.log()
    assert "1.2.3." in log          # the crafted values were logged...
    ips, summary = fail2ban_ips(p.log_path)
    # ...and every RATE_LIMIT line, and only those, matched: with the
    # real client address, never one a client wrote.
    assert sorted(ips) == sorted(limited), (ips, summary, log)
    n_lines = len(log.splitlines())
    assert summary.startswith(f"Lines: {n_lines} lines, 0 ignored, "
                              f"{len(limited)} matched"), summary


def test_fail2ban_bans_the_ipv6_network(make_proxy, upstream, certs,
                                        tmp_path):
    """A client rotating through its /64 is one client for the jail too:
    the RATE_LIMIT line names the /64 the bucket stands for (client_net),
    and the shipped filter and jail ban that network after maxretry lines,
    whatever address each came from."""
    p = make_proxy(workers=1, **{"rate-limit": {"requests-per-second": 0.1,
                                                "burst": 1}})
    point_sites_at(p, upstream)
    port6 = v6_listener(p, certs)
    p.write_config()
    p.start()
    c = Client(port6, host="::1")
    assert statuses(c, 2, "/login") == [200, 429]
    c.close()
    p.wait_log(r"RATE_LIMIT ")
    p.stop()
    [line] = rate_limit_lines(p.log())
    assert re.fullmatch(rf"{TS} RATE_LIMIT client_ip=::1 host=localhost "
                        r"client_net=::/64 path=/login status=429", line)
    ips, summary = fail2ban_ips(p.log_path)
    assert ips == ["::/64"], (ips, summary)

    # The same line from ten addresses of one /64, as a client that
    # changes address for each request writes it.
    body = line.split(" ", 1)[1]
    def line_from(i):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        return f"{ts} " + body.replace(
            "client_ip=::1 ", f"client_ip=2001:db8:1:2::{i:x} ").replace(
            "client_net=::/64 ", "client_net=2001:db8:1:2::/64 ")
    jail = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", JAIL.read_text().split(
        "[portcullis-ratelimit]")[1].split("\n[")[0], re.M))
    maxretry = int(jail["maxretry"])
    f2b = Fail2ban(tmp_path / "f2b")
    try:
        f2b.append([line_from(i) for i in range(1, maxretry)])
        wait_until(lambda: f2b.status()["Total failed"] == str(maxretry - 1),
                   what="fail2ban read the lines")
        st = f2b.status()
        assert st["Currently banned"] == "0" and f2b.banned() == [], st
        f2b.append([line_from(maxretry)])
        wait_until(f2b.banned, what="a ban")
        assert f2b.banned() == ["2001:db8:1:2::/64"], f2b.text()
        assert f2b.status()["Banned IP list"] == "2001:db8:1:2::/64"
    finally:
        f2b.stop()


def test_fail2ban_jail_is_what_the_docs_say():
    text = JAIL.read_text()
    section = text.split("[portcullis-ratelimit]")[1].split("\n[")[0]
    settings = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", section, re.M))
    assert settings["enabled"] == "true"
    assert settings["filter"] == "portcullis"
    assert settings["maxretry"] == "10" and settings["findtime"] == "60"
    probe = text.split("[portcullis-probe]")[1]
    assert re.search(r"^enabled\s*=\s*false$", probe, re.M)


def test_probe_filter_on_access_lines(make_proxy, upstream):
    """The disabled-by-default probe jail's filter: 401/403 answers and
    exploit paths that failed, from the ACCESS lines, nothing else."""
    def handler(req, conn):
        status = {"/private": 403, "/token": 401}.get(req.target, 404)
        if req.target in ("/", "/.env-is-fine-here"):
            status = 200
        conn.respond(status, body=b"x")

    from upstream import Upstream
    up = Upstream(handler=handler)
    try:
        p = make_proxy(workers=1, **{"rate-limit": {
            "requests-per-second": 1000, "burst": 1000}})
        point_sites_at(p, up)
        p.start()
        c = Client(p.https_port)
        plan = {"/": 200, "/private": 403, "/token": 401, "/.env": 404,
                "/wp-login.php": 404, "/u/repo.git/config": 404,
                "/.env-is-fine-here": 200, "/x?client_ip=1.2.3.4": 404,
                "/.git/config": 404,
                # A quote makes the logged path a quoted value: still
                # the same probe.
                '/.env?x="': 404, '/x?"/.env': 404}
        for path, want in plan.items():
            assert c.get(path)[0] == want, path
        c.close()
        p.stop()
    finally:
        up.stop()
    ips, summary = fail2ban_ips(p.log_path, PROBE_FILTER)
    # /private, /token, /.env, /wp-login.php, /.git/config, /.env?x="
    assert ips == ["127.0.0.1"] * 6, (ips, summary, p.log())
