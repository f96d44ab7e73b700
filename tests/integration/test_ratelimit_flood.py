"""The rate-limit table under a flood of distinct clients: many IPv6 /64s
(2001:db8::/32 routed to the loopback interface as local for the test) go
through a table a hundred times smaller.  Memory stays flat, every client
gets its fresh bucket, and the limiter still limits a normal client.

A million clients end to end takes minutes even with resumed TLS sessions
(about 4,500 connections a second on two cores), so this test sends
PORTCULLIS_FLOOD_CLIENTS of them (100,000 by default) through a table of
1,024 entries; tests/unit/ratelimit_test.c sends a million keys through the
same table code in memory."""

import json
import os
import socket
import subprocess

import pytest

from conftest import BUILDDIR, free_port, point_sites_at, tls_connect
from h1util import read_response
from proxyutil_ops import RssSampler

FLOOD = BUILDDIR / "tests/integration/rlflood"
PREFIX = "2001:db8::/32"
CLIENTS = int(os.environ.get("PORTCULLIS_FLOOD_CLIENTS", "100000"))
TABLE = 1024


def ip(*args):
    return subprocess.run(["ip", "-6", "route", *args], capture_output=True,
                          text=True)


@pytest.fixture
def loopback_prefix():
    """2001:db8::/32 is local on lo while the test runs."""
    if ip("show", "table", "local", PREFIX).stdout.strip():
        pytest.fail(f"{PREFIX} is already routed locally: not ours to take")
    r = ip("add", "local", PREFIX, "dev", "lo")
    if r.returncode != 0:
        pytest.skip(f"cannot route {PREFIX} to lo: {r.stderr.strip()}")
    try:
        yield
    finally:
        ip("del", "local", PREFIX, "dev", "lo")


def sanitized(pid):
    """Whether the worker runs under ASan, whose quarantine holds freed
    memory for a while: there the bound is loose, the plain build checks
    the real figure (as the streaming tests do)."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def flood(port, count, first=0, threads=8):
    r = subprocess.run([str(FLOOD), "::1", str(port), str(count),
                        str(threads), "flood.invalid", str(first)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def normal_client(port, n):
    s = tls_connect(port, host="::1")
    try:
        out = []
        for _ in range(n):
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            out.append(read_response(s)[0])
        return out
    finally:
        s.close()


def test_many_clients_leave_memory_flat(make_proxy, upstream, loopback_prefix):
    assert FLOOD.exists(), f"{FLOOD} not built (make check builds it)"
    port = free_port(socket.AF_INET6, "::1")
    p = make_proxy(workers=2, **{"rate-limit": {
        "requests-per-second": 0.01, "burst": 5, "table-size": TABLE}})
    p.settings["logging"]["level"] = "warn"
    p.listener.update({"bind": "::1", "https-port": port, "http-port": 0})
    point_sites_at(p, upstream)
    p.start()
    # Warm up: every worker has touched the whole table and its buffers.
    warm = flood(port, 4 * TABLE, first=1 << 30)
    assert warm["statuses"] == {"404": 4 * TABLE}, warm
    assert normal_client(port, 6) == [200] * 5 + [429]

    # The first half of the clients brings every bounded cache (buffers
    # and logs kept for reuse) to the size this load keeps, in whichever
    # worker; the second half is measured: what grows per client grows
    # there as much as anywhere.
    half = CLIENTS // 2
    before = flood(port, half)
    rss = RssSampler(p)
    result = flood(port, CLIENTS - half, first=half)
    rss.stop()
    print(f"\n{CLIENTS} clients in "
          f"{before['seconds'] + result['seconds']:.1f} s "
          f"({before['resumed'] + result['resumed']} resumed); worker RSS "
          f"growth over the last {CLIENTS - half}: "
          f"{rss.peak_growth() / 1024:.0f} KiB: {rss.describe()}")
    # Every newcomer got a fresh bucket: nobody was refused, nothing failed.
    for r, n in ((before, half), (result, CLIENTS - half)):
        assert r["errors"] == 0, r
        assert r["statuses"] == {"404": n}, r
    # Nothing grows with the number of clients (a 16-byte entry for each
    # of the last 50,000 would be 800 KiB; the table itself is 16 KiB).
    bound = 32 << 20 if sanitized(p.workers()[0]) else 512 << 10
    assert rss.peak_growth() < bound, rss.describe()
    # The normal client's bucket was taken over by newcomers long ago: it
    # starts full again, and the limit holds as before.
    assert normal_client(port, 7) == [200] * 5 + [429, 429]
    assert len([w for w in p.workers()]) == 2
    total = p.ctl("status")[1]["counters"]
    assert total["rate_limited"] == 3, total
