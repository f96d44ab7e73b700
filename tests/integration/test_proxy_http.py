"""HTTP/1.1 from clients through the proxy: request validation, limits,
keep-alive, pipelining, HTTP/1.0, Expect, the body limit, the fields that
reach the upstream, responses, error bodies and the access log.

Every case uses a real TLS client and the recording upstream.  A rejected
request must get its status, the connection must close after it, and not
one byte may reach the upstream."""

import json
import subprocess

import pytest

from conftest import free_port, start_proxy, wait_until
from h1util import parse_responses
from proxyutil_ops import site_settings
from proxyutil_http import (ACCESS_KEYS, access_events,
                            assert_nothing_upstream, assert_rejected, connect,
                            finals, forget, raw_upstream, read_until_close,
                            settle, talk)


@pytest.fixture
def px(make_proxy, upstream):
    """A started proxy (one worker) with every site on the recording
    upstream."""
    return start_proxy(make_proxy, upstream), upstream


def head(*lines, method=b"GET", target=b"/", version=b"HTTP/1.1",
         host=b"localhost"):
    """A request head: the request line, Host (unless host is None), then
    the given field lines."""
    out = method + b" " + target + b" " + version + b"\r\n"
    if host is not None:
        out += b"Host: " + host + b"\r\n"
    for line in lines:
        out += line + b"\r\n"
    return out + b"\r\n"


# ---- malformed heads: 400, closed, nothing upstream ----------------------

BAD_HEADS = [
    # Framing conflicts and transfer-codings.
    ("te-and-cl", head(b"Transfer-Encoding: chunked", b"Content-Length: 5",
                       method=b"POST") + b"0\r\n\r\n"),
    ("cl-and-te", head(b"Content-Length: 5", b"Transfer-Encoding: chunked",
                       method=b"POST") + b"0\r\n\r\n"),
    ("te-gzip-chunked", head(b"Transfer-Encoding: gzip, chunked",
                             method=b"POST") + b"0\r\n\r\n"),
    ("te-chunked-chunked", head(b"Transfer-Encoding: chunked, chunked",
                                method=b"POST") + b"0\r\n\r\n"),
    ("te-two-fields", head(b"Transfer-Encoding: chunked",
                           b"Transfer-Encoding: chunked",
                           method=b"POST") + b"0\r\n\r\n"),
    ("te-chunked-gzip", head(b"Transfer-Encoding: chunked, gzip",
                             method=b"POST") + b"0\r\n\r\n"),
    ("te-identity", head(b"Transfer-Encoding: identity",
                         method=b"POST") + b"0\r\n\r\n"),
    ("te-gzip", head(b"Transfer-Encoding: gzip", method=b"POST")),
    ("te-xchunked", head(b"Transfer-Encoding: xchunked",
                         method=b"POST") + b"0\r\n\r\n"),
    ("te-empty", head(b"Transfer-Encoding: ", method=b"POST")),
    ("te-http10", head(b"Transfer-Encoding: chunked", method=b"POST",
                       version=b"HTTP/1.0") + b"0\r\n\r\n"),
    # Content-Length.
    ("cl-dup-same", head(b"Content-Length: 5", b"Content-Length: 5",
                         method=b"POST") + b"hello"),
    ("cl-dup-diff", head(b"Content-Length: 5", b"Content-Length: 6",
                         method=b"POST") + b"hello!"),
    ("cl-list", head(b"Content-Length: 5, 5", method=b"POST") + b"hello"),
    ("cl-plus", head(b"Content-Length: +5", method=b"POST") + b"hello"),
    ("cl-minus", head(b"Content-Length: -5", method=b"POST") + b"hello"),
    ("cl-inner-space", head(b"Content-Length: 1 0", method=b"POST")),
    ("cl-hex", head(b"Content-Length: 0x5", method=b"POST") + b"hello"),
    ("cl-20-digits", head(b"Content-Length: 18446744073709551616",
                          method=b"POST")),
    ("cl-20-nines", head(b"Content-Length: 99999999999999999999",
                         method=b"POST")),
    ("cl-empty", head(b"Content-Length: ", method=b"POST")),
    ("cl-letters", head(b"Content-Length: five", method=b"POST")),
    # Line syntax.
    ("obs-fold-sp", head(b"X-A: one", b" two")),
    ("obs-fold-tab", head(b"X-A: one", b"\ttwo")),
    ("space-before-colon", head(b"X-A : one")),
    ("tab-before-colon", head(b"X-A\t: one")),
    ("host-space-before-colon",
     b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n"),
    ("bare-lf-all", b"GET / HTTP/1.1\nHost: localhost\n\n"),
    ("bare-lf-request-line", b"GET / HTTP/1.1\nHost: localhost\r\n\r\n"),
    ("bare-lf-field", b"GET / HTTP/1.1\r\nHost: localhost\nX-A: 1\r\n\r\n"),
    ("bare-lf-end", b"GET / HTTP/1.1\r\nHost: localhost\r\n\n"),
    ("bare-cr-field", b"GET / HTTP/1.1\r\nHost: localhost\rX-A: 1\r\n\r\n"),
    ("bare-cr-request-line", b"GET / HTTP/1.1\rHost: localhost\r\n\r\n"),
    ("nul-in-value", head(b"X-A: a\x00b")),
    ("cr-in-value", head(b"X-A: a\rb")),
    ("lf-in-value", head(b"X-A: a\nb")),
    ("del-in-value", head(b"X-A: a\x7fb")),
    ("ctl-in-value", head(b"X-A: a\x01b")),
    ("nul-in-target", b"GET /a\x00b HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("space-in-target", b"GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("method-at", head(method=b"G@T")),
    ("method-paren", head(method=b"GE(T")),
    ("method-ctl", head(method=b"GE\x01T")),
    ("method-empty", b" / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("name-paren", head(b"X(A): 1")),
    ("name-space", head(b"X A: 1")),
    ("name-quote", head(b'X"A: 1')),
    ("name-del", head(b"X\x7fA: 1")),
    ("name-empty", head(b": 1")),
    ("name-no-colon", head(b"X-A")),
    ("request-line-two-spaces", b"GET  / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("request-line-no-version", b"GET /\r\nHost: localhost\r\n\r\n"),
    ("version-lower", b"GET / http/1.1\r\nHost: localhost\r\n\r\n"),
    # Host.
    ("host-missing", head(host=None)),
    ("host-dup-same", head(b"Host: localhost")),
    ("host-dup-diff", head(b"Host: a.example.test")),
    ("host-empty", head(host=b"")),
    ("host-space", head(host=b"local host")),
    ("host-port-letters", head(host=b"localhost:abc")),
    ("host-port-too-big", head(host=b"localhost:99999")),
    ("host-slash", head(host=b"localhost/x")),
    ("host-userinfo", head(host=b"user@localhost")),
    ("host-open-bracket", head(host=b"[::1")),
    ("host-two-ports", head(host=b"localhost:1:2")),
    ("host-comma", head(host=b"localhost, a.example.test")),
]


@pytest.mark.parametrize("raw", [v for _, v in BAD_HEADS],
                         ids=[i for i, _ in BAD_HEADS])
def test_malformed_request_is_400_and_closed(px, raw):
    p, up = px
    assert_rejected(talk(p.https_port, raw), 400, up)


# A chunk error comes after the head, which may already be on its way: the
# client gets a 400 (or the connection is cut) and the upstream must never
# see a complete request.
CHUNK_HEAD = head(b"Transfer-Encoding: chunked", method=b"POST")
BAD_CHUNKS = [
    ("size-overflow", b"10000000000000000\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"),
    ("size-32-digits", b"0" * 31 + b"5\r\nhello\r\n0\r\n\r\n"),
    ("size-plus", b"+5\r\nhello\r\n0\r\n\r\n"),
    ("size-minus", b"-5\r\nhello\r\n0\r\n\r\n"),
    ("size-leading-space", b" 5\r\nhello\r\n0\r\n\r\n"),
    ("size-trailing-space", b"5 \r\nhello\r\n0\r\n\r\n"),
    ("size-0x", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("size-not-hex", b"g\r\nhello\r\n0\r\n\r\n"),
    ("size-empty", b"\r\nhello\r\n0\r\n\r\n"),
    ("ext-oversized", b"5;" + b"e" * 1100 + b"\r\nhello\r\n0\r\n\r\n"),
    ("missing-crlf-after-data", b"5\r\nhelloX\r\n0\r\n\r\n"),
    ("lf-after-data", b"5\r\nhello\n0\r\n\r\n"),
    ("bare-lf-size-line", b"5\nhello\r\n0\r\n\r\n"),
]


@pytest.mark.parametrize("body", [v for _, v in BAD_CHUNKS],
                         ids=[i for i, _ in BAD_CHUNKS])
def test_malformed_chunked_body_is_refused(px, body):
    p, up = px
    reply = talk(p.https_port, CHUNK_HEAD + body)
    rs = reply.responses()
    assert reply.closed, reply
    # A 400 (the upstream, still waiting for the body, has not answered),
    # then the close.
    assert [r.status for r in rs] == [400] and rs[0].complete, reply
    settle()
    assert up.requests == [], [r.raw for r in up.requests]
    assert b"hello\r\n0\r\n\r\n" not in up.raw()


def test_chunk_extensions_under_the_limit_are_accepted(px):
    p, up = px
    body = (b"5;" + b"e" * 900 + b"\r\nhello\r\n"
            b"1;a=b;c=\"q d\"\r\n!\r\n0\r\n\r\n")
    reply = talk(p.https_port, head(b"Transfer-Encoding: chunked",
                                    b"Connection: close",
                                    method=b"POST") + body)
    assert reply.status == 200, reply
    assert up.requests[0].body == b"hello!"
    assert b"eee" not in up.raw()


# Transfer-Encoding values that mean one final chunked: accepted.
@pytest.mark.parametrize("value", [b"chunked", b"chunked ", b"  chunked",
                                   b"\tchunked\t", b"Chunked", b"CHUNKED"],
                         ids=["plain", "ows-after", "ows-before", "tabs",
                              "capital", "upper"])
def test_chunked_spellings_are_accepted(px, value):
    p, up = px
    raw = (head(b"Transfer-Encoding: " + value, b"Connection: close",
                method=b"POST") + b"5\r\nhello\r\n0\r\n\r\n")
    reply = talk(p.https_port, raw)
    assert reply.status == 200, reply
    assert up.requests[0].body == b"hello"


def test_absolute_form_authority_wins_over_host(px):
    p, up = px
    raw = (b"GET http://localhost/x?q=1 HTTP/1.1\r\nHost: other.example\r\n"
           b"Connection: close\r\n\r\n")
    reply = talk(p.https_port, raw)
    assert reply.status == 200, reply
    req = up.requests[0]
    assert req.target == "/x?q=1"
    assert req.header("Host") == ["localhost"]
    assert b"other.example" not in up.raw()


def test_absolute_form_unknown_authority_is_404(px):
    p, up = px
    raw = (b"GET http://other.example/x HTTP/1.1\r\nHost: localhost\r\n"
           b"Connection: close\r\n\r\n")
    reply = talk(p.https_port, raw)
    assert reply.status == 404, reply
    assert_nothing_upstream(up, reply)


def test_absolute_form_without_path(px):
    p, up = px
    raw = (b"GET http://a.example.test HTTP/1.1\r\nHost: a.example.test\r\n"
           b"Connection: close\r\n\r\n")
    reply = talk(p.https_port, raw)
    assert reply.status == 200, reply
    assert up.requests[0].target == "/"
    assert up.requests[0].header("Host") == ["a.example.test"]


# ---- limits --------------------------------------------------------------

def test_request_line_over_default_limit_is_414(px):
    p, up = px
    raw = b"GET /" + b"a" * 8300 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    assert_rejected(talk(p.https_port, raw), 414, up)


def test_request_line_under_default_limit_passes(px):
    p, up = px
    path = b"/" + b"a" * 8100
    reply = talk(p.https_port, head(b"Connection: close", target=path))
    assert reply.status == 200, reply
    assert up.requests[0].target.encode() == path


def test_request_line_limit_is_configurable(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, http={"max-request-line": 300})
    reply = talk(p.https_port, head(b"Connection: close",
                                    target=b"/" + b"b" * 250))
    assert reply.status == 200, reply
    assert len(upstream.requests) == 1
    forget(upstream)
    reply = talk(p.https_port, head(target=b"/" + b"b" * 350))
    assert_rejected(reply, 414, upstream)


def fields(n, size=10):
    return [b"X-F%d: %s" % (i, b"v" * size) for i in range(n)]


def test_too_many_fields_is_431(px):
    p, up = px
    assert_rejected(talk(p.https_port, head(*fields(120))), 431, up)


def test_many_fields_under_the_limit_pass(px):
    p, up = px
    reply = talk(p.https_port, head(*fields(90), b"Connection: close"))
    assert reply.status == 200, reply
    assert len(up.requests[0].header("X-F89")) == 1


def test_head_over_default_size_is_431(px):
    p, up = px
    assert_rejected(talk(p.https_port, head(b"X-Big: " + b"x" * 17000)),
                    431, up)


def test_head_over_default_size_in_many_fields_is_431(px):
    p, up = px
    assert_rejected(talk(p.https_port, head(*fields(60, 300))), 431, up)


def test_field_limits_are_configurable(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream,
                    http={"max-headers": 20, "max-header-size": 2048,
                          "max-request-line": 1024})
    reply = talk(p.https_port, head(*fields(15), b"Connection: close"))
    assert reply.status == 200, reply
    reply = talk(p.https_port, head(b"X-Big: " + b"x" * 1500,
                                    b"Connection: close"))
    assert reply.status == 200, reply
    assert len(upstream.requests) == 2
    forget(upstream)
    assert_rejected(talk(p.https_port, head(*fields(25))), 431, upstream)
    assert_rejected(talk(p.https_port, head(b"X-Big: " + b"x" * 2500)), 431,
                    upstream)


def test_heads_up_to_the_largest_limit_reach_the_upstream(make_proxy,
                                                          upstream):
    """max-header-size allows 64 KiB: a head that large is forwarded
    whole, with and without a body (the upstream side's buffer is sized
    to the head)."""
    p = start_proxy(make_proxy, upstream,
                    http={"max-header-size": 65536,
                          "max-request-line": 65536})
    big = b"x" * 60000
    reply = talk(p.https_port, head(b"X-Big: " + big, b"Connection: close"))
    assert reply.status == 200, reply
    req = upstream.requests[-1]
    assert req.header("X-Big") == [big.decode()]
    body = bytes(range(256)) * 300
    reply = talk(p.https_port, head(b"X-Big: " + big,
                                    b"Content-Length: %d" % len(body),
                                    b"Connection: close",
                                    method=b"POST") + body)
    assert reply.status == 200, reply
    req = upstream.requests[-1]
    assert req.header("X-Big") == [big.decode()] and req.body == body
    target = b"/" + b"t" * 50000
    reply = talk(p.https_port, head(b"X-Big: " + b"y" * 10000,
                                    b"Connection: close", target=target))
    assert reply.status == 200, reply
    assert upstream.requests[-1].target == target.decode()


def test_chunked_request_whose_head_nearly_fills_a_buffer(make_proxy,
                                                          upstream):
    """Rebuilt heads of 32,740 to 32,780 bytes with an empty chunked
    body: each gets its answer (a head that left fewer than 5 bytes of a 32 KiB
    buffer made the last chunk not fit, and the worker exit).  A new
    upstream connection each time: the head waits for the connect, and
    the last chunk comes in the same read."""
    p = start_proxy(make_proxy, upstream,
                    http={"max-header-size": 65536,
                          "max-request-line": 65536},
                    configure=site_settings(**{"upstream-keepalive": 0}))

    def chunked(pad):
        return head(b"X-Pad: " + b"p" * pad, b"Transfer-Encoding: chunked",
                    b"Connection: close", method=b"POST") + b"0\r\n\r\n"
    reply = talk(p.https_port, chunked(30000))
    assert reply.status == 200, reply
    raw = upstream.requests[-1].raw
    base = raw.index(b"\r\n\r\n") + 4 - 30000   # head size minus pad
    for size in range(32740, 32781):
        reply = talk(p.https_port, chunked(size - base))
        assert reply.status == 200, (size, reply)
        req = upstream.requests[-1]
        assert req.raw.index(b"\r\n\r\n") + 4 == size and \
            req.body == b"", size
    assert p.log().count("worker 0 started") == 1, "a worker restarted"


def test_limits_follow_a_reload(px):
    p, up = px
    many = head(*fields(15), b"Connection: close")
    body = head(b"Content-Length: 200", b"Connection: close",
                method=b"POST") + b"x" * 200
    assert talk(p.https_port, many).status == 200
    assert talk(p.https_port, body).status == 200
    p.settings["http"] = {"max-headers": 10}
    p.settings["body"] = {"limit-bytes": 100}
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    forget(up)
    assert_rejected(talk(p.https_port, many), 431, up)
    assert_rejected(talk(p.https_port, body), 413, up)


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0"],
                         ids=["2.0", "3.0"])
def test_unsupported_version_is_505(px, version):
    p, up = px
    assert_rejected(talk(p.https_port, head(version=version)), 505, up)


@pytest.mark.parametrize("value", [b"something", b"100-continue-please",
                                   b"200-ok"],
                         ids=["token", "longer", "200"])
def test_unknown_expectation_is_417(px, value):
    p, up = px
    raw = head(b"Expect: " + value, b"Content-Length: 5",
               method=b"POST") + b"hello"
    assert_rejected(talk(p.https_port, raw), 417, up)


# ---- keep-alive, pipelining, HTTP/1.0 ------------------------------------

def test_keep_alive_serves_several_requests(px):
    p, up = px
    with connect(p.https_port) as s:
        for i in range(3):
            s.sendall(head(target=b"/k%d" % i))
            data, closed = read_until_close(
                s, want=lambda d: finals(parse_responses(d)) and
                finals(parse_responses(d))[0].complete)
            assert not closed, data
            r = parse_responses(data)[0]
            assert r.status == 200 and json.loads(r.body)["target"] == f"/k{i}"
            assert not r.header("Connection"), r
        s.sendall(head(b"Connection: close", target=b"/last"))
        data, closed = read_until_close(s)
    assert closed, data
    r = parse_responses(data)[0]
    assert r.status == 200 and r.one("Connection").lower() == "close"
    assert [q.target for q in up.requests] == ["/k0", "/k1", "/k2", "/last"]


def test_pipelined_requests_are_answered_in_order(px):
    p, up = px
    raw = (head(target=b"/p1") +
           head(b"Content-Length: 5", method=b"POST", target=b"/p2") +
           b"hello" +
           head(b"Transfer-Encoding: chunked", method=b"PUT",
                target=b"/p3") + b"3\r\nabc\r\n0\r\n\r\n" +
           head(b"Connection: close", target=b"/p4"))
    reply = talk(p.https_port, raw)
    rs = reply.responses()
    assert reply.closed
    assert [r.status for r in rs] == [200] * 4, reply
    assert [json.loads(r.body)["target"] for r in rs] == \
        ["/p1", "/p2", "/p3", "/p4"]
    assert [(q.method, q.target, q.body) for q in up.requests] == [
        ("GET", "/p1", b""), ("POST", "/p2", b"hello"),
        ("PUT", "/p3", b"abc"), ("GET", "/p4", b"")]


def test_nothing_after_connection_close_is_forwarded(px):
    p, up = px
    raw = head(b"Connection: close", target=b"/1") + head(target=b"/2")
    reply = talk(p.https_port, raw)
    assert [r.status for r in reply.responses()] == [200], reply
    assert reply.closed
    settle()
    assert [q.target for q in up.requests] == ["/1"]


def test_pipelined_request_after_an_error_is_not_forwarded(px):
    """After a 400 the connection closes: a request pipelined behind it is
    neither answered nor forwarded."""
    p, up = px
    raw = head(b"X-A : bad") + head(target=b"/smuggled")
    assert_rejected(talk(p.https_port, raw), 400, up)


def test_requests_split_between_cr_and_lf(px):
    """A head and a chunked body cut after every CR (and the size line in
    two) arrive in many TLS records: the parser must pair CR and LF across
    reads."""
    p, up = px
    raw = (head(b"Transfer-Encoding: chunked", b"X-A: 1", method=b"POST",
                target=b"/split") + b"1" + b"0\r\n" + b"x" * 16 +
           b"\r\n0\r\n\r\n" + head(b"Connection: close", target=b"/next"))
    pieces = [piece + b"\r" for piece in raw.split(b"\r")]
    pieces[-1] = pieces[-1][:-1]
    reply = talk(p.https_port, None, pieces=pieces, pause=0.01)
    assert [r.status for r in reply.responses()] == [200, 200], reply
    assert [(q.target, q.body) for q in up.requests] == \
        [("/split", b"x" * 16), ("/next", b"")]
    assert up.requests[0].header("X-A") == ["1"]


def test_http10_is_answered_then_closed(px):
    p, up = px
    reply = talk(p.https_port, head(version=b"HTTP/1.0"))
    rs = reply.responses()
    assert [r.status for r in rs] == [200], reply
    assert reply.closed, reply
    assert up.requests[0].target == "/"


def test_http10_keep_alive_is_still_closed(px):
    p, up = px
    raw = head(b"Connection: keep-alive", version=b"HTTP/1.0")
    reply = talk(p.https_port, raw + head(version=b"HTTP/1.0",
                                          target=b"/second"))
    rs = reply.responses()
    assert [r.status for r in rs] == [200], reply
    assert reply.closed, reply
    assert [q.target for q in up.requests] == ["/"]


def chunked_response(req):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")


def test_http10_client_gets_chunked_response_close_delimited(make_proxy,
                                                             make_upstream):
    up = make_upstream(handler=raw_upstream(chunked_response))
    p = start_proxy(make_proxy, up)
    reply = talk(p.https_port, head(version=b"HTTP/1.0"))
    assert reply.closed, reply
    hd, _, body = reply.data.partition(b"\r\n\r\n")
    r = parse_responses(hd + b"\r\n\r\n")[0]
    assert r.status == 200
    assert not r.has("Transfer-Encoding") and not r.has("Content-Length"), r
    assert body == b"hello world"


def test_http10_client_gets_close_delimited_response(make_proxy,
                                                     make_upstream):
    up = make_upstream(handler=raw_upstream(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold style",
        close=True))
    p = start_proxy(make_proxy, up)
    reply = talk(p.https_port, head(version=b"HTTP/1.0"))
    assert reply.closed, reply
    hd, _, body = reply.data.partition(b"\r\n\r\n")
    r = parse_responses(hd + b"\r\n\r\n")[0]
    assert r.status == 200
    assert not r.has("Transfer-Encoding"), r
    assert body == b"old style"


# ---- Expect: 100-continue ------------------------------------------------

def test_expect_100_continue(px):
    p, up = px
    with connect(p.https_port) as s:
        s.sendall(head(b"Expect: 100-continue", b"Content-Length: 5",
                       b"Connection: close", method=b"POST"))
        data, closed = read_until_close(
            s, want=lambda d: b"\r\n\r\n" in d)
        assert not closed, data
        assert data == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        data, closed = read_until_close(s)
    rs = parse_responses(data)
    assert [r.status for r in rs] == [200], data
    req = up.requests[0]
    assert req.body == b"hello"
    assert req.header("Expect") == []
    assert b"100-continue" not in up.raw().lower()


def test_expect_100_continue_not_sent_for_a_refused_request(make_proxy,
                                                            upstream):
    p = start_proxy(make_proxy, upstream, body={"limit-bytes": 1000})
    raw = head(b"Expect: 100-continue", b"Content-Length: 5000",
               method=b"POST")
    reply = talk(p.https_port, raw)
    assert b"100 Continue" not in reply.data
    assert_rejected(reply, 413, upstream)


def test_expect_100_continue_for_unknown_host_is_404(px):
    p, up = px
    raw = head(b"Expect: 100-continue", b"Content-Length: 5",
               method=b"POST", host=b"nowhere.test")
    reply = talk(p.https_port, raw)
    assert b"100 Continue" not in reply.data
    assert reply.status == 404, reply
    assert reply.closed, reply
    assert_nothing_upstream(up, reply)


# ---- the body limit ------------------------------------------------------

@pytest.fixture
def limited(make_proxy, upstream):
    return start_proxy(make_proxy, upstream, body={"limit-bytes": 1000}), \
        upstream


def test_content_length_over_limit_is_413(limited):
    p, up = limited
    raw = head(b"Content-Length: 1001", method=b"POST") + b"x" * 1001
    assert_rejected(talk(p.https_port, raw), 413, up)


def test_content_length_over_limit_is_413_before_the_body(limited):
    p, up = limited
    with connect(p.https_port) as s:
        s.sendall(head(b"Content-Length: 1000000", method=b"POST"))
        data, closed = read_until_close(s)
    rs = parse_responses(data)
    assert [r.status for r in rs] == [413], data
    assert closed
    assert_nothing_upstream(up, data)


def test_content_length_at_limit_is_accepted(limited):
    p, up = limited
    raw = head(b"Content-Length: 1000", b"Connection: close",
               method=b"POST") + b"x" * 1000
    reply = talk(p.https_port, raw)
    assert reply.status == 200, reply
    assert up.requests[0].body == b"x" * 1000


def test_chunked_body_over_limit_is_413_and_closed(limited):
    p, up = limited
    pieces = [head(b"Transfer-Encoding: chunked", method=b"POST"),
              b"258\r\n" + b"a" * 600 + b"\r\n",
              b"258\r\n" + b"b" * 600 + b"\r\n",
              b"0\r\n\r\n"]
    reply = talk(p.https_port, None, pieces=pieces)
    rs = reply.responses()
    assert [r.status for r in rs] == [413], reply
    assert reply.closed
    settle()
    assert up.requests == []
    assert b"b" * 600 not in up.raw()


def test_chunked_body_at_limit_is_accepted(limited):
    p, up = limited
    pieces = [head(b"Transfer-Encoding: chunked", b"Connection: close",
                   method=b"POST"),
              b"190\r\n" + b"a" * 400 + b"\r\n",
              b"258\r\n" + b"b" * 600 + b"\r\n",
              b"0\r\n\r\n"]
    reply = talk(p.https_port, None, pieces=pieces)
    assert reply.status == 200, reply
    assert up.requests[0].body == b"a" * 400 + b"b" * 600


def test_no_body_limit_when_zero(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, body={"limit-bytes": 0})
    raw = head(b"Content-Length: 300000", b"Connection: close",
               method=b"POST") + b"z" * 300000
    reply = talk(p.https_port, raw)
    assert reply.status == 200, reply
    assert len(upstream.requests[0].body) == 300000


# ---- what reaches the upstream -------------------------------------------

def test_hop_by_hop_and_client_forwarding_fields_are_replaced(px):
    p, up = px
    raw = head(b"Connection: keep-alive, X-Hop-A",
               b"Connection: x-hop-b, close",
               b"X-Hop-A: 1", b"X-HOP-B: 2",
               b"Keep-Alive: timeout=5",
               b"Proxy-Connection: keep-alive",
               b"TE: trailers",
               b"Trailer: X-T",
               b"Upgrade: h2c",
               b"X-Forwarded-For: 6.6.6.6",
               b"x-forwarded-for: 7.7.7.7",
               b"X-Real-IP: 6.6.6.6",
               b"X-Forwarded-Proto: http",
               b"X-Forwarded-Host: evil.test",
               b"Forwarded: for=6.6.6.6;proto=http",
               b"X_Forwarded_For: 8.8.8.8",
               b"X-Keep: kept")
    reply = talk(p.https_port, raw)
    assert reply.status == 200, reply
    req = up.requests[0]
    names = [n.lower() for n, _ in req.headers]
    for gone in ("connection", "x-hop-a", "x-hop-b", "keep-alive",
                 "proxy-connection", "te", "trailer", "upgrade",
                 "forwarded", "x_forwarded_for"):
        assert gone not in names, (gone, req.raw)
    assert req.header("X-Forwarded-Host") == ["localhost"]
    assert req.header("X-Real-IP") == ["127.0.0.1"]
    assert req.header("X-Forwarded-For") == ["127.0.0.1"]
    assert req.header("X-Forwarded-Proto") == ["https"]
    assert req.header("X-Keep") == ["kept"]
    for evil in (b"6.6.6.6", b"7.7.7.7", b"8.8.8.8", b"evil.test"):
        assert evil not in up.raw(), evil


# Fields an upstream takes for the word of a proxy (its framework's
# ProxyFix, Symfony, Rack, PHP, a CDN's client address ...): a client's
# never get through, whatever the case, however many.  The list is
# doc/portcullis.8's.
PROXY_TRUST = [
    "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Scheme",
    "X-Forwarded-Ssl", "X-Forwarded-Server", "X-Forwarded-Uri",
    "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-For",
    "X-Forwarded-User", "Forwarded", "Front-End-Https", "X-Original-URL",
    "X-Original-Host", "X-Rewrite-URL", "True-Client-IP", "X-Client-IP",
    "Client-IP", "X-Cluster-Client-IP", "X-Real-IP", "X-Real-Port",
    "X-Url-Scheme", "X-Scheme", "CF-Connecting-IP", "Fastly-Client-IP",
    "X-SSL-Client-Cert", "X-Client-Cert", "X-ARR-ClientCert",
]
SET_BY_PROXY = ["X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto",
                "X-Forwarded-Host", "X-Forwarded-Port"]


@pytest.mark.parametrize("http", ["--http1.1", "--http2"])
def test_proxy_trust_fields_are_dropped_or_ours(px, http):
    """curl over HTTP/1.1 and HTTP/2 sends every proxy-trust field three
    times (as written, lower case, odd case) with values that name
    nothing the proxy knows; the upstream gets none of them, and gets
    X-Forwarded-Port (the listener's port, not the one in Host) and
    X-Forwarded-Host (the request's host as sent) from the proxy."""
    p, up = px
    args = []
    for name in PROXY_TRUST:
        odd = "".join(c.upper() if i % 2 else c.lower()
                      for i, c in enumerate(name))
        for n, v in ((name, "evil.test"), (name.lower(), "6.6.6.6"),
                     (odd, "/evil-prefix")):
            args += ["-H", f"{n}: {v}"]
    out = subprocess.run(
        ["curl", "-sS", "-k", http, "-o", "/dev/null", "-w",
         "%{http_version} %{http_code}",
         "--resolve", f"localhost:{p.https_port}:127.0.0.1",
         "-H", "Host: localhost:9", "-H", "X-Keep: kept", *args,
         f"https://localhost:{p.https_port}/trust"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ("1.1 200" if http == "--http1.1" else "2 200"), \
        out.stdout
    req = up.requests[-1]
    for name in PROXY_TRUST:
        want = 1 if name in SET_BY_PROXY else 0
        assert len(req.header(name)) == want, (name, req.raw)
    for evil in (b"evil", b"6.6.6.6"):
        assert evil not in up.raw(), (evil, req.raw)
    assert req.header("X-Forwarded-Port") == [str(p.https_port)]
    assert req.header("X-Forwarded-Host") == ["localhost:9"]
    assert req.header("Host") == ["localhost:9"]
    assert req.header("X-Forwarded-For") == ["127.0.0.1"]
    assert req.header("X-Real-IP") == ["127.0.0.1"]
    assert req.header("X-Forwarded-Proto") == ["https"]
    assert req.header("X-Keep") == ["kept"]


@pytest.mark.parametrize("name", [b"X_Custom", b"x_real_ip", b"_", b"A_"],
                         ids=["custom", "real-ip", "only", "trailing"])
def test_underscore_field_names_are_dropped(px, name):
    p, up = px
    reply = talk(p.https_port, head(name + b": secret", b"Connection: close"))
    assert reply.status == 200, reply
    assert b"secret" not in up.raw()


def test_host_is_passed_as_sent(px):
    p, up = px
    host = b"LocalHost:%d" % p.https_port
    reply = talk(p.https_port, head(b"Connection: close", host=host))
    assert reply.status == 200, reply
    assert up.requests[0].header("Host") == [host.decode()]


def test_field_order_and_bytes_are_preserved(px):
    p, up = px
    raw = head(b"X-First: 1", b"x-MiXeD-case: Some  Value;q=\"a,b\"",
               b"Accept: */*", b"X-Empty:", b"X-Tabs:\tin\tside\t",
               b"Cookie: a=1", b"Cookie: b=2", b"X-Last: z",
               b"Connection: close")
    reply = talk(p.https_port, raw)
    assert reply.status == 200, reply
    req = up.requests[0]
    got = [(n, v) for n, v in req.headers
           if n.lower() not in ("host", "x-real-ip", "x-forwarded-for",
                                "x-forwarded-proto", "x-forwarded-host",
                                "x-forwarded-port")]
    assert got == [("X-First", "1"),
                   ("x-MiXeD-case", 'Some  Value;q="a,b"'),
                   ("Accept", "*/*"), ("X-Empty", ""),
                   ("X-Tabs", "in\tside"),
                   ("Cookie", "a=1"), ("Cookie", "b=2"), ("X-Last", "z")]
    assert b"\r\nx-MiXeD-case: Some  Value;q=\"a,b\"\r\n" in req.raw


def test_framing_fields_are_generated(px):
    p, up = px
    raw = (head(target=b"/none") +
           head(b"Content-Length: 3", method=b"POST", target=b"/cl") +
           b"abc" +
           head(b"Transfer-Encoding: chunked", method=b"POST",
                target=b"/te") + b"2;x=y\r\nab\r\n1\r\nc\r\n0\r\n\r\n" +
           head(b"Connection: close", method=b"DELETE", target=b"/del"))
    reply = talk(p.https_port, raw)
    assert [r.status for r in reply.responses()] == [200] * 4, reply
    none, cl, te, dele = up.requests
    for req in (none, dele):
        assert req.header("Content-Length") == [], req.raw
        assert req.header("Transfer-Encoding") == [], req.raw
    assert cl.header("Content-Length") == ["3"] and cl.body == b"abc"
    assert cl.header("Transfer-Encoding") == []
    assert te.header("Transfer-Encoding") == ["chunked"], te.raw
    assert te.header("Content-Length") == []
    assert te.body == b"abc"
    assert b"x=y" not in te.raw


def test_request_line_reaches_upstream_unchanged(px):
    p, up = px
    targets = [b"/", b"/a/b?c=d&e=%2F", b"/x;p=1/y?", b"//double"]
    raw = b"".join(head(target=t) for t in targets) + \
        head(b"Connection: close", method=b"PATCH", target=b"/m")
    reply = talk(p.https_port, raw)
    assert [r.status for r in reply.responses()] == [200] * 5, reply
    lines = [q.raw.split(b"\r\n", 1)[0] for q in up.requests]
    assert lines == [b"GET " + t + b" HTTP/1.1" for t in targets] + \
        [b"PATCH /m HTTP/1.1"]


def test_options_asterisk_is_forwarded_as_asterisk(px):
    """RFC 9112 3.2.4: server-wide OPTIONS keeps its "*" target."""
    p, up = px
    reply = talk(p.https_port, head(b"Connection: close", method=b"OPTIONS",
                                    target=b"*"))
    assert reply.status == 200, reply
    assert up.raw().startswith(b"OPTIONS * HTTP/1.1\r\n"), up.raw()[:80]


def test_options_absolute_form_with_empty_path_becomes_asterisk(px):
    """RFC 9112 3.2.4: OPTIONS http://host (no path) reaches the origin as
    "*"; with a path, or another method, the path is kept ("/" for GET)."""
    p, up = px
    raw = (head(method=b"OPTIONS", target=b"http://localhost") +
           head(method=b"OPTIONS", target=b"https://localhost:443/") +
           head(method=b"OPTIONS", target=b"http://localhost/a") +
           head(b"Connection: close", target=b"http://localhost"))
    reply = talk(p.https_port, raw)
    assert [r.status for r in reply.responses()] == [200] * 4, reply
    lines = [q.raw.split(b"\r\n", 1)[0] for q in up.requests]
    assert lines == [b"OPTIONS * HTTP/1.1", b"OPTIONS / HTTP/1.1",
                     b"OPTIONS /a HTTP/1.1", b"GET / HTTP/1.1"], lines


def test_websocket_upgrade_keeps_upgrade(make_proxy, make_upstream):
    def ws(req, conn):
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
                  b"\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n"
                  b"\r\n")
        # Echo whatever comes through the tunnel.
        data = conn.buf
        conn.buf = b""
        while True:
            if data:
                conn.send(data.upper())
            data = conn.sock.recv(65536)
            if not data:
                break
        conn.close()

    up = make_upstream(handler=ws)
    p = start_proxy(make_proxy, up)
    raw = head(b"Connection: Upgrade", b"Upgrade: websocket",
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
               b"Sec-WebSocket-Version: 13", target=b"/ws")
    with connect(p.https_port) as s:
        s.sendall(raw)
        data, closed = read_until_close(
            s, want=lambda d: b"\r\n\r\n" in d)
        assert data.startswith(b"HTTP/1.1 101 "), data
        s.sendall(b"ping")
        more, _ = read_until_close(s, want=lambda d: b"PING" in d)
        assert b"PING" in data + more
    req = up.requests[0]
    assert [v.lower() for v in req.header("Upgrade")] == ["websocket"]
    assert "upgrade" in req.one("Connection").lower()
    assert req.header("Sec-WebSocket-Key") == ["dGhlIHNhbXBsZSBub25jZQ=="]


def test_other_upgrades_are_dropped(px):
    p, up = px
    reply = talk(p.https_port, head(b"Connection: Upgrade, close",
                                    b"Upgrade: h2c", b"HTTP2-Settings: AAA"))
    assert reply.status == 200, reply
    req = up.requests[0]
    assert req.header("Upgrade") == [] and req.header("Connection") == []


# ---- responses -----------------------------------------------------------

def test_chunked_response_is_reframed(make_proxy, make_upstream):
    up = make_upstream(handler=raw_upstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"))
    p = start_proxy(make_proxy, up)
    reply = talk(p.https_port, head() + head(b"Connection: close"))
    rs = reply.responses()
    assert [r.status for r in rs] == [200, 200], reply
    for r in rs:
        assert r.chunked and r.complete
        assert r.one("Transfer-Encoding").lower() == "chunked"
        assert not r.has("Content-Length")
        assert r.body == b"hello world"
        assert r.header("X-Up") == ["1"]
    assert b"ext=1" not in reply.data


def test_close_delimited_response_reaches_http11_client_chunked(
        make_proxy, make_upstream):
    up = make_upstream(handler=raw_upstream(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
        b"until the end", close=True))
    p = start_proxy(make_proxy, up)
    with connect(p.https_port) as s:
        for i in range(2):
            s.sendall(head(target=b"/c%d" % i))
            data, closed = read_until_close(
                s, want=lambda d: (rs := parse_responses(d)) and
                rs[0].complete and rs[0].chunked)
            assert not closed, data
            r = parse_responses(data)[0]
            assert r.status == 200 and r.body == b"until the end", data
            assert not r.has("Content-Length")
    assert len(up.requests) == 2


def test_head_response_keeps_content_length(make_proxy, make_upstream):
    def answer(req):
        if req.method == "HEAD":
            return (b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n"
                    b"Content-Type: text/plain\r\n\r\n")
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    up = make_upstream(handler=raw_upstream(answer))
    p = start_proxy(make_proxy, up)
    reply = talk(p.https_port, head(method=b"HEAD") +
                 head(b"Connection: close"))
    rs = parse_responses(reply.data, methods=["HEAD", "GET"])
    assert [r.status for r in rs] == [200, 200], reply
    assert rs[0].header("Content-Length") == ["1234"]
    assert rs[0].body == b""
    assert rs[1].body == b"ok"


@pytest.mark.parametrize("status_line", [b"204 No Content",
                                         b"304 Not Modified"],
                         ids=["204", "304"])
def test_bodiless_statuses(make_proxy, make_upstream, status_line):
    def answer(req):
        if req.target == "/empty":
            return b"HTTP/1.1 " + status_line + b"\r\nETag: \"e\"\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"

    up = make_upstream(handler=raw_upstream(answer))
    p = start_proxy(make_proxy, up)
    reply = talk(p.https_port, head(target=b"/empty") +
                 head(b"Connection: close", target=b"/next"))
    rs = reply.responses()
    assert [r.status for r in rs] == [int(status_line[:3]), 200], reply
    assert not rs[0].has("Transfer-Encoding"), rs[0]
    assert rs[0].body == b""
    assert rs[0].header("ETag") == ['"e"']
    if rs[0].status == 204:
        assert not rs[0].has("Content-Length"), rs[0]
    assert rs[1].body == b"next"


def test_upstream_hop_by_hop_response_fields_are_removed(make_proxy,
                                                         make_upstream):
    up = make_upstream(handler=raw_upstream(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Up-Hop\r\n"
        b"X-Up-Hop: secret\r\nKeep-Alive: timeout=5\r\n"
        b"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTrailer: X-T\r\n"
        b"X-Kept: yes\r\nContent-Length: 2\r\n\r\nok"))
    p = start_proxy(make_proxy, up)
    with connect(p.https_port) as s:
        s.sendall(head())
        data, closed = read_until_close(
            s, want=lambda d: (rs := parse_responses(d)) and rs[0].complete)
    assert not closed, data
    r = parse_responses(data)[0]
    assert r.status == 200 and r.body == b"ok"
    for gone in ("Connection", "X-Up-Hop", "Keep-Alive", "Proxy-Connection",
                 "Upgrade", "Trailer"):
        assert not r.has(gone), (gone, data)
    assert r.header("X-Kept") == ["yes"]
    assert r.header("Content-Length") == ["2"]


def test_upstream_closing_does_not_close_the_client(make_proxy,
                                                    make_upstream):
    up = make_upstream(handler=raw_upstream(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n"
        b"\r\nok", close=True))
    p = start_proxy(make_proxy, up)
    reply = talk(p.https_port, head() + head(b"Connection: close"))
    rs = reply.responses()
    assert [(r.status, r.body) for r in rs] == [(200, b"ok")] * 2, reply
    assert not rs[0].has("Connection"), rs[0]
    assert rs[1].one("Connection").lower() == "close"


def test_interim_upstream_responses_are_not_final(make_proxy, make_upstream):
    up = make_upstream(handler=raw_upstream(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"))
    p = start_proxy(make_proxy, up)
    reply = talk(p.https_port, head() + head(b"Connection: close"))
    rs = finals(reply.responses())
    assert [(r.status, r.body) for r in rs] == [(200, b"final")] * 2, reply


def test_large_bodies_stream_both_ways(make_proxy, make_upstream):
    """Several megabytes each way, through buffers far smaller."""
    blob = bytes(range(256)) * 12288          # 3 MiB

    def answer(req):
        if req.target == "/chunked":
            parts = [blob[i:i + 100000] for i in range(0, len(blob), 100000)]
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in parts)
                    + b"0\r\n\r\n")
        return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                % len(req.body) + req.body)

    up = make_upstream(handler=raw_upstream(answer))
    p = start_proxy(make_proxy, up, body={"limit-bytes": 0})
    raw = (head(b"Content-Length: %d" % len(blob), method=b"POST",
                target=b"/echo") + blob +
           head(b"Connection: close", target=b"/chunked"))
    reply = talk(p.https_port, raw, timeout=10.0)
    rs = reply.responses()
    assert [r.status for r in rs] == [200, 200]
    assert rs[0].body == blob and rs[0].one("Content-Length") == str(len(blob))
    assert rs[1].chunked and rs[1].body == blob
    assert up.requests[0].body == blob


def test_truncated_upstream_body_cuts_the_client(make_proxy, make_upstream):
    """An upstream that closes before its Content-Length is complete: the
    client sees a cut connection, never a shortened response that looks
    whole, and no further request is read on that connection."""
    up = make_upstream(handler=raw_upstream(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..",
        close=True))
    p = start_proxy(make_proxy, up)
    reply = talk(p.https_port, head() + head(target=b"/next"))
    assert reply.closed, reply
    rs = reply.responses()
    assert len(rs) == 1 and rs[0].status == 200 and not rs[0].complete, reply
    assert [q.target for q in up.requests] == ["/"]


def test_connection_close_sent_to_http10_client(px):
    p, up = px
    reply = talk(p.https_port, head(version=b"HTTP/1.0"))
    r = reply.responses()[0]
    assert r.status == 200
    assert r.one("Connection").lower() == "close"


# ---- error responses -----------------------------------------------------

def assert_short_plain_error(r, status):
    assert r.status == status, r
    assert r.one("Content-Type").startswith("text/plain"), r
    assert len(r.body) < 200, r
    assert str(status).encode() in r.body


LEAKS = [b"127.0.0.1", b"/tmp", b"/work", b".c:", b"gnutls", b"GnuTLS",
         b"libev", b"portcullis", b"errno", b"strerror"]


def assert_no_leak(r, *extra):
    for word in LEAKS + list(extra):
        assert word.lower() not in r.body.lower(), (word, r.body)


def test_error_bodies_are_short_and_leak_nothing(px):
    p, up = px
    cases = [(head(b"X-A : b"), 400),
             (head(b"Connection: close", host=b"nowhere.test"), 404),
             (head(version=b"HTTP/2.0"), 505),
             (head(b"Expect: nope"), 417),
             (head(target=b"/" + b"a" * 9000), 414),
             (head(*fields(120)), 431)]
    for raw, status in cases:
        reply = talk(p.https_port, raw)
        assert_short_plain_error(reply.responses()[0], status)
        assert_no_leak(reply.responses()[0])


class Nobody:
    """An upstream address where nothing listens."""

    def __init__(self):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"


def test_bad_gateway_does_not_name_the_upstream(make_proxy):
    dead = Nobody()
    p = start_proxy(make_proxy, dead)
    reply = talk(p.https_port, head(b"Connection: close"))
    r = reply.responses()[0]
    assert_short_plain_error(r, 502)
    assert_no_leak(r, str(dead.port).encode())


def test_bad_upstream_response_is_502(make_proxy, make_upstream):
    up = make_upstream(handler=raw_upstream(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
        b"\r\nok!", close=True))
    p = start_proxy(make_proxy, up)
    reply = talk(p.https_port, head(b"Connection: close"))
    r = reply.responses()[0]
    assert_short_plain_error(r, 502)
    assert_no_leak(r, str(up.port).encode())


# ---- the access log ------------------------------------------------------

def test_access_line_per_request(px):
    p, up = px
    raw = head(target=b"/one?x=1") + head(
        b"Content-Length: 4", b"Connection: close", method=b"POST",
        target=b"/two") + b"data"
    reply = talk(p.https_port, raw)
    rs = reply.responses()
    assert [r.status for r in rs] == [200, 200]
    events = events_up_to_sentinel(p)
    assert len(events) == 2, p.log()
    for ev in events:
        assert list(k for k in ev if k != "_line") == ACCESS_KEYS, ev["_line"]
        assert ev["client_ip"] == "127.0.0.1"
        assert ev["host"] == "localhost"
        assert ev["protocol"] == "HTTP/1.1"
        assert ev["status"] == "200"
        assert ev["upstream"] == up.addr
        int(ev["duration_ms"])
    one, two = events
    assert (one["method"], one["path"]) == ("GET", "/one?x=1")
    assert (two["method"], two["path"]) == ("POST", "/two")
    assert int(one["bytes_in"]) == len(head(target=b"/one?x=1"))
    assert int(two["bytes_in"]) == len(raw) - len(head(target=b"/one?x=1"))
    assert int(one["bytes_out"]) + int(two["bytes_out"]) == len(reply.data)


def test_access_line_fresh_per_request(px):
    """Each request's line starts empty: a malformed second request on a
    keep-alive connection carries nothing of the first's (the log is
    taken at a request's first byte and given back at its end)."""
    p, up = px
    raw = head(target=b"/first/" + b"a" * 1500) + b"NOT A REQUEST\r\n\r\n"
    reply = talk(p.https_port, raw)
    assert [r.status for r in reply.responses()] == [200, 400]
    events = events_up_to_sentinel(p)
    assert len(events) == 2, p.log()
    one, two = events
    assert one["path"] == "/first/" + "a" * 1500
    assert one["upstream"] == up.addr
    assert (two["method"], two["host"], two["path"], two["upstream"]) == \
        ("-", "-", "-", "-"), two["_line"]
    assert two["status"] == "400"
    assert int(two["bytes_out"]) == len(reply.data) - int(one["bytes_out"])


def test_access_line_for_http10(px):
    p, up = px
    talk(p.https_port, head(version=b"HTTP/1.0"))
    events = events_up_to_sentinel(p)
    assert [e["protocol"] for e in events] == ["HTTP/1.0"]


SENTINEL = head(b"Connection: close", target=b"/sentinel")


def events_up_to_sentinel(p):
    """The ACCESS events once the sentinel request (sent last, on its own
    connection, to a proxy with one worker) is logged: everything before
    it is in the log by then."""
    reply = talk(p.https_port, SENTINEL)
    assert reply.status == 200, reply
    events = wait_until(
        lambda: (ev := access_events(p.log())) and
        ev[-1]["path"] == "/sentinel" and ev, 5.0, what="sentinel logged")
    return events[:-1]


@pytest.mark.parametrize("raw,status", [
    (head(b"X-A : b"), 400),
    (head(host=None), 400),
    (head(host=b"nowhere.test"), 404),
    (head(b"Content-Length: 5000", method=b"POST"), 413),
    (head(target=b"/" + b"a" * 9000), 414),
    (head(*fields(120)), 431),
    (head(version=b"HTTP/2.0"), 505),
    (head(b"Expect: nope"), 417),
], ids=["400", "400-no-host", "404", "413", "414", "431", "505", "417"])
def test_errors_are_logged_without_upstream(limited, raw, status):
    p, up = limited
    reply = talk(p.https_port, raw)
    assert reply.status == status
    events = events_up_to_sentinel(p)
    assert [(e["status"], e["upstream"]) for e in events] == \
        [(str(status), "-")], p.log()
    assert events[0]["client_ip"] == "127.0.0.1"


@pytest.mark.parametrize("path", [b'/x"client_ip=1.2.3.4', b"/a\\b",
                                  b"/a%0ab", b'/q?a="b"%20c',
                                  b'/x"upstream="evil"status="999'],
                         ids=["quote-forge", "backslash", "pct-0a",
                              "quotes-in-query", "forge-many"])
def test_access_log_escapes_path(px, path):
    p, up = px
    reply = talk(p.https_port, head(b"Connection: close", target=path))
    assert reply.status is not None, reply
    # access_events() fails on a line that does not parse as TS TAG k=v...
    # or that carries a key twice.
    events = events_up_to_sentinel(p)
    assert len(events) == 1, p.log()
    ev = events[0]
    assert ev["client_ip"] == "127.0.0.1"
    assert ev["status"] == str(reply.status)
    assert ev["upstream"] in ("-", up.addr)
    assert ev["path"] == path.decode(), ev["_line"]
    for line in p.log().splitlines():
        assert "1.2.3.4" not in line or " ACCESS " in line, line


def test_access_log_json(make_proxy, upstream):
    def json_format(p):
        p.settings["logging"]["format"] = "json"

    p = start_proxy(make_proxy, upstream, configure=json_format)
    path = b'/j\\"x?client_ip=1.2.3.4'
    replies = [talk(p.https_port, head(b"Connection: close", target=t))
               for t in (b"/ok", path)]
    replies.append(talk(p.https_port, head(b"Connection: close",
                                           host=b"nowhere.test")))
    assert talk(p.https_port, SENTINEL).status == 200

    def logged():
        evs = []
        for line in p.log().splitlines():
            obj = json.loads(line)
            if obj.get("event") == "access":
                evs.append(obj)
        return evs and evs[-1]["path"] == "/sentinel" and evs

    events = wait_until(logged, 5.0, what="sentinel logged")[:-1]
    assert len(events) == 3, p.log()
    ok, quoted, bad = events
    assert set(ACCESS_KEYS) <= set(ok), ok
    assert ok["path"] == "/ok" and ok["client_ip"] == "127.0.0.1"
    assert str(ok["status"]) == "200" and ok["upstream"] == upstream.addr
    assert str(quoted["status"]) == str(replies[1].status)
    if replies[1].status == 200:
        assert quoted["path"] == path.decode()
    assert quoted["client_ip"] == "127.0.0.1"
    assert str(bad["status"]) == "404" and bad["upstream"] == "-"
