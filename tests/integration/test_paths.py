"""Path blocks (issue 17): a site's path "/prefix/" { upstream } sends the
requests whose normalised path starts with the prefix to another upstream
(the longest prefix wins), replace-path rewrites what goes upstream, and
the normalisation is a security boundary: no spelling of a path reaches an
upstream other than the one its normal form chooses.  Over HTTP/1.1 and
HTTP/2, against real upstreams, with reloads and --validate."""

import json
import time

import pytest

from conftest import https_get, start_proxy, tls_exchange, wait_until
from edgeutil import validate_site
from h1util import parse_responses
from h2util import H2Client
from proxyutil_http import access_events, forget, settle

NAMES = ("site", "api", "v2", "static")


@pytest.fixture
def four(make_proxy, make_upstream):
    """Site localhost on upstream "site"; path blocks /api/ (api),
    /api/v2/ (v2, with replace-path "/"), /static/ (static)."""
    ups = {k: make_upstream() for k in NAMES}

    def configure(p):
        p.listener["site"] = [("localhost", {
            "upstream": ups["site"].addr,
            "path": [("/api/", {"upstream": ups["api"].addr}),
                     ("/api/v2/", {"upstream": ups["v2"].addr,
                                   "replace-path": "/"}),
                     ("/static/", {"upstream": ups["static"].addr})],
        })]

    p = start_proxy(make_proxy, ups["site"], workers=2, configure=configure)
    return p, ups


def h1(p, target, host=b"localhost"):
    raw = (b"GET " + target + b" HTTP/1.1\r\nHost: " + host +
           b"\r\nConnection: close\r\n\r\n")
    rs = parse_responses(tls_exchange(p.https_port, raw))
    assert len(rs) == 1 and rs[0].complete, rs
    return rs[0].status


def h2(p, target):
    with H2Client(p.https_port, validate=False) as c:
        r = c.response(c.request("GET", target.decode("latin-1")))
        return int(r.status)


def where(ups):
    """(name, target) of every request the upstreams saw, then forget."""
    settle()
    seen = [(k, r.target) for k, u in ups.items() for r in u.requests]
    for u in ups.values():
        forget(u)
    return seen


PROTOCOLS = [pytest.param(h1, id="h1"), pytest.param(h2, id="h2")]


# ---- choosing the upstream -------------------------------------------------

ROUTES = [
    # target, upstream, what it sees
    (b"/", "site", "/"),
    (b"/index.html?x=1", "site", "/index.html?x=1"),
    (b"/api/", "api", "/api/"),
    (b"/api/users?q=1", "api", "/api/users?q=1"),
    (b"/api/v2", "api", "/api/v2"),         # /api/v2/ needs the slash
    (b"/api/v2/", "v2", "/"),
    (b"/api/v2/users?q=1&r=2", "v2", "/users?q=1&r=2"),
    (b"/api/v2/a/b/?", "v2", "/a/b/?"),
    (b"/static/app.css", "static", "/static/app.css"),
    (b"/apix", "site", "/apix"),
    (b"/api", "site", "/api"),              # no trailing slash
    (b"/staticx/y", "site", "/staticx/y"),
]


@pytest.mark.parametrize("send", PROTOCOLS)
@pytest.mark.parametrize("target,name,seen", ROUTES,
                         ids=[r[0].decode() for r in ROUTES])
def test_longest_prefix_chooses(four, send, target, name, seen):
    p, ups = four
    assert send(p, target) == 200
    assert where(ups) == [(name, seen)]


def test_access_log_names_the_upstream(four):
    p, ups = four
    assert h1(p, b"/static/x") == 200
    assert h1(p, b"/api/v2/y") == 200
    assert h1(p, b"/z") == 200

    def last(path):
        # A line may be written just after its response went out.
        evs = wait_until(lambda: [e for e in access_events(p.log())
                                  if e["path"] == path],
                         what=f"the ACCESS line of {path}")
        assert len(evs) == 1, evs
        return evs[0]
    assert last("/static/x")["upstream"] == ups["static"].addr
    assert last("/api/v2/y")["upstream"] == ups["v2"].addr
    assert last("/z")["upstream"] == ups["site"].addr


# ---- the normalisation is a security boundary ----------------------------

# target, the upstream its normal form chooses (None: 400, nothing goes
# upstream).  Without replace-path the upstream gets the target as sent.
VECTORS = [
    (b"/static/../api/x", "api"),
    (b"/static/./../api/x", "api"),
    (b"/%2e%2e/api/x", None),               # "/../api/x": above the root
    (b"/%2E%2E/api/x", None),
    (b"/x/%2e%2e/api/x", "api"),
    (b"/x/%2E%2e/api/x", "api"),
    (b"/static/%2e%2e/api/x", "api"),
    (b"/static/%2E./api/x", "api"),
    (b"//api/x", "api"),
    (b"///api//x", "api"),
    (b"/./api/x", "api"),
    (b"/%61pi/x", "api"),                   # %61 is "a"
    (b"/api%2Fx", "api"),
    (b"/api%2fx", "api"),
    (b"/static%2F..%2Fapi/x", "api"),
    (b"/api;x/y", "api"),
    (b"/static/..;/api/x", "api"),
    (b"/static;/../api/x", "api"),
    (b"/API/x", "site"),                    # prefixes are case-sensitive
    (b"/Api/x", "site"),
    (b"/static/%252e%252e/api/x", "static"),  # decoded once, not twice
    (b"/api/..", "site"),                    # is "/"
    (b"/api/../static/x", "static"),
    (b"/api/v2/../../static/x", "static"),
    (b"/static/..", "site"),
    (b"/..", None),                          # above the root
    (b"/../api/x", None),
    (b"/a/../../api/x", None),
    (b"/static/../../api/x", None),
    (b"/%2e%2e/%2e%2e/api/x", None),
    (b"/api/%zz", None),                     # a bad escape
    (b"/api/%2", None),
    (b"/api/x%", None),
]


@pytest.mark.parametrize("send", PROTOCOLS)
@pytest.mark.parametrize("target,name", VECTORS,
                         ids=[v[0].decode() for v in VECTORS])
def test_no_spelling_reaches_another_upstream(four, send, target, name):
    p, ups = four
    status = send(p, target)
    seen = where(ups)
    if name is None:
        assert status == 400, (status, seen)
        assert seen == []
    else:
        assert status == 200, (status, seen)
        assert seen == [(name, target.decode())]


# An absolute-form target (RFC 9112 3.2.2) names the path all the same:
# its path is normalised and routed as an origin-form one, and what goes
# upstream is the origin form of what was sent (or the replaced path).
ABSOLUTE = [
    (b"https://localhost/static/../api/x", "api", "/static/../api/x"),
    (b"https://localhost//api/x", "api", "//api/x"),
    (b"https://localhost/%2e%2e/api/x", None, None),
    (b"https://LOCALHOST:443/api/v2/a?q=1", "v2", "/a?q=1"),
    (b"https://localhost/api%2Fx", "api", "/api%2Fx"),
    (b"https://localhost", "site", "/"),
]


@pytest.mark.parametrize("target,name,seen", ABSOLUTE,
                         ids=[v[0].decode() for v in ABSOLUTE])
def test_absolute_form_is_routed_by_its_path(four, target, name, seen):
    p, ups = four
    status = h1(p, target)
    got = where(ups)
    if name is None:
        assert status == 400 and got == [], (status, got)
    else:
        assert status == 200 and got == [(name, seen)], (status, got)


def test_above_the_root_is_400_without_path_blocks(make_proxy, upstream):
    """Every site, path blocks or not: nginx refuses these too."""
    p = start_proxy(make_proxy, upstream)
    for target in (b"/..", b"/a/../../x", b"/x/%zz"):
        assert h1(p, target) == 400, target
        assert h2(p, target) == 400, target
    assert h1(p, b"/a/../x") == 200
    settle()
    assert [r.target for r in upstream.requests] == ["/a/../x"]


# ---- replace-path ----------------------------------------------------------

@pytest.fixture
def replacing(make_proxy, make_upstream):
    ups = {k: make_upstream() for k in ("site", "api", "v")}

    def configure(p):
        p.listener["site"] = [("localhost", {
            "upstream": ups["site"].addr,
            "path": [("/api/", {"upstream": ups["api"].addr,
                                "replace-path": "/"}),
                     ("/old/", {"upstream": ups["v"].addr,
                                "replace-path": "/new/v2/"}),
                     ("/exact", {"upstream": ups["v"].addr,
                                 "replace-path": "/other"})],
        })]

    return start_proxy(make_proxy, ups["site"], configure=configure), ups


REPLACED = [
    (b"/api/users?q=1", "api", "/users?q=1"),
    (b"/api/", "api", "/"),
    (b"/api/a/b/../c", "api", "/a/c"),       # the normal form goes up
    (b"/api//a", "api", "/a"),
    (b"/api/%7euser", "api", "/~user"),
    (b"/api/a%2Fb", "api", "/a%2Fb"),        # stays one segment
    (b"/api/a%3fb?c=%2F", "api", "/a%3Fb?c=%2F"),  # the query as sent
    (b"/old/x", "v", "/new/v2/x"),
    (b"/old/", "v", "/new/v2/"),
    (b"/exact", "v", "/other"),
    (b"/exact/y", "v", "/other/y"),
    (b"/exactly", "site", "/exactly"),
]


@pytest.mark.parametrize("send", PROTOCOLS)
@pytest.mark.parametrize("target,name,seen", REPLACED,
                         ids=[r[0].decode() for r in REPLACED])
def test_replace_path(replacing, send, target, name, seen):
    p, ups = replacing
    assert send(p, target) == 200
    assert where(ups) == [(name, seen)]


@pytest.mark.parametrize("target", [
    b"/api%2Fusers",            # /api/ chosen only through a decoded %2F
    b"/api;v=1/users",          # ... or a ;parameter
])
def test_replace_path_refuses_what_only_decoding_matched(replacing, target):
    p, ups = replacing
    assert h1(p, target) == 400
    assert h2(p, target) == 400
    assert where(ups) == []


# ---- reload ------------------------------------------------------------------

def test_reload_adds_and_removes_path_blocks(make_proxy, make_upstream):
    site, api = make_upstream(), make_upstream()
    p = start_proxy(make_proxy, site, workers=2)
    ups = {"site": site, "api": api}
    assert h1(p, b"/api/x") == 200
    assert where(ups) == [("site", "/api/x")]
    p.listener["site"][0][1]["path"] = [("/api/", {
        "upstream": api.addr, "replace-path": "/"})]
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0 and reply["status"] == "ok", reply
    for _ in range(6):          # every worker
        assert h1(p, b"/api/x") == 200
        assert h2(p, b"/api/y") == 200
    assert sorted(where(ups)) == sorted([("api", "/x")] * 6 +
                                        [("api", "/y")] * 6)
    del p.listener["site"][0][1]["path"]
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0 and reply["status"] == "ok", reply
    for _ in range(4):
        assert h1(p, b"/api/x") == 200
    assert where(ups) == [("site", "/api/x")] * 4


def test_reload_with_a_bad_path_keeps_the_old_config(four):
    p, ups = four
    text = p.conf_path.read_text()
    p.conf_path.write_text(text.replace('path "/static/"',
                                        'path "static/"'))
    rc, reply = p.ctl("reload")
    assert rc != 0 and reply["status"] == "error", reply
    assert "static/" in reply["message"], reply
    assert h1(p, b"/static/x") == 200
    assert where(ups) == [("static", "/static/x")]


# ---- --validate ------------------------------------------------------------



@pytest.mark.parametrize("body,words", [
    ('path "api/" { upstream = "127.0.0.1:1" }', ("api/", "/")),
    ('path "/a/../b/" { upstream = "127.0.0.1:1" }', ("/a/../b/", "/b/")),
    ('path "//a/" { upstream = "127.0.0.1:1" }', ("//a/", "/a/")),
    ('path "/a?x" { upstream = "127.0.0.1:1" }', ("/a?x",)),
    ('path "/a/" { }', ("upstream",)),
    ('path "/a/" { upstream = "nohostport" }', ("nohostport",)),
    ('path "/a/" { upstream = "127.0.0.1:1" replace-path = "x" }',
     ("replace-path",)),
    ('path "/a/" { upstream = "127.0.0.1:1" replace-path = "/a/../" }',
     ("replace-path",)),
    ('path "/a/" { upstream = "127.0.0.1:1" connect-timeout = 0 }',
     ("connect-timeout",)),
], ids=["relative", "dot-segments", "double-slash", "query", "no-upstream",
        "bad-upstream", "replace-relative", "replace-dots", "timeout"])
def test_validate_refuses_bad_path_blocks(make_proxy, body, words):
    p = make_proxy()
    r, line = validate_site(p, body)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"{p.conf_path}:{line}:" in r.stderr, (line, r.stderr)
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def test_validate_refuses_a_prefix_twice(make_proxy):
    p = make_proxy()
    r, _ = validate_site(p, 'path "/a/" { upstream = "127.0.0.1:1" }\n'
                       'path "/a/" { upstream = "127.0.0.1:2" }')
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "/a/" in r.stderr and str(p.conf_path) in r.stderr, r.stderr


def test_validate_accepts_path_blocks(make_proxy):
    p = make_proxy()
    r, _ = validate_site(p, 'path "/a/" { upstream = "127.0.0.1:1"\n'
                       '  replace-path = "/" connect-timeout = 2\n'
                       '  request-timeout = 3 upstream-keepalive = 0 }\n'
                       'path "/a/b" { upstream = "[::1]:2" }')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"


def test_path_block_takes_the_site_timeouts(make_proxy, make_upstream):
    """A path block without request-timeout has the site's (1 s here):
    a slow path upstream gets 504 after about a second."""
    site = make_upstream()

    def slow(req, conn):
        time.sleep(3)
        conn.respond(200, [], b"late")
    api = make_upstream(handler=slow)

    def configure(p):
        p.listener["site"] = [("localhost", {
            "upstream": site.addr, "request-timeout": 1,
            "path": [("/api/", {"upstream": api.addr})]})]
    p = start_proxy(make_proxy, site, configure=configure)
    t = time.monotonic()
    status, _, _, _ = https_get(p.https_port, "/api/x")
    assert status == 504
    assert time.monotonic() - t < 2.5
    body = json.loads(https_get(p.https_port, "/x")[2])
    assert body["target"] == "/x"
