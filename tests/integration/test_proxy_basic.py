"""The data path: a first look (GET, POST, headers as forwarded)."""

import json

from conftest import https_get, parse_response, tls_exchange


def test_get_is_forwarded(proxied):
    p, up = proxied
    status, headers, body, _ = https_get(p.https_port, "/a/b?c=d")
    assert status == 200
    info = json.loads(body)
    assert info["method"] == "GET" and info["target"] == "/a/b?c=d"
    req = up.requests[0]
    assert req.one("Host") == "localhost"
    assert req.one("X-Real-IP") == "127.0.0.1"
    assert req.one("X-Forwarded-For") == "127.0.0.1"
    assert req.one("X-Forwarded-Proto") == "https"
    assert req.header("Connection") == []


def test_post_body_is_forwarded(proxied):
    p, up = proxied
    raw = (b"POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
           b"Connection: close\r\n\r\nhello")
    status, _, body, _ = parse_response(tls_exchange(p.https_port, raw))
    assert status == 200
    assert up.requests[0].body == b"hello"
    assert up.requests[0].one("Content-Length") == "5"


def test_chunked_body_is_reframed(proxied):
    p, up = proxied
    raw = (b"POST /up HTTP/1.1\r\nHost: localhost\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n")
    status, _, _, _ = parse_response(tls_exchange(p.https_port, raw))
    assert status == 200
    req = up.requests[0]
    assert req.body == b"abcde"
    assert b"ext=1" not in req.raw and b"Trailer" not in req.raw
