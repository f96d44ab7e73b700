"""Admission gives HTTP/1.1 and HTTP/2 the same answers: one function
(src/request.c) decides, the protocols only render.  Each refusal below is
asked of both, and both must give the same status and the same extra
field (Allow, Retry-After), and nothing may reach the upstream."""

from conftest import start_proxy
from h1util import parse_responses
from h2util import H2Client, StreamResult
from proxyutil_http import talk

ALLOW = "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"


def h1_ask(port, raw):
    """One raw request over TLS (the connection closes after it): its
    only response."""
    reply = talk(port, raw)
    rs = parse_responses(reply.data)
    assert len(rs) == 1, f"{raw!r}: {reply!r}"
    return rs[0]


def h2_connect_plain(port, authority):
    """A plain CONNECT (RFC 9113 8.5: :method and :authority only)."""
    with H2Client(port) as c:
        sid = c.conn.get_next_available_stream_id()
        c.streams[sid] = StreamResult(sid)
        # python-h2 would add nothing, but refuses to send it as it is.
        c.conn.config.validate_outbound_headers = False
        c.conn.send_headers(sid, [(":method", "CONNECT"),
                                  (":authority", authority)],
                            end_stream=True)
        c.flush()
        return c.response(sid)


def test_connect_is_405_with_allow_on_both_protocols(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream)
    r1 = h1_ask(p.https_port, b"CONNECT localhost:443 HTTP/1.1\r\n"
                b"Host: localhost:443\r\nConnection: close\r\n\r\n")
    assert r1.status == 405
    assert r1.header("Allow") == [ALLOW]
    r2 = h2_connect_plain(p.https_port, "localhost:443")
    assert r2.status == 405
    # The HTTP/2 405 carried no Allow before the two paths became one.
    assert r2.header("allow") == [ALLOW]
    assert upstream.requests == []


def test_same_refusals_on_both_protocols(make_proxy, upstream, certs):
    def configure(p):
        cert, key = certs.get("other.test")
        p.listener["site"].append(("other.test", {
            "upstream": upstream.addr, "cert": str(cert), "key": str(key)}))
    p = start_proxy(make_proxy, upstream, configure=configure,
                    body={"limit-bytes": 1000})
    cases = [
        # (authority, method, extra fields, status)
        ("nowhere.invalid", "GET", [], 404),
        ("other.test", "GET", [], 421),
        ("localhost", "POST", [("content-length", "5000")], 413),
    ]
    for host, method, fields, status in cases:
        raw = (f"{method} / HTTP/1.1\r\nHost: {host}\r\n"
               "Connection: close\r\n").encode()
        raw += b"".join(f"{n}: {v}\r\n".encode() for n, v in fields)
        raw += b"\r\n"
        r1 = h1_ask(p.https_port, raw)
        with H2Client(p.https_port) as c:
            # The head alone: a 413 must not wait for the body.
            r2 = c.response(c.request(method, "/", authority=host,
                                      headers=fields, end=not fields))
        assert (r1.status, r2.status) == (status, status), (host, method)
    assert upstream.requests == []


def test_rate_limit_answer_is_the_same(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, **{
        "rate-limit": {"requests-per-second": 0.01, "burst": 1}})
    r1 = h1_ask(p.https_port, b"GET /a HTTP/1.1\r\nHost: localhost\r\n"
                b"Connection: close\r\n\r\n")
    assert r1.status == 200
    r1 = h1_ask(p.https_port, b"GET /b HTTP/1.1\r\nHost: localhost\r\n"
                b"Connection: close\r\n\r\n")
    with H2Client(p.https_port) as c:
        r2 = c.response(c.request("GET", "/c"))
    assert (r1.status, r2.status) == (429, 429)
    assert int(r1.header("Retry-After")[0]) >= 1
    assert int(r2.header("retry-after")[0]) >= 1
    assert len(upstream.requests) == 1
