"""Streaming: big bodies both ways in bounded memory, chunked and
close-delimited responses, bodiless responses, event streams that must
not be buffered or cut by the client timers, and WebSocket tunnels.

The two big-body tests move PORTCULLIS_BIG_BYTES (default 1 GiB) through
the proxy and take about as many seconds as the proxy needs for it
(PORTCULLIS_QUICK=1 skips them)."""

import base64
import hashlib
import os
import time

import pytest

from conftest import https_get, start_proxy, tls_connect, tls_exchange
from h1util import read_head, read_response
from proxyutil_ops import (MiB, RssSampler, cpu_seconds, drain_body,
                           pattern_digest, site_settings, slow,
                           stream_pattern, tls_connect_small)
from upstream import Sink

BIG = int(os.environ.get("PORTCULLIS_BIG_BYTES", 1 << 30))
# A worker's memory is bounded by its buffers, never by a body.
RSS_GROWTH_MAX = 64 * MiB


def big_handler(req, conn):
    """GET /big/N: N bytes of pattern(seed 1), sent in 1 MiB pieces."""
    n = int(req.target.rsplit("/", 1)[1])
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
              b"\r\nContent-Length: %d\r\n\r\n" % n)
    stream_pattern(conn.send, n, seed=1)


@slow
def test_big_download_in_bounded_memory(make_proxy, make_upstream):
    up = make_upstream(handler=big_handler)
    # An upstream that sends without pause: 10 s of silence is a stall.
    p = start_proxy(make_proxy, up, workers=2,
                    configure=site_settings(**{"request-timeout": 10}))
    sampler = RssSampler(p)
    start = time.monotonic()
    with tls_connect(p.https_port, timeout=15) as s:
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\n\r\n" % BIG)
        status, headers, first = read_head(s)
        assert status == 200
        assert headers["content-length"] == [str(BIG)]
        h = hashlib.sha256()
        got, early_eof = drain_body(s, first, BIG, hasher=h)
        extra = s.recv(1)
    took = time.monotonic() - start
    time.sleep(0.3)
    sampler.stop()
    assert got == BIG and not early_eof, (got, BIG, f"{took:.1f}s")
    assert extra == b""
    assert h.hexdigest() == pattern_digest(BIG, seed=1)
    assert sampler.samples > 3
    growth = sampler.peak_growth()
    assert growth < RSS_GROWTH_MAX, (growth, sampler.describe())
    print(f"download {BIG} bytes in {took:.1f}s, worker RSS growth "
          f"{growth / MiB:.1f} MiB")


@slow
def test_big_upload_in_bounded_memory(make_proxy, make_upstream):
    sink = Sink()
    up = make_upstream(handler=sink, read_body=False)
    p = start_proxy(make_proxy, up, workers=2, body={"limit-bytes": 0})
    sampler = RssSampler(p)
    start = time.monotonic()
    with tls_connect(p.https_port, timeout=60) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                  % BIG)
        stream_pattern(s.sendall, BIG, seed=2)
        status, headers, body = read_response(s)
    time.sleep(0.3)
    sampler.stop()
    assert status == 200, body
    got, digest = body.decode().split()
    assert int(got) == BIG
    assert digest == pattern_digest(BIG, seed=2)
    assert sink.results == [(BIG, digest)]
    growth = sampler.peak_growth()
    assert growth < RSS_GROWTH_MAX, (growth, sampler.describe())
    print(f"upload {BIG} bytes in {time.monotonic() - start:.1f}s, worker "
          f"RSS growth {growth / MiB:.1f} MiB")


def test_download_resumes_after_the_client_pauses(make_proxy,
                                                  make_upstream):
    """Backpressure both ways: a client that stops reading for a second
    (the proxy's buffers and the sockets fill up), then reads as fast as
    it can, gets the whole body, without a stall."""
    n = 64 * MiB
    up = make_upstream(handler=big_handler)
    p = start_proxy(make_proxy, up,
                    configure=site_settings(**{"request-timeout": 5}))
    with tls_connect_small(p.https_port) as s:
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % n)
        status, _, first = read_head(s)
        assert status == 200
        time.sleep(1.0)
        s.settimeout(3)
        start = time.monotonic()
        got, early_eof = drain_body(s, first, n)
    assert got == n, (f"stalled after {got} of {n} bytes, "
                      f"{time.monotonic() - start:.1f}s", p.log()[-1500:])


def test_download_intact_for_a_stop_and_go_client(make_proxy, make_upstream):
    """A client with a small receive buffer that reads in bursts and
    pauses: the proxy's writes (several TLS records gathered into one
    send) are taken by the socket in part, again and again, and every
    byte still arrives once and in order (a lost or repeated piece of a
    record would fail the TLS layer or the hash)."""
    n = 8 * MiB
    up = make_upstream(handler=big_handler)
    p = start_proxy(make_proxy, up, workers=1)
    pauses = []

    def pace(got):
        if got // (512 * 1024) > len(pauses):
            pauses.append(got)
            time.sleep(0.02)

    with tls_connect_small(p.https_port, rcvbuf=8192) as s:
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % n)
        status, _, first = read_head(s)
        assert status == 200
        h = hashlib.sha256()
        got, early_eof = drain_body(s, first, n, hasher=h, pace=pace)
    assert (got, early_eof) == (n, False), p.log()[-1500:]
    assert h.hexdigest() == pattern_digest(n, seed=1)
    assert len(pauses) >= 10


def test_worker_sleeps_while_the_client_does_not_read(make_proxy,
                                                      make_upstream):
    """While a response waits for a client that does not read, the worker
    waits too: no busy loop on the upstream socket."""
    up = make_upstream(handler=big_handler)
    p = start_proxy(make_proxy, up, workers=1)
    worker = p.wait_workers(1)[0]
    with tls_connect_small(p.https_port) as s:
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  % (64 * MiB))
        assert read_head(s)[0] == 200
        time.sleep(0.5)             # everything backs up
        before = cpu_seconds(worker)
        time.sleep(2.0)
        used = cpu_seconds(worker) - before
    assert used < 0.2, f"the worker used {used:.2f}s of CPU in 2s " \
                       f"waiting for a client that does not read"


def test_upload_resumes_after_the_upstream_pauses(make_proxy,
                                                  make_upstream):
    """The other direction: an upstream that reads nothing for a second
    (the client's sends block), then reads as fast as it can."""
    n = 64 * MiB
    sink = Sink(delay=1.0)
    up = make_upstream(handler=sink, read_body=False)
    p = start_proxy(make_proxy, up, body={"limit-bytes": 0},
                    configure=site_settings(**{"request-timeout": 5}))
    with tls_connect(p.https_port, timeout=10) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Length: %d\r\n\r\n" % n)
        stream_pattern(s.sendall, n, seed=6)
        status, _, body = read_response(s)
    assert status == 200, body
    assert body.decode() == f"{n} {pattern_digest(n, seed=6)}"
    assert sink.results == [(n, pattern_digest(n, seed=6))]


def test_chunked_upload_is_rechunked_exactly(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream)
    n = 3 * MiB + 17
    with tls_connect(p.https_port) as s:
        s.sendall(b"POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding:"
                  b" chunked\r\nConnection: close\r\n\r\n")
        sent = hashlib.sha256()

        def send_chunk(data):
            sent.update(data)
            s.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
        stream_pattern(send_chunk, n, seed=3, piece=100000)
        s.sendall(b"0\r\n\r\n")
        status, _, _ = read_response(s)
    assert status == 200
    req = upstream.requests[0]
    assert len(req.body) == n
    assert hashlib.sha256(req.body).hexdigest() == sent.hexdigest()


# ---- framing of responses ---------------------------------------------------

def framing_handler(req, conn):
    path = req.target
    if path == "/chunked":
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n1;ext=x\r\n \r\n"
                  b"5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n")
    elif path.startswith("/chunked-big/"):
        n = int(path.rsplit("/", 1)[1])
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")

        def chunk(data):
            conn.send(b"%x\r\n" % len(data) + data + b"\r\n")
        stream_pattern(chunk, n, seed=4, piece=70001)
        conn.send(b"0\r\n\r\n")
    elif path.startswith("/close/"):
        n = int(path.rsplit("/", 1)[1])
        conn.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        stream_pattern(conn.send, n, seed=5, piece=50000)
        conn.close()
    elif path == "/head":
        # The answer to HEAD: the length of what GET would send.
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
    elif path == "/head-chunked":
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    elif path == "/204":
        conn.send(b"HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n")
    elif path == "/304":
        conn.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n"
                  b"Content-Length: 50\r\n\r\n")
    else:
        conn.respond(200, [], b"plain")


@pytest.fixture
def framing_proxy(make_proxy, make_upstream):
    up = make_upstream(handler=framing_handler)
    return start_proxy(make_proxy, up), up


def test_chunked_response(framing_proxy):
    p, up = framing_proxy
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET /chunked HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, body = read_response(s)
        assert status == 200 and body == b"hello world"
        assert headers.get("transfer-encoding") == ["chunked"]
        # Framed right: the connection carries a next request.
        s.sendall(b"GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(s)[2] == b"plain"
    assert up.connections == 1


def test_big_chunked_response(framing_proxy):
    p, _ = framing_proxy
    n = 5 * MiB + 3
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET /chunked-big/%d HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  % n)
        status, _, body = read_response(s)
    assert status == 200 and len(body) == n
    assert hashlib.sha256(body).hexdigest() == pattern_digest(n, seed=4)


@pytest.mark.parametrize("n", [0, 11, 3 * MiB + 5])
def test_close_delimited_response_from_http10_upstream(framing_proxy, n):
    """An HTTP/1.1 client gets the body re-framed (chunked) and keeps its
    connection; the upstream connection, ended by the close, is not
    reused."""
    p, up = framing_proxy
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET /close/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % n)
        status, headers, body = read_response(s)
        assert status == 200
        assert "content-length" not in headers
        assert len(body) == n
        assert hashlib.sha256(body).hexdigest() == pattern_digest(n, seed=5)
        s.sendall(b"GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(s)[2] == b"plain"
    assert up.connections == 2


@pytest.mark.parametrize("upstream_framing", ["close", "chunked-big"])
def test_unframed_response_to_http10_client(framing_proxy,
                                            upstream_framing):
    """An HTTP/1.0 client cannot read chunks: a close-delimited or
    chunked upstream body reaches it delimited by the close."""
    p, _ = framing_proxy
    n = MiB + 1
    seed = 5 if upstream_framing == "close" else 4
    data = tls_exchange(p.https_port,
                        b"GET /%s/%d HTTP/1.0\r\nHost: localhost\r\n\r\n"
                        % (upstream_framing.encode(), n))
    head, _, body = data.partition(b"\r\n\r\n")
    # The proxy speaks HTTP/1.1, whatever the client's version.
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"chunked" not in head.lower()
    assert len(body) == n
    assert hashlib.sha256(body).hexdigest() == pattern_digest(n, seed=seed)


def test_pipelined_requests_answered_in_order(framing_proxy):
    p, up = framing_proxy
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET /chunked HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  b"HEAD /head HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  b"GET /204 HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  b"GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(s)[2] == b"hello world"
        assert read_response(s, "HEAD")[0] == 200
        assert read_response(s)[0] == 204
        assert read_response(s)[2] == b"plain"
    assert [r.target for r in up.requests] == ["/chunked", "/head", "/204",
                                               "/other"]



@pytest.mark.parametrize("method,path,status", [
    ("HEAD", "/head", 200), ("HEAD", "/head-chunked", 200),
    ("GET", "/204", 204), ("GET", "/304", 304)])
def test_bodiless_responses(framing_proxy, method, path, status):
    p, up = framing_proxy
    with tls_connect(p.https_port) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  .encode())
        got, headers, body = read_response(s, method)
        assert got == status and body == b""
        if path == "/head":
            assert headers["content-length"] == ["1234"]
        if path == "/204":
            assert "transfer-encoding" not in headers
            assert headers.get("content-length", ["0"]) == ["0"]
        # Nothing stray follows: the next response parses.
        s.sendall(b"GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(s)[2] == b"plain"
    assert up.connections == 1


# ---- event streams and long downloads ---------------------------------------

EVENTS = 10
GAP = 0.5


def trickle_handler(sent):
    """Sends EVENTS small pieces GAP seconds apart, framed by the path:
    /chunked, /length or /close; records when each piece left."""
    def handler(req, conn):
        piece = [f"data: {i:02d}\n\n".encode() for i in range(EVENTS)]
        kind = req.target.strip("/")
        if kind == "chunked":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"
                      b"\r\nCache-Control: no-cache\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
        elif kind == "length":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                      % sum(map(len, piece)))
        else:
            conn.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream"
                      b"\r\n\r\n")
        for i, data in enumerate(piece):
            sent[i] = time.monotonic()
            if kind == "chunked":
                conn.send(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                conn.send(data)
            time.sleep(GAP)
        if kind == "chunked":
            conn.send(b"0\r\n\r\n")
        if kind == "close":
            conn.close()
    return handler


@pytest.mark.parametrize("kind", ["chunked", "length", "close"])
def test_event_stream_is_not_buffered_nor_cut(make_proxy, make_upstream,
                                              kind):
    """Pieces sent every 0.5 s for 5 s, longer than client-timeout and
    idle-timeout (2 s): each reaches the client within a second of being
    sent, and the stream ends complete."""
    sent = {}
    up = make_upstream(handler=trickle_handler(sent))
    p = start_proxy(make_proxy, up, http={"client-timeout": 2,
                                          "idle-timeout": 2,
                                          "header-timeout": 2})
    received = {}
    data = b""
    start = time.monotonic()
    with tls_connect(p.https_port, timeout=5) as s:
        s.sendall(f"GET /{kind} HTTP/1.1\r\nHost: localhost\r\n"
                  f"Accept: text/event-stream\r\n\r\n".encode())
        while len(received) < EVENTS:
            chunk = s.recv(65536)
            assert chunk, f"cut after {time.monotonic() - start:.1f}s: " \
                          f"{data[-300:]!r}"
            now = time.monotonic()
            data += chunk
            for i in range(EVENTS):
                if i not in received and f"data: {i:02d}".encode() in data:
                    received[i] = now
        # The end of the stream.
        s.settimeout(3)
        rest = b""
        if kind == "chunked":
            while not (data + rest).endswith(b"0\r\n\r\n"):
                chunk = s.recv(65536)
                assert chunk, data + rest
                rest += chunk
    assert time.monotonic() - start > EVENTS * GAP - 1
    lag = {i: received[i] - sent[i] for i in range(EVENTS)}
    assert max(lag.values()) < 1.0, lag
    assert [i for i in sorted(received, key=received.get)] == \
        list(range(EVENTS))


# ---- WebSocket --------------------------------------------------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode())
                            .digest()).decode()


def ws_handler(req, conn):
    """/ws: a real 101, a greeting, then every byte echoed back until
    the proxy closes.  /ws-no-upgrade-header and /plain-101: broken
    101s."""
    if req.target == "/ws":
        key = req.one("Sec-WebSocket-Key")
        conn.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
                   "\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
                   f"{ws_accept(key)}\r\n\r\n").encode() + b"hello client")
        if conn.buf:
            conn.send(conn.buf)
        while True:
            try:
                data = conn.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            conn.send(data)
        conn.close()
    elif req.target == "/ws-no-upgrade-header":
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade"
                  b"\r\nSec-WebSocket-Accept: "
                  + ws_accept(req.one("Sec-WebSocket-Key")).encode()
                  + b"\r\n\r\n")
        conn.close()
    elif req.target == "/plain-101":
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
                  b"\r\nConnection: Upgrade\r\n\r\n")
        conn.close()
    else:
        conn.respond(200, [], b"plain")


def ws_request(path="/ws", key="dGhlIHNhbXBsZSBub25jZQ=="):
    return (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket"
            f"\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode()


@pytest.fixture
def ws_proxy(make_proxy, make_upstream):
    up = make_upstream(handler=ws_handler)
    return start_proxy(make_proxy, up, http={"tunnel-idle-timeout": 2}), up


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(min(65536, n - len(data)))
        assert chunk, f"closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def open_ws(p):
    s = tls_connect(p.https_port, timeout=10)
    s.sendall(ws_request())
    status, headers, rest = read_head(s)
    assert status == 101, (status, headers)
    assert headers["upgrade"] == ["websocket"]
    assert [v.lower() for v in headers["connection"]] == ["upgrade"]
    assert headers["sec-websocket-accept"] == \
        [ws_accept("dGhlIHNhbXBsZSBub25jZQ==")]
    assert "content-length" not in headers
    assert "transfer-encoding" not in headers
    greeting = rest
    if len(greeting) < len(b"hello client"):
        greeting += recv_exact(s, len(b"hello client") - len(rest))
    assert greeting.startswith(b"hello client")
    return s, greeting[len(b"hello client"):]


def test_websocket_tunnel_both_ways(ws_proxy):
    p, up = ws_proxy
    s, extra = open_ws(p)
    assert extra == b""
    try:
        req = up.requests[0]
        assert req.one("Upgrade").lower() == "websocket"
        assert "upgrade" in req.one("Connection").lower()
        assert req.one("Sec-WebSocket-Key") == "dGhlIHNhbXBsZSBub25jZQ=="
        assert req.one("Sec-WebSocket-Version") == "13"
        # Arbitrary bytes, not HTTP: small, binary, and 1 MiB in 64 KiB
        # pieces, each echoed before the next goes (one thread per SSL
        # socket: OpenSSL does not allow a concurrent read and write).
        for msg in (b"\x81\x05hello", bytes(range(256)) * 3):
            s.sendall(msg)
            assert recv_exact(s, len(msg)) == msg
        big = os.urandom(MiB)
        echoed = b""
        for off in range(0, MiB, 65536):
            s.sendall(big[off:off + 65536])
            echoed += recv_exact(s, 65536)
        assert echoed == big
    finally:
        s.close()
    # The client's close reaches the upstream: its echo loop ends.
    time.sleep(0.5)
    assert not any(t.is_alive() for t in up.threads)


def test_websocket_bytes_sent_before_the_101(ws_proxy):
    """Bytes the client sends right behind its upgrade request (before
    the 101 came back) reach the upstream once the tunnel is up."""
    p, up = ws_proxy
    with tls_connect(p.https_port, timeout=10) as s:
        s.sendall(ws_request() + b"early bytes")
        status, headers, rest = read_head(s)
        assert status == 101
        want = b"hello client" + b"early bytes"
        got = rest + recv_exact(s, len(want) - len(rest))
        assert got == want
        s.sendall(b"later")
        assert recv_exact(s, 5) == b"later"


def test_websocket_upstream_close_reaches_client(make_proxy, make_upstream):
    def handler(req, conn):
        conn.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
                   "\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
                   f"{ws_accept(req.one('Sec-WebSocket-Key'))}\r\n\r\n")
                  .encode() + b"hello client" + b"bye" * 1000)
        conn.close()
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up, http={"client-timeout": 30})
    s, extra = open_ws(p)
    with s:
        s.settimeout(5)
        assert extra + recv_exact(s, 3000 - len(extra)) == b"bye" * 1000
        # The upstream's close ends the client's connection at once (not
        # after some timer).
        start = time.monotonic()
        try:
            tail = s.recv(10)
        except TimeoutError:
            tail = None
        assert tail == b"", \
            f"no close {time.monotonic() - start:.1f}s after the upstream's"


def test_websocket_tunnel_idle_timeout(ws_proxy):
    """tunnel-idle-timeout = 2: traffic every 0.5 s for 3 s keeps the
    tunnel; then 2 s of silence closes it."""
    p, _ = ws_proxy
    s, extra = open_ws(p)
    assert extra == b""
    with s:
        for i in range(7):
            if i:
                time.sleep(0.5)
            s.sendall(b"ping%d" % i)
            assert recv_exact(s, 5) == b"ping%d" % i
        # Measured from the last byte through the tunnel, which is where
        # the proxy's idle timer starts: about 2 s, never much less.
        quiet = time.monotonic()
        s.settimeout(8)
        try:
            tail = s.recv(10)
        except (ConnectionResetError, OSError):
            tail = b""
        closed_after = time.monotonic() - quiet
    assert tail == b""
    assert 1.5 < closed_after < 4.0, closed_after


@pytest.mark.parametrize("request_bytes", [
    ws_request("/ws-no-upgrade-header"),
    # A request that did not ask to upgrade, answered with a 101.
    b"GET /plain-101 HTTP/1.1\r\nHost: localhost\r\n\r\n",
], ids=["101-without-upgrade-header", "101-without-upgrade-request"])
def test_unexpected_101_is_502(ws_proxy, request_bytes):
    p, up = ws_proxy
    with tls_connect(p.https_port) as s:
        s.sendall(request_bytes)
        status, headers, body = read_response(s)
        assert status == 502, (status, headers, body)
    status, _, body, _ = https_get(p.https_port, "/other")
    assert status == 200 and body == b"plain"
