"""GET /metrics on the health port: the Prometheus text exposition of the
shared counters, parsed by prometheus_client's parser after known
traffic, and scraped by a real Prometheus."""

import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import (BINARY, free_port, http_get, read_all, start_proxy,
                      status_of, tls_connect, tls_context, wait_until)

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

# Every family /metrics has, with its type (prometheus_client drops the
# _total of a counter's family name).
FAMILIES = {
    "portcullis_build_info": "gauge",
    "portcullis_requests": "counter",
    "portcullis_rate_limited_requests": "counter",
    "portcullis_connections_active": "gauge",
    "portcullis_connections_accepted": "counter",
    "portcullis_received_bytes": "counter",
    "portcullis_sent_bytes": "counter",
    "portcullis_config_generation": "gauge",
    "portcullis_upstream_up": "gauge",
    "portcullis_upstream_in_flight": "gauge",
    "portcullis_upstream_requests": "counter",
    "portcullis_upstream_failures": "counter",
    # The operational families (test_metrics_ops.py).
    "portcullis_certificate_not_after_seconds": "gauge",
    "portcullis_acme_failures": "counter",
    "portcullis_acme_renewals": "counter",
    "portcullis_reloads": "counter",
    "portcullis_worker_restarts": "counter",
    "portcullis_request_duration_seconds": "histogram",
    "portcullis_tls_handshakes": "counter",
    "portcullis_tls_handshake_failures": "counter",
}


def curl(port, host, http2):
    out = subprocess.run(
        ["curl", "-sS", "-k", "--http2" if http2 else "--http1.1",
         "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
         "--resolve", f"{host}:{port}:127.0.0.1", f"https://{host}:{port}/"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def scrape(port, method="GET"):
    raw = (f"{method} /metrics HTTP/1.1\r\nHost: localhost\r\n"
           f"Connection: close\r\n\r\n").encode()
    reply = http_get(port, raw=raw)
    head, _, body = reply.partition(b"\r\n\r\n")
    return status_of(reply), head, body


def families(port):
    status, head, body = scrape(port)
    assert status == 200, head
    assert b"\r\nContent-Type: " + CONTENT_TYPE + b"\r\n" in head
    text = body.decode()
    # Every family has its HELP and TYPE before its samples.
    for name in FAMILIES:
        full = name + ("_total" if FAMILIES[name] == "counter" else "")
        for line in (f"# HELP {full} ", f"# TYPE {full} "):
            assert ("\n" + text).count("\n" + line) == 1, (line, text)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert {n: f.type for n, f in fams.items()} == FAMILIES
    assert all(f.documentation for f in fams.values())
    return fams


def value(fams, name, **labels):
    found = [s.value for s in fams[name].samples
             if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, fams[name].samples)
    return found[0]


def total(fams, name):
    return sum(s.value for s in fams[name].samples)


def requests(fams):
    """portcullis_requests_total's non-zero series, by (site, protocol,
    status)."""
    return {(s.labels["site"], s.labels["protocol"], s.labels["status"]):
            s.value for s in fams["portcullis_requests"].samples
            if s.value != 0}


def version():
    out = subprocess.run([str(BINARY), "--version"], capture_output=True,
                         text=True, check=True)
    return out.stdout.split()[1]


@pytest.fixture
def traffic(make_proxy, make_upstream):
    """Two sites on one upstream, a third on a refused port; 2 requests
    over HTTP/1.1 and 2 over HTTP/2 to the two sites, one 502, one
    reload."""
    up = make_upstream()
    dead = f"127.0.0.1:{free_port()}"

    def configure(p):
        p.listener["site"].append(("down.example.test", {"upstream": dead}))

    p = start_proxy(make_proxy, up, workers=2, configure=configure)
    for host in ("localhost", "a.example.test"):
        assert curl(p.https_port, host, False) == "1.1 200"
        assert curl(p.https_port, host, True) == "2 200"
    assert curl(p.https_port, "down.example.test", False) == "1.1 502"
    rc, reply = p.ctl("reload")
    assert rc == 0 and reply["status"] == "ok", reply
    return p, dead


def test_metrics_after_traffic(traffic):
    p, dead = traffic
    site = dict(listener="0", path="")
    # Closed connections leave the count when their worker sees the
    # close: wait until only the scrape's own is left.
    wait_until(lambda: value(families(p.health_port),
                             "portcullis_connections_active") == 1,
               what="only the scrape connected")
    fams = families(p.health_port)
    assert value(fams, "portcullis_build_info", version=version()) == 1
    assert total(fams, "portcullis_requests") == 5
    assert value(fams, "portcullis_connections_accepted") == 5
    assert value(fams, "portcullis_rate_limited_requests") == 0
    assert value(fams, "portcullis_config_generation") == 2
    up_requests = {s.labels["site"]: s.value
                   for s in fams["portcullis_upstream_requests"].samples}
    assert up_requests == {"localhost": 2, "*.example.test": 2,
                           "down.example.test": 1}
    for host in ("localhost", "*.example.test"):
        assert value(fams, "portcullis_upstream_up", site=host, **site) == 1
        assert value(fams, "portcullis_upstream_failures", site=host,
                     **site) == 0
    assert value(fams, "portcullis_upstream_up", site="down.example.test",
                 upstream=dead, **site) == 0
    assert value(fams, "portcullis_upstream_failures",
                 site="down.example.test", **site) == 1
    assert all(s.value == 0
               for s in fams["portcullis_upstream_in_flight"].samples)
    # The same counters as ctl status sums them.
    _, st = p.ctl("status")
    assert value(fams, "portcullis_received_bytes") == \
        st["counters"]["bytes_in"] > 0
    assert value(fams, "portcullis_sent_bytes") == \
        st["counters"]["bytes_out"] > 0
    assert st["counters"]["requests"] == 5


def test_metrics_head_and_keepalive(proxy):
    status, head, body = scrape(proxy.health_port, "HEAD")
    assert status == 200 and body == b""
    _, _, got = scrape(proxy.health_port)
    assert b"\r\nContent-Length: %d\r\n" % len(got) in head
    # Two requests on one connection, both answered.
    raw = (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = http_get(proxy.health_port, raw=raw)
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert reply.count(b"# TYPE portcullis_requests_total counter\n") == 2
    # The health endpoint's rules: no other method, no body, exact path.
    raw = (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
           b"\r\n")
    assert status_of(http_get(proxy.health_port, raw=raw)) == 405
    assert status_of(http_get(proxy.health_port, "/metrics/")) == 404
    assert status_of(http_get(proxy.health_port, "/metrics?x")) == 404


def test_rate_limited_counted(make_proxy, make_upstream):
    p = start_proxy(make_proxy, make_upstream(), workers=1, **{
        "rate-limit": {"requests-per-second": 0.1, "burst": 2}})
    codes = [curl(p.https_port, "localhost", False) for _ in range(5)]
    assert codes.count("1.1 429") == 3, codes
    fams = families(p.health_port)
    assert value(fams, "portcullis_rate_limited_requests") == 3
    assert total(fams, "portcullis_requests") == 5
    # Refused by the rate limit, but a request of its site all the same.
    assert requests(fams) == {("localhost", "http/1.1", "2xx"): 2,
                              ("localhost", "http/1.1", "4xx"): 3}
    assert value(fams, "portcullis_connections_accepted") == 5


def global_ipv4():
    """A non-loopback IPv4 address of this machine, None if none."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope",
                          "global"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        return line.split()[3].split("/")[0]
    return None


def test_metrics_refused_off_loopback(proxy):
    """/metrics is on the health socket, bound to 127.0.0.1 only: from
    another address of this machine the port is closed, as for /health."""
    addr = global_ipv4()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address here")
    assert scrape(proxy.health_port)[0] == 200
    for path in ("/metrics", "/health"):
        with pytest.raises(ConnectionRefusedError):
            http_get(proxy.health_port, path, host=addr)


def prom_query(port, query):
    url = (f"http://127.0.0.1:{port}/api/v1/query?" +
           urllib.parse.urlencode({"query": query}))
    with urllib.request.urlopen(url, timeout=5) as r:
        reply = json.load(r)
    assert reply["status"] == "success", reply
    return {json.dumps(x["metric"], sort_keys=True): float(x["value"][1])
            for x in reply["data"]["result"]}


def test_real_prometheus_scrapes(traffic, tmp_path):
    p, _ = traffic
    port = free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: portcullis\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{p.health_port}']\n")
    log = open(tmp_path / "prometheus.log", "w")
    prom = subprocess.Popen(
        [PROMETHEUS, f"--config.file={conf}",
         f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        def seen():
            try:
                return prom_query(port, "portcullis_requests_total")
            except OSError:
                return None
        got = wait_until(seen, 30.0, 0.25, what="series in Prometheus")
        assert sum(got.values()) == 5.0
        # By site, protocol and status class (issue 20's dashboard).
        h2 = prom_query(port, 'portcullis_requests_total{site="localhost",'
                        'protocol="h2",status="2xx"}')
        assert list(h2.values()) == [1.0]
        bad = prom_query(port, 'portcullis_requests_total{'
                         'site="down.example.test",status="5xx"}')
        assert sorted(bad.values()) == [0.0, 1.0]
        hist = prom_query(port, 'portcullis_request_duration_seconds_count'
                          '{site="*.example.test"}')
        assert list(hist.values()) == [2.0]
        inf = prom_query(port, 'portcullis_request_duration_seconds_bucket'
                         '{site="localhost",le="+Inf"}')
        assert list(inf.values()) == [2.0]
        tls = prom_query(port, "portcullis_tls_handshakes_total")
        assert list(tls.values()) == [5.0]
        assert list(prom_query(port, "up").values()) == [1.0]
        assert list(prom_query(port, "portcullis_config_generation")
                    .values()) == [2.0]
        ups = prom_query(port, 'portcullis_upstream_up{site="localhost"}')
        assert list(ups.values()) == [1.0]
        info = prom_query(port, "portcullis_build_info")
        assert [json.loads(k)["version"] for k in info] == [version()]
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        log.close()


# -- requests by site, protocol and status class; TLS handshakes (issue 20)

def tls10_client_hello():
    """A ClientHello that offers TLS 1.0 alone (no supported_versions
    extension), which portcullis does not speak."""
    body = (b"\x03\x01" + os.urandom(32) + b"\x00" + b"\x00\x02\x00\x2f" +
            b"\x01\x00")
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def client_hello():
    """The ClientHello of Python's TLS client, as bytes."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_context().wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def raw_to_tls_port(port, data, wait_close=True):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if wait_close:
            # The proxy's alert, then its close.
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass


def curl_host(port, http2, host_header=None, sni="localhost"):
    """curl to sni with another Host header (an unknown host)."""
    argv = ["curl", "-sS", "-k", "--http2" if http2 else "--http1.1",
            "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
            "--resolve", f"{sni}:{port}:127.0.0.1"]
    if host_header:
        argv += ["-H", f"Host: {host_header}"]
    out = subprocess.run(argv + [f"https://{sni}:{port}/"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def check_histograms(fams):
    """Per site: buckets cumulative (monotone), +Inf the count, the count
    the site's requests; returns {site: count}."""
    by_site = {}
    for smp in fams["portcullis_request_duration_seconds"].samples:
        by_site.setdefault(smp.labels["site"], []).append(smp)
    reqs = {}
    for smp in fams["portcullis_requests"].samples:
        reqs[smp.labels["site"]] = reqs.get(smp.labels["site"], 0) + \
            smp.value
    counts = {}
    for site, smps in by_site.items():
        buckets = [(float(x.labels["le"]), x.value) for x in smps
                   if x.name.endswith("_bucket")]
        assert [b for b, _ in buckets] == [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
            float("inf")], site
        values = [v for _, v in buckets]
        assert values == sorted(values), (site, values)
        count = [x.value for x in smps if x.name.endswith("_count")]
        ssum = [x.value for x in smps if x.name.endswith("_sum")]
        assert count == [values[-1]] and len(ssum) == 1 and ssum[0] >= 0
        assert count[0] == reqs[site], (site, count, reqs)
        counts[site] = count[0]
    assert set(counts) == set(reqs)
    return counts


def failures(fams):
    return {s.labels["reason"]: s.value
            for s in fams["portcullis_tls_handshake_failures"].samples}


REASONS = {"timeout", "closed", "protocol", "version", "cipher", "sni",
           "client_cert", "key", "other"}


def test_requests_by_site(make_proxy, make_upstream):
    """Known traffic over HTTP/1.1 and HTTP/2 to two sites, an unknown
    host, a bad request, a failing upstream and the plain port: the exact
    count of every (site, protocol, status class)."""
    up = make_upstream()
    dead = f"127.0.0.1:{free_port()}"

    def configure(p):
        p.listener["site"].append(("down.example.test", {"upstream": dead}))

    p = start_proxy(make_proxy, up, workers=2, configure=configure)
    fams = families(p.health_port)
    # Every reason from the start, and no request yet.
    assert failures(fams) == {r: 0 for r in REASONS}
    assert requests(fams) == {}
    sites = {s.labels["site"] for s in fams["portcullis_requests"].samples}
    assert sites == {"_unknown", "_other", "localhost", "*.example.test",
                     "down.example.test"}
    for _ in range(3):
        assert curl(p.https_port, "localhost", False) == "1.1 200"
    for _ in range(2):
        assert curl(p.https_port, "localhost", True) == "2 200"
    assert curl(p.https_port, "a.example.test", False) == "1.1 200"
    for _ in range(2):
        assert curl(p.https_port, "b.example.test", True) == "2 200"
    assert curl(p.https_port, "down.example.test", False) == "1.1 502"
    assert curl(p.https_port, "down.example.test", True) == "2 502"
    # An unknown host: one label, whatever the client wrote.
    assert curl_host(p.https_port, False, "nosuch.test") == "1.1 404"
    assert curl_host(p.https_port, True, "other.test") == "2 404"
    # No Host at all: 400 before any routing.
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert read_all(s).startswith(b"HTTP/1.1 400 ")
    # The plain port's redirect is its site's, over HTTP/1.1.
    raw = (b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close"
           b"\r\n\r\n")
    assert status_of(http_get(p.http_port, raw=raw)) == 301
    want = {("localhost", "http/1.1", "2xx"): 3,
            ("localhost", "h2", "2xx"): 2,
            ("localhost", "http/1.1", "3xx"): 1,
            ("*.example.test", "http/1.1", "2xx"): 1,
            ("*.example.test", "h2", "2xx"): 2,
            ("down.example.test", "http/1.1", "5xx"): 1,
            ("down.example.test", "h2", "5xx"): 1,
            ("_unknown", "http/1.1", "4xx"): 2,
            ("_unknown", "h2", "4xx"): 1}
    fams = families(p.health_port)
    assert requests(fams) == want
    assert check_histograms(fams) == {
        "_unknown": 3, "_other": 0, "localhost": 6, "*.example.test": 3,
        "down.example.test": 2}
    assert total(fams, "portcullis_requests") == sum(want.values())
    # Every TLS connection above was one handshake, none failed.
    assert value(fams, "portcullis_tls_handshakes") == 13
    assert failures(fams) == {r: 0 for r in REASONS}

    # A reload that adds a site: the others keep their counts.
    p.listener["site"].append(("new.example.test", {"upstream": up.addr}))
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0 and reply["status"] == "ok", reply
    assert curl(p.https_port, "new.example.test", True) == "2 200"
    want[("new.example.test", "h2", "2xx")] = 1
    fams = families(p.health_port)
    assert requests(fams) == want
    assert check_histograms(fams)["new.example.test"] == 1

    # A worker killed: its replacement takes its row, nothing goes down.
    before = fams
    victim = p.workers()[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in p.workers() and
               len(p.workers()) == 2, 15.0, what="worker respawned")
    wait_until(lambda: requests(families(p.health_port)) == want, 15.0,
               what="the same counts after the respawn")
    after = families(p.health_port)
    for name in ("portcullis_requests", "portcullis_tls_handshakes",
                 "portcullis_request_duration_seconds"):
        old = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for s in before[name].samples}
        new = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for s in after[name].samples}
        assert all(new[k] >= v for k, v in old.items()), name
    assert curl(p.https_port, "localhost", True) == "2 200"
    want[("localhost", "h2", "2xx")] += 1
    assert requests(families(p.health_port)) == want


def test_tls_handshake_failures(make_proxy, make_upstream):
    """A failed handshake counts under its reason, a done one in
    handshakes_total."""
    p = start_proxy(make_proxy, make_upstream(), workers=1,
                    http={"handshake-timeout": 1})
    port = p.https_port
    # TLS 1.0 only: no version in common.
    raw_to_tls_port(port, tls10_client_hello())
    # A client gone once the server answered its ClientHello.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(client_hello())
        assert s.recv(5)[:1] == b"\x16"	# the ServerHello's record
    # A client gone in the middle of a record: a broken record.
    raw_to_tls_port(port, tls10_client_hello()[:20], wait_close=False)
    # Plain HTTP to the TLS port: not a TLS record.
    raw_to_tls_port(port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    # Nothing at all: the handshake timeout.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(5)
        assert s.recv(10) == b""
    want = {r: 0 for r in REASONS}
    want.update(version=1, closed=1, protocol=2, timeout=1)
    wait_until(lambda: failures(families(p.health_port)) == want, 10.0,
               what=f"failures {want}")
    fams = families(p.health_port)
    assert value(fams, "portcullis_tls_handshakes") == 0
    assert curl(port, "localhost", True) == "2 200"
    fams = families(p.health_port)
    assert value(fams, "portcullis_tls_handshakes") == 1
    assert failures(fams) == want


# ---- a tunnel's duration; a request the client gave up on -------------

def site_buckets(fams, site):
    """{le: cumulative count} of site's duration histogram."""
    return {float(s.labels["le"]): s.value
            for s in fams["portcullis_request_duration_seconds"].samples
            if s.name.endswith("_bucket") and s.labels["site"] == site}


def test_websocket_duration_ends_at_the_upgrade(make_proxy, make_upstream):
    """A WebSocket held open some 2 s is one request of class 1xx whose
    duration is up to its 101, not the tunnel's life: in the 1 s bucket,
    not +Inf (which would wreck every p95)."""
    from test_streaming import open_ws, recv_exact, ws_handler
    up = make_upstream(handler=ws_handler)
    p = start_proxy(make_proxy, up, http={"tunnel-idle-timeout": 30})
    s, extra = open_ws(p)
    with s:
        # Used, then held: the tunnel lives some 2 s.
        for _ in range(4):
            s.sendall(b"ping")
            assert recv_exact(s, 4) == b"ping"
            time.sleep(0.6)
    wait_until(lambda: requests(families(p.health_port)) ==
               {("localhost", "http/1.1", "1xx"): 1}, 15.0,
               what="the WebSocket counted once, 1xx")
    fams = families(p.health_port)
    assert check_histograms(fams)["localhost"] == 1
    buckets = site_buckets(fams, "localhost")
    assert buckets[1.0] == 1, buckets
    ssum = [x.value for x in fams["portcullis_request_duration_seconds"]
            .samples if x.name.endswith("_sum") and
            x.labels["site"] == "localhost"]
    assert len(ssum) == 1 and ssum[0] < 1.0, ssum


def slow_upstream(gave_up):
    """A handler that answers 200 half a second after gave_up is set
    (the client has gone by then)."""
    def slow(req, conn):
        gave_up.wait(10)
        time.sleep(0.5)
        try:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass
        conn.close()
    return slow


@pytest.mark.parametrize("http2", [
    pytest.param(False, marks=pytest.mark.xfail(strict=True, reason=(
        "HTTP/1.1: a client's EOF while its response is awaited is taken "
        "for a half-close, and the kernel takes the first write after "
        "it: the upstream's 200 is counted"))),
    True], ids=["http1", "h2"])
def test_aborted_request_counts_4xx(make_proxy, make_upstream, http2):
    """A client that goes away before its response came (curl giving up:
    its connection closed) is logged 499: one request of class 4xx, not
    the upstream's 200 that it never saw."""
    gave_up = threading.Event()
    up = make_upstream(handler=slow_upstream(gave_up))
    p = start_proxy(make_proxy, up)
    out = subprocess.run(
        ["curl", "-sS", "-k", "--http2" if http2 else "--http1.1",
         "--max-time", "1", "-o",
         "/dev/null", "--resolve", f"localhost:{p.https_port}:127.0.0.1",
         f"https://localhost:{p.https_port}/slow"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 28, out        # curl's timeout
    gave_up.set()
    proto = "h2" if http2 else "http/1.1"
    wait_until(lambda: requests(families(p.health_port)) ==
               {("localhost", proto, "4xx"): 1}, 15.0,
               what="the aborted request counted 4xx")
    assert len(up.requests) == 1
    # The access log says the same.
    wait_until(lambda: "path=/slow" in p.log(), 10.0,
               what="the ACCESS line")
    line = [x for x in p.log().splitlines() if "path=/slow" in x]
    assert len(line) == 1 and " status=499 " in line[0], line


def test_aborted_request_write_failed_counts_4xx(make_proxy, make_upstream):
    """HTTP/1.1: a client gone whose response's first write fails (it
    closed before the upstream answered) got no status: 499, 4xx, in
    the log and /metrics alike, not the upstream's 200."""
    gave_up = threading.Event()
    up = make_upstream(handler=slow_upstream(gave_up))
    p = start_proxy(make_proxy, up)
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
        wait_until(lambda: len(up.requests) == 1, 10.0,
                   what="the request upstream")
    gave_up.set()
    wait_until(lambda: "path=/slow" in p.log(), 10.0, what="the ACCESS line")
    line = [x for x in p.log().splitlines() if "path=/slow" in x]
    assert len(line) == 1 and " bytes_out=0 " in line[0], line
    assert " status=499 " in line[0], line
    assert requests(families(p.health_port)) == \
        {("localhost", "http/1.1", "4xx"): 1}
