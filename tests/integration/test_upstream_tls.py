"""HTTPS to upstreams (issue 17): upstream-scheme = "https".

nginx is the TLS upstream, with a test CA made here by certtool: a good
certificate (for up.test, localhost and 127.0.0.1), an expired one, one
from an unknown CA, and client certificates.  What is checked, with real
HTTP/1.1 and HTTP/2 clients in front:

- a good certificate: 200, with the SNI the configuration says (the
  upstream's host, upstream-server-name, none for an IP address);
- a wrong name, an expired certificate, an unknown CA, the system store
  that does not know the test CA: 502 and exactly one log line naming
  the server name, the upstream address and why; a handshake of another
  kind that fails (a plain HTTP upstream): 502 and one line too;
- upstream-verify = false: the request goes, and a warning at --validate
  and at load;
- a client certificate nginx requires (ssl_verify_client on): without
  one nginx answers 400 itself, which the client gets as it is; with one,
  200 and nginx saw the proxy's certificate;
- session resumption seen by nginx ($ssl_session_reused), keep-alive
  reuse over TLS ($connection, $connection_requests);
- the retry of a pooled connection closed before answering, over TLS
  (a Python TLS upstream that closes on purpose), and never for a POST;
- a WebSocket tunnel over TLS;
- a reload that switches a site from http to https;
- --validate: every bad option with its file:line.

The master reads every CA, certificate and key file; they are made mode
0600 for root, so a worker (user nobody) could not read them if it
tried.
"""

import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (BINARY, SLOWDOWN, https_get, parse_response,
                      start_proxy, tls_connect, tls_exchange, wait_until)
from h2util import H2Client
from nginx_upstream import NginxUpstream
from proxyutil_http import access_events
from test_streaming import recv_exact, ws_handler, ws_request

CERTTOOL = shutil.which("certtool") or "/usr/bin/certtool"


# ---- the test PKI ---------------------------------------------------------


class PKI:
    """A CA and the certificates of the tests, made once (certtool)."""

    def __init__(self, d):
        self.dir = Path(d)
        self.ca_key, self.ca = self.self_signed("ca", "Portcullis Test CA")
        self.other_ca_key, self.other_ca = self.self_signed(
            "other-ca", "Another Test CA")
        self.good = self.leaf("good", "up.test", ["up.test", "localhost"],
                              ["127.0.0.1"])
        self.expired = self.leaf(
            "expired", "up.test", ["up.test", "localhost"], ["127.0.0.1"],
            dates=('activation_date = "2020-01-01 00:00:00 UTC"',
                   'expiration_date = "2020-02-01 00:00:00 UTC"'))
        self.stranger = self.leaf("stranger", "up.test", ["up.test"],
                                  ["127.0.0.1"], ca="other-ca")
        self.client = self.leaf("client", "portcullis-proxy", [], [],
                                client=True)
        self.other_key = self.key("other")
        for f in self.dir.iterdir():
            os.chmod(f, 0o600)

    def key(self, name):
        path = self.dir / f"{name}.key"
        subprocess.run([CERTTOOL, "--generate-privkey", "--key-type",
                        "ecdsa", "--outfile", str(path)], check=True,
                       capture_output=True)
        return path

    def template(self, name, lines):
        path = self.dir / f"{name}.tmpl"
        path.write_text("\n".join(lines) + "\n")
        return path

    def self_signed(self, name, cn):
        key = self.key(name)
        cert = self.dir / f"{name}.pem"
        tmpl = self.template(name, [f'cn = "{cn}"', "ca",
                                    "cert_signing_key", "expiration_days = 30"])
        subprocess.run([CERTTOOL, "--generate-self-signed",
                        "--load-privkey", str(key), "--template", str(tmpl),
                        "--outfile", str(cert)], check=True,
                       capture_output=True)
        return key, cert

    def leaf(self, name, cn, dns, ips, ca="ca", client=False, dates=None):
        key = self.key(name)
        cert = self.dir / f"{name}.pem"
        lines = [f'cn = "{cn}"', "signing_key",
                 "tls_www_client" if client else "tls_www_server"]
        lines += [f'dns_name = "{d}"' for d in dns]
        lines += [f'ip_address = "{i}"' for i in ips]
        lines += list(dates) if dates else ["expiration_days = 10"]
        tmpl = self.template(name, lines)
        subprocess.run([CERTTOOL, "--generate-certificate",
                        "--load-privkey", str(key),
                        "--load-ca-certificate", str(self.dir / f"{ca}.pem"),
                        "--load-ca-privkey", str(self.dir / f"{ca}.key"),
                        "--template", str(tmpl), "--outfile", str(cert)],
                       check=True, capture_output=True)
        return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("pki"))


# ---- nginx as the TLS upstream --------------------------------------------

NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format up '$ssl_server_name $connection $connection_requests '
                  '$ssl_session_reused $ssl_protocol $ssl_client_verify '
                  '"$ssl_client_s_dn" $request_uri';
    access_log {dir}/access.log up;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000;
    keepalive_timeout 60s;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        {client}
        location / {{ return 200 "tls:$ssl_server_name:$request_uri\\n"; }}
    }}
}}
"""


class NginxTLS(NginxUpstream):
    """nginx serving HTTPS on 127.0.0.1 with cert; with client_ca, it
    requires a client certificate from that CA.  Each request is a line
    of access.log: server name (SNI, "" without), connection serial and
    its request count, whether the session was resumed ("r" or "."),
    the protocol, the client certificate's verification and subject, the
    target."""

    def __init__(self, directory, cert, key, client_ca=None):
        client = ""
        if client_ca:
            client = (f"ssl_verify_client on; "
                      f"ssl_client_certificate {client_ca};")
        super().__init__(directory, conf=lambda d, port: NGINX_CONF.format(
            dir=d, port=port, cert=cert, key=key, client=client))

    def lines(self):
        """The access log, one dict a request."""
        out = []
        path = self.dir / "access.log"
        text = path.read_text() if path.exists() else ""
        for line in text.splitlines():
            m = re.match(r'^(\S*) (\d+) (\d+) (\S*) (\S*) (\S*) "(.*)" (\S+)$',
                         line)
            assert m, line
            out.append({"sni": m.group(1), "conn": int(m.group(2)),
                        "reqs": int(m.group(3)), "reused": m.group(4),
                        "proto": m.group(5), "verify": m.group(6),
                        "client_dn": m.group(7), "uri": m.group(8)})
        return out

    def wait_lines(self, n):
        # nginx writes a line when the request is done: soon after.
        return wait_until(lambda: len(self.lines()) >= n and self.lines(),
                          what=f"{n} nginx access lines")


@pytest.fixture
def make_nginx(tmp_path, pki):
    made = []

    def factory(cert=None, key=None, client_ca=None):
        cert = cert or pki.good[0]
        key = key or pki.good[1]
        n = NginxTLS(tmp_path / f"nginx{len(made)}", cert, key, client_ca)
        made.append(n)
        return n

    yield factory
    for n in made:
        n.stop()


def tls_site(upstream, pki, **opts):
    """A site's settings: https to upstream, trusting the test CA unless
    opts say otherwise (ca=None: no upstream-ca-file at all)."""
    site = {"upstream": upstream, "upstream-scheme": "https"}
    ca = opts.pop("ca", pki.ca)
    if ca is not None:
        site["upstream-ca-file"] = str(ca)
    site.update(opts)
    return site


def proxy_to(make_proxy, site, **overrides):
    """A proxy (one worker) whose site localhost has these settings."""
    def configure(p):
        p.listener["site"] = [("localhost", site)]
    return start_proxy(make_proxy, configure=configure, **overrides)


def get(p, path="/", method="GET"):
    """status, body of one HTTP/1.1 request through the proxy."""
    status, _, body, _ = https_get(p.https_port, path, method=method)
    return status, body


def h2_get(p, path="/"):
    with H2Client(p.https_port) as c:
        st = c.response(c.request("GET", path))
        return st.status, bytes(st.data)


# Passive health's lines (issue 17): a state change of the upstream, not
# the failure of a request ("is down: ..., the last: WHY", "is up again").
STATE_LINE = re.compile(r"\) is (down|up again)")


def warn_lines(p, upstream):
    """The proxy's warning lines about a request to upstream (ACCESS
    lines and passive health's state changes apart)."""
    return [line for line in p.log().splitlines()
            if " WARN " in line and f"upstream {upstream} " in line and
            not STATE_LINE.search(line)]


def state_lines(p, upstream):
    return [line for line in p.log().splitlines()
            if f"upstream {upstream} " in line and STATE_LINE.search(line)]


def expect_one_line(p, upstream, *parts):
    """Exactly one warning about upstream, and it says every part."""
    wait_until(lambda: warn_lines(p, upstream), what="the warning line")
    time.sleep(0.2 * SLOWDOWN)      # a second one would be there now
    lines = warn_lines(p, upstream)
    assert len(lines) == 1, lines
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


# ---- a good certificate ---------------------------------------------------


def test_good_certificate_h1_and_h2(make_proxy, make_nginx, pki):
    """The default name is the upstream's host: a DNS name goes as SNI and
    is verified; upstream-server-name replaces it."""
    n = make_nginx()
    p = proxy_to(make_proxy, tls_site(f"localhost:{n.port}", pki))
    assert get(p, "/h1") == (200, b"tls:localhost:/h1\n")
    assert h2_get(p, "/h2") == (200, b"tls:localhost:/h2\n")
    lines = n.wait_lines(2)
    assert [(x["sni"], x["uri"]) for x in lines] == [
        ("localhost", "/h1"), ("localhost", "/h2")]
    assert all(x["proto"] in ("TLSv1.3", "TLSv1.2") for x in lines)
    # The access line may be written just after the answer went out.
    wait_until(lambda: len(access_events(p.log())) == 2,
               what="two access lines")
    assert [e["status"] for e in access_events(p.log())] == ["200", "200"]
    assert not [line for line in p.log().splitlines() if " WARN " in line]

    p2 = proxy_to(make_proxy, tls_site(n.addr, pki,
                                       **{"upstream-server-name": "up.test"}))
    assert get(p2, "/named") == (200, b"tls:up.test:/named\n")
    assert h2_get(p2, "/named2") == (200, b"tls:up.test:/named2\n")


def test_ip_address_upstream(make_proxy, make_nginx, pki):
    """An IP address: no SNI (RFC 6066), its IP SAN verified."""
    n = make_nginx()
    p = proxy_to(make_proxy, tls_site(n.addr, pki))
    assert get(p, "/ip") == (200, b"tls::/ip\n")
    assert n.wait_lines(1)[0]["sni"] in ("", "-")


# ---- verification failures: 502 and one line ------------------------------


def test_wrong_name(make_proxy, make_nginx, pki):
    n = make_nginx()
    p = proxy_to(make_proxy, tls_site(
        n.addr, pki, **{"upstream-server-name": "wrong.test"}))
    assert get(p)[0] == 502
    assert h2_get(p)[0] == 502
    wait_until(lambda: len(warn_lines(p, n.addr)) >= 2, what="two lines")
    time.sleep(0.2 * SLOWDOWN)          # a third one would be there now
    lines = warn_lines(p, n.addr)
    assert len(lines) == 2, lines       # one per request
    for line in lines:
        assert '\\"wrong.test\\"' in line, line
        assert "does not match" in line, line
    wait_until(lambda: len(access_events(p.log())) == 2,
               what="two access lines")
    assert [e["status"] for e in access_events(p.log())] == ["502", "502"]
    # nginx never saw a request.
    assert n.lines() == []


def test_wrong_name_one_line(make_proxy, make_nginx, pki):
    n = make_nginx()
    p = proxy_to(make_proxy, tls_site(
        n.addr, pki, **{"upstream-server-name": "wrong.test"}))
    assert get(p)[0] == 502
    line = expect_one_line(p, n.addr, '\\"wrong.test\\"',
                           "The name in the certificate does not match")
    assert "site localhost" in line
    # And it counts against the upstream (max-fails 1 by default): the
    # state change is a line of its own.
    assert len(state_lines(p, n.addr)) == 1, p.log()
    assert "is down" in state_lines(p, n.addr)[0]


def test_expired(make_proxy, make_nginx, pki):
    n = make_nginx(*pki.expired)
    p = proxy_to(make_proxy, tls_site(
        n.addr, pki, **{"upstream-server-name": "up.test"}))
    assert get(p)[0] == 502
    expect_one_line(p, n.addr, '\\"up.test\\"', "expired")


def test_unknown_ca(make_proxy, make_nginx, pki):
    n = make_nginx(*pki.stranger)
    p = proxy_to(make_proxy, tls_site(
        n.addr, pki, **{"upstream-server-name": "up.test"}))
    assert get(p)[0] == 502
    expect_one_line(p, n.addr, '\\"up.test\\"', "issuer is unknown")


def test_system_store_does_not_know_the_test_ca(make_proxy, make_nginx, pki):
    """Without upstream-ca-file: the system's bundle, which has no test
    CA in it."""
    n = make_nginx()
    p = proxy_to(make_proxy, tls_site(n.addr, pki, ca=None))
    assert get(p)[0] == 502
    expect_one_line(p, n.addr, '\\"127.0.0.1\\"', "issuer is unknown")


def test_handshake_failure_of_another_kind(make_proxy, tmp_path, pki):
    """https to a plain HTTP server (nginx, which answers the ClientHello
    with a 400 of its own): 502 and one line that says so."""
    up = NginxUpstream(tmp_path / "plain")
    try:
        p = proxy_to(make_proxy, tls_site(up.addr, pki))
        assert get(p)[0] == 502
        expect_one_line(p, up.addr,
                        'TLS handshake for \\"127.0.0.1\\" failed')
    finally:
        up.stop()


def test_failed_handshake_goes_to_the_next_upstream(make_proxy, make_nginx,
                                                    pki):
    """Two upstreams, one with a certificate of an unknown CA: as after a
    connect error (nothing was sent), the request goes to the other, and
    the failed one is marked down (max-fails 1)."""
    bad = make_nginx(*pki.stranger)
    good = make_nginx()
    p = proxy_to(make_proxy, tls_site((bad.addr, good.addr), pki, **{
        "upstream-server-name": "up.test"}))
    for i in range(4):
        assert get(p, f"/n{i}") == (200, f"tls:up.test:/n{i}\n".encode())
    assert bad.lines() == []
    assert len(good.wait_lines(4)) == 4
    wait_until(lambda: len(access_events(p.log())) == 4,
               what="four access lines")
    errors = [e["upstream_error"] for e in access_events(p.log())
              if e.get("upstream_error", "-") != "-"]
    assert len(errors) == 1, errors        # then it is down: skipped
    assert bad.addr in errors[0] and "issuer is unknown" in errors[0]
    assert len(state_lines(p, bad.addr)) == 1
    # Not the request's failure: no line of one.
    assert warn_lines(p, bad.addr) == []


def test_verify_off(make_proxy, make_nginx, pki):
    """upstream-verify = false: anything goes; a warning at --validate
    and at load, with file:line."""
    n = make_nginx(*pki.stranger)
    p = proxy_to(make_proxy, tls_site(
        n.addr, pki, **{"upstream-server-name": "wrong.test",
                        "upstream-verify": False}))
    assert get(p, "/off") == (200, b"tls:wrong.test:/off\n")
    text = p.conf_path.read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "upstream-verify" in t)
    want = (f"{p.conf_path}:{line}: warning: site \"localhost\": "
            "upstream-verify = false: the upstream's certificate is not "
            "checked")
    r = subprocess.run([str(BINARY), "-c", str(p.conf_path), "--validate"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert want in r.stderr
    # At load: what the master said when it started.
    assert want in p.stderr_path.read_text()


# ---- client certificates --------------------------------------------------


def test_client_certificate(make_proxy, make_nginx, pki):
    """nginx with ssl_verify_client on answers a client without a
    certificate itself, with 400: the client gets that answer as it is
    (the upstream's, not the proxy's).  With upstream-client-cert and
    -key, 200, and nginx saw the proxy's certificate."""
    n = make_nginx(client_ca=pki.ca)
    p = proxy_to(make_proxy, tls_site(n.addr, pki))
    status, body = get(p, "/none")
    assert status == 400
    assert b"No required SSL certificate was sent" in body
    p2 = proxy_to(make_proxy, tls_site(
        n.addr, pki, **{"upstream-client-cert": str(pki.client[0]),
                        "upstream-client-key": str(pki.client[1])}))
    assert get(p2, "/cert") == (200, b"tls::/cert\n")
    lines = n.wait_lines(2)
    assert lines[0]["verify"] == "NONE"
    assert lines[1]["verify"] == "SUCCESS"
    assert "CN=portcullis-proxy" in lines[1]["client_dn"]


# ---- sessions and connections ----------------------------------------------


def test_session_resumption(make_proxy, make_nginx, pki):
    """No keep-alive: every request a new connection, each after the
    first resuming the session of the one before ($ssl_session_reused)."""
    n = make_nginx()
    p = proxy_to(make_proxy, tls_site(n.addr, pki, **{
        "upstream-server-name": "up.test", "upstream-keepalive": 0}))
    for i in range(4):
        assert get(p, f"/r{i}") == (200, f"tls:up.test:/r{i}\n".encode())
    lines = n.wait_lines(4)
    assert len({x["conn"] for x in lines}) == 4, lines
    assert [x["reused"] for x in lines] == [".", "r", "r", "r"], lines


def test_keepalive_reuse(make_proxy, make_nginx, pki):
    """Keep-alive over TLS: one connection serves them all, through the
    session tickets a TLS 1.3 nginx sends after the handshake."""
    n = make_nginx()
    p = proxy_to(make_proxy, tls_site(n.addr, pki, **{
        "upstream-server-name": "up.test"}))
    for i in range(5):
        assert get(p, f"/k{i}") == (200, f"tls:up.test:/k{i}\n".encode())
    with H2Client(p.https_port) as c:
        sids = [c.request("GET", f"/s{i}") for i in range(3)]
        for sid in sids:
            assert c.response(sid).status == 200
    lines = n.wait_lines(8)
    conns = {x["conn"] for x in lines}
    assert len(conns) <= 3, lines       # h2: up to 3 at once
    first = [x for x in lines if x["uri"].startswith("/k")]
    assert len({x["conn"] for x in first}) == 1, first
    assert [x["reqs"] for x in first] == [1, 2, 3, 4, 5], first


def test_other_name_other_connection(make_proxy, make_nginx, pki):
    """Two sites to the same address with two names: never each other's
    connection or session (the pool and the cache key by the name too)."""
    n = make_nginx()

    def configure(p):
        p.listener["site"] = [
            ("localhost", tls_site(n.addr, pki, **{
                "upstream-server-name": "up.test"})),
            ("*.example.test", tls_site(n.addr, pki, **{
                "upstream-server-name": "localhost"}))]
    p = start_proxy(make_proxy, configure=configure)
    for i in range(3):
        assert get(p, f"/a{i}")[1] == f"tls:up.test:/a{i}\n".encode()
        status, _, body, _ = https_get(p.https_port, f"/b{i}",
                                       host="x.example.test")
        assert (status, body) == (200, f"tls:localhost:/b{i}\n".encode())
    lines = n.wait_lines(6)
    by_conn = {}
    for x in lines:
        by_conn.setdefault(x["conn"], set()).add(x["sni"])
    assert len(by_conn) == 2, lines
    assert all(len(v) == 1 for v in by_conn.values()), lines


# ---- the retry of a pooled connection, over TLS ---------------------------


def python_tls_context(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # The key files are root's 0600: the test runs as their owner.
    ctx.load_cert_chain(str(pki.good[0]), str(pki.good[1]))
    return ctx


class Vanishing:
    """Answers the first request of each connection; reads the second and
    closes the connection without a word (over TLS: no close_notify)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = []
        self.n = 0

    def __call__(self, req, conn):
        with self.lock:
            if not hasattr(conn, "index"):
                self.n += 1
                conn.index = self.n
                conn.served = 0
            self.seen.append((conn.index, req.method, req.target))
        if conn.served == 1:
            conn.close()
            return
        conn.served += 1
        conn.respond(200, [], b"answer %d" % conn.index)


def test_retry_pooled_connection_over_tls(make_proxy, make_upstream, pki):
    v = Vanishing()
    up = make_upstream(handler=v, tls=python_tls_context(pki))
    p = proxy_to(make_proxy, tls_site(up.addr, pki, **{
        "upstream-server-name": "up.test"}))
    assert get(p, "/one") == (200, b"answer 1")
    # Pooled; the upstream reads the next request and closes: sent again
    # on a new connection (GET is replayable).
    assert get(p, "/two") == (200, b"answer 2")
    assert v.seen == [(1, "GET", "/one"), (1, "GET", "/two"),
                      (2, "GET", "/two")]
    # A POST is not sent twice: 502.
    reply = tls_exchange(p.https_port, b"POST /post HTTP/1.1\r\nHost: "
                         b"localhost\r\nConnection: close\r\n"
                         b"Content-Length: 4\r\n\r\nbody")
    assert parse_response(reply)[0] == 502
    assert [s for s in v.seen if s[1] == "POST"] == [(2, "POST", "/post")]


# ---- WebSocket over TLS ---------------------------------------------------


def test_websocket_over_tls(make_proxy, make_upstream, pki):
    up = make_upstream(handler=ws_handler, tls=python_tls_context(pki))
    p = proxy_to(make_proxy, tls_site(up.addr, pki, **{
        "upstream-server-name": "up.test"}),
        http={"tunnel-idle-timeout": 5})
    with tls_connect(p.https_port) as s:
        s.sendall(ws_request())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        greeting = rest + recv_exact(s, len(b"hello client") - len(rest))
        assert greeting == b"hello client"
        for msg in (b"\x81\x05hello", os.urandom(100000)):
            s.sendall(msg)
            assert recv_exact(s, len(msg)) == msg


# ---- reload ---------------------------------------------------------------


def test_reload_http_to_https(make_proxy, make_upstream, make_nginx, pki):
    plain = make_upstream()
    n = make_nginx()
    p = proxy_to(make_proxy, {"upstream": plain.addr})
    status, body = get(p, "/before")
    assert status == 200 and b'"target": "/before"' in body
    p.listener["site"] = [("localhost", tls_site(n.addr, pki, **{
        "upstream-server-name": "up.test"}))]
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    assert get(p, "/after") == (200, b"tls:up.test:/after\n")
    assert h2_get(p, "/after2") == (200, b"tls:up.test:/after2\n")
    assert [x["uri"] for x in n.wait_lines(2)] == ["/after", "/after2"]
    # And back: plain again, nothing of TLS left.
    p.listener["site"] = [("localhost", {"upstream": plain.addr})]
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    status, body = get(p, "/again")
    assert status == 200 and b'"target": "/again"' in body


def test_reload_too_large_for_the_slot(make_proxy, make_upstream, pki,
                                       tmp_path):
    """The files of upstream TLS travel in the image, whose slot a small
    configuration made 16 MiB: a reload that names 20 MiB of CA files is
    refused with a message that says so (nothing applied, the proxy goes
    on), never a crash.  A restart would size the slot for it."""
    plain = make_upstream()
    p = proxy_to(make_proxy, {"upstream": plain.addr})
    one = pki.ca.read_bytes()
    big = one * (4 * 1024 * 1024 // len(one) - 1)      # under 4 MiB each
    sites = [("localhost", {"upstream": plain.addr})]
    for i in range(5):
        ca = tmp_path / f"big-ca-{i}.pem"
        ca.write_bytes(big)
        sites.append((f"s{i}.example.test", {
            "upstream": plain.addr, "upstream-scheme": "https",
            "upstream-ca-file": str(ca)}))
    p.listener["site"] = sites
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 1 and reply["status"] == "error", reply
    assert "does not fit the shared slot; restart to apply it" in \
        reply["message"], reply
    rc, st = p.ctl("status")
    assert st["generation"] == 1
    status, body = get(p, "/still")
    assert status == 200 and b'"target": "/still"' in body
    assert p.proc.poll() is None


# ---- --validate -----------------------------------------------------------


def validate(tmp_path, site_lines, scheme="https"):
    """--validate a config whose one site has site_lines (from line 8)."""
    conf = tmp_path / "v.conf"
    cert, key = tmp_path / "front.pem", tmp_path / "front.key"
    text = ("user = \"nobody\"\n"                                    # 1
            "listener {\n"                                           # 2
            "  bind = \"127.0.0.1\"\n"                               # 3
            f"  tls {{ cert = \"{cert}\" key = \"{key}\" }}\n"      # 4
            "  site \"a.test\" {\n"                                  # 5
            "    upstream = \"127.0.0.1:8443\"\n"                    # 6
            f"    upstream-scheme = \"{scheme}\"\n"                   # 7
            + "".join(f"    {line}\n" for line in site_lines) +
            "  }\n}\n")
    conf.write_text(text)
    r = subprocess.run([str(BINARY), "-c", str(conf), "--validate"],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, [line for line in r.stderr.splitlines() if line]


@pytest.fixture
def front_cert(tmp_path, certs):
    c, k = certs.get("localhost")
    shutil.copy(c, tmp_path / "front.pem")
    shutil.copy(k, tmp_path / "front.key")


def test_validate_errors(tmp_path, front_cert, pki):
    conf = tmp_path / "v.conf"
    missing = tmp_path / "missing.pem"
    cases = [
        ([f'upstream-ca-file = "{missing}"'],
         [f"{conf}:8: cannot read upstream-ca-file {missing}: No such file "
          "or directory"]),
        ([f'upstream-ca-file = "{pki.good[1]}"'],
         [f"{conf}:8: upstream-ca-file {pki.good[1]}: no certificate in "
          "it"]),
        ([f'upstream-client-key = "{pki.client[1]}"'],
         [f"{conf}:8: site \"a.test\": 'upstream-client-key' needs "
          "'upstream-client-cert' (a client certificate and its key go "
          "together)"]),
        ([f'upstream-client-cert = "{pki.client[0]}"'],
         [f"{conf}:8: site \"a.test\": 'upstream-client-cert' needs "
          "'upstream-client-key' (a client certificate and its key go "
          "together)"]),
        ([f'upstream-client-cert = "{pki.client[0]}"',
          f'upstream-client-key = "{pki.other_key}"'],
         [f"{conf}:9: upstream-client-key {pki.other_key} with "
          f"upstream-client-cert {pki.client[0]}: private key does not "
          "match the certificate"]),
        ([f'upstream-client-cert = "{missing}"',
          f'upstream-client-key = "{pki.client[1]}"'],
         [f"{conf}:8: cannot read upstream-client-cert {missing}: No such "
          "file or directory"]),
        (['upstream-server-name = "*.test"'],
         [f"{conf}:8: site \"a.test\": upstream-server-name \"*.test\" is "
          "not a DNS name (without a trailing dot) or an IP address"]),
    ]
    for lines, want in cases:
        rc, got = validate(tmp_path, lines)
        assert (rc, got) == (1, want), lines
    # The scheme itself, and the options "http" does not take.
    assert validate(tmp_path, [], scheme="ftp") == (1, [
        f"{conf}:7: site \"a.test\": upstream-scheme must be \"http\" or "
        "\"https\""])
    assert validate(tmp_path, [f'upstream-ca-file = "{pki.ca}"',
                               "upstream-verify = false"],
                    scheme="http") == (1, [
        f"{conf}:8: site \"a.test\": upstream-ca-file is for "
        "upstream-scheme \"https\" (the scheme here is \"http\")",
        f"{conf}:9: site \"a.test\": upstream-verify is for "
        "upstream-scheme \"https\" (the scheme here is \"http\")"])
    # A good one.
    rc, got = validate(tmp_path, [
        f'upstream-ca-file = "{pki.ca}"',
        'upstream-server-name = "up.test"',
        f'upstream-client-cert = "{pki.client[0]}"',
        f'upstream-client-key = "{pki.client[1]}"'])
    assert (rc, got) == (0, []), got
