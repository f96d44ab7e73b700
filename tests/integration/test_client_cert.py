"""Client certificates per site (issue 18): client-ca-file, client-auth.

A test CA made by certtool (test_upstream_tls's PKI) signs the client
certificates: good (alice), expired, one from another CA, and one from a
second CA the reload switches to.  Sites on one listener certificate
(localhost and *.example.test, so that every site name is covered by the
same certificate):

  req.example.test    client-auth "required" (the CA)
  opt.example.test    client-auth "optional" (the CA)
  open.example.test   none

What is checked, with curl, gnutls-cli, Python's ssl and the h2 client:

- required: a good certificate is served, over HTTP/1.1 and HTTP/2; none,
  an expired one, another CA's: the handshake fails, and one CLIENT_CERT
  line says why (no-certificate, expired, unknown-issuer);
- optional: served with and without; X-Client-Verify says SUCCESS, NONE
  or FAILED:reason; the subject, issuer, serial and fingerprint only
  with SUCCESS, as the test upstream records them;
- X-Client-* a client sends never reaches an upstream, on any site;
- no bypass (421, and the upstream sees nothing): another SNI under the
  same certificate, no SNI, an HTTP/2 connection reused for another host,
  a session resumed from another site's handshake; a session resumed for
  the same site keeps its verified certificate;
- a reload that changes client-ca-file: the old CA's clients are refused,
  the new CA's served, a connection made before gets 421;
- --validate: file missing, not a CA bundle, client-auth without
  client-ca-file and the reverse, a bad value, each with file:line.
"""

import hashlib
import re
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from conftest import (parse_response, read_all, start_proxy,
                      tls_context)
from h2util import H2Client
from test_metrics import failures, families
from test_upstream_tls import PKI, front_cert, validate  # noqa: F401

CURL = shutil.which("curl") or "/usr/bin/curl"
GNUTLS_CLI = shutil.which("gnutls-cli") or "/usr/bin/gnutls-cli"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

REQ = "req.example.test"
OPT = "opt.example.test"
OPEN = "open.example.test"

CLIENT_FIELDS = ("X-Client-Verify", "X-Client-Subject", "X-Client-Issuer",
                 "X-Client-Serial", "X-Client-Cert-Fingerprint")


class ClientPKI(PKI):
    """Two client CAs and the client certificates of the tests."""

    def __init__(self, d):      # pylint: disable=super-init-not-called
        self.dir = Path(d)
        self.ca_key, self.ca = self.self_signed("ca",
                                                "Portcullis Client CA")
        self.other_ca_key, self.other_ca = self.self_signed(
            "other-ca", "Another Client CA")
        self.ca2_key, self.ca2 = self.self_signed("ca2", "Second Client CA")
        self.good = self.leaf("alice", "alice", [], [], client=True)
        self.expired = self.leaf(
            "old", "old", [], [], client=True,
            dates=('activation_date = "2020-01-01 00:00:00 UTC"',
                   'expiration_date = "2020-02-01 00:00:00 UTC"'))
        self.stranger = self.leaf("mallory", "mallory", [], [],
                                  ca="other-ca", client=True)
        self.bob = self.leaf("bob", "bob", [], [], ca="ca2", client=True)


@pytest.fixture(scope="module")
def cpki(tmp_path_factory):
    return ClientPKI(tmp_path_factory.mktemp("clientpki"))


def facts(cert):
    """What the upstream should be told of a certificate: its serial as
    openssl prints it, its SHA-256 fingerprint (lower-case hex)."""
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    out = subprocess.run([OPENSSL, "x509", "-in", str(cert), "-noout",
                          "-serial"], capture_output=True, text=True,
                         check=True).stdout
    serial = out.strip().split("=", 1)[1].upper()
    return serial, hashlib.sha256(der).hexdigest()


def sites(upstream, ca):
    return [
        ("localhost", {"upstream": upstream.addr}),
        (REQ, {"upstream": upstream.addr, "client-ca-file": str(ca),
               "client-auth": "required"}),
        (OPT, {"upstream": upstream.addr, "client-ca-file": str(ca),
               "client-auth": "optional"}),
        (OPEN, {"upstream": upstream.addr}),
        ("*.example.test", {"upstream": upstream.addr}),
    ]


@pytest.fixture
def cproxy(make_proxy, upstream, cpki):
    def configure(p):
        p.listener["site"] = sites(upstream, cpki.ca)
    return start_proxy(make_proxy, upstream, workers=1, configure=configure)


# ---- clients ------------------------------------------------------------


def ctx_with(cert=None, alpn="http/1.1", version=None):
    ctx = tls_context(alpn=(alpn,))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def get_request(host, extra=b""):
    return (f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            .encode() + extra + b"\r\n")


def ask_h1(port, sni, host, cert=None, extra=b"", ctx=None, session=None):
    """GET / for host over a connection with this SNI (None: none) and
    client certificate: (status, the session, whether it was resumed).
    A handshake refused raises ssl.SSLError (or, when TLS 1.3 refuses
    after the client's Finished, gives status None)."""
    ctx = ctx or ctx_with(cert)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=sni, session=session) as s:
        try:
            s.sendall(get_request(host, extra))
            data = s.recv(65536)
            if not data:
                return None, None, False
            data += read_all(s)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return None, None, False
        return parse_response(data)[0], s.session, s.session_reused


def ask_h2(port, sni, hosts, cert=None, headers=()):
    """Each host in turn on one HTTP/2 connection: their statuses."""
    with H2Client(port, sni=sni, ctx=ctx_with(cert, alpn="h2")) as c:
        return [c.response(c.request("GET", "/", authority=h,
                                     headers=headers)).status
                for h in hosts]


def curl(port, host, cert=None, http2=False):
    """curl https://host/ (resolved to the proxy): (exit code, status)."""
    args = [CURL, "-sk", "-o", "/dev/null", "-w", "%{http_code}",
            "--max-time", "10", "--resolve", f"{host}:{port}:127.0.0.1",
            "--http2" if http2 else "--http1.1"]
    if cert is not None:
        args += ["--cert", str(cert[0]), "--key", str(cert[1])]
    r = subprocess.run(args + [f"https://{host}:{port}/"],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout


def gnutls_cli(port, host, cert=None):
    """gnutls-cli with SNI host, sending a GET: (exit code, output)."""
    args = [GNUTLS_CLI, "--insecure", "--sni-hostname", host,
            "-p", str(port), "127.0.0.1"]
    if cert is not None:
        args += ["--x509certfile", str(cert[0]), "--x509keyfile",
                 str(cert[1])]
    r = subprocess.run(args, input=get_request(host), capture_output=True,
                       timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def last_fields(upstream):
    req = upstream.requests[-1]
    return {name: req.header(name) for name in CLIENT_FIELDS}


def client_cert_lines(p):
    return [line for line in p.log().splitlines() if "CLIENT_CERT" in line]


# ---- required -----------------------------------------------------------


def test_required_good_certificate(cproxy, upstream, cpki):
    serial, fp = facts(cpki.good[0])
    want = {"X-Client-Verify": ["SUCCESS"],
            "X-Client-Subject": ["CN=alice"],
            "X-Client-Issuer": ["CN=Portcullis Client CA"],
            "X-Client-Serial": [serial],
            "X-Client-Cert-Fingerprint": [fp]}
    n = 0
    for http2 in (False, True):
        assert curl(cproxy.https_port, REQ, cpki.good, http2) == (0, "200")
        n += 1
        upstream.wait_requests(n)
        assert last_fields(upstream) == want
    status, _, _ = ask_h1(cproxy.https_port, REQ, REQ, cpki.good)
    assert status == 200
    assert ask_h2(cproxy.https_port, REQ, [REQ], cpki.good) == [200]
    rc, out = gnutls_cli(cproxy.https_port, REQ, cpki.good)
    assert "HTTP/1.1 200" in out, out
    upstream.wait_requests(n + 3)
    assert last_fields(upstream) == want
    assert client_cert_lines(cproxy) == []


@pytest.mark.parametrize("which,why", [
    (None, "no-certificate"), ("expired", "expired"),
    ("stranger", "unknown-issuer")])
def test_required_refuses(cproxy, upstream, cpki, which, why):
    cert = getattr(cpki, which) if which else None
    for http2 in (False, True):
        rc, status = curl(cproxy.https_port, REQ, cert, http2)
        assert rc != 0 and status == "000", (rc, status)
    rc, out = gnutls_cli(cproxy.https_port, REQ, cert)
    assert rc != 0 and "HTTP/1.1" not in out, out
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        try:
            status, _, _ = ask_h1(cproxy.https_port, REQ, REQ,
                                  ctx=ctx_with(cert, version=version))
        except (ssl.SSLError, ConnectionResetError):
            status = None
        assert status is None
    cproxy.wait_log(rf'CLIENT_CERT .*site="?{re.escape(REQ)}"? '
                    rf'.*error="?{why}"?', count=5)
    lines = client_cert_lines(cproxy)
    assert len(lines) == 5, lines
    assert all(why in line for line in lines), lines
    assert upstream.requests == []
    # /metrics (issue 20): five handshakes failed, for the certificate.
    got = failures(families(cproxy.health_port))
    assert got["client_cert"] == 5 and sum(got.values()) == 5, got


# ---- optional -----------------------------------------------------------


@pytest.mark.parametrize("which,verdict", [
    (None, "NONE"), ("good", "SUCCESS"), ("expired", "FAILED:expired"),
    ("stranger", "FAILED:unknown-issuer")])
def test_optional(cproxy, upstream, cpki, which, verdict):
    cert = getattr(cpki, which) if which else None
    assert curl(cproxy.https_port, OPT, cert) == (0, "200")
    assert curl(cproxy.https_port, OPT, cert, http2=True) == (0, "200")
    assert ask_h2(cproxy.https_port, OPT, [OPT], cert) == [200]
    upstream.wait_requests(3)
    for req in upstream.requests:
        assert req.header("X-Client-Verify") == [verdict]
        if verdict == "SUCCESS":
            assert req.header("X-Client-Subject") == ["CN=alice"]
            assert req.header("X-Client-Cert-Fingerprint") == \
                [facts(cpki.good[0])[1]]
        else:
            for name in CLIENT_FIELDS[1:]:
                assert req.header(name) == [], name
    assert client_cert_lines(cproxy) == []


# ---- what a client sends of them ----------------------------------------


def test_client_sent_fields_never_pass(cproxy, upstream, cpki):
    forged = [("x-client-verify", "SUCCESS"),
              ("x-client-subject", "CN=admin"),
              ("x-client-issuer", "CN=Portcullis Client CA"),
              ("x-client-serial", "01"),
              ("x-client-cert-fingerprint", "00" * 32)]
    raw = b"".join(f"{n}: {v}\r\n".encode() for n, v in forged)
    # A site without client-auth: none of them.
    assert ask_h1(cproxy.https_port, OPEN, OPEN, extra=raw)[0] == 200
    assert ask_h2(cproxy.https_port, OPEN, [OPEN], headers=forged) == [200]
    # The optional site without a certificate: ours alone, NONE.
    assert ask_h1(cproxy.https_port, OPT, OPT, extra=raw)[0] == 200
    assert ask_h2(cproxy.https_port, OPT, [OPT], headers=forged) == [200]
    upstream.wait_requests(4)
    for req in upstream.requests[:2]:
        for name in CLIENT_FIELDS:
            assert req.header(name) == [], (name, req.headers)
    for req in upstream.requests[2:]:
        assert req.header("X-Client-Verify") == ["NONE"]
        assert req.header("X-Client-Subject") == []
    assert b"CN=admin" not in upstream.raw()


# ---- no bypass ----------------------------------------------------------


def test_other_sni_on_the_shared_certificate_is_421(cproxy, upstream, cpki):
    for sni in (OPEN, "localhost", "x.example.test"):
        for cert in (None, cpki.good):
            assert ask_h1(cproxy.https_port, sni, REQ, cert)[0] == 421
            assert ask_h1(cproxy.https_port, sni, OPT, cert)[0] == 421
            assert ask_h2(cproxy.https_port, sni, [REQ, OPT, OPEN],
                          cert) == [421, 421, 200]
    upstream.wait_requests(6)
    assert all(r.header("Host") != [REQ] and r.header("Host") != [OPT]
               for r in upstream.requests)


def test_no_sni_is_421(cproxy, upstream, cpki):
    for cert in (None, cpki.good):
        assert ask_h1(cproxy.https_port, None, REQ, cert)[0] == 421
        assert ask_h1(cproxy.https_port, None, OPT, cert)[0] == 421
        assert ask_h2(cproxy.https_port, None, [REQ, OPT, OPEN],
                      cert) == [421, 421, 200]
    assert len(upstream.requests) == 2


def test_h2_reuse_for_another_host_is_421(cproxy, upstream, cpki):
    """A browser reuses an h2 connection for any host its certificate
    covers: only the site the handshake was for is served there."""
    assert ask_h2(cproxy.https_port, REQ, [REQ, OPT, OPEN, REQ],
                  cpki.good) == [200, 421, 200, 200]
    assert ask_h2(cproxy.https_port, OPT, [OPT, REQ], cpki.good) == \
        [200, 421]
    upstream.wait_requests(4)
    hosts = [r.header("Host")[0] for r in upstream.requests]
    assert REQ in hosts and OPEN in hosts and OPT in hosts
    by_host = {r.header("Host")[0]: r for r in upstream.requests}
    # The open site gets nothing of the certificate.
    assert by_host[OPEN].header("X-Client-Verify") == []
    # Keep-alive over HTTP/1.1: the same.
    ctx = ctx_with(cpki.good)
    raw = socket.create_connection(("127.0.0.1", cproxy.https_port),
                                   timeout=10)
    with ctx.wrap_socket(raw, server_hostname=REQ) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {REQ}\r\n\r\n"
                  f"GET / HTTP/1.1\r\nHost: {OPT}\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = read_all(s)
    first, _, _, rest = parse_response(data)
    second = parse_response(rest)[0]
    assert (first, second) == (200, 421)


@pytest.mark.parametrize("version", [
    pytest.param(ssl.TLSVersion.TLSv1_3, id="tls13"),
    pytest.param(ssl.TLSVersion.TLSv1_2, id="tls12")])
def test_resumed_session_from_another_site_is_421(cproxy, upstream, cpki,
                                                  version):
    port = cproxy.https_port
    # A session of the open site, resumed there: nothing verified.
    ctx = ctx_with(version=version)
    status, sess, _ = ask_h1(port, OPEN, OPEN, ctx=ctx)
    assert status == 200 and sess is not None
    status, _, reused = ask_h1(port, OPEN, REQ, ctx=ctx, session=sess)
    assert status == 421 and reused
    # A session of the required site (alice verified) offered under
    # another SNI of the same certificate: 421 for the required site.
    ctx = ctx_with(cpki.good, version=version)
    status, sess, _ = ask_h1(port, REQ, REQ, ctx=ctx)
    assert status == 200 and sess is not None
    status, _, _ = ask_h1(port, OPEN, REQ, ctx=ctx, session=sess)
    assert status == 421
    status, _, _ = ask_h1(port, OPT, REQ, ctx=ctx, session=sess)
    assert status == 421
    # The same site resumes, and its verified certificate goes with it.
    n = len(upstream.requests)
    status, _, reused = ask_h1(port, REQ, REQ, ctx=ctx, session=sess)
    assert status == 200 and reused
    upstream.wait_requests(n + 1)
    assert last_fields(upstream)["X-Client-Verify"] == ["SUCCESS"]
    assert last_fields(upstream)["X-Client-Subject"] == ["CN=alice"]


def test_resumed_session_over_h2(cproxy, upstream, cpki):
    port = cproxy.https_port
    ctx = ctx_with(alpn="h2")
    with H2Client(port, sni=OPEN, ctx=ctx) as c:
        assert c.response(c.request("GET", "/", authority=OPEN)).status == \
            200
        sess = c.sock.session
    with H2Client(port, sni=OPEN, ctx=ctx, session=sess) as c:
        assert c.sock.session_reused
        assert [c.response(c.request("GET", "/", authority=h)).status
                for h in (REQ, OPT)] == [421, 421]


# ---- reload -------------------------------------------------------------


def test_reload_changes_client_ca_file(cproxy, upstream, cpki):
    port = cproxy.https_port
    assert curl(port, REQ, cpki.good) == (0, "200")
    assert curl(port, REQ, cpki.bob)[0] != 0
    # An HTTP/2 connection verified under the first CA, kept open.
    before = H2Client(port, sni=REQ, ctx=ctx_with(cpki.good, alpn="h2"))
    try:
        assert before.response(before.request(
            "GET", "/", authority=REQ)).status == 200
        cproxy.listener["site"] = sites(upstream, cpki.ca2)
        cproxy.write_config()
        rc, reply = cproxy.ctl("reload")
        assert rc == 0, reply
        assert curl(port, REQ, cpki.bob) == (0, "200")
        assert curl(port, REQ, cpki.good)[0] != 0
        assert curl(port, OPT, cpki.good) == (0, "200")
        # The connection made before: its site's CA changed, 421.
        assert before.response(before.request(
            "GET", "/", authority=REQ)).status == 421
    finally:
        before.close()
    upstream.wait_requests(4)
    assert upstream.requests[-1].header("X-Client-Verify") == \
        ["FAILED:unknown-issuer"]
    cproxy.wait_log(r'CLIENT_CERT .*error="?unknown-issuer"?')


# ---- --validate ---------------------------------------------------------


def test_validate_errors(tmp_path, front_cert, cpki):
    """The site's lines from line 8 (test_upstream_tls's validate, with
    upstream-scheme "http" on line 7)."""
    conf = tmp_path / "v.conf"
    missing = tmp_path / "missing.pem"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        ([f'client-ca-file = "{missing}"', 'client-auth = "required"'],
         [f"{conf}:8: cannot read client-ca-file {missing}: No such file "
          "or directory"]),
        ([f'client-ca-file = "{cpki.good[1]}"', 'client-auth = "optional"'],
         [f"{conf}:8: client-ca-file {cpki.good[1]}: no certificate in "
          "it"]),
        ([f'client-ca-file = "{garbage}"', 'client-auth = "required"'],
         [f"{conf}:8: client-ca-file {garbage}: no certificate in it"]),
        (['client-auth = "required"'],
         [f"{conf}:8: site \"a.test\": client-auth needs client-ca-file "
          "(the CA bundle client certificates are verified against)"]),
        ([f'client-ca-file = "{cpki.ca}"'],
         [f"{conf}:8: site \"a.test\": client-ca-file needs client-auth "
          "(\"required\" or \"optional\")"]),
        ([f'client-ca-file = "{cpki.ca}"', 'client-auth = "yes"'],
         [f"{conf}:9: site \"a.test\": client-auth must be \"required\" "
          "or \"optional\""]),
    ]
    for lines, want in cases:
        assert validate(tmp_path, lines, scheme="http") == (1, want), \
            lines
    for mode in ("required", "optional"):
        assert validate(tmp_path, [
            f'client-ca-file = "{cpki.ca}"',
            f'client-auth = "{mode}"'], scheme="http") == (0, [])


def test_reload_with_a_bad_client_ca_file_keeps_the_old(cproxy, upstream,
                                                        cpki, tmp_path):
    cproxy.listener["site"] = sites(upstream, tmp_path / "missing.pem")
    cproxy.write_config()
    rc, reply = cproxy.ctl("reload")
    assert rc == 1 and "cannot read client-ca-file" in reply["message"], \
        reply
    assert curl(cproxy.https_port, REQ, cpki.good) == (0, "200")
    assert curl(cproxy.https_port, REQ)[0] != 0
