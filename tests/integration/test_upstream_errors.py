"""Upstream errors: refused and timed-out connects, silent and vanishing
upstreams, malformed responses (502, and that connection is thrown away),
the keep-alive pool, responses broken half-way, and error bodies that say
nothing about the proxy's internals."""

import errno
import os
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (SLOWDOWN, free_port, https_get, start_proxy,
                      tls_connect)
from h1util import parse_responses, read_response
from proxyutil_http import read_until_close
from proxyutil_ops import site_settings


def good_or(bad_bytes, close_after_bad=False):
    """A handler: /bad gets bad_bytes (and the connection is left open
    unless close_after_bad), anything else a normal 200 "ok"."""
    def handler(req, conn):
        if req.target == "/bad":
            conn.send(bad_bytes)
            if close_after_bad:
                conn.close()
        else:
            conn.respond(200, [], b"ok")
    return handler


def assert_no_internals(p, up_port, status, headers, body):
    """An error answer names no address, port or system error."""
    text = body.decode("latin-1") + "\n" + "\n".join(
        f"{k}: {v}" for k, vs in headers.items() for v in vs)
    for leak in ("127.0.0.1", str(up_port), os.strerror(errno.ECONNREFUSED),
                 os.strerror(errno.ETIMEDOUT), os.strerror(errno.ECONNRESET),
                 "errno", "timed out", "portcullis", ".c:", "site "):
        assert leak not in text, (leak, text)
    assert body.strip() in (f"{status} Bad Gateway".encode(),
                            f"{status} Gateway Timeout".encode()), body


# ---- connecting -------------------------------------------------------------

def test_connect_refused_is_502(make_proxy):
    port = free_port()                  # nobody listens there
    p = start_proxy(make_proxy, configure=site_settings(
        upstream=f"127.0.0.1:{port}"))
    start = time.monotonic()
    status, headers, body, _ = https_get(p.https_port)
    assert status == 502
    assert time.monotonic() - start < 2
    assert_no_internals(p, port, status, headers, body)
    p.wait_log(r"upstream 127\.0\.0\.1:%d .*Connection refused" % port)


@pytest.fixture
def blackhole():
    """A listening socket that never accepts, whose accept queue is
    already full: further SYNs are dropped, so a connect hangs."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    addr = s.getsockname()
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(addr)
        fillers.append(c)
    time.sleep(0.2)
    # The simulation works: one more connect does hang.
    probe = socket.socket()
    probe.settimeout(0.5)
    with pytest.raises(socket.timeout):
        probe.connect(addr)
    probe.close()
    yield addr[1]
    for c in fillers:
        c.close()
    s.close()


def test_connect_timeout_is_504(make_proxy, blackhole):
    p = start_proxy(make_proxy, configure=site_settings(**{
        "upstream": f"127.0.0.1:{blackhole}", "connect-timeout": 1}))
    start = time.monotonic()
    status, headers, body, _ = https_get(p.https_port)
    took = time.monotonic() - start
    assert status == 504, body
    assert 0.8 < took < 3.0, took
    assert_no_internals(p, blackhole, status, headers, body)
    p.wait_log(r"connect timed out after 1s")


def test_request_timeout_is_504(make_proxy, make_upstream):
    def silent(req, conn):
        time.sleep(4)               # reads the request, never answers
        conn.close()
    up = make_upstream(handler=silent)
    p = start_proxy(make_proxy, up,
                    configure=site_settings(**{"request-timeout": 1}))
    start = time.monotonic()
    status, headers, body, _ = https_get(p.https_port)
    took = time.monotonic() - start
    assert status == 504, body
    assert 0.8 < took < 3.0, took
    assert len(up.requests) == 1
    assert_no_internals(p, up.port, status, headers, body)


@pytest.mark.parametrize("sent", [b"", b"HTTP/1.1 200 OK\r\nContent-Le"],
                         ids=["nothing", "half-a-head"])
def test_upstream_closing_before_answering_is_502(make_proxy, make_upstream,
                                                  sent):
    def vanish(req, conn):
        conn.send(sent)
        conn.close()
    up = make_upstream(handler=vanish)
    p = start_proxy(make_proxy, up)
    status, headers, body, _ = https_get(p.https_port)
    assert status == 502, body
    assert_no_internals(p, up.port, status, headers, body)


def test_upstream_reset_before_answering_is_502(make_proxy, make_upstream):
    def reset(req, conn):
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
    up = make_upstream(handler=reset)
    p = start_proxy(make_proxy, up)
    status, headers, body, _ = https_get(p.https_port)
    assert status == 502, body
    assert_no_internals(p, up.port, status, headers, body)


# ---- malformed responses ----------------------------------------------------

MALFORMED = {
    "te-and-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "unknown-te": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: zstd-x\r\n\r\n"
                  b"hello",
    "chunked-not-last": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, "
                        b"gzip\r\n\r\nhello",
    "two-content-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                           b"Content-Length: 6\r\n\r\nhello!",
    "content-length-list": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n"
                           b"\r\nhello",
    "content-length-sign": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"
                           b"hello",
    "status-four-digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "status-no-space": b"HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n",
    "status-version": b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-garbage": b"200 OK\r\nContent-Length: 0\r\n\r\n",
    "header-space-in-name": b"HTTP/1.1 200 OK\r\nBad Name: x\r\n"
                            b"Content-Length: 0\r\n\r\n",
    "header-space-before-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 0"
                                 b"\r\n\r\n",
    "header-no-colon": b"HTTP/1.1 200 OK\r\nNoColonHere\r\n"
                       b"Content-Length: 0\r\n\r\n",
    "header-obs-fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n"
                       b"Content-Length: 0\r\n\r\n",
    "header-bare-lf": b"HTTP/1.1 200 OK\nX-A: a\r\nContent-Length: 0\r\n\r\n",
    "header-nul": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n"
                  b"Content-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_response_is_502_and_connection_dropped(
        make_proxy, make_upstream, name):
    up = make_upstream(handler=good_or(MALFORMED[name]))
    p = start_proxy(make_proxy, up, workers=1)
    status, _, body, _ = https_get(p.https_port, "/good")
    assert status == 200 and up.connections == 1
    status, headers, body, _ = https_get(p.https_port, "/bad")
    assert status == 502, (name, body)
    assert_no_internals(p, up.port, status, headers, body)
    # The upstream kept its side open; the proxy must not use it again.
    status, _, body, _ = https_get(p.https_port, "/good")
    assert status == 200 and body == b"ok"
    assert up.connections == 2, name
    p.wait_log(r"upstream 127\.0\.0\.1:\d+ \(site localhost\): ")


def test_response_head_over_16k_is_502(make_proxy, make_upstream):
    huge = (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 17000 + b"\r\n"
            b"Content-Length: 0\r\n\r\n")
    up = make_upstream(handler=good_or(huge))
    p = start_proxy(make_proxy, up, workers=1)
    status, headers, body, _ = https_get(p.https_port, "/bad")
    assert status == 502, body
    assert_no_internals(p, up.port, status, headers, body)
    p.wait_log(r"response head larger than \d+ bytes")
    status, _, body, _ = https_get(p.https_port, "/good")
    assert status == 200 and up.connections == 2


def test_response_head_just_under_the_limit_passes(make_proxy,
                                                   make_upstream):
    """The control for the test above: a 15 KiB head is fine."""
    head = (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * (15 * 1024)
            + b"\r\nContent-Length: 2\r\n\r\nok")
    up = make_upstream(handler=good_or(head))
    p = start_proxy(make_proxy, up, workers=1)
    status, headers, body, _ = https_get(p.https_port, "/bad")
    assert status == 200 and body == b"ok"
    assert len(headers["x-big"][0]) == 15 * 1024


# ---- the keep-alive pool ----------------------------------------------------

def test_keepalive_reuses_one_upstream_connection(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, workers=1)
    for _ in range(3):
        assert https_get(p.https_port)[0] == 200
    # And several requests on one client connection.
    with tls_connect(p.https_port) as s:
        for _ in range(3):
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert read_response(s)[0] == 200
    assert len(upstream.requests) == 6
    assert upstream.connections == 1


def test_upstream_keepalive_0_opens_a_connection_per_request(make_proxy,
                                                              upstream):
    p = start_proxy(make_proxy, upstream, workers=1,
                    configure=site_settings(**{"upstream-keepalive": 0}))
    for _ in range(3):
        assert https_get(p.https_port)[0] == 200
    assert len(upstream.requests) == 3 and upstream.connections == 3


def test_upstream_keepalive_bounds_the_idle_pool(make_proxy, make_upstream):
    """upstream-keepalive = 2: four requests at once need four upstream
    connections; two stay idle after them, so the next four at once open
    two more (the fixed pool of 256 kept all four: 4 in all)."""
    barrier = threading.Barrier(4, timeout=10 * SLOWDOWN)

    def handler(req, conn):
        barrier.wait()          # all four in flight at once
        conn.respond(200, [], b"ok")
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up, workers=1,
                    configure=site_settings(**{"upstream-keepalive": 2}))

    def four_at_once():
        with ThreadPoolExecutor(4) as ex:
            got = list(ex.map(lambda _: https_get(p.https_port)[0],
                              range(4)))
        assert got == [200] * 4
    four_at_once()
    assert up.connections == 4
    four_at_once()
    assert up.connections == 6
    assert len(up.requests) == 8


def test_upstream_keepalive_timeout(make_proxy, upstream):
    """An idle upstream connection is not reused past
    upstream-keepalive-timeout (checked when one is taken, not only by
    the sweep every few seconds)."""
    p = start_proxy(make_proxy, upstream, workers=1,
                    configure=site_settings(
                        **{"upstream-keepalive-timeout": 1}))
    assert https_get(p.https_port)[0] == 200
    assert https_get(p.https_port)[0] == 200
    assert upstream.connections == 1
    time.sleep(1.5)
    assert https_get(p.https_port)[0] == 200
    assert upstream.connections == 2


def test_shared_upstream_keeps_each_connection_by_its_sites_timeout(
        make_proxy, make_upstream):
    """Two sites on one upstream address: a connection is kept for the
    timeout of the site that gave it back, whatever the other site gave
    back since (the last put's timeout used to apply to all)."""
    pair = threading.Barrier(2, timeout=10 * SLOWDOWN)

    def handler(req, conn):
        if req.target == "/pair":
            pair.wait()         # two in flight at once
        conn.respond(200, [], b"ok")
    up = make_upstream(handler=handler)

    def configure(p):
        for name, site in p.listener["site"]:
            site["upstream-keepalive-timeout"] = \
                1 if name == "localhost" else 3600
    p = start_proxy(make_proxy, up, workers=1, configure=configure)

    def get(path, host):
        return https_get(p.https_port, path, host=host)[0]

    def two_at_once(host):
        with ThreadPoolExecutor(2) as ex:
            assert list(ex.map(lambda _: get("/pair", host), range(2))) \
                == [200, 200]
    two_at_once("localhost")            # two idle, 1 s each
    assert up.connections == 2
    assert get("/", "a.example.test") == 200    # one back for 3600 s
    assert up.connections == 2
    time.sleep(1.5)
    two_at_once("a.example.test")       # the 1 s one is gone: one new
    assert up.connections == 3


def test_keepalive_turned_off_by_a_reload_drops_the_pool(make_proxy,
                                                         upstream):
    p = start_proxy(make_proxy, upstream, workers=1)
    assert https_get(p.https_port)[0] == 200
    assert https_get(p.https_port)[0] == 200
    assert upstream.connections == 1
    for _, site in p.listener["site"]:
        site["upstream-keepalive"] = 0
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    for i in range(2):
        assert https_get(p.https_port)[0] == 200
        assert upstream.connections == 2 + i


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
], ids=["connection-close", "http10"])
def test_connection_close_answer_is_not_reused(make_proxy, make_upstream,
                                               answer):
    # The upstream keeps its side open: only the proxy can decide.
    def handler(req, conn):
        conn.send(answer)
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up, workers=1)
    for i in range(3):
        status, _, body, _ = https_get(p.https_port)
        assert status == 200 and body == b"ok"
    assert up.connections == 3


def test_upstream_closing_idle_connections_is_harmless(make_proxy,
                                                       make_upstream):
    """An upstream that closes every connection right after answering
    (without saying so): the next request must not see a 502."""
    def handler(req, conn):
        conn.respond(200, [], b"ok")
        conn.close()
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up, workers=1)
    for i in range(30):
        status, _, body, _ = https_get(p.https_port)
        assert status == 200, (i, body)


@pytest.mark.parametrize("then", ["close", "stall"])
def test_short_body_cuts_the_response(make_proxy, make_upstream, then):
    """Content-Length 100, 10 bytes, then the upstream closes (or stops,
    request-timeout 1): the client gets the head and the 10 bytes, then
    its connection closes; that upstream connection is never reused."""
    def handler(req, conn):
        if req.target == "/short":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                      + b"0123456789")
            if then == "close":
                conn.close()
            else:
                time.sleep(3)
        else:
            conn.respond(200, [], b"ok")
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up, workers=1,
                    configure=site_settings(**{"request-timeout": 1}))
    start = time.monotonic()
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET /short HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data, closed = read_until_close(s, 5.0)
    assert closed, data
    assert time.monotonic() - start < 4
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: 100" in head
    assert body == b"0123456789"
    status, _, body, _ = https_get(p.https_port, "/next")
    assert status == 200 and body == b"ok"
    assert up.connections == 2


def test_broken_chunked_body_cuts_the_response(make_proxy, make_upstream):
    def handler(req, conn):
        if req.target == "/bad":
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\nzz\r\nmore\r\n")
        else:
            conn.respond(200, [], b"ok")
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up, workers=1)
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET /bad HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data, closed = read_until_close(s, 5.0)
    assert closed, data
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    # The client never sees the end of a chunked body it did not get.
    assert not body.endswith(b"0\r\n\r\n"), body
    assert b"hello" in body
    status, _, body, _ = https_get(p.https_port, "/next")
    assert status == 200 and up.connections == 2


def test_error_on_keepalive_client_connection_keeps_it(make_proxy,
                                                       make_upstream):
    """A 502 is an answer like any other: the client's connection goes
    on to the next request."""
    up = make_upstream(handler=good_or(MALFORMED["te-and-cl"]))
    p = start_proxy(make_proxy, up, workers=1)
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET /bad HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(s)[0] == 502
        s.sendall(b"GET /good HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, _, body = read_response(s)
        assert status == 200 and body == b"ok"


def test_interim_responses_before_the_final_one(make_proxy, make_upstream):
    """1xx answers ahead of the final response never confuse the framing
    of what the client gets, and the connection stays reusable."""
    def handler(req, conn):
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n"
                  b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload"
                  b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up, workers=1)
    with tls_connect(p.https_port) as s:
        for _ in range(2):
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status, headers, body = read_response(s)
            while 100 <= status < 200:
                status, headers, body = read_response(s)
            assert status == 200 and body == b"ok"
    assert up.connections == 1


def test_early_answer_during_an_upload(make_proxy, make_upstream):
    """The upstream answers 403 before the body is in: the client gets
    the 403, and then the connection ends (the rest of its body cannot be
    told from a next request)."""
    def refuse(req, conn):
        # As soon as the head is in; then the body is read and dropped.
        conn.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\n"
                  b"denied")
        conn.drain()
        conn.close()
    up = make_upstream(handler=refuse, read_body=False)
    p = start_proxy(make_proxy, up, workers=1)
    n = 8 * (1 << 20)
    with tls_connect(p.https_port, timeout=10) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Length: %d\r\n\r\n" % n + b"x" * 65536)
        status, headers, body = read_response(s)
        assert status == 403 and body == b"denied"
        # Announced, as the connection will not carry another request.
        assert headers.get("connection") == ["close"], headers
        # Whatever the client still sends, the connection ends.
        start = time.monotonic()
        closed = False
        s.settimeout(1)
        while time.monotonic() - start < 8 and not closed:
            try:
                s.sendall(b"x" * 65536)
                if s.recv(1) == b"":
                    closed = True
            except socket.timeout:
                continue
            except (OSError, ConnectionError):
                closed = True
        assert closed, "the connection stayed open"
    assert len(up.requests) == 1


def test_upstream_vanishing_during_an_upload(make_proxy, make_upstream):
    """The upstream takes the head, then resets the connection while the
    body is still coming: the client gets a 502 at once, then the close,
    and the proxy goes on serving.  The client sends until the answer is
    there, then reads it: a client still sending long after it would be
    cut once the proxy's lingering close is over, as with any server."""
    def vanish(req, conn):
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
    up = make_upstream(handler=vanish, read_body=False)
    p = start_proxy(make_proxy, up, workers=1)
    n = 64 * (1 << 20)
    start = time.monotonic()
    with tls_connect(p.https_port, timeout=10) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Length: %d\r\n\r\n" % n)
        sent = 0
        while sent < n and not select.select([s], [], [], 0)[0]:
            s.sendall(b"y" * 65536)
            sent += 65536
        data, closed = read_until_close(s, 5.0)
    assert sent < n, "the body went through: no upstream error to see"
    assert time.monotonic() - start < 8 * SLOWDOWN
    rs = parse_responses(data)
    assert [r.status for r in rs] == [502] and rs[0].complete, data[:200]
    assert closed, data[:200]
    up.stop()
    p.wait_log(r"upstream 127\.0\.0\.1:\d+ \(site localhost\): ")
    assert https_get(p.https_port)[0] == 502    # still nobody there
    assert p.proc.poll() is None and len(p.workers()) == 1
