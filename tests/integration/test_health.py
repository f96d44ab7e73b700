"""The health endpoint: GET /health on 127.0.0.1:health-check-port."""

import socket
import time

import pytest

from conftest import free_port, http_get, status_of, wait_until


def test_get_health(proxy):
    reply = http_get(proxy.health_port)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 0" in head
    assert body == b""


def test_head_health(proxy):
    raw = b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert status_of(http_get(proxy.health_port, raw=raw)) == 200


def test_other_paths_and_methods(proxy):
    assert status_of(http_get(proxy.health_port, "/")) == 404
    assert status_of(http_get(proxy.health_port, "/health/x")) == 404
    assert status_of(http_get(proxy.health_port, "/health?x=1")) == 404
    raw = (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
           b"\r\n")
    assert status_of(http_get(proxy.health_port, raw=raw)) == 405
    raw = (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           b"\r\nhello")
    assert status_of(http_get(proxy.health_port, raw=raw)) == 413


def test_only_on_loopback(proxy):
    """The health port is bound to 127.0.0.1 only."""
    addrs = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip, port = local.split(":")
        if int(port, 16) == proxy.health_port and state == "0A":
            addrs.append(ip)
    assert addrs == ["0100007F"]


MALFORMED = [
    (b"GET /health HTTP/1.1\nHost: x\n\n", 400),            # bare LF
    (b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400),     # space before :
    (b"GET /health HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\n\r\n", 400),                  # no Host
    (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET  /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"G\x00T /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 5000 + b"\r\n\r\n",
     431),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),  # TLS hello
]


@pytest.mark.parametrize("raw,status", MALFORMED,
                         ids=[f"case{i}" for i in range(len(MALFORMED))])
def test_malformed_requests_get_status_and_close(proxy, raw, status):
    reply = http_get(proxy.health_port, raw=raw)
    assert status_of(reply) == status, reply[:200]
    assert b"Connection: close" in reply
    # The server closed: http_get read to EOF.  Still serving others:
    assert status_of(http_get(proxy.health_port)) == 200


def test_keep_alive_and_pipelining(proxy):
    req = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", proxy.health_port),
                                  timeout=5) as s:
        # Three pipelined requests in one write, the last one closing.
        s.sendall(req + req + req.replace(b"\r\n\r\n",
                                          b"\r\nConnection: close\r\n\r\n"))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3


def test_keep_alive_byte_by_byte(proxy):
    req = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", proxy.health_port),
                                  timeout=5) as s:
        for _ in range(2):
            for b in req:
                s.sendall(bytes([b]))
            data = s.recv(4096)
            assert data.startswith(b"HTTP/1.1 200 OK")


def test_http10_closes(proxy):
    reply = http_get(proxy.health_port,
                     raw=b"GET /health HTTP/1.0\r\n\r\n")
    assert status_of(reply) == 200
    assert b"Connection: close" in reply


def test_idle_connection_is_closed(proxy):
    """A client that sends nothing is cut after the timeout (10s)."""
    with socket.create_connection(("127.0.0.1", proxy.health_port),
                                  timeout=20) as s:
        start = time.monotonic()
        assert s.recv(10) == b""
        assert 8 < time.monotonic() - start < 15


def test_disabled_with_port_zero(make_proxy):
    p = make_proxy(**{"health-check-port": 0}).start()
    rc, st = p.ctl("status")
    assert rc == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", p.health_port), timeout=2)


def test_many_concurrent_clients(proxy):
    socks = [socket.create_connection(("127.0.0.1", proxy.health_port),
                                      timeout=5) for _ in range(200)]
    try:
        for s in socks:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in socks:
            assert s.recv(4096).startswith(b"HTTP/1.1 200 OK")
    finally:
        for s in socks:
            s.close()
