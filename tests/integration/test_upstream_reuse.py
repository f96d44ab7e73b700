"""Reusing pooled upstream connections safely.

A request sent on a reused connection that the upstream closes without
answering is sent again on a new one only if that is safe: GET, HEAD and
OPTIONS without a body (RFC 9110 9.2.2).  Anything else may already have
been acted on: the client gets a 502, the upstream saw it once.

And a pooled connection holding any byte its upstream sent after a
complete response (a body after a HEAD answer, bytes after a
Content-Length body, a second response nobody asked for) is thrown away,
never reused: those bytes must not become the next request's answer.
"""

import threading

import pytest

from conftest import (SLOWDOWN, https_get, start_proxy, tls_connect,
                      wait_until)
from h1util import read_response
from h2util import H2Client
from proxyutil_http import access_events


class Recorder:
    """An upstream that numbers its connections (1, 2, ...) and records
    (connection number, method, target, body) of each request in .seen;
    a subclass answers in answer(req, conn)."""

    def __init__(self, make_upstream):
        self.lock = threading.Lock()
        self.seen = []
        self.nconn = 0
        self.up = make_upstream(handler=self.handler)

    def handler(self, req, conn):
        with self.lock:
            if not hasattr(conn, "index"):
                self.nconn += 1
                conn.index = self.nconn
                conn.served = 0
            self.seen.append((conn.index, req.method, req.target, req.body))
        self.answer(req, conn)

    def answer(self, req, conn):
        raise NotImplementedError


# ---- replaying a request on a new connection ------------------------------


class Vanishing(Recorder):
    """An upstream that answers the first request of each connection and
    closes a kept-alive connection, unanswered, after reading its second:
    the race of an upstream's keep-alive timeout, made deterministic."""

    def answer(self, req, conn):
        if conn.served == 1:
            conn.close()                # read, never answered
            return
        conn.served += 1
        conn.respond(200, [], b"" if req.method == "HEAD" else b"answer")

    def count(self, target):
        with self.lock:
            return sum(1 for _, _, t, _ in self.seen if t == target)


def h1_request(port, method, headers=b"", body=b""):
    raw = (f"{method} /x HTTP/1.1\r\nHost: localhost\r\n"
           f"Connection: close\r\n").encode() + headers + b"\r\n" + body
    with tls_connect(port) as s:
        s.sendall(raw)
        status, _, rbody = read_response(s, method)
    return status, rbody


def h2_request(port, method, headers=(), body=None):
    with H2Client(port) as c:
        st = c.response(c.request(method, "/x", headers=headers, body=body))
    assert st.ended and st.reset is None, (st.headers, st.reset)
    return st.status, st.body


# (id, method, h1 extra head lines, h1 body, h2 headers, h2 body, replayed)
CASES = [
    ("GET", "GET", b"", b"", (), None, True),
    ("HEAD", "HEAD", b"", b"", (), None, True),
    ("OPTIONS", "OPTIONS", b"", b"", (), None, True),
    ("POST", "POST", b"", b"", (), None, False),
    ("PATCH", "PATCH", b"", b"", (), None, False),
    ("DELETE", "DELETE", b"", b"", (), None, False),
    ("PUT", "PUT", b"", b"", (), None, False),
    ("PROPFIND", "PROPFIND", b"", b"", (), None, False),
    ("POST-body", "POST", b"Content-Length: 3\r\n", b"abc", (), b"abc",
     False),
    ("GET-length-0", "GET", b"Content-Length: 0\r\n", b"",
     (("content-length", "0"),), None, False),
    ("GET-body", "GET", b"Content-Length: 3\r\n", b"abc", (), b"abc",
     False),
    # HTTP/1.1 only: over HTTP/2 an empty DATA frame ending the stream in
    # the read that brought the HEADERS is no body at all.
    ("GET-chunked-empty", "GET", b"Transfer-Encoding: chunked\r\n",
     b"0\r\n\r\n", None, None, False),
]


@pytest.mark.parametrize("proto,case", [
    pytest.param(proto, c, id=f"{c[0]}-{proto}") for c in CASES
    for proto in ("h1", "h2") if proto == "h1" or c[4] is not None])
def test_only_safe_requests_are_replayed(make_proxy, make_upstream, proto,
                                         case):
    name, method, h1_head, h1_body, h2_head, h2_body, replayed = case
    v = Vanishing(make_upstream)
    p = start_proxy(make_proxy, v.up, workers=1)
    # One answered request leaves its connection in the pool.
    assert https_get(p.https_port, "/warm")[0] == 200
    assert v.nconn == 1
    if proto == "h1":
        status, body = h1_request(p.https_port, method, h1_head, h1_body)
    else:
        status, body = h2_request(p.https_port, method, h2_head, h2_body)
    seen = [s for s in v.seen if s[2] == "/x"]
    if replayed:
        assert status == 200, p.all_logs()
        assert body == (b"" if method == "HEAD" else b"answer")
        # On the pooled connection, then once more on a new one.
        assert [(c, m) for c, m, _, _ in seen] == [(1, method),
                                                   (2, method)], seen
    else:
        assert status == 502, (status, body, p.all_logs())
        assert [(c, m) for c, m, _, _ in seen] == [(1, method)], seen
        if method == "POST" and h1_body:
            assert seen[0][3] == b"abc"
        p.wait_log(r"reused connection closed before answering; the "
                   r"request is not replayable")
    assert v.count("/x") == (2 if replayed else 1)
    # The access log tells what the client got.
    want = "200" if replayed else "502"
    events = wait_until(
        lambda: [e for e in access_events(p.log())
                 if e.get("path") == "/x"], what="the access line")
    assert len(events) == 1, events
    assert events[0]["method"] == method and events[0]["status"] == want, \
        events[0]["_line"]
    # Nothing else was sent twice.
    assert v.count("/warm") == 1
    assert v.up.errors == []


# ---- late bytes on a pooled connection ------------------------------------

# The upstream side's first read buffer (EX_IN_SMALL in src/proxy.c): a
# response of exactly this size, sent in one write with more behind it,
# is read whole while the rest stays in the socket, so the connection
# goes back to the pool with bytes waiting that the proxy has not seen.
IN_FIRST = 16384

STALE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTALE"


def padded_head(extra_fields, total):
    """A 200 head of exactly total bytes (padded by an X-Pad field)."""
    start = b"HTTP/1.1 200 OK\r\n" + extra_fields
    bare = start + b"X-Pad: \r\n\r\n"
    assert len(bare) < total
    return start + b"X-Pad: " + b"p" * (total - len(bare)) + b"\r\n\r\n"


def dirty_answer(kind, method, size):
    """(response, late bytes) for one kind of misbehaviour; size: the
    response's length (0: as small as it comes)."""
    if kind == "head-body":
        # A HEAD answer followed by the body it announced, which reads
        # like a response of its own.
        assert method == "HEAD"
        fields = b"Content-Length: %d\r\n" % len(STALE)
        resp = padded_head(fields, size) if size else \
            b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n"
        return resp, STALE
    body = b"first"
    fields = b"Content-Length: %d\r\n" % len(body)
    resp = (padded_head(fields, size - len(body)) if size else
            b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n") + body
    if kind == "after-body":
        return resp, b"garbage after the body\r\n\r\n"
    return resp, STALE          # "second-response"


class Dirty(Recorder):
    """An upstream whose answer to /dirty is followed by late bytes: in
    the same write ("same-read"), or once the test says the answer
    arrived, while the connection sits in the proxy's pool ("pooled").
    Every other request gets a clean 200 "fresh"; whatever goes wrong is
    checked by the test."""

    def __init__(self, make_upstream, kind, timing):
        self.kind = kind
        self.timing = timing
        self.answered = threading.Event()   # the test got the answer
        self.dropped = threading.Event()    # the proxy closed that one
        self.reused_dirty = []              # bytes sent on it after
        super().__init__(make_upstream)

    def answer(self, req, conn):
        if req.target != "/dirty":
            conn.respond(200, [], b"" if req.method == "HEAD" else b"fresh")
            return
        size = IN_FIRST if self.timing == "same-read" else 0
        resp, late = dirty_answer(self.kind, req.method, size)
        if self.timing == "same-read":
            conn.send(resp + late)
            return
        conn.send(resp)
        if not self.answered.wait(10 * SLOWDOWN):
            return
        conn.send(late)
        # The proxy must close it now; anything else it sends on it is a
        # request that would be answered by the late bytes.
        conn.sock.settimeout(10 * SLOWDOWN)
        try:
            data = conn.sock.recv(65536)
        except OSError:
            data = b""
        if data:
            self.reused_dirty.append(data)
        else:
            self.dropped.set()
        conn.close()


@pytest.mark.parametrize("timing", ["same-read", "pooled"])
@pytest.mark.parametrize("kind", ["head-body", "after-body",
                                  "second-response"])
def test_late_bytes_condemn_a_pooled_connection(make_proxy, make_upstream,
                                                kind, timing):
    d = Dirty(make_upstream, kind, timing)
    p = start_proxy(make_proxy, d.up, workers=1)
    method = "HEAD" if kind == "head-body" else "GET"
    first = f"{method} /dirty HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    second = b"GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with tls_connect(p.https_port) as s:
        if timing == "same-read":
            # Pipelined: the proxy takes the next request (and a pooled
            # connection for it) as soon as the first answer is out,
            # before its loop looks at that connection again.
            s.sendall(first + second)
            status, _, body = read_response(s, method)
            assert status == 200
        else:
            s.sendall(first)
            status, _, body = read_response(s, method)
            assert status == 200
            d.answered.set()
            assert d.dropped.wait(10 * SLOWDOWN), \
                ("the pooled connection holding late bytes was not "
                 "closed", d.reused_dirty, p.all_logs())
            s.sendall(second)
        assert body == (b"" if method == "HEAD" else b"first")
        status, _, body = read_response(s)
    assert d.reused_dirty == []
    assert (status, body) == (200, b"fresh"), (status, body, p.all_logs())
    # /next went out on a new connection, never on the dirty one.
    assert [(c, t) for c, _, t, _ in d.seen] == [(1, "/dirty"),
                                                 (2, "/next")], d.seen
    assert d.nconn == 2
    # Closed with the late bytes unread, the dirty connection may end in
    # a reset on the upstream's side; nothing else went wrong there.
    assert all(e.startswith("ConnectionResetError")
               for e in d.up.errors), d.up.errors
