"""Routing by host: exact names, one-label wildcards, normalisation of the
Host, unknown hosts, 421 Misdirected Request when a request asks for a
site served by another certificate than the connection's, and the plain
HTTP listener's redirects."""

import json
import ssl
from pathlib import Path

import pytest

from conftest import free_port, start_proxy, wait_until
from h1util import parse_responses
from proxyutil_http import (access_events, assert_nothing_upstream,
                            assert_rejected, connect, read_until_close, talk)


def request(host, target=b"/", extra=b""):
    return (b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n" +
            extra + b"Connection: close\r\n\r\n")


def set_sites(p, sites):
    p.listener["site"] = [(name, dict(conf)) for name, conf in sites]


# ---- exact names and wildcards -------------------------------------------

@pytest.fixture
def three(make_proxy, make_upstream):
    """Sites localhost, *.example.test and exact.example.test, each on its
    own upstream; all served by the listener's certificate."""
    ups = {k: make_upstream() for k in ("local", "wild", "exact")}

    def configure(p):
        set_sites(p, [("localhost", {"upstream": ups["local"].addr}),
                      ("*.example.test", {"upstream": ups["wild"].addr}),
                      ("exact.example.test",
                       {"upstream": ups["exact"].addr})])

    return start_proxy(make_proxy, ups["local"], configure=configure), ups


ROUTES = [
    ("localhost", "local"),
    ("LOCALHOST", "local"),
    ("localhost.", "local"),
    ("localhost:8443", "local"),
    ("LocalHost.:443", "local"),
    ("a.example.test", "wild"),
    ("A.Example.TEST", "wild"),
    ("a.example.test.", "wild"),
    ("a.example.test:1234", "wild"),
    ("x-1.example.test", "wild"),
    ("exact.example.test", "exact"),
    ("EXACT.Example.Test:99", "exact"),
    ("exact.example.test.", "exact"),
]


@pytest.mark.parametrize("host,site", ROUTES, ids=[h for h, _ in ROUTES])
def test_host_selects_site(three, host, site):
    p, ups = three
    reply = talk(p.https_port, request(host.encode(), b"/r"))
    assert reply.status == 200, reply
    for name, up in ups.items():
        got = [q.target for q in up.requests]
        assert got == (["/r"] if name == site else []), (name, got)
    # The Host goes on as the client sent it.
    assert ups[site].requests[0].header("Host") == [host]


NOT_ROUTED = [
    "a.b.example.test",     # a wildcard covers exactly one label
    "a.exact.example.test",
    "example.test",         # ... and not the parent itself
    "xexample.test",
    "a.example.test.evil",
    "localhost.example",
    "nope.test",
    "localhost.localdomain",
    "127.0.0.1",            # IP literals are no site
    "127.0.0.1:443",
    "[::1]",
    "[::1]:443",
]


@pytest.mark.parametrize("host", NOT_ROUTED, ids=NOT_ROUTED)
def test_unknown_host_is_404(three, host):
    p, ups = three
    reply = talk(p.https_port, request(host.encode()))
    assert reply.status == 404, reply
    assert reply.closed
    for up in ups.values():
        assert_nothing_upstream(up, reply)


# Odd but syntactically possible names: refused (404, or 400 as
# malformed), never routed anywhere.
ODD = ["localhost..", ".example.test", "a..example.test", ".",
       "*.example.test.."]


@pytest.mark.parametrize("host", ODD, ids=ODD)
def test_odd_hosts_are_not_routed(three, host):
    p, ups = three
    reply = talk(p.https_port, request(host.encode()))
    assert reply.status in (400, 404), reply
    for up in ups.values():
        assert_nothing_upstream(up, reply)


def test_unknown_host_keeps_the_connection(three):
    """A 404 is an answer like any other: the next request on the same
    connection is served."""
    p, ups = three
    raw = (b"GET /a HTTP/1.1\r\nHost: nope.test\r\n\r\n" +
           request(b"localhost", b"/b"))
    reply = talk(p.https_port, raw)
    assert [r.status for r in reply.responses()] == [404, 200], reply
    assert [q.target for q in ups["local"].requests] == ["/b"]


def test_host_is_routed_per_request(three):
    """Each request on a keep-alive connection is routed by its own Host."""
    p, ups = three
    raw = (b"GET /1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
           b"GET /2 HTTP/1.1\r\nHost: a.example.test\r\n\r\n"
           b"GET /3 HTTP/1.1\r\nHost: exact.example.test\r\n\r\n" +
           request(b"localhost", b"/4"))
    reply = talk(p.https_port, raw)
    assert [r.status for r in reply.responses()] == [200] * 4, reply
    assert [q.target for q in ups["local"].requests] == ["/1", "/4"]
    assert [q.target for q in ups["wild"].requests] == ["/2"]
    assert [q.target for q in ups["exact"].requests] == ["/3"]


# ---- certificates: 421 and coalescing ------------------------------------

@pytest.fixture
def multicert(make_proxy, upstream, certs):
    """The listener's certificate covers localhost and *.example.test;
    other.test has its own; shared1.test and shared2.test share one."""
    other = certs.get("other.test", ["other.test"])
    shared = certs.get("shared.test", ["shared1.test", "shared2.test"])

    def configure(p):
        up = {"upstream": upstream.addr}
        set_sites(p, [
            ("localhost", up), ("*.example.test", up),
            ("other.test", {**up, "cert": str(other[0]),
                            "key": str(other[1])}),
            ("shared1.test", {**up, "cert": str(shared[0]),
                              "key": str(shared[1])}),
            ("shared2.test", {**up, "cert": str(shared[0]),
                              "key": str(shared[1])}),
        ])

    p = start_proxy(make_proxy, upstream, configure=configure)
    listener_cert = p.listener["tls"]["cert"]
    ders = {name: ssl.PEM_cert_to_DER_cert(Path(path).read_text())
            for name, path in (("listener", listener_cert),
                               ("other", other[0]), ("shared", shared[0]))}
    return p, upstream, ders


CERT_CASES = [
    # (sni, host, status, certificate the handshake must present)
    ("localhost", "other.test", 421, "listener"),
    ("a.example.test", "other.test", 421, "listener"),
    ("other.test", "localhost", 421, "other"),
    ("other.test", "a.example.test", 421, "other"),
    ("shared1.test", "other.test", 421, "shared"),
    ("other.test", "shared2.test", 421, "other"),
    ("localhost", "shared1.test", 421, "listener"),
    ("other.test", "other.test", 200, "other"),
    ("OTHER.test", "other.test", 200, "other"),
    ("localhost", "a.example.test", 200, "listener"),
    ("a.example.test", "localhost", 200, "listener"),
    ("b.example.test", "c.example.test", 200, "listener"),
    ("shared1.test", "shared2.test", 200, "shared"),
    ("shared2.test", "shared1.test", 200, "shared"),
    (None, "localhost", 200, "listener"),
    (None, "a.example.test", 200, "listener"),
    (None, "other.test", 421, "listener"),
    (None, "shared1.test", 421, "listener"),
    ("unknown.test", "localhost", 200, "listener"),
    ("unknown.test", "other.test", 421, "listener"),
    ("a.b.example.test", "other.test", 421, "listener"),
    ("localhost", "nowhere.test", 404, "listener"),
    ("other.test", "nowhere.test", 404, "other"),
]


@pytest.mark.parametrize(
    "sni,host,status,cert", CERT_CASES,
    ids=[f"{s or 'nosni'}-{h}" for s, h, _, _ in CERT_CASES])
def test_certificate_and_misdirected_requests(multicert, sni, host, status,
                                              cert):
    p, up, ders = multicert
    with connect(p.https_port, sni=sni) as s:
        assert s.getpeercert(binary_form=True) == ders[cert]
        s.sendall(request(host.encode(), b"/m"))
        data, closed = read_until_close(s)
    rs = parse_responses(data)
    assert [r.status for r in rs] == [status], data
    if status == 200:
        assert [q.header("Host") for q in up.requests] == [[host]]
    else:
        assert_nothing_upstream(up, data)
        assert b"other.test" not in rs[0].body


def test_misdirected_then_right_host_on_one_connection(multicert):
    """A 421 does not end the connection: the client may go on with a host
    this certificate serves."""
    p, up, _ = multicert
    raw = (b"GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n" +
           request(b"localhost", b"/y"))
    reply = talk(p.https_port, raw)
    assert [r.status for r in reply.responses()] == [421, 200], reply
    assert [q.target for q in up.requests] == ["/y"]


def test_misdirected_request_is_logged(multicert):
    p, up, _ = multicert
    reply = talk(p.https_port, request(b"other.test", b"/mis"))
    assert reply.status == 421
    events = wait_until(lambda: access_events(p.log()), 3.0,
                        what="ACCESS line")
    assert [(e["status"], e["upstream"], e["path"]) for e in events] == \
        [("421", "-", "/mis")]


# ---- the plain-HTTP listener: redirects ----------------------------------

def plain(p, raw):
    return talk(p.http_port, raw, tls=False)


def plain_to(port, raw):
    """The first response to raw on a plain-HTTP port."""
    return talk(port, raw, tls=False).responses()[0]


@pytest.fixture
def px(make_proxy, upstream):
    return start_proxy(make_proxy, upstream), upstream


REDIRECTS = [
    (b"localhost", b"/", "localhost", "/"),
    (b"localhost", b"/p/q?x=1&y=%20", "localhost", "/p/q?x=1&y=%20"),
    (b"LocalHost:80", b"/a", "localhost", "/a"),
    (b"localhost.", b"/a", "localhost", "/a"),
    (b"a.example.test", b"/w?z", "a.example.test", "/w?z"),
    (b"A.EXAMPLE.test:8080", b"/", "a.example.test", "/"),
]


@pytest.mark.parametrize("host,target,want_host,want_path", REDIRECTS,
                         ids=[h.decode() + t.decode()
                              for h, t, _, _ in REDIRECTS])
def test_plain_http_redirects_to_https(px, host, target, want_host,
                                       want_path):
    p, up = px
    reply = plain(p, request(host, target))
    rs = reply.responses()
    assert [r.status for r in rs] == [301], reply
    assert rs[0].one("Location") == \
        f"https://{want_host}:{p.https_port}{want_path}"
    assert len(rs[0].body) < 200
    assert_nothing_upstream(up, reply)


def test_plain_http_redirect_of_absolute_form_uses_the_authority(px):
    p, up = px
    raw = (b"GET http://a.example.test/abs?k=v HTTP/1.1\r\nHost: localhost"
           b"\r\nConnection: close\r\n\r\n")
    reply = plain(p, raw)
    r = reply.responses()[0]
    assert r.status == 301, reply
    assert r.one("Location") == \
        f"https://a.example.test:{p.https_port}/abs?k=v"
    assert_nothing_upstream(up, reply)


def test_plain_http_absolute_form_unknown_authority_is_404(px):
    p, up = px
    raw = (b"GET http://evil.com/x HTTP/1.1\r\nHost: localhost\r\n"
           b"Connection: close\r\n\r\n")
    reply = plain(p, raw)
    r = reply.responses()[0]
    assert r.status == 404 and not r.has("Location"), reply
    assert b"evil.com" not in reply.data
    assert_nothing_upstream(up, reply)


@pytest.mark.parametrize("host", [b"evil.com", b"a.b.example.test",
                                  b"example.test", b"127.0.0.1",
                                  b"localhost.evil.com"],
                         ids=["evil", "two-labels", "parent", "ip",
                              "suffix"])
def test_plain_http_unknown_host_is_404(px, host):
    p, up = px
    reply = plain(p, request(host, b"/x"))
    r = reply.responses()[0]
    assert r.status == 404, reply
    assert not r.has("Location")
    assert host not in reply.data
    assert_nothing_upstream(up, reply)


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: localhost\rLocation: http://evil.com\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: localhost\nLocation: http://evil.com\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: local\x00host\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: localhost/evil.com\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: evil.com@localhost\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.com\r\n\r\n",
], ids=["cr-injection", "lf-injection", "nul", "slash", "userinfo",
        "no-host", "two-hosts"])
def test_plain_http_bad_host_is_400(px, raw):
    p, up = px
    reply = plain(p, raw)
    assert b"evil.com" not in reply.data
    assert_rejected(reply, 400, up)


def test_plain_http_redirect_is_logged(px):
    p, up = px
    reply = plain(p, request(b"localhost", b"/logged"))
    assert reply.status == 301
    events = wait_until(lambda: access_events(p.log()), 3.0,
                        what="ACCESS line")
    assert [(e["status"], e["upstream"], e["path"], e["host"])
            for e in events] == [("301", "-", "/logged", "localhost")]


def test_plain_http_post_is_redirected_and_closed(px):
    p, up = px
    raw = (b"POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5"
           b"\r\n\r\nhello")
    reply = plain(p, raw)
    r = reply.responses()[0]
    assert r.status == 301, reply
    assert r.one("Location") == f"https://localhost:{p.https_port}/form"
    assert reply.closed
    assert_nothing_upstream(up, reply)


def test_tls_request_routes_after_plain_redirect(px):
    """The redirect target works: the same host over TLS reaches the
    upstream."""
    p, up = px
    r = plain(p, request(b"a.example.test", b"/go")).responses()[0]
    assert r.status == 301
    reply = talk(p.https_port, request(b"a.example.test", b"/go"))
    assert reply.status == 200
    assert json.loads(reply.responses()[0].body)["target"] == "/go"


# ---- sites belong to their listener --------------------------------------

@pytest.fixture
def two_listeners(make_proxy, make_upstream):
    """Listener one serves localhost, listener two *.example.test, each
    with its own upstream (same certificate on both)."""
    ups = {"one": make_upstream(), "two": make_upstream()}
    ports = {}

    def configure(p):
        first = p.listener
        set_sites(p, [("localhost", {"upstream": ups["one"].addr})])
        ports.update(https=free_port(), http=free_port())
        p.settings["listener"].append((None, {
            "bind": "127.0.0.1", "https-port": ports["https"],
            "http-port": ports["http"], "tls": dict(first["tls"]),
            "site": [("*.example.test", {"upstream": ups["two"].addr})]}))

    p = start_proxy(make_proxy, ups["one"], configure=configure)
    return p, ups, ports


@pytest.mark.parametrize("listener,host,served_by", [
    ("one", b"localhost", "one"),
    ("one", b"a.example.test", None),
    ("two", b"a.example.test", "two"),
    ("two", b"localhost", None),
], ids=["one-own", "one-other", "two-own", "two-other"])
def test_a_listener_routes_only_to_its_sites(two_listeners, listener, host,
                                             served_by):
    p, ups, ports = two_listeners
    port = p.https_port if listener == "one" else ports["https"]
    reply = talk(port, request(host, b"/l"), sni=None)
    if served_by is None:
        assert reply.status == 404, reply
    else:
        assert reply.status == 200, reply
    for name, up in ups.items():
        assert [q.target for q in up.requests] == \
            (["/l"] if name == served_by else []), name


def test_plain_redirect_names_its_own_listener(two_listeners):
    p, ups, ports = two_listeners
    r = plain_to(ports["http"], request(b"a.example.test", b"/r"))
    assert r.status == 301
    assert r.one("Location") == f"https://a.example.test:{ports['https']}/r"
    assert plain_to(p.http_port, request(b"a.example.test")).status == 404
    assert plain_to(ports["http"], request(b"localhost")).status == 404
