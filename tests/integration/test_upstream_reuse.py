"""Reusing pooled upstream connections safely.

A request sent on a reused connection that the upstream closes without
answering is sent again on a new one only if that is safe: GET, HEAD and
OPTIONS without a body (RFC 9110 9.2.2).  Anything else may already have
been acted on: the client gets a 502, the upstream saw it once.
"""

import threading

import pytest

from conftest import https_get, tls_connect, wait_until
from h2util import H2Client
from proxyutil_http import access_events
from proxyutil_ops import read_response, start_proxy


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
