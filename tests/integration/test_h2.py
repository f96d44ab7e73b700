"""HTTP/2 from clients: ALPN, translation to HTTP/1.1 upstream requests,
routing and policy as for HTTP/1.1, flow control, resets, shutdown.

Real clients (curl --http2, nghttp, h2load) and python3-h2 for what they
cannot do; real upstreams (upstream.py) that record every byte."""

import json
import re
import subprocess

import pytest

from conftest import start_proxy, tls_connect, tls_context
from h2util import H2Client, h2_get


def curl(port, path="/", *args, host="localhost"):
    out = subprocess.run(
        ["curl", "-sS", "-k", "--http2", "-o", "-", "-w",
         "\n%{http_version} %{http_code}",
         "--resolve", f"{host}:{port}:127.0.0.1", *args,
         f"https://{host}:{port}{path}"],
        capture_output=True, timeout=30)
    body, _, tail = out.stdout.rpartition(b"\n")
    return out.returncode, body, tail.decode(), out.stderr.decode()


@pytest.fixture
def h2proxy(make_proxy, upstream):
    return start_proxy(make_proxy, upstream), upstream


def test_alpn_prefers_h2(h2proxy):
    p, _ = h2proxy
    s = tls_connect(p.https_port, ctx=tls_context(alpn=("http/1.1", "h2")))
    assert s.selected_alpn_protocol() == "h2"
    s.close()
    s = tls_connect(p.https_port, ctx=tls_context(alpn=("http/1.1",)))
    assert s.selected_alpn_protocol() == "http/1.1"
    s.close()


def test_alpn_without_h2_when_disabled(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, http={"http2": False})
    s = tls_connect(p.https_port, ctx=tls_context(alpn=("h2", "http/1.1")))
    assert s.selected_alpn_protocol() == "http/1.1"
    s.close()


def test_curl_http2_get(h2proxy):
    p, up = h2proxy
    rc, body, tail, err = curl(p.https_port, "/hello?x=1")
    assert rc == 0, err
    assert tail == "2 200"
    seen = json.loads(body)
    assert seen["method"] == "GET" and seen["target"] == "/hello?x=1"
    assert seen["version"] == "HTTP/1.1"
    p.wait_log(r'ACCESS .*path=/hello\?x=1 protocol=h2 status=200')


def test_translated_request_as_upstream_sees_it(h2proxy):
    p, up = h2proxy
    r = h2_get(p.https_port, "/a/b?c=d", headers=[
        ("cookie", "a=1"), ("x-custom", "v 1"), ("cookie", "b=2"),
        ("host", "ignored.example.test"), ("x-forwarded-for", "6.6.6.6"),
        ("te", "trailers"), ("accept", "*/*")], validate=False)
    assert r.status == 200
    req = up.requests[-1]
    assert req.method == "GET" and req.target == "/a/b?c=d"
    # :authority wins over host; one Host, ours.
    assert req.header("Host") == ["localhost"]
    assert req.header("cookie") == ["a=1; b=2"]
    assert req.header("x-custom") == ["v 1"]
    assert req.header("X-Forwarded-For") == ["127.0.0.1"]
    assert req.header("X-Real-IP") == ["127.0.0.1"]
    assert req.header("X-Forwarded-Proto") == ["https"]
    assert req.header("te") == []
    # No body: no framing fields at all.
    assert req.header("Content-Length") == []
    assert req.header("Transfer-Encoding") == []
    # The raw head is exactly what a strict HTTP/1.1 server expects.
    assert req.raw.startswith(b"GET /a/b?c=d HTTP/1.1\r\nHost: localhost\r\n")


def test_post_body_with_and_without_length(h2proxy):
    p, up = h2proxy
    body = bytes(range(256)) * 1000
    with H2Client(p.https_port) as c:
        sid = c.request("POST", "/up", headers=[
            ("content-length", str(len(body)))], body=body)
        r = c.response(sid)
        assert r.status == 200
        req = up.requests[-1]
        assert req.header("Content-Length") == [str(len(body))]
        assert req.body == body
        sid = c.request("PUT", "/chunked", body=body)
        r = c.response(sid)
        assert r.status == 200
        req = up.requests[-1]
        assert req.header("Transfer-Encoding") == ["chunked"]
        assert req.body == body


def test_large_heads_up_to_the_limit(make_proxy, upstream):
    """A 60 KiB field under max-header-size = 65536 reaches the upstream,
    with and without a body: the re-parse check and the upstream buffer
    hold any head the limit lets in."""
    p = start_proxy(make_proxy, upstream,
                    http={"max-header-size": 65536,
                          "max-request-line": 65536})
    big = "x" * 60000
    body = bytes(range(256)) * 300
    with H2Client(p.https_port) as c:
        sid = c.request("GET", "/big", headers=[("x-big", big)])
        r = c.response(sid)
        assert r.status == 200
        assert up_last(upstream).header("x-big") == [big]
        sid = c.request("POST", "/big", headers=[
            ("x-big", big), ("content-length", str(len(body)))], body=body)
        r = c.response(sid)
        assert r.status == 200
        req = up_last(upstream)
        assert req.header("x-big") == [big] and req.body == body


def up_last(upstream):
    return upstream.requests[-1]


def test_many_streams_on_one_connection(h2proxy):
    p, up = h2proxy
    with H2Client(p.https_port) as c:
        sids = [c.request("GET", f"/s{i}") for i in range(50)]
        for i, sid in enumerate(sids):
            r = c.response(sid)
            assert r.status == 200
            assert json.loads(r.body)["target"] == f"/s{i}"


def test_response_headers_lose_connection_fields(make_proxy, make_upstream):
    def handler(req, conn):
        conn.send(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\n"
                  b"Keep-Alive: timeout=5\r\nX-Hop: secret\r\n"
                  b"X-Kept: yes\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n")
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up)
    r = h2_get(p.https_port, "/")
    assert r.status == 200 and r.body == b"hello"
    names = [n for n, _ in r.headers]
    for gone in ("connection", "keep-alive", "x-hop", "transfer-encoding"):
        assert gone not in names
    assert r.header("x-kept") == ["yes"]
    assert r.header("set-cookie") == ["a=1", "b=2"]


def test_head_and_304_have_no_body(make_proxy, make_upstream):
    def handler(req, conn):
        if req.target == "/304":
            conn.send(b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n")
        else:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
                      + (b"" if req.method == "HEAD" else b"0123456789"))
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up)
    with H2Client(p.https_port) as c:
        r = c.response(c.request("HEAD", "/"))
        assert r.status == 200 and r.body == b""
        assert r.header("content-length") == ["10"]
        r = c.response(c.request("GET", "/304"))
        assert r.status == 304 and r.body == b""
        r = c.response(c.request("GET", "/"))
        assert r.body == b"0123456789"


def test_unknown_host_404_and_misdirected_421(make_proxy, upstream, certs):
    def configure(p):
        cert, key = certs.get("other.test")
        p.listener["site"].append(("other.test", {
            "upstream": upstream.addr, "cert": str(cert), "key": str(key)}))
    p = start_proxy(make_proxy, upstream, configure=configure)
    with H2Client(p.https_port) as c:
        r = c.response(c.request("GET", "/", authority="nowhere.invalid"))
        assert r.status == 404
        # Same certificate: served on this connection.
        r = c.response(c.request("GET", "/", authority="a.example.test"))
        assert r.status == 200
        # Another certificate: the client must open a new connection.
        r = c.response(c.request("GET", "/", authority="other.test"))
        assert r.status == 421
        # The connection stays usable.
        r = c.response(c.request("GET", "/"))
        assert r.status == 200
    assert all(req.header("Host") != ["other.test"] for req in up_reqs(upstream))


def up_reqs(up):
    return list(up.requests)


def test_body_limit_413(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, body={"limit-bytes": 1000})
    with H2Client(p.https_port) as c:
        sid = c.request("POST", "/", headers=[("content-length", "2000")],
                        body=b"x" * 2000)
        assert c.response(sid).status == 413
        # Without a length: refused when it grows past the limit (413:
        # the upstream, waiting for the whole body, has not answered).
        sid = c.request("POST", "/chunked", body=b"y" * 5000)
        r = c.response(sid)
        assert (r.status, r.reset) == (413, None), (r.headers, r.reset)
        r = c.response(c.request("GET", "/after"))
        assert r.status == 200
    assert [q.target for q in upstream.requests] == ["/after"]


# Malformed requests (RFC 9113 8.1.1): nghttp2 itself resets the stream
# with PROTOCOL_ERROR for what it checks; what it lets through, the
# proxy's own checks answer with a 400.
RESET = "RST_STREAM PROTOCOL_ERROR"


@pytest.mark.parametrize("headers,why,answer", [
    ([(":method", "GET"), (":scheme", "https"), (":path", "/")],
     "no authority or host", RESET),
    ([(":method", "GET"), (":scheme", "http"), (":authority", "localhost"),
      (":path", "/")], "scheme http on TLS", 400),
    ([(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
      (":path", "relative")], "path not origin-form", RESET),
    ([(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
      (":path", "/a b")], "space in path", RESET),
    ([(":method", "GET"), (":scheme", "https"), (":authority", "local host"),
      (":path", "/")], "bad authority", RESET),
    ([(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
      (":path", "/"), ("x-a", " padded")], "leading space in value", RESET),
    ([(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
      (":path", "/"), ("x-a", "a\x7fb")], "DEL in value", RESET),
    ([(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
      (":path", "/"), ("x(a)", "1")], "non-token name", RESET),
    ([(":method", "GET"), (":scheme", "https"), (":authority", "localhost"),
      (":path", "/"), ("content-length", "1"), ("content-length", "1")],
     "duplicate content-length", RESET),
])
def test_malformed_requests_never_reach_the_upstream(h2proxy, headers, why,
                                                     answer):
    p, up = h2proxy
    with H2Client(p.https_port, validate=False) as c:
        sid = c.conn.get_next_available_stream_id()
        c.streams[sid] = __import__("h2util").StreamResult(sid)
        c.conn.send_headers(sid, headers, end_stream=True)
        c.flush()
        r = c.response(sid)
        if answer == RESET:
            assert (r.status, r.reset) == (None, 1), (why, r.headers, r.reset)
        else:
            assert (r.status, r.reset) == (answer, None), \
                (why, r.headers, r.reset)
            assert r.ended, why
        # The connection goes on.
        r = c.response(c.request("GET", "/fine"))
        assert r.status == 200
    assert [q.target for q in up.requests] == ["/fine"], why


def test_nghttp_client(h2proxy):
    p, up = h2proxy
    out = subprocess.run(
        ["nghttp", "-n", "-s", "-m", "20",
         f"https://localhost:{p.https_port}/n"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert len([q for q in up.requests if q.target == "/n"]) == 20


def test_access_log_protocol_h2(h2proxy):
    p, _ = h2proxy
    h2_get(p.https_port, "/logged")
    p.wait_log(r"ACCESS client_ip=127\.0\.0\.1 method=GET host=localhost "
               r"path=/logged protocol=h2 status=200")


# ---- streams, flow control, errors, shutdown ----------------------------

def test_reset_stream_cancels_its_upstream_exchange(make_proxy,
                                                    make_upstream):
    import threading
    import time
    seen = {}
    got = threading.Event()

    def slow(req, conn):
        if req.target != "/slow":
            conn.respond(200, [], b"quick")
            return
        got.set()
        conn.sock.settimeout(5)
        t0 = time.monotonic()
        try:
            seen["eof"] = conn.sock.recv(1) == b""
        except OSError:
            seen["eof"] = True
        seen["after"] = time.monotonic() - t0
        conn.close()
    up = make_upstream(handler=slow)
    p = start_proxy(make_proxy, up)
    with H2Client(p.https_port) as c:
        other = c.request("GET", "/other")
        sid = c.request("GET", "/slow")
        assert got.wait(5)
        c.conn.reset_stream(sid, 8)
        c.flush()
        # The proxy closes its side of that upstream connection now.
        deadline = time.monotonic() + 5
        while "eof" not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen.get("eof") is True, seen
        assert seen["after"] < 2, seen
        # The connection and its other stream are fine.
        assert c.response(c.request("GET", "/after")).status == 200
        c.response(other)
    p.wait_log(r"path=/slow protocol=h2 status=499")


def test_upstream_failure_ends_only_its_stream(make_proxy, upstream,
                                               make_upstream):
    def configure(p):
        p.listener["site"].append(("dead.example.test",
                                   {"upstream": "127.0.0.1:9"}))
        p.listener["site"] = [s for s in p.listener["site"]
                              if s[0] != "*.example.test"] + \
            [("*.example.test", {"upstream": upstream.addr})]
    p = start_proxy(make_proxy, upstream, configure=configure)
    with H2Client(p.https_port) as c:
        sids = [c.request("GET", f"/ok{i}") for i in range(5)]
        bad = c.request("GET", "/", authority="dead.example.test")
        assert c.response(bad).status == 502
        for sid in sids:
            assert c.response(sid).status == 200


def test_upload_is_read_only_as_fast_as_the_upstream_takes_it(
        make_proxy, make_upstream):
    import threading
    import time
    release = threading.Event()
    got = {}

    def stalled(req, conn):
        # Has the head; reads nothing of the body until released.
        assert release.wait(20), "never released"
        got["total"] = conn.stream_body(req)
        conn.respond(200, [], b"ok")
    up = make_upstream(handler=stalled, read_body=False)
    p = start_proxy(make_proxy, up)
    with H2Client(p.https_port) as c:
        sid = c.request("POST", "/up", headers=[
            ("content-length", str(8 << 20))], end=False)
        sent = 0
        chunk = b"u" * 16384
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            w = min(c.conn.local_flow_control_window(sid), len(chunk))
            if w > 0:
                c.conn.send_data(sid, chunk[:w])
                c.flush()
                sent += w
            else:
                try:
                    c.read_some(timeout=0.2)
                except TimeoutError:
                    pass
        # The proxy took no more than the socket buffers and one window
        # of what the stalled upstream did not read.
        assert sent < 4 << 20, sent
        release.set()
        c.send_body(sid, b"u" * ((8 << 20) - sent))
        r = c.response(sid, timeout=30)
        assert r.status == 200
    assert got["total"] == 8 << 20


def test_large_download_streams_intact(make_proxy, make_upstream):
    import hashlib
    size = 64 << 20
    block = bytes(range(256)) * 4096

    def big(req, conn):
        conn.send(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n"
                  .encode())
        for _ in range(size // len(block)):
            conn.send(block)
    up = make_upstream(handler=big)
    p = start_proxy(make_proxy, up)
    out = subprocess.run(
        ["curl", "-sS", "-k", "--http2", "-o", "-", "--resolve",
         f"localhost:{p.https_port}:127.0.0.1",
         f"https://localhost:{p.https_port}/big"],
        capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    want = hashlib.sha256(block * (size // len(block))).hexdigest()
    assert hashlib.sha256(out.stdout).hexdigest() == want


def test_sigterm_sends_goaway_and_lets_streams_finish(make_proxy,
                                                      make_upstream):
    """nghttp -v shows the frames: GOAWAY(NO_ERROR, last stream) first,
    then the in-flight response, complete.  (python3-h2 stops reading at
    a GOAWAY, so it cannot check this.)"""
    import signal
    import threading
    import time
    got = threading.Event()

    def slow(req, conn):
        got.set()
        time.sleep(1.5)
        conn.respond(200, [], b"finished")
    up = make_upstream(handler=slow)
    p = start_proxy(make_proxy, up)
    nghttp = subprocess.Popen(
        ["nghttp", "-v", f"https://localhost:{p.https_port}/slow"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert got.wait(5)
    p.send_signal(signal.SIGTERM)
    out, _ = nghttp.communicate(timeout=20)
    assert nghttp.returncode == 0, out
    sid = re.search(r"stream_id=(\d+)>\s+; END_STREAM \| END_HEADERS.*"
                    r"\s+.*\s+; Open new stream", out).group(1)
    goaway = out.index("recv GOAWAY")
    assert re.search(rf"last_stream_id={sid}, error_code=NO_ERROR",
                     out[goaway:]), out
    status = out.index(f"recv (stream_id={sid}) :status: 200")
    assert goaway < status, out
    assert "finished" in out[status:], out
    assert p.proc.wait(15) == 0
    # New connections are refused once draining.
    with pytest.raises(OSError):
        H2Client(p.https_port, timeout=2)


def test_every_stream_counts_against_the_rate_limit(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, **{
        "rate-limit": {"requests-per-second": 0.1, "burst": 5}})
    with H2Client(p.https_port) as c:
        sids = [c.request("GET", f"/rl{i}") for i in range(8)]
        rs = [c.response(s) for s in sids]
        statuses = sorted(r.status for r in rs)
        assert statuses == [200] * 5 + [429] * 3, statuses
        limited = [r for r in rs if r.status == 429]
        for r in limited:
            assert int(r.header("retry-after")[0]) >= 1
        # The connection stays usable (and limited).
        assert c.response(c.request("GET", "/more")).status == 429
    p.wait_log(r"RATE_LIMIT client_ip=127\.0\.0\.1 host=localhost "
               r"path=/\S+ status=429", count=4)
    assert len([q for q in upstream.requests]) == 5


# ---- WebSocket over HTTP/2 (RFC 8441) -----------------------------------

def websocket_echo(req, conn):
    """An HTTP/1.1 WebSocket upstream: 101, then echoes bytes ("echo:")
    until the proxy closes its side."""
    import base64
    import hashlib
    if req.header("Upgrade") != ["websocket"]:
        conn.respond(400, [], b"not a websocket request")
        return
    key = req.one("Sec-WebSocket-Key")
    assert len(base64.b64decode(key, validate=True)) == 16, key
    accept = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
              b"\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
    while True:
        data = conn.sock.recv(65536)
        if not data:
            break
        conn.send(b"echo:" + data)
    conn.close()


def ws_connect(c, path="/ws"):
    sid = c.conn.get_next_available_stream_id()
    c.streams[sid] = __import__("h2util").StreamResult(sid)
    c.conn.send_headers(sid, [
        (":method", "CONNECT"), (":protocol", "websocket"),
        (":scheme", "https"), (":path", path), (":authority", "localhost"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "chat")], end_stream=False)
    c.flush()
    return sid


def read_until(c, sid, pred, timeout=10):
    import time
    deadline = time.monotonic() + timeout
    st = c.streams[sid]
    while not pred(st) and not c.closed:
        left = deadline - time.monotonic()
        assert left > 0, (st.headers, bytes(st.data), st.reset)
        c.read_some(timeout=left)
    return st


def test_websocket_over_h2(make_proxy, make_upstream):
    up = make_upstream(handler=websocket_echo)
    p = start_proxy(make_proxy, up)
    with H2Client(p.https_port, validate=False) as c:
        sid = ws_connect(c)
        st = read_until(c, sid, lambda st: st.headers is not None)
        assert st.status == 200, st.headers
        assert st.header("sec-websocket-protocol") == ["chat"]
        assert st.header("sec-websocket-accept") == []
        # The server said it takes extended CONNECT (RFC 8441 3).
        assert c.conn.remote_settings.get(0x8) == 1
        c.send_body(sid, b"hello", end=False)
        st = read_until(c, sid, lambda st: bytes(st.data) == b"echo:hello")
        # More than a window each way: flow control on the tunnel.
        c.send_body(sid, b"x" * 200000, end=False)
        st = read_until(c, sid, lambda st: len(
            bytes(st.data).replace(b"echo:", b"")) >= 5 + 200000)
        assert bytes(st.data).replace(b"echo:", b"") == \
            b"hello" + b"x" * 200000
        # A normal request on the same connection meanwhile.
        assert c.response(c.request("GET", "/plain")).status == 400
        # The client's END_STREAM reaches the upstream as EOF; its close
        # ends the stream.
        c.conn.end_stream(sid)
        c.flush()
        st = read_until(c, sid, lambda st: st.ended or st.reset is not None)
        assert st.ended and st.reset is None
    req = [q for q in up.requests if q.target == "/ws"][0]
    assert req.method == "GET"
    assert req.header("Upgrade") == ["websocket"]
    assert req.header("Connection") == ["Upgrade"]
    assert req.header("sec-websocket-version") == ["13"]
    p.wait_log(r"method=CONNECT host=localhost path=/ws protocol=h2 "
               r"status=200")


def test_websocket_over_h2_refused_by_upstream(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream)
    with H2Client(p.https_port, validate=False) as c:
        sid = ws_connect(c)
        st = read_until(c, sid, lambda st: st.ended or st.reset is not None)
        # The default upstream answers 200 with a body, not 101: the
        # client gets that answer, and no tunnel.
        assert st.status == 200
        assert b'"method": "GET"' in st.body


def test_extended_connect_only_for_websocket(h2proxy):
    p, up = h2proxy
    with H2Client(p.https_port, validate=False) as c:
        sid = c.conn.get_next_available_stream_id()
        c.streams[sid] = __import__("h2util").StreamResult(sid)
        c.conn.send_headers(sid, [
            (":method", "CONNECT"), (":protocol", "h3-tunnel"),
            (":scheme", "https"), (":path", "/"),
            (":authority", "localhost")], end_stream=True)
        c.flush()
        r = c.response(sid)
        # The proxy's own check (only "websocket" is a :protocol it
        # takes): a 400, not a reset.
        assert (r.status, r.reset) == (400, None), (r.headers, r.reset)
    assert not up.requests


def test_idle_websocket_over_h2_is_closed(make_proxy, make_upstream):
    import time
    up = make_upstream(handler=websocket_echo)
    p = start_proxy(make_proxy, up, http={"tunnel-idle-timeout": 2})
    with H2Client(p.https_port, validate=False) as c:
        sid = ws_connect(c)
        st = read_until(c, sid, lambda st: st.headers is not None)
        assert st.status == 200
        t0 = time.monotonic()
        st = read_until(c, sid, lambda st: st.reset is not None, timeout=10)
        took = time.monotonic() - t0
        assert 1.5 < took < 6, took
        # Only that stream: the connection goes on.
        assert c.response(c.request("GET", "/after")).status == 400
    p.wait_log(r"h2: tunnel idle, closed")


def test_reload_keeps_h2_connections_and_their_streams(make_proxy,
                                                       make_upstream):
    """A reload does not end HTTP/2 connections: a stream in flight
    finishes, and the next stream on the same connection is routed by
    the new configuration."""
    import threading
    import time
    got = threading.Event()

    def handler(req, conn):
        if req.target == "/slow":
            got.set()
            time.sleep(1.5)
        conn.respond(200, [], req.target.encode())
    up = make_upstream(handler=handler)
    p = start_proxy(make_proxy, up)
    with H2Client(p.https_port) as c:
        assert c.response(c.request(
            "GET", "/", authority="new.example.org")).status == 404
        slow = c.request("GET", "/slow")
        assert got.wait(5)
        p.listener["site"].append(("new.example.org",
                                   {"upstream": up.addr}))
        p.write_config()
        rc, reply = p.ctl("reload")
        assert rc == 0, reply
        r = c.response(slow)
        assert r.status == 200 and r.body == b"/slow"
        # The new site has no certificate of its own: it is served with
        # the listener's, the one this connection has, so no 421.
        r = c.response(c.request("GET", "/n", authority="new.example.org"))
        assert r.status == 200 and r.body == b"/n"
        assert c.goaway is None
