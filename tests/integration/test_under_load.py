"""Operations under traffic: 50 reloads while wrk runs (keep-alive and a
new connection per request), SIGTERM with requests in flight, and a
worker killed with SIGKILL under load.  About a minute in all."""

import hashlib
import os
import signal
import socket
import threading
import time

import pytest

from conftest import https_get, start_proxy, tls_connect, wait_until
from h1util import read_head, read_response
from proxyutil_ops import (MiB, client_connections, drain_body,
                           pattern_digest, run_wrk, stream_pattern,
                           wrk_result)


def fast_handler(req, conn):
    conn.respond(200, [("Content-Type", "text/plain")], b"ok\n")


@pytest.fixture
def loaded(make_proxy, make_upstream):
    up = make_upstream(handler=fast_handler)
    return start_proxy(make_proxy, up, workers=2), up


def reload_many(p, cert, n=50, pause=0.12):
    """n reloads in a row: some add a site (with a certificate of its
    own), some remove it again, some with an invalid file (refused).
    Returns the replies."""
    good = []
    bad = []
    generation = p.ctl("status")[1]["generation"]
    sites = p.listener["site"]
    for i in range(n):
        if i % 10 == 7:
            p.write_config(p.conf_path.read_text().replace(
                'upstream = "127.0.0.1:', 'upstream = "nonsense', 1))
            rc, reply = p.ctl("reload")
            bad.append((rc, reply))
            p.write_config()
        else:
            if i % 5 == 1:
                sites.append((f"extra{i}.test", {"upstream": "127.0.0.1:9"}))
                sites.append(("own.test", {"upstream": "127.0.0.1:9",
                                           "cert": str(cert[0]),
                                           "key": str(cert[1])}))
            elif i % 5 == 3:
                del sites[2:]
            p.write_config()
            rc, reply = p.ctl("reload")
            generation += 1
            good.append((rc, reply, generation))
        time.sleep(pause)
    return good, bad


def check_reloads(good, bad):
    for rc, reply, generation in good:
        assert rc == 0 and reply == {"status": "ok", "generation": generation,
                                     "workers": 2}, (rc, reply, generation)
    for rc, reply in bad:
        assert rc == 1 and reply["status"] == "error", reply
        assert "nonsense" in reply["message"]


@pytest.mark.parametrize("close", [False, True],
                         ids=["keepalive", "connection-close"])
def test_reloads_under_load(loaded, certs, close):
    p, up = loaded
    headers = ["Host: localhost"] + (["Connection: close"] if close else [])
    wrk = run_wrk(p.https_port, 12, connections=20, headers=headers)
    try:
        time.sleep(1.0)
        good, bad = reload_many(p, certs.get("own.test",
                                             ["own.test"]))
    finally:
        res = wrk_result(wrk)
    assert len(good) == 45 and len(bad) == 5
    check_reloads(good, bad)
    text = res["text"]
    print(text)
    assert res["rc"] == 0 and res["requests"], text
    assert res["requests"] > 2000, text         # real load all along
    assert "Socket errors" not in text, text
    assert "Non-2xx or 3xx responses" not in text, text
    # The live configuration is the last valid one, and it serves.
    rc, st = p.ctl("status")
    assert st["generation"] == good[-1][2]
    assert https_get(p.https_port)[0] == 200


def inflight_handler(req, conn):
    if req.target == "/slow":
        time.sleep(2)
        conn.respond(200, [], b"slow done")
    elif req.target.startswith("/download/"):
        n = int(req.target.rsplit("/", 1)[1])
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
        # About 3 s: 1 MiB every 0.1 s.
        stream_pattern(lambda b: (conn.send(b), time.sleep(0.1)), n,
                       seed=9, piece=MiB)
    else:
        conn.respond(200, [], b"ok")


def test_sigterm_lets_inflight_requests_finish(make_proxy, make_upstream):
    up = make_upstream(handler=inflight_handler)
    p = start_proxy(make_proxy, up, workers=2, **{"shutdown-timeout": 10})
    n = 32 * MiB
    results = {}

    def slow():
        with tls_connect(p.https_port, timeout=15) as s:
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
            results["slow"] = read_response(s)

    def download():
        with tls_connect(p.https_port, timeout=15) as s:
            s.sendall(b"GET /download/%d HTTP/1.1\r\nHost: localhost\r\n\r\n"
                      % n)
            status, _, first = read_head(s)
            h = hashlib.sha256()
            got, early = drain_body(s, first, n, hasher=h)
            results["download"] = (status, got, h.hexdigest())

    threads = [threading.Thread(target=f) for f in (slow, download)]
    for t in threads:
        t.start()
    up.wait_requests(2)
    time.sleep(0.3)
    start = time.monotonic()
    p.send_signal(signal.SIGTERM)
    # Every worker has closed its listeners once it says so.
    p.wait_log(r"draining \(master asked\)", count=2)
    # No new connections while the old ones drain.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p.https_port), timeout=2)
    for t in threads:
        t.join(15)
    assert p.proc.wait(15) == 0
    took = time.monotonic() - start
    status, headers, body = results["slow"]
    assert status == 200 and body == b"slow done"
    # Answered during the drain: the client is told not to reuse it.
    assert [v.lower() for v in headers["connection"]] == ["close"]
    assert results["download"] == (200, n, pattern_digest(n, seed=9))
    assert took < 10, took
    assert "shutdown timeout" not in p.log()


def test_worker_killed_under_load(loaded):
    p, up = loaded
    workers = p.wait_workers(2)
    wrk = run_wrk(p.https_port, 8, connections=20, threads=2)
    try:
        time.sleep(2.5)
        # The worker holding the most client connections is the victim.
        held = client_connections(p.https_port)
        victim = max(workers, key=lambda w: held.get(w, 0))
        assert held.get(victim, 0) > 0, held
        os.kill(victim, signal.SIGKILL)
        # The other worker serves at once, under load.
        start = time.monotonic()
        assert https_get(p.https_port)[0] == 200
        assert time.monotonic() - start < 2
        p.wait_log(rf"worker \d \(pid {victim}\) killed by signal 9")
        wait_until(lambda: len(p.workers()) == 2 and
                   victim not in p.workers(), 10, what="a new worker")
        p.wait_log(r"worker \d started \(pid \d+\)", count=3)
    finally:
        res = wrk_result(wrk)
    text = res["text"]
    print(held, text)
    assert res["requests"] and res["requests"] > 2000, text
    # Only the killed worker's own connections broke.
    assert res["errors"] <= held[victim] + 2, (held, text)
    assert res["non2xx"] == 0, text
    assert p.ctl("status")[1]["workers"] == 2
    for _ in range(4):
        assert https_get(p.https_port)[0] == 200
    rc, reply = p.ctl("reload")
    assert rc == 0 and reply["workers"] == 2


def test_sigterm_with_an_open_tunnel(make_proxy, make_upstream):
    """A WebSocket tunnel does not hold the shutdown past
    shutdown-timeout (2 s): it is closed and the proxy exits 0."""
    from test_streaming import open_ws, ws_handler
    up = make_upstream(handler=ws_handler)
    p = start_proxy(make_proxy, up, workers=1, **{"shutdown-timeout": 2})
    s, _ = open_ws(p)
    with s:
        s.sendall(b"still here")
        assert s.recv(64) == b"still here"
        start = time.monotonic()
        p.send_signal(signal.SIGTERM)
        assert p.proc.wait(10) == 0
        took = time.monotonic() - start
        s.settimeout(3)
        try:
            tail = s.recv(64)
        except OSError:
            tail = b""
    assert tail == b""
    assert took < 4.5, took
