"""contrib/grafana/portcullis.json, the Grafana dashboard of issue 20: a
well-formed dashboard (schema, a data-source variable, a site variable,
a target on every panel), whose every query a real Prometheus accepts,
and whose every metric name is a family a running proxy exposes on
GET /metrics (with a site, an upstream and traffic).

The names are the contract between the dashboard and the proxy: a family
renamed or dropped fails here, not silently in someone's Grafana."""

import json
import os
import re
import signal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import http_get, https_get, start_proxy, wait_until
from promutil import prom_query, prometheus

DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / \
    "portcullis.json"

# What issue 20 wants on the dashboard, as the families it needs.
WANTED = {
    "portcullis_requests_total",                    # by site, by status
    "portcullis_request_duration_seconds",          # p50/p95/p99
    "portcullis_received_bytes_total", "portcullis_sent_bytes_total",
    "portcullis_connections_active", "portcullis_connections_accepted_total",
    "portcullis_rate_limited_requests_total",
    "portcullis_tls_handshakes_total",
    "portcullis_tls_handshake_failures_total",
    "portcullis_upstream_up", "portcullis_upstream_in_flight",
    "portcullis_upstream_failures_total",
    "portcullis_certificate_not_after_seconds",
    "portcullis_acme_failures_total",
    "portcullis_reloads_total",
    "portcullis_worker_restarts_total",
    "portcullis_config_generation",
    "portcullis_build_info",
}


def dashboard():
    return json.loads(DASHBOARD.read_text())


def panels(d):
    """Every panel but the rows, those inside collapsed rows included."""
    out = []
    for p in d["panels"]:
        if p["type"] == "row":
            out += p.get("panels", [])
        else:
            out.append(p)
    return out


def exprs(d):
    return [t["expr"] for p in panels(d) for t in p["targets"]]


def names_in(expr):
    """The portcullis_ metric names an expression uses, as families: a
    histogram's _bucket, _sum and _count are its family's."""
    out = set()
    for name in re.findall(r"\bportcullis_[a-z_]+", expr):
        out.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return out


def used_names(d):
    out = set()
    for e in exprs(d):
        out |= names_in(e)
    return out


def test_dashboard_is_well_formed():
    d = dashboard()
    assert d["title"] == "portcullis" and d["uid"] == "portcullis"
    assert 36 <= d["schemaVersion"] <= 41, d["schemaVersion"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    site = variables["site"]
    assert site["type"] == "query"
    q = site["query"]["query"] if isinstance(site["query"], dict) \
        else site["query"]
    assert q == "label_values(portcullis_requests_total, site)"
    assert site["datasource"]["uid"] == "${DS_PROMETHEUS}"
    assert site["multi"] and site["includeAll"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), ids
    ps = panels(d)
    assert len(ps) >= 15
    for p in ps:
        assert p["title"], p
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert p["targets"], f"panel {p['title']!r} has no target"
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}"
            assert "portcullis_" in t["expr"], (p["title"], t["expr"])
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, p
    refs = [(p["id"], t["refId"]) for p in ps for t in p["targets"]]
    assert len(refs) == len(set(refs))
    assert used_names(d) >= WANTED, WANTED - used_names(d)
    # The site variable is used where requests are counted.
    assert any('site=~"$site"' in e for e in exprs(d))
    # Latency: quantiles over the rate of the histogram's buckets.
    lat = [e for e in exprs(d) if "histogram_quantile" in e]
    assert {re.search(r"histogram_quantile\(([0-9.]+)", e).group(1)
            for e in lat} == {"0.5", "0.95", "0.99"}
    assert all("rate(portcullis_request_duration_seconds_bucket" in e
               and "by (le)" in e for e in lat)
    # Days left from the not-after.
    assert any("portcullis_certificate_not_after_seconds" in e and
               "time()" in e and "86400" in e for e in exprs(d))


@pytest.fixture
def busy_proxy(make_proxy, make_upstream):
    """A proxy with a site, an upstream and some traffic."""
    p = start_proxy(make_proxy, make_upstream(), workers=2)
    for host in ("localhost", "a.example.test"):
        status, _, _, _ = https_get(p.https_port, host=host, sni=host)
        assert status == 200
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    return p


def exposed_names(port):
    raw = (b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
           b"Connection: close\r\n\r\n")
    text = http_get(port, raw=raw).partition(b"\r\n\r\n")[2].decode()
    out = set()
    for f in text_string_to_metric_families(text):
        # prometheus_client drops a counter's _total from the family.
        out.add(f.name + "_total" if f.type == "counter" else f.name)
    return out


def test_every_name_is_exposed(busy_proxy):
    """Every metric the dashboard queries is a family of a live
    /metrics.  (On a branch without the per-site request metrics this
    fails for exactly those names until both are merged.)"""
    have = exposed_names(busy_proxy.health_port)
    missing = {n for n in used_names(dashboard()) if n not in have}
    assert not missing, f"the dashboard queries families /metrics does " \
        f"not have: {sorted(missing)}"


# The panels whose queries must have data once the proxy had the
# fixture's traffic (and, for the restarts, a worker killed while
# Prometheus watched): an empty result there is a label or name typo.
MUST_HAVE_DATA = (
    "Requests per second by site", "Requests per second by status class",
    "Request duration (p50, p95, p99)", "Bytes per second in / out",
    "Connections", "TLS handshakes and failures by reason",
    "Upstream up (1) / down (0)", "Reloads (ok / failed)",
    "Worker restarts by cause", "Configuration generation", "Build",
)


def test_every_query_runs_in_prometheus(busy_proxy, tmp_path):
    """A real Prometheus, scraping the proxy, accepts every query of the
    dashboard (with Grafana's variables as Grafana would fill them), and
    those of the panels that must show the fixture's traffic return
    data: a query on a misspelt label succeeds, empty."""
    d = dashboard()
    titles = {p["title"] for p in panels(d)}
    assert set(MUST_HAVE_DATA) <= titles, set(MUST_HAVE_DATA) - titles
    p = busy_proxy
    with prometheus(tmp_path, p.health_port) as port:
        def up():
            try:
                r = prom_query(port, "portcullis_config_generation")
            except OSError:
                return None
            return r["status"] == "success" and r["data"]["result"]
        wait_until(up, 30.0, 0.25, what="portcullis scraped")
        # A respawn Prometheus sees happen (increase() > 0), and more
        # traffic for the rates.
        victim = p.workers()[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in p.workers() and
                   len(p.workers()) == 2, 15.0, what="worker respawned")
        for host in ("localhost", "a.example.test"):
            status, _, _, _ = https_get(p.https_port, host=host, sni=host)
            assert status == 200

        # One site chosen (not ".*", which an unknown label matches
        # too): a misspelt label then finds nothing.
        def query(e, site=".*"):
            q = (e.replace("$__rate_interval", "1m")
                 .replace("$__range", "1h").replace("$site", site))
            r = prom_query(port, q)
            assert r["status"] == "success", (e, r)
            return r["data"]["result"]

        for panel in panels(d):
            for t in panel["targets"]:
                if panel["title"] not in MUST_HAVE_DATA:
                    query(t["expr"])
                    continue
                # rate() and increase() need two scrapes after the event.
                wait_until(lambda: query(t["expr"], "localhost"), 30.0,
                           0.5,
                           what=f"data for {panel['title']!r}: "
                                f"{t['expr']}")
