"""The operational families of GET /metrics (issue 20): certificates'
not-after by source, ACME failures and renewals against a real ACME
server (pebble), reloads by result, and respawns by process and cause.
These are the master's facts: it counts them in the part of the shared
segment only it writes, the workers render them.  Parsed with
prometheus_client's parser."""

import os
import signal
import ssl
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from acmeutil import (acme, acme_base, ctl, make_pebble,  # noqa: F401
                      pebble_tls, served, wait_acme, wait_cert)
from conftest import (http_get, https_get, start_proxy, status_of,
                      wait_until)
from test_acme import acme_child

PROCESSES = ("worker", "acme", "prober", "signer")
CAUSES = ("exit", "signal", "sandbox", "killed")

# The families this file is about, with their types (prometheus_client
# drops a counter's _total from its family name).
OPS_FAMILIES = {
    "portcullis_certificate_not_after_seconds": "gauge",
    "portcullis_acme_failures": "counter",
    "portcullis_acme_renewals": "counter",
    "portcullis_reloads": "counter",
    "portcullis_worker_restarts": "counter",
}


def scrape(port):
    raw = (b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
           b"Connection: close\r\n\r\n")
    reply = http_get(port, raw=raw)
    assert status_of(reply) == 200, reply[:200]
    text = reply.partition(b"\r\n\r\n")[2].decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in OPS_FAMILIES.items():
        assert name in fams, (name, text)
        assert fams[name].type == kind, (name, fams[name].type)
        assert fams[name].documentation, name
    return fams


def samples(fams, name, **labels):
    return [s for s in fams[name].samples
            if s.name != name + "_created"
            and all(s.labels.get(k) == v for k, v in labels.items())]


def value(fams, name, **labels):
    found = samples(fams, name, **labels)
    assert len(found) == 1, (name, labels, fams[name].samples)
    return found[0].value


def restarts(fams):
    """{(process, cause): count} over every series."""
    out = {}
    for s in samples(fams, "portcullis_worker_restarts"):
        key = (s.labels["process"], s.labels["cause"])
        assert key not in out, key
        out[key] = s.value
    return out


def enddate(pem_path):
    """notAfter as `openssl x509 -enddate` says, in seconds."""
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                          str(pem_path)], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.startswith("notAfter="), out
    return int(ssl.cert_time_to_seconds(out[len("notAfter="):]))


# ---- certificates and the fixed series -------------------------------------

def test_manual_certificates_and_zero_series(make_proxy, upstream, certs):
    """Every site's certificate with source manual: the listener's for the
    sites without one of their own, the site's own otherwise, each equal
    to what openssl says of the file.  Reloads and every process x cause
    of the restarts exist from the start, at 0; no ACME name, no ACME
    series (the families are there, empty)."""
    own_cert, own_key = certs.get("own.test")

    def configure(p):
        p.listener["site"].append(("own.test", {
            "upstream": upstream.addr, "cert": str(own_cert),
            "key": str(own_key)}))

    p = start_proxy(make_proxy, upstream, workers=2, configure=configure)
    lcert = p.listener["tls"]["cert"]
    fams = scrape(p.health_port)
    cert = "portcullis_certificate_not_after_seconds"
    got = {(s.labels["listener"], s.labels["site"], s.labels["source"]):
           s.value for s in samples(fams, cert)}
    assert got == {
        ("0", "localhost", "manual"): enddate(lcert),
        ("0", "*.example.test", "manual"): enddate(lcert),
        ("0", "own.test", "manual"): enddate(own_cert),
    }, got
    # It is what a client is served, too.
    s = served(p.https_port, "own.test")
    assert s is not None and s.not_after == enddate(own_cert)
    assert samples(fams, "portcullis_acme_failures") == []
    assert samples(fams, "portcullis_acme_renewals") == []
    assert value(fams, "portcullis_reloads", result="ok") == 0
    assert value(fams, "portcullis_reloads", result="failed") == 0
    assert len(samples(fams, "portcullis_reloads")) == 2
    assert restarts(fams) == {(p_, c): 0 for p_ in PROCESSES for c in CAUSES}
    # The same from every worker: scrape a few times (connections are
    # spread over both).
    for _ in range(4):
        again = scrape(p.health_port)
        assert {(s.labels["site"], s.value) for s in samples(again, cert)} \
            == {(k[1], v) for k, v in got.items()}


# ---- reloads ---------------------------------------------------------------

def test_reloads_ok_and_failed(make_proxy, upstream):
    """A good reload counts ok, a file that does not validate counts
    failed (and the old configuration keeps serving), SIGHUP counts as
    ctl reload does."""
    p = start_proxy(make_proxy, upstream, workers=2)
    rc, reply = p.ctl("reload")
    assert rc == 0 and reply["status"] == "ok", reply
    fams = scrape(p.health_port)
    assert value(fams, "portcullis_reloads", result="ok") == 1
    assert value(fams, "portcullis_reloads", result="failed") == 0
    good = p.conf_path.read_text()
    p.conf_path.write_text(good.replace(f'upstream = "{upstream.addr}"',
                                        'upstream = "nonsense"', 1))
    rc, reply = p.ctl("reload")
    assert rc == 1 and reply["status"] == "error", reply
    fams = scrape(p.health_port)
    assert value(fams, "portcullis_reloads", result="ok") == 1
    assert value(fams, "portcullis_reloads", result="failed") == 1
    assert value(fams, "portcullis_config_generation") == 2
    status, _, body, _ = https_get(p.https_port)
    assert status == 200, body
    p.conf_path.write_text(good)
    p.send_signal(signal.SIGHUP)
    p.wait_log(r"generation 3 is live on 2 workers")
    fams = wait_until(
        lambda: (f := scrape(p.health_port)) and
        value(f, "portcullis_reloads", result="ok") == 2 and f,
        what="the SIGHUP reload counted")
    assert value(fams, "portcullis_reloads", result="failed") == 1


# ---- respawns --------------------------------------------------------------

def wait_restarts(p, want):
    """Wait until the restart counts are want (others 0)."""
    full = {(p_, c): 0 for p_ in PROCESSES for c in CAUSES}
    full.update(want)
    return wait_until(lambda: restarts(scrape(p.health_port)) == full,
                      what=f"restarts {want}")


def test_worker_restarts_by_cause(make_proxy, upstream):
    """kill -9 of a worker is cause signal, SIGSYS is the sandbox's, each
    counted once for its process; the signer is a process of its own."""
    p = start_proxy(make_proxy, upstream, workers=2)
    wait_until(lambda: p.ctl("status")[1]["workers"] == 2, what="ready")
    first = p.wait_workers(2)
    os.kill(first[0], signal.SIGKILL)
    wait_restarts(p, {("worker", "signal"): 1})
    wait_until(lambda: (w := p.workers()) and len(w) == 2 and
               first[0] not in w, what="a new worker")
    wait_until(lambda: p.ctl("status")[1]["workers"] == 2, what="2 ready")
    os.kill(first[1], signal.SIGSYS)
    p.wait_log(rf"\(pid {first[1]}\) was killed by the sandbox")
    wait_restarts(p, {("worker", "signal"): 1, ("worker", "sandbox"): 1})
    signer = p.signer()
    assert signer is not None
    os.kill(signer, signal.SIGKILL)
    wait_restarts(p, {("worker", "signal"): 1, ("worker", "sandbox"): 1,
                      ("signer", "signal"): 1})
    # Still serving through it all.
    wait_until(lambda: p.ctl("status")[1]["workers"] == 2, what="2 ready")
    status, _, body, _ = https_get(p.https_port)
    assert status == 200, body
    # A clean stop is no restart (nothing left to scrape afterwards).
    assert p.stop() == 0


def test_worker_killed_by_the_master(make_proxy, upstream):
    """A worker that does not apply a reload in time is killed by the
    master (SIGKILL, as kill -9 from elsewhere): cause killed, not signal;
    the reload itself is ok."""
    p = start_proxy(make_proxy, upstream, workers=2)
    w = p.wait_workers(2)[0]
    os.kill(w, signal.SIGSTOP)
    try:
        rc, reply = p.ctl("reload")
    finally:
        try:
            os.kill(w, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert rc == 0 and reply["workers"] == 1, reply
    wait_restarts(p, {("worker", "killed"): 1})
    fams = scrape(p.health_port)
    assert value(fams, "portcullis_reloads", result="ok") == 1
    assert value(fams, "portcullis_reloads", result="failed") == 0


# ---- ACME ------------------------------------------------------------------

def test_acme_certificate_failures_and_renewals(acme, certs):
    """With pebble: the name that validates is served a certificate whose
    not-after is the acme series' value and counts one renewal; the name
    pebble cannot reach counts a failure per failed attempt (one at
    start, one more on ctl renew), none of its renewals; a manual site
    on the same listener keeps source manual."""
    mcert, mkey = certs.get("manual.test")
    p, pb, _ = acme.proxy(["good.test", "bad.test"],
                          manual_sites=[("manual.test", mcert, mkey)])
    # Nothing listens on 127.0.0.2: pebble's validation connection is
    # refused.
    pb.add_a("bad.test", ["127.0.0.2"])
    p.start()
    good = wait_cert(p.https_port, "good.test", pb, proxy=p)
    wait_acme(p, "failed", "bad.test")

    def counted():
        f = scrape(p.health_port)
        return (value(f, "portcullis_acme_renewals", site="good.test") == 1
                and value(f, "portcullis_acme_failures",
                          site="bad.test") == 1 and f)
    fams = wait_until(counted, 10.0, what="ACME attempts counted")
    assert value(fams, "portcullis_acme_failures", site="good.test") == 0
    assert value(fams, "portcullis_acme_renewals", site="bad.test") == 0
    cert = "portcullis_certificate_not_after_seconds"
    assert value(fams, cert, site="good.test", source="acme") == \
        good.not_after
    # bad.test has no certificate yet: no series for it.
    assert samples(fams, cert, site="bad.test") == []
    assert value(fams, cert, site="manual.test", source="manual") == \
        enddate(mcert)
    assert len(samples(fams, cert)) == 2
    # Another failed attempt, asked for: one more.
    rc, reply, err = ctl(p, "renew", "bad.test")
    assert rc == 1 and reply["status"] == "error", (reply, err)
    fams = wait_until(
        lambda: (f := scrape(p.health_port)) and
        value(f, "portcullis_acme_failures", site="bad.test") == 2 and f,
        what="the second failure counted")
    assert value(fams, "portcullis_acme_failures", site="good.test") == 0
    assert value(fams, "portcullis_acme_renewals", site="good.test") == 1
    # The ACME process is a process of its own in the restarts.
    (pid,) = acme_child(p)
    os.kill(pid, signal.SIGKILL)
    wait_restarts(p, {("acme", "signal"): 1})
