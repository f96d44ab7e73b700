"""Early answers and early bytes: what the proxy does with an answer that
is ready before the client has finished its request (413, 429, an
upstream that refuses an upload), and with the bytes a client sends on a
WebSocket before the upstream has accepted it.  HTTP/2 mostly, with
HTTP/1.1 alongside, as the reference.

The early answers are checked with curl itself, the most common client:
curl 7.88 takes the TLS records one at a time, and throws away a response
whose stream is reset in the same record (it then reports no status at
all, "(92) Stream error in the HTTP/2 framing layer")."""

import subprocess
import threading
import time

import h2.events
import pytest

from conftest import start_proxy, wait_until
from h1util import parse_responses
from h2util import H2Client
from proxyutil_http import connect, read_until_close
from test_h2 import read_until, ws_connect

RUNS = 20                   # curl runs per case: each one must get the answer
SIZES = [1001, 5000, 100 * 1024, 1 << 20]


def curl_upload(port, body, http="--http2", length=True, path="/up"):
    """POST body with curl (Content-Length, or none: read from stdin as it
    goes); returns (exit status, "<http_version> <http_code>", stderr)."""
    args = ["curl", "-sS", "-k", http, "-o", "/dev/null",
            "-w", "%{http_version} %{http_code}",
            "--resolve", f"localhost:{port}:127.0.0.1"]
    if length:
        args += ["--data-binary", "@-"]
    else:
        args += ["-X", "POST", "-T", "-"]
    out = subprocess.run(args + [f"https://localhost:{port}{path}"],
                         input=body, capture_output=True, timeout=60)
    return out.returncode, out.stdout.decode(), out.stderr.decode().strip()


def assert_every_run(port, body, want, **kw):
    """RUNS uploads in a row, each one answered `want`."""
    got = [curl_upload(port, body, **kw) for _ in range(RUNS)]
    bad = [g for g in got if g[:2] != (0, want)]
    assert not bad, f"{len(bad)} of {RUNS} runs: {bad[:3]}"


@pytest.mark.parametrize("size", SIZES)
def test_curl_gets_413_for_an_upload_over_the_limit(make_proxy, upstream,
                                                    size):
    p = start_proxy(make_proxy, upstream, body={"limit-bytes": 1000})
    body = b"x" * size
    # Content-Length over the limit: refused before the body.
    assert_every_run(p.https_port, body, "2 413")
    # No length: refused once the body grows past the limit.
    assert_every_run(p.https_port, body, "2 413", length=False)
    # HTTP/1.1, for comparison.
    assert_every_run(p.https_port, body, "1.1 413", http="--http1.1")
    assert_every_run(p.https_port, body, "1.1 413", http="--http1.1",
                     length=False)
    assert upstream.requests == [], upstream.requests
    p.wait_log(r"ACCESS .*path=/up protocol=h2 status=413", count=2 * RUNS)


def test_curl_gets_429_while_uploading(make_proxy, upstream):
    """Another answer of the proxy's own before the body: the rate
    limit's."""
    p = start_proxy(make_proxy, upstream, **{
        "rate-limit": {"requests-per-second": 0.001, "burst": 1}})
    body = b"y" * (100 * 1024)
    assert curl_upload(p.https_port, body)[:2] == (0, "2 200")
    assert_every_run(p.https_port, body, "2 429")
    assert_every_run(p.https_port, body, "2 429", length=False)
    assert len(upstream.requests) == 1


EARLY_403 = (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n"
             b"Connection: close\r\n\r\nnope.\n")


def refuse_uploads(req, conn):
    """An upstream's handler that refuses uploads: 403 as soon as it has
    a request head (Upstream with read_body=False), then it reads and
    drops the body until the proxy closes."""
    conn.sock.settimeout(30)
    conn.send(EARLY_403)
    conn.drain()
    conn.close()


def test_curl_gets_an_upstream_answer_that_comes_before_the_body(
        make_proxy, make_upstream):
    up = make_upstream(handler=refuse_uploads, read_body=False)
    p = start_proxy(make_proxy, up)
    body = b"z" * (1 << 20)
    assert_every_run(p.https_port, body, "2 403")
    assert_every_run(p.https_port, body, "2 403", length=False)
    assert_every_run(p.https_port, body, "1.1 403", http="--http1.1")
    assert len(up.requests) == 3 * RUNS and up.errors == [], up.errors


# ---- WebSocket: bytes before the upstream's 101 -------------------------

class HeldWebSocket:
    """A WebSocket upstream that holds its answer until the test releases
    it: 101 (then it records what comes through the tunnel until EOF) or
    403 for paths under /refuse."""

    def __init__(self):
        self.got_head = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()
        self.tunnel = bytearray()

    def __call__(self, req, conn):
        self.got_head.set()
        assert self.release.wait(20), "never released"
        if req.target.startswith("/refuse"):
            conn.respond(403, [], b"no tunnel\n", reason="Forbidden")
            return
        assert req.header("Upgrade") == ["websocket"], req.headers
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
                  b"\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n"
                  b"\r\n")
        while True:
            self.tunnel += conn.buf
            conn.buf = b""
            try:
                conn.recv_more()        # recorded in up.raw() too
            except EOFError:
                break
        self.done.set()
        conn.close()

    def next(self):
        self.got_head.clear()
        self.release.clear()


def ping_acked(c, payload):
    """PING, then read until its ACK: the proxy has processed every frame
    sent before it."""
    c.conn.ping(payload)
    c.flush()
    for _ in range(100):
        if any(isinstance(e, h2.events.PingAckReceived) and
               e.ping_data == payload for e in c.events):
            return
        assert c.read_some(timeout=10), "closed before the PING's ACK"
    raise AssertionError("no PING ACK")


def early_data(c, ws, sid, data):
    """DATA on a WebSocket stream whose upstream has the request but has
    not answered; then let it answer."""
    assert ws.got_head.wait(10)
    c.conn.send_data(sid, data)
    c.flush()
    ping_acked(c, b"early%03d" % sid)
    ws.release.set()


@pytest.mark.parametrize("limit", [None, 100], ids=["no-limit", "limit-100"])
def test_h2_websocket_bytes_before_the_200_reach_the_tunnel(
        make_proxy, make_upstream, limit):
    ws = HeldWebSocket()
    up = make_upstream(handler=ws)
    kw = {"body": {"limit-bytes": limit}} if limit else {}
    p = start_proxy(make_proxy, up, **kw)
    refused = b"\x81\x88" + b"M" * 12
    early = b"\x81\xfe\x01\xf4" + b"E" * 504     # more than the body limit
    with H2Client(p.https_port, validate=False) as c:
        # Refused by the upstream: the stream gets the answer, and its
        # early bytes go nowhere (not upstream, not to another tunnel).
        sid = ws_connect(c, "/refuse")
        early_data(c, ws, sid, refused)
        st = read_until(c, sid, lambda st: st.ended or st.reset is not None)
        assert st.status == 403 and st.body == b"no tunnel\n", \
            (st.headers, st.body, st.reset)
        # Accepted: the early bytes are the tunnel's first.
        ws.next()
        sid = ws_connect(c, "/ws")
        early_data(c, ws, sid, early)
        st = read_until(c, sid, lambda st: st.headers is not None)
        assert st.status == 200, st.headers
        c.send_body(sid, b"later", end=True)
        st = read_until(c, sid, lambda st: st.ended or st.reset is not None)
        assert st.ended and st.reset is None
    assert ws.done.wait(10)
    assert bytes(ws.tunnel) == early + b"later"
    assert [q.target for q in up.requests] == ["/refuse", "/ws"]
    # Nothing but the two requests reached the upstream outside the tunnel.
    assert up.raw() == b"".join(q.raw for q in up.requests) + early + \
        b"later"
    assert up.errors == []


def ws_head(target):
    return (b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n"
            b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n")


def test_h1_websocket_bytes_before_the_101(make_proxy, make_upstream):
    """HTTP/1.1, head and early bytes in one TLS record: they reach the
    tunnel; if the upstream refuses, they are not read as a request."""
    ws = HeldWebSocket()
    up = make_upstream(handler=ws)
    p = start_proxy(make_proxy, up)
    frame = b"\x81\x85" + b"\x01\x02\x03\x04" + b"hello"
    ws.release.set()
    with connect(p.https_port) as s:
        s.sendall(ws_head(b"/refuse") + frame)
        data, closed = read_until_close(s, timeout=10)
    rs = parse_responses(data)
    assert [r.status for r in rs] == [403] and closed, data
    assert rs[0].one("Connection").lower() == "close"
    with connect(p.https_port) as s:
        s.sendall(ws_head(b"/ws") + frame)
        data, _ = read_until_close(s, want=lambda d: b"\r\n\r\n" in d)
        assert data.startswith(b"HTTP/1.1 101 "), data
        s.sendall(b"later")
        # Closed once all of it is through.
        wait_until(lambda: len(ws.tunnel) >= len(frame) + 5,
                   what="the tunnel's bytes upstream")
    assert ws.done.wait(10)
    assert bytes(ws.tunnel) == frame + b"later"
    assert [q.target for q in up.requests] == ["/refuse", "/ws"]
    assert up.errors == []



def test_h2_websocket_upstream_slower_than_client_timeout(make_proxy,
                                                          make_upstream):
    """While the upstream has not accepted a WebSocket, the proxy waits
    on the upstream (its request-timeout), not on the client: the client
    has nothing to send yet, as over HTTP/1.1."""
    ws = HeldWebSocket()
    up = make_upstream(handler=ws)
    p = start_proxy(make_proxy, up, http={"client-timeout": 1})
    with H2Client(p.https_port, validate=False) as c:
        sid = ws_connect(c, "/ws")
        assert ws.got_head.wait(10)
        time.sleep(3)           # client-timeout runs out, three times over
        ws.release.set()
        st = read_until(c, sid, lambda st: st.headers is not None or
                        st.reset is not None)
        assert st.status == 200 and c.goaway is None, (st.headers, c.goaway)
        c.send_body(sid, b"late", end=True)
        st = read_until(c, sid, lambda st: st.ended or st.reset is not None)
        assert st.ended and st.reset is None
    assert ws.done.wait(10)
    assert bytes(ws.tunnel) == b"late"
