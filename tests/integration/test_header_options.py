"""response-header, hide-response-header and request-header (issue 18),
per site and per path block, over HTTP/1.1 and HTTP/2 alike: the
upstream's fields of those names replaced or removed, the client's
replaced; HSTS never on the plain port; redirect-port in the redirect's
Location; reloads; --validate with file:line."""

import json
import subprocess

import pytest

from conftest import (BINARY, http_get, https_get, start_proxy, status_of,
                      tls_exchange)
from h1util import parse_one
from edgeutil import refused_at, reload_ok, validate_site
from h2util import H2Client
from proxyutil_http import forget, settle

HSTS = "max-age=63072000; includeSubDomains"

SITE_OPTS = {
    "response-header": (f"Strict-Transport-Security: {HSTS}",
                        "X-Content-Type-Options: nosniff"),
    "hide-response-header": ("Server", "X-Powered-By"),
    "request-header": ("X-Env: prod",),
}


def noisy(req, conn):
    """An upstream that says too much, echoing the request's fields."""
    body = json.dumps(req.describe()).encode()
    status = 404 if req.target.startswith("/missing") else 200
    conn.respond(status, [("Server", "upstream/1.0"),
                          ("X-Powered-By", "PHP/8"),
                          ("x-content-type-options", "sniff"),
                          ("X-Keep", "kept"),
                          ("Content-Type", "application/json")], body)


@pytest.fixture
def edited(make_proxy, make_upstream):
    up = make_upstream(noisy)

    def configure(p):
        body = {"upstream": up.addr}
        body.update(SITE_OPTS)
        body["path"] = [
            # Its own empty lists: nothing added, nothing hidden.
            ("/raw/", {"upstream": up.addr, "response-header": (),
                       "hide-response-header": (), "request-header": ()}),
            # Its own response-header; the site's hide and request lists.
            ("/own/", {"upstream": up.addr,
                       "response-header": ("X-Frame-Options: DENY",)}),
        ]
        p.listener["site"] = [("localhost", body),
                              ("down.example.test",
                               dict({"upstream": "127.0.0.1:9"},
                                    **SITE_OPTS))]

    return start_proxy(make_proxy, up, workers=2, configure=configure), up


def h1(p, path, extra=b""):
    status, fields, body, _ = https_get(p.https_port, path, extra=extra)
    return status, fields, body


def h2(p, path, headers=()):
    with H2Client(p.https_port) as c:
        r = c.response(c.request("GET", path, headers=headers))
    fields = {}
    for n, v in r.headers:
        if not n.startswith(":"):
            fields.setdefault(n, []).append(v)
    return r.status, fields, r.body


PROTOCOLS = [pytest.param(h1, id="h1"), pytest.param(h2, id="h2")]


def seen_by_upstream(up):
    settle()
    reqs = list(up.requests)
    forget(up)
    assert len(reqs) == 1, reqs
    return reqs[0]


@pytest.mark.parametrize("get", PROTOCOLS)
@pytest.mark.parametrize("path", ["/", "/missing"])
def test_site_response_fields(edited, get, path):
    """Added (the upstream's of the same name replaced), hidden, on every
    status the upstream answers."""
    p, up = edited
    status, fields, _ = get(p, path)
    assert status == (404 if path == "/missing" else 200)
    assert fields["strict-transport-security"] == [HSTS], fields
    assert fields["x-content-type-options"] == ["nosniff"], fields
    assert "server" not in fields and "x-powered-by" not in fields, fields
    assert fields["x-keep"] == ["kept"], fields
    seen_by_upstream(up)


def test_h1_head_bytes(edited):
    """The configured fields follow the upstream's, with their case."""
    p, _ = edited
    data = tls_exchange(p.https_port, b"GET / HTTP/1.1\r\nHost: localhost"
                        b"\r\nConnection: close\r\n\r\n")
    r, _ = parse_one(data)
    names = [n for n, _ in r.headers]
    sts = names.index("Strict-Transport-Security")
    assert names[sts:sts + 3] == ["Strict-Transport-Security",
                                  "X-Content-Type-Options",
                                  "Content-Length"], names
    assert names[:sts] == ["X-Keep", "Content-Type"], names
    assert b"\r\nStrict-Transport-Security: " + HSTS.encode() + b"\r\n" \
        in r.head


def h2_request_fields(p, path, headers):
    with H2Client(p.https_port) as c:
        r = c.response(c.request("GET", path, headers=headers))
    assert r.status == 200
    return r


@pytest.mark.parametrize("proto", ["h1", "h2"])
def test_request_header_replaces_the_clients(edited, proto):
    p, up = edited
    if proto == "h1":
        status, _, _ = h1(p, "/", extra=b"X-Env: dev\r\nx-env: other\r\n"
                          b"X-Other: 1\r\n")
        assert status == 200
    else:
        h2_request_fields(p, "/", [("x-env", "dev"), ("x-other", "1")])
    req = seen_by_upstream(up)
    assert req.header("X-Env") == ["prod"], req.headers
    assert req.header("X-Other") == ["1"], req.headers
    names = [n.lower() for n, _ in req.headers]
    # After the forwarded fields, before the proxy's own.
    assert names.index("x-env") > names.index("x-other")
    assert names.index("x-env") < names.index("x-real-ip")


@pytest.mark.parametrize("get", PROTOCOLS)
def test_path_block_lists_replace_the_sites(edited, get):
    p, up = edited
    status, fields, _ = get(p, "/raw/x", **(
        {"extra": b"X-Env: dev\r\n"} if get is h1 else
        {"headers": [("x-env", "dev")]}))
    assert status == 200
    assert "strict-transport-security" not in fields, fields
    assert fields["server"] == ["upstream/1.0"], fields
    assert fields["x-content-type-options"] == ["sniff"], fields
    assert seen_by_upstream(up).header("X-Env") == ["dev"]
    status, fields, _ = get(p, "/own/x")
    assert fields["x-frame-options"] == ["DENY"], fields
    assert "strict-transport-security" not in fields, fields
    assert "server" not in fields, fields           # the site's hide
    assert seen_by_upstream(up).header("X-Env") == ["prod"]


@pytest.mark.parametrize("get", PROTOCOLS)
def test_own_answers_carry_none(edited, get):
    """The proxy's own answers (here 502: the upstream is down) carry
    none of the configured fields: they are the upstream's responses'."""
    p, _ = edited
    if get is h1:
        status, fields, _, _ = https_get(p.https_port, "/",
                                         host="down.example.test")
    else:
        with H2Client(p.https_port) as c:
            r = c.response(c.request("GET", "/",
                                     authority="down.example.test"))
        status, fields = r.status, {n: v for n, v in r.headers}
    assert status == 502
    assert "strict-transport-security" not in fields, fields


def test_plain_port_never_sends_hsts(edited):
    p, up = edited
    for path in ("/", "/raw/x", "/.well-known/acme-challenge/x"):
        reply = http_get(p.http_port, raw=(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Connection: close\r\n\r\n").encode())
        assert status_of(reply) == 301, reply
        assert b"strict-transport-security" not in reply.lower(), reply
    reply = http_get(p.http_port, raw=b"GET / HTTP/1.1\r\nHost: nope\r\n"
                     b"Connection: close\r\n\r\n")
    assert status_of(reply) == 404
    assert b"strict-transport-security" not in reply.lower(), reply
    assert up.requests == []


def test_reload_changes_the_fields(edited):
    p, up = edited
    site = p.listener["site"][0][1]
    site["response-header"] = ("X-Version: 2",)
    del site["hide-response-header"]
    site["request-header"] = ("X-Env: staging",)
    reload_ok(p)
    for _ in range(4):                      # both workers
        for get in (h1, h2):
            status, fields, _ = get(p, "/")
            assert fields["x-version"] == ["2"], fields
            assert "strict-transport-security" not in fields, fields
            assert fields["server"] == ["upstream/1.0"], fields
            assert seen_by_upstream(up).header("X-Env") == ["staging"]


# ---- redirect-port ----------------------------------------------------------

def location(p, path="/x?y=1"):
    reply = http_get(p.http_port, raw=(
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
        f"Connection: close\r\n\r\n").encode())
    r, _ = parse_one(reply)
    assert r.status == 301, reply
    return r.one("Location")


def test_redirect_port(make_proxy):
    """The Location names redirect-port (none for 443), changed by a
    reload in every worker."""
    p = start_proxy(make_proxy, workers=2)
    assert location(p) == f"https://localhost:{p.https_port}/x?y=1"
    for port, want in ((443, "https://localhost/x?y=1"),
                       (8443, "https://localhost:8443/x?y=1")):
        p.listener["redirect-port"] = port
        reload_ok(p)
        for _ in range(4):
            assert location(p) == want


# ---- --validate ------------------------------------------------------------



@pytest.mark.parametrize("body,words", [
    ('response-header = { "X-A: a\\r\\nX-B: b" }', ("CR, LF",)),
    ('response-header = { "X-A: a\\nb" }', ("CR, LF",)),
    ('response-header = { "X-A" }', ('"Name: value"',)),
    ('response-header = { "Bad Name: x" }', ("token",)),
    ('response-header = { "X-A: " }', ("value",)),
    ('response-header = { "X-A: b " }', ("blank",)),
    ('response-header = { "Content-Length: 1" }', ("frames",)),
    ('response-header = { "Transfer-Encoding: chunked" }', ("frames",)),
    ('response-header = { "Connection: close" }', ("hop-by-hop",)),
    ('response-header = { "Set-Cookie: a=1" }', ("Set-Cookie",)),
    ('response-header = { "X-A: 1", "x-a: 2" }', ("twice",)),
    ('hide-response-header = { "Keep-Alive" }', ("hop-by-hop",)),
    ('hide-response-header = { "X A" }', ("token",)),
    ('request-header = { "Host: evil" }', ("Host",)),
    ('request-header = { "X-Forwarded-For: 1.2.3.4" }', ("X-Forwarded-For",)),
    ('request-header = { "X-Real-IP: 1.2.3.4" }', ("X-Real-IP",)),
    ('request-header = { "Forwarded: for=x" }', ("Forwarded",)),
    ('request-header = { "Content-Length: 0" }', ("frames",)),
    ('path "/a/" { upstream = "127.0.0.1:1"\n'
     '  request-header = { "Expect: 100-continue" } }', ("Expect",)),
], ids=["crlf", "lf", "no-colon", "name", "empty", "trailing-blank",
        "content-length", "transfer-encoding", "connection", "set-cookie",
        "twice", "hide-hop", "hide-name", "host", "xff", "x-real-ip",
        "forwarded", "request-framing", "path-expect"])
def test_validate_refuses_bad_fields(make_proxy, body, words):
    refused_at(make_proxy(), body, words,
               offset=1 if body.startswith("path") else 0)


def test_validate_refuses_bad_redirect_ports(make_proxy):
    p = make_proxy()
    for http, port, words in (
            (0, 443, "redirect-port: the listener has no http-port"),
            (p.http_port, 0, "'redirect-port' must be between 1 and 65535")):
        p.listener["http-port"] = http
        p.listener["redirect-port"] = port
        p.write_config()
        r = subprocess.run([str(BINARY), "--validate", "-c",
                            str(p.conf_path)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and words in r.stderr, r.stderr


def test_validate_accepts_fields(make_proxy):
    p = make_proxy()
    r, _ = validate_site(p, 'response-header = { "Strict-Transport-Security: '
                       'max-age=63072000; includeSubDomains",\n'
                       '  "X-Content-Type-Options: nosniff",\n'
                       '  "Content-Security-Policy: default-src \'self\'" }\n'
                       'hide-response-header = { "Server", "X-Powered-By" }\n'
                       'request-header = { "X-Env: prod" }')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"
