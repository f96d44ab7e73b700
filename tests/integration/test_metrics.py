"""GET /metrics on the health port: the Prometheus text exposition of the
shared counters, parsed by prometheus_client's parser after known
traffic, and scraped by a real Prometheus."""

import json
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import (BINARY, free_port, http_get, start_proxy, status_of,
                      wait_until)

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
    assert value(fams, "portcullis_requests") == 5
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
    assert value(fams, "portcullis_requests") == 5
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
        assert list(got.values()) == [5.0]
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
