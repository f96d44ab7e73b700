"""allow and deny (issue 18): client address rules per site and per path
block, first match wins in the order the lists are written, 403 and an
ACCESS line with status=403 for a denied client (which fail2ban's probe
filter counts), nothing sent upstream for it; IPv4 clients from
127.0.0.x (the client socket bound to each), IPv6 from ::1; HTTP/1.1 and
HTTP/2; reloads; --validate."""

import re
import socket
import subprocess

import pytest

from conftest import (SRCDIR, free_port, parse_response, read_all,
                      start_proxy, tls_context, wait_until)
from edgeutil import refused_at, reload_ok, validate_site
from h2util import H2Client
from proxyutil_http import access_events, forget, settle

PROBE_FILTER = SRCDIR / "deploy/fail2ban/filter.d/portcullis-probe.conf"


def get_from(port, src, path="/", dst="127.0.0.1", method="GET",
             body=b""):
    """One request over HTTP/1.1 from source address src: (status,
    fields, body)."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    raw.settimeout(10)
    raw.bind((src, 0))
    raw.connect((dst, port))
    with tls_context().wrap_socket(raw, server_hostname="localhost") as s:
        head = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
                f"Connection: close\r\n")
        if body:
            head += f"Content-Length: {len(body)}\r\n"
        s.sendall(head.encode() + b"\r\n" + body)
        status, fields, data, _ = parse_response(read_all(s), method)
        return status, fields, data


def site_rules(p, upstream, rules, paths=None):
    """Site localhost (the only one) with these options, in this order."""
    body = {"upstream": upstream.addr}
    body.update(rules)
    if paths:
        body["path"] = [(prefix, dict({"upstream": upstream.addr}, **opts))
                        for prefix, opts in paths]
    p.listener["site"] = [("localhost", body)]


def proxy_with(make_proxy, upstream, rules, paths=None, workers=1):
    return start_proxy(make_proxy, upstream, workers=workers,
                       configure=lambda p: site_rules(p, upstream, rules,
                                                      paths))


def denied_lines(p, ip):
    return [e for e in access_events(p.log())
            if e["client_ip"] == ip and e["status"] == "403"]


def denied_rule(p, ip):
    """The denied= of the first 403 ACCESS line of ip, once it is written
    (a worker writes its lines after the response went out)."""
    return wait_until(lambda: denied_lines(p, ip),
                      what=f"a 403 ACCESS line of {ip}")[0]["denied"]


def targets(up):
    settle()
    seen = [r.target for r in up.requests]
    forget(up)
    return seen


# ---- IPv4 -----------------------------------------------------------------

def test_allow_then_deny_is_a_whitelist(make_proxy, upstream):
    p = proxy_with(make_proxy, upstream, {
        "allow": ("127.0.0.2", "127.0.0.16/28"),
        "deny": ("0.0.0.0/0", "::/0")})
    assert get_from(p.https_port, "127.0.0.2", "/a")[0] == 200
    assert get_from(p.https_port, "127.0.0.17", "/b")[0] == 200
    assert get_from(p.https_port, "127.0.0.31", "/c")[0] == 200
    status, fields, body = get_from(p.https_port, "127.0.0.3", "/d")
    assert status == 403 and body == b"403 Forbidden\n", (status, body)
    assert get_from(p.https_port, "127.0.0.32", "/e")[0] == 403
    assert targets(upstream) == ["/a", "/b", "/c"]
    wait_until(lambda: len(denied_lines(p, "127.0.0.32")) == 1,
               what="the ACCESS line of the denied request")
    ev = denied_lines(p, "127.0.0.3")
    assert len(ev) == 1, ev
    ev = ev[0]
    assert ev["path"] == "/d" and ev["upstream"] == "-", ev
    assert ev["denied"] == "deny 0.0.0.0/0", ev
    # The ACCESS lines of allowed clients say nothing of rules.
    ok = [e for e in access_events(p.log()) if e["status"] == "200"]
    assert len(ok) == 3 and not any("denied" in e for e in ok), ok


def test_first_match_wins_in_the_order_written(make_proxy, upstream):
    # deny first: 127.0.0.4 is in both lists, the deny decides.
    p = proxy_with(make_proxy, upstream, {
        "deny": ("127.0.0.0/29",), "allow": ("127.0.0.4", "127.0.0.8")})
    assert get_from(p.https_port, "127.0.0.4")[0] == 403
    assert denied_rule(p, "127.0.0.4") == "deny 127.0.0.0/29"
    assert get_from(p.https_port, "127.0.0.8")[0] == 200
    # With an allow list, a client no rule holds is denied.
    assert get_from(p.https_port, "127.0.0.9")[0] == 403
    assert denied_rule(p, "127.0.0.9") == "not in allow"
    # The same lists, allow written first: the allow decides.
    site_rules(p, upstream, {"allow": ("127.0.0.4", "127.0.0.8"),
                             "deny": ("127.0.0.0/29",)})
    reload_ok(p)
    assert get_from(p.https_port, "127.0.0.4")[0] == 200
    assert get_from(p.https_port, "127.0.0.5")[0] == 403
    assert get_from(p.https_port, "127.0.0.8")[0] == 200


def test_deny_only_is_a_blacklist(make_proxy, upstream):
    p = proxy_with(make_proxy, upstream, {"deny": ("127.0.0.5",
                                                   "127.0.1.0/24")})
    assert get_from(p.https_port, "127.0.0.5")[0] == 403
    assert get_from(p.https_port, "127.0.1.77")[0] == 403
    assert get_from(p.https_port, "127.0.0.6")[0] == 200
    assert get_from(p.https_port, "127.0.0.1")[0] == 200
    assert denied_rule(p, "127.0.1.77") == \
        "deny 127.0.1.0/24"


def test_allow_only_is_a_whitelist(make_proxy, upstream):
    p = proxy_with(make_proxy, upstream, {"allow": ("127.0.0.7",)})
    assert get_from(p.https_port, "127.0.0.7")[0] == 200
    assert get_from(p.https_port, "127.0.0.8")[0] == 403
    assert get_from(p.https_port, "127.0.0.1")[0] == 403
    assert denied_rule(p, "127.0.0.8") == "not in allow"


def test_a_path_block_has_its_own_lists(make_proxy, upstream):
    """nginx's location /admin/ { allow ...; deny all; }: the block's
    lists replace the site's; a block without lists has the site's."""
    p = proxy_with(make_proxy, upstream, {"deny": ("127.0.0.12",)}, paths=[
        ("/admin/", {"allow": ("127.0.0.10",), "deny": ("0.0.0.0/0",)}),
        ("/pub/", {"allow": ("0.0.0.0/0",)}),
        ("/other/", {})])
    port = p.https_port
    assert get_from(port, "127.0.0.10", "/admin/x")[0] == 200
    assert get_from(port, "127.0.0.11", "/admin/x")[0] == 403
    assert get_from(port, "127.0.0.11", "/x")[0] == 200
    # Matched on the normalised path: no spelling gets around the block.
    assert get_from(port, "127.0.0.11", "/pub/../admin/x")[0] == 403
    assert get_from(port, "127.0.0.11", "//admin/x")[0] == 403
    assert get_from(port, "127.0.0.11", "/%61dmin/x")[0] == 403
    # The site denies 127.0.0.12; /pub/ allows everyone, /other/ has the
    # site's rule.
    assert get_from(port, "127.0.0.12", "/x")[0] == 403
    assert get_from(port, "127.0.0.12", "/pub/x")[0] == 200
    assert get_from(port, "127.0.0.12", "/other/x")[0] == 403
    assert get_from(port, "127.0.0.12", "/admin/x")[0] == 403
    assert targets(upstream) == ["/admin/x", "/x", "/pub/x"]


def test_no_spelling_reads_otherwise_upstream(make_proxy, upstream):
    """Without replace-path the target goes upstream as sent, and the
    upstream may read it otherwise than the matching did: nginx takes
    "/admin/;/../x" for /admin/x (matching drops the ;parameter segment
    and sees /x), a router of raw paths takes "/admin/x%2F..%2F..%2Fy"
    for something under /admin/ (matching decodes the %2F and sees /y).
    When the two readings come under different rules: 400, nothing
    upstream.  Where the rules are the same, the request goes."""
    p = proxy_with(make_proxy, upstream, {}, paths=[
        ("/admin/", {"allow": ("127.0.0.10",), "deny": ("0.0.0.0/0",)}),
        ("/open/", {})])
    port = p.https_port
    forget(upstream)
    for target in ("/admin/;/../x", "/admin/x%2F..%2F..%2Fy",
                   "/x%2F..%2Fadmin/y"):
        assert get_from(port, "127.0.0.11", target)[0] == 400, target
    assert targets(upstream) == []
    assert get_from(port, "127.0.0.11", "/open;v=1/x")[0] == 200
    assert get_from(port, "127.0.0.10", "/admin/x")[0] == 200
    assert targets(upstream) == ["/open;v=1/x", "/admin/x"]


def test_a_denied_client_costs_the_upstream_nothing(make_proxy, upstream):
    p = proxy_with(make_proxy, upstream, {"deny": ("127.0.0.13",)})
    forget(upstream)
    status, _, _ = get_from(p.https_port, "127.0.0.13", "/upload",
                            method="POST", body=b"x" * 1000)
    assert status == 403
    settle(0.2)
    assert upstream.connections == 0 and upstream.raw() == b""


# ---- IPv6 -----------------------------------------------------------------

def v6_listener(p, upstream, rules):
    cert, key = p.certs.get("localhost", ["localhost", "*.example.test"])
    port = free_port(socket.AF_INET6, "::1")
    body = {"upstream": upstream.addr}
    body.update(rules)
    p.settings["listener"].append((None, {
        "bind": "::1", "https-port": port, "http-port": 0,
        "tls": {"mode": "manual", "cert": str(cert), "key": str(key)},
        "site": [("localhost", body)]}))
    return port


def test_ipv6_clients(make_proxy, upstream):
    ports = {}

    def configure(p):
        site_rules(p, upstream, {"allow": ("2001:db8::/32",),
                                 "deny": ("::/0", "0.0.0.0/0")})
        ports["v6"] = v6_listener(p, upstream, {
            "allow": ("::1",), "deny": ("::/0",)})

    p = start_proxy(make_proxy, upstream, configure=configure)
    assert get_from(ports["v6"], "::1", "/six", dst="::1")[0] == 200
    # ::/0 never holds an IPv4 client, 0.0.0.0/0 no IPv6 one.
    assert get_from(p.https_port, "127.0.0.1", "/four")[0] == 403
    assert denied_rule(p, "127.0.0.1") == "deny 0.0.0.0/0"
    assert targets(upstream) == ["/six"]
    # ::1 is not in 2001:db8::/32 of the other listener's site: denied by
    # ::/0 there.
    p.settings["listener"][1][1]["site"][0][1]["allow"] = ("2001:db8::/32",)
    reload_ok(p)
    assert get_from(ports["v6"], "::1", "/six", dst="::1")[0] == 403
    assert denied_rule(p, "::1") == "deny ::/0"


# ---- HTTP/2 ---------------------------------------------------------------

def test_http2_denied_and_allowed(make_proxy, upstream):
    p = proxy_with(make_proxy, upstream, {"deny": ("127.0.0.1",)},
                   paths=[("/open/", {"allow": ("127.0.0.1",)})])
    with H2Client(p.https_port) as c:
        denied = c.response(c.request("GET", "/closed"))
        allowed = c.response(c.request("GET", "/open/x"))
        again = c.response(c.request("GET", "/closed2"))
    assert denied.status == 403 and denied.body == b"403 Forbidden\n"
    assert allowed.status == 200 and again.status == 403
    assert targets(upstream) == ["/open/x"]
    ev = wait_until(lambda: [e for e in denied_lines(p, "127.0.0.1")
                             if e["path"] == "/closed2"],
                    what="the ACCESS line")
    assert ev[0]["protocol"] == "h2" and \
        ev[0]["denied"] == "deny 127.0.0.1/32", ev


# ---- reload ---------------------------------------------------------------

def test_reload_changes_the_rules(make_proxy, upstream):
    p = proxy_with(make_proxy, upstream, {}, workers=2)
    for _ in range(4):
        assert get_from(p.https_port, "127.0.0.20")[0] == 200
    site_rules(p, upstream, {"deny": ("127.0.0.20",)})
    reload_ok(p)
    for _ in range(6):                  # whichever worker takes it
        assert get_from(p.https_port, "127.0.0.20")[0] == 403
        assert get_from(p.https_port, "127.0.0.21")[0] == 200
    # A bad rule: the reload fails with file:line, the rules stay.
    text = p.conf_path.read_text()
    p.conf_path.write_text(text.replace('"127.0.0.20"', '"127.0.0.20/8"'))
    rc, reply = p.ctl("reload")
    assert rc != 0 and reply["status"] == "error", reply
    line = next(i for i, l in enumerate(
        p.conf_path.read_text().splitlines(), 1) if "127.0.0.20/8" in l)
    assert f"{p.conf_path}:{line}:" in reply["message"], reply
    assert get_from(p.https_port, "127.0.0.20")[0] == 403
    # Rules removed: everyone again.
    site_rules(p, upstream, {})
    reload_ok(p)
    for _ in range(4):
        assert get_from(p.https_port, "127.0.0.20")[0] == 200


# ---- fail2ban ---------------------------------------------------------------

def test_probe_filter_counts_denied_requests(make_proxy, upstream):
    """deploy/fail2ban's portcullis-probe filter matches the ACCESS line
    of every denied request (status=403), and not the allowed ones."""
    p = proxy_with(make_proxy, upstream, {"deny": ("127.0.0.30",)})
    for i in range(3):
        assert get_from(p.https_port, "127.0.0.30", f"/x{i}")[0] == 403
        assert get_from(p.https_port, "127.0.0.31", f"/y{i}")[0] == 200
    wait_until(lambda: len(access_events(p.log())) == 6,
               what="six ACCESS lines")
    r = subprocess.run(["fail2ban-regex", "--raw", "-o", "ip",
                        str(p.log_path), str(PROBE_FILTER)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ips = [l.strip() for l in r.stdout.splitlines() if l.strip()]
    assert ips == ["127.0.0.30"] * 3, r.stdout


# ---- --validate ------------------------------------------------------------



@pytest.mark.parametrize("body,words", [
    ('allow = { "10.0.0.1/8" }', ("10.0.0.1/8", "past the prefix")),
    ('deny = { "300.0.0.1" }', ("300.0.0.1",)),
    ('deny = { "all" }', ("all", "0.0.0.0/0")),
    ('allow = { "::ffff:0:0/96" }', ("::ffff:0:0/96", "IPv4")),
    ('deny = { "10.0.0.0/33" }', ("10.0.0.0/33",)),
    ('allow = { "10.0.0.0/8" } deny = { "0.0.0.0/0" }', ("one line",)),
    ('path "/a/" { upstream = "127.0.0.1:1" allow = { "fe80::1/200" } }',
     ("fe80::1/200", 'path "/a/"')),
], ids=["host-bits", "not-an-address", "all", "mapped", "prefix",
        "one-line", "path-block"])
def test_validate_refuses_bad_rules(make_proxy, body, words):
    refused_at(make_proxy(), body, words)


def test_validate_refuses_an_empty_list(make_proxy):
    p = make_proxy()
    r, _ = validate_site(p, 'deny = { }')
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert re.search(rf"{re.escape(str(p.conf_path))}:\d+: site "
                     rf"\"localhost\": 'deny' is an empty list", r.stderr), \
        r.stderr


def test_validate_accepts_rules(make_proxy):
    p = make_proxy()
    r, _ = validate_site(p, 'allow = { "192.0.2.0/24", "2001:db8:42::/48",\n'
                       '          "198.51.100.7", "::1" }\n'
                       'deny = { "0.0.0.0/0", "::/0" }\n'
                       'path "/admin/" { upstream = "127.0.0.1:1"\n'
                       '  allow = { "10.0.0.0/8" } }')
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"
