"""TLS: protocol versions and cipher suites, compression, renegotiation,
ALPN, certificates chosen by SNI (and whole chains), session resumption
across workers and only under the certificate the session was made with,
certificates re-read on reload, and a testssl scan.

The proxy is meant to speak TLS 1.3 (all its suites) and TLS 1.2 with
ECDHE and an AEAD cipher only, with either an ECDSA certificate (what the
harness makes) or an RSA one.  test_testssl_scan runs for about a minute
(PORTCULLIS_QUICK=1 skips it)."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import (SLOWDOWN, https_get, parse_response, read_all,
                      start_proxy, tls_connect, tls_context, wait_until)
from h2util import H2Client
from proxyutil_ops import (ca_chain, client_hello, get_request, handshake_ok,
                           hello_reply, pem_der, peer_cert, recv_exact,
                           rsa_cert, s_client, s_client_cipher, slow)


@pytest.fixture
def ecdsa_proxy(make_proxy, upstream):
    """The harness's own configuration: an ECDSA P-256 certificate."""
    return start_proxy(make_proxy, upstream, workers=2)


@pytest.fixture
def rsa_proxy(make_proxy, upstream, tmp_path):
    cert, key = rsa_cert(tmp_path / "rsa", "localhost",
                         ["localhost", "*.example.test"])

    def configure(p):
        p.listener["tls"] = {"mode": "manual", "cert": str(cert),
                             "key": str(key)}
    return start_proxy(make_proxy, upstream, workers=2, configure=configure)


@pytest.fixture(params=["ecdsa", "rsa"])
def any_proxy(request):
    return request.getfixturevalue(f"{request.param}_proxy")


def assert_serves(out):
    """s_client's output holds a proxied answer (the request was sent
    with -ign_eof, so everything up to the close is there)."""
    assert "HTTP/1.1 200 OK" in out, out[-3000:]


# ---- protocol versions and cipher suites ------------------------------------

def test_tls13_openssl(any_proxy):
    rc, out = s_client(any_proxy.https_port, "-tls1_3", "-ign_eof",
                       stdin=get_request())
    assert s_client_cipher(out)[0] == "TLSv1.3", out
    assert_serves(out)


@pytest.mark.parametrize("suite", ["TLS_AES_128_GCM_SHA256",
                                   "TLS_AES_256_GCM_SHA384",
                                   "TLS_CHACHA20_POLY1305_SHA256"])
def test_tls13_each_suite(ecdsa_proxy, suite):
    rc, out = s_client(ecdsa_proxy.https_port, "-tls1_3", "-ciphersuites",
                       suite, "-ign_eof", stdin=get_request())
    assert s_client_cipher(out) == ("TLSv1.3", suite), out
    assert_serves(out)


def test_server_order_prefers_aes128(ecdsa_proxy):
    """The server's order wins, and it puts AES-128-GCM first: an OpenSSL
    client lists AES-256-GCM first (SHA-384 in the TLS 1.3 key schedule,
    14 AES rounds) and still gets AES-128-GCM, in TLS 1.3 and 1.2."""
    order = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:" \
            "TLS_AES_128_GCM_SHA256"
    rc, out = s_client(ecdsa_proxy.https_port, "-tls1_3", "-ciphersuites",
                       order, "-ign_eof", stdin=get_request())
    assert s_client_cipher(out) == ("TLSv1.3", "TLS_AES_128_GCM_SHA256"), out
    assert_serves(out)
    rc, out = s_client(ecdsa_proxy.https_port, "-tls1_2", "-cipher",
                       "ECDHE-ECDSA-AES256-GCM-SHA384:"
                       "ECDHE-ECDSA-CHACHA20-POLY1305:"
                       "ECDHE-ECDSA-AES128-GCM-SHA256",
                       "-ign_eof", stdin=get_request())
    assert s_client_cipher(out) == \
        ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"), out
    assert_serves(out)


def test_tls13_gnutls_cli(ecdsa_proxy):
    r = subprocess.run(
        ["gnutls-cli", "--insecure", "--priority",
         "NORMAL:-VERS-ALL:+VERS-TLS1.3", "--sni-hostname", "localhost",
         "-p", str(ecdsa_proxy.https_port), "127.0.0.1"],
        input=get_request(), capture_output=True, timeout=15)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert re.search(r"Description: \(TLS1\.3", out), out
    assert "HTTP/1.1 200 OK" in out, out


# OpenSSL names; each must work with a certificate of its kind.
TLS12_GOOD = {
    "ecdsa": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
              "ECDHE-ECDSA-CHACHA20-POLY1305"],
    "rsa": ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-CHACHA20-POLY1305"],
}


@pytest.mark.parametrize("kind,cipher", [(k, c) for k, cs in
                                         TLS12_GOOD.items() for c in cs])
def test_tls12_ecdhe_aead_accepted(request, kind, cipher):
    p = request.getfixturevalue(f"{kind}_proxy")
    rc, out = s_client(p.https_port, "-tls1_2", "-cipher", cipher,
                       "-ign_eof", stdin=get_request())
    assert s_client_cipher(out) == ("TLSv1.2", cipher), \
        out + "\n" + p.log()[-2000:]
    assert_serves(out)


# CBC (with SHA-1 or SHA-2), static RSA key exchange, finite-field DHE,
# and anonymous / NULL suites must all be refused.
TLS12_BAD = {
    "ecdsa": ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
              "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-NULL-SHA"],
    "rsa": ["ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384",
            "AES128-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384",
            "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-CHACHA20-POLY1305",
            "ADH-AES128-GCM-SHA256"],
}


@pytest.mark.parametrize("kind,cipher", [(k, c) for k, cs in
                                         TLS12_BAD.items() for c in cs])
def test_tls12_weak_suites_refused(request, kind, cipher):
    p = request.getfixturevalue(f"{kind}_proxy")
    # SECLEVEL=0 so that our own client does offer the weak suite.
    rc, out = s_client(p.https_port, "-tls1_2", "-cipher",
                       f"{cipher}:@SECLEVEL=0", stdin=b"")
    assert not handshake_ok(out), out
    # Refused with an alert, not a silent close.
    assert "alert handshake failure" in out, out


# ECDHE-ECDSA and ECDHE-RSA with AES-GCM, for a hand-made TLS 1.2 hello.
TLS12_SUITES = (0xc02b, 0xc02c, 0xc02f, 0xc030)


def test_3des_refused_with_an_alert(rsa_proxy):
    """TLS_RSA_WITH_3DES_EDE_CBC_SHA, which this OpenSSL cannot even
    offer, from a hand-made TLS 1.2 hello: a fatal handshake_failure."""
    kind, alert = hello_reply(rsa_proxy.https_port,
                              client_hello(versions=(), suites=(0x000a,)))
    assert (kind, alert) == ("alert", (2, 40)), (kind, alert)


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_protocols_refused(any_proxy, version):
    before = any_proxy.log().count("connection closed")
    rc, out = s_client(any_proxy.https_port, version, "-cipher",
                       "DEFAULT:@SECLEVEL=0", stdin=b"")
    assert not handshake_ok(out), out
    assert "alert protocol version" in out, out
    # The hello did reach the proxy, which turned it down.
    wait_until(lambda: any_proxy.log().count("connection closed") > before,
               5, what="the proxy to close the connection")


def test_tls10_tls11_hellos_refused_by_the_server(any_proxy):
    """Hellos that offer only TLS 1.0 / 1.1 (no supported_versions):
    no ServerHello comes back, a protocol_version alert does."""
    for legacy in (0x0301, 0x0302):
        hello = bytearray(client_hello(versions=(),
                                       suites=TLS12_SUITES + (0xc013,)))
        hello[9:11] = legacy.to_bytes(2, "big")     # client_version
        kind, alert = hello_reply(any_proxy.https_port, bytes(hello))
        # Fatal (2), protocol_version (70).
        assert (kind, alert) == ("alert", (2, 70)), (hex(legacy), kind,
                                                      alert)


def test_no_compression(any_proxy):
    """A TLS 1.2 hello offering DEFLATE before NULL gets NULL."""
    hello = client_hello(versions=(), suites=TLS12_SUITES,
                         compression=(1, 0))
    kind, fields = hello_reply(any_proxy.https_port, hello)
    assert kind == "server_hello", (kind, fields)
    assert fields["compression"] == 0
    # Offering only DEFLATE: no handshake at all.
    hello = client_hello(versions=(), suites=TLS12_SUITES, compression=(1,))
    kind, _ = hello_reply(any_proxy.https_port, hello)
    assert kind != "server_hello"
    rc, out = s_client(any_proxy.https_port, "-tls1_2", stdin=b"")
    assert "Compression: NONE" in out


def test_tls13_hello_without_renegotiation_info(ecdsa_proxy):
    """RFC 8446 clients that speak only TLS 1.3 need not send the
    renegotiation_info extension (a TLS 1.2 mechanism); the proxy must
    still answer them (testssl's own TLS 1.3 probe is such a client)."""
    with_ri = client_hello(renegotiation_info=True)
    kind, fields = hello_reply(ecdsa_proxy.https_port, with_ri)
    assert kind == "server_hello", kind            # the control
    without = client_hello(renegotiation_info=False)
    kind, fields = hello_reply(ecdsa_proxy.https_port, without)
    assert kind == "server_hello", \
        (kind, fields, ecdsa_proxy.log()[-1500:])
    assert fields["suite"] == 0x1301


def test_client_renegotiation_refused(any_proxy):
    """openssl s_client's "R" starts a renegotiation (TLS 1.2): the
    connection must end rather than renegotiate."""
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect",
         f"127.0.0.1:{any_proxy.https_port}", "-servername", "localhost",
         "-tls1_2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        # The connection works before...
        proc.stdin.write(get_request(close=False))
        proc.stdin.flush()
        out = b""
        deadline = time.monotonic() + 10
        os.set_blocking(proc.stdout.fileno(), False)
        while b"\r\n\r\n{" not in out and time.monotonic() < deadline:
            chunk = proc.stdout.read()
            if chunk:
                out += chunk
            time.sleep(0.05)
        assert b"HTTP/1.1 200 OK" in out, out
        # ...and a renegotiation ends it.
        proc.stdin.write(b"R\n")
        proc.stdin.flush()
        try:
            proc.wait(8)
        except subprocess.TimeoutExpired:
            raise AssertionError("the connection survived a client-"
                                 "initiated renegotiation")
        rest = proc.stdout.read() or b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out += rest
    assert b"RENEGOTIATING" in out, out
    # Exactly one handshake happened.
    assert out.count(b"Verify return code") == 1, out
    assert "client renegotiation refused" in any_proxy.log()


# ---- ALPN -------------------------------------------------------------------

def test_alpn_http11(ecdsa_proxy):
    rc, out = s_client(ecdsa_proxy.https_port, "-alpn", "http/1.1",
                       "-ign_eof", stdin=get_request())
    assert "ALPN protocol: http/1.1" in out, out
    assert_serves(out)


def test_alpn_h2_only(ecdsa_proxy):
    rc, out = s_client(ecdsa_proxy.https_port, "-alpn", "h2",
                       stdin=b"")
    assert "ALPN protocol: h2" in out, out


def test_alpn_h2_only_falls_back_when_http2_is_off(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, http={"http2": False})
    rc, out = s_client(p.https_port, "-alpn", "h2", "-ign_eof",
                       stdin=get_request())
    assert "No ALPN negotiated" in out, out
    assert "ALPN protocol" not in out
    assert_serves(out)


def test_alpn_preference_and_none(ecdsa_proxy):
    with tls_connect(ecdsa_proxy.https_port,
                     ctx=tls_context(("spdy/3", "http/1.1"))) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
    with tls_connect(ecdsa_proxy.https_port, ctx=tls_context(None)) as s:
        assert s.selected_alpn_protocol() is None
        s.sendall(get_request())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert parse_response(data)[0] == 200


# ---- certificates -----------------------------------------------------------

def test_certificate_by_sni(make_proxy, upstream, certs):
    own_cert, own_key = certs.get("own.test", ["own.test", "www.own.test"])
    wild_cert, wild_key = certs.get("wild.test", ["*.wild.test"])

    def configure(p):
        p.listener["site"].append(("own.test", {
            "upstream": upstream.addr, "cert": str(own_cert),
            "key": str(own_key)}))
        p.listener["site"].append(("*.wild.test", {
            "upstream": upstream.addr, "cert": str(wild_cert),
            "key": str(wild_key)}))
        p.listener["site"].append(("plain.test",
                                   {"upstream": upstream.addr}))
    p = start_proxy(make_proxy, upstream, configure=configure)
    listener_der = pem_der(p.listener["tls"]["cert"])
    own_der = pem_der(own_cert)
    assert listener_der != own_der
    wild_der = pem_der(wild_cert)
    assert peer_cert(p.https_port, "own.test") == own_der
    assert peer_cert(p.https_port, "OWN.test") == own_der
    assert peer_cert(p.https_port, "own.test.") == own_der
    assert peer_cert(p.https_port, "a.wild.test") == wild_der
    for sni in ("localhost", "a.example.test", "plain.test",
                "unknown.invalid", "www.own.test", "wild.test",
                "a.b.wild.test", None):
        assert peer_cert(p.https_port, sni) == listener_der, sni
    # The site with its own certificate is served on it.
    status, _, _, _ = https_get(p.https_port, host="own.test",
                                sni="own.test")
    assert status == 200
    assert upstream.requests[-1].one("Host") == "own.test"


def showcerts(out):
    """The certificates s_client -showcerts printed: [(subject, issuer)]."""
    return re.findall(r"^\s*\d+ s:(.*)\n\s+i:(.*)$", out, re.M)


def test_full_chain_is_sent(make_proxy, upstream, tmp_path):
    chain, key, ca = ca_chain(tmp_path / "pki", "localhost",
                              ["localhost", "*.example.test"])
    site_chain, site_key, site_ca = ca_chain(tmp_path / "pki2", "own.test",
                                             ca_name="Other Test CA")

    def configure(p):
        p.listener["tls"] = {"mode": "manual", "cert": str(chain),
                             "key": str(key)}
        p.listener["site"].append(("own.test", {
            "upstream": upstream.addr, "cert": str(site_chain),
            "key": str(site_key)}))
    p = start_proxy(make_proxy, upstream, configure=configure)
    for sni, leaf, issuer in (("localhost", "localhost",
                               "Portcullis Test CA"),
                              ("own.test", "own.test", "Other Test CA")):
        rc, out = s_client(p.https_port, "-showcerts", "-CAfile",
                           str(ca if sni == "localhost" else site_ca),
                           "-verify_hostname", sni, "-ign_eof",
                           stdin=get_request(sni), sni=sni)
        certs_sent = showcerts(out)
        assert len(certs_sent) == 2, out
        assert f"CN = {leaf}" in certs_sent[0][0]
        assert f"CN = {issuer}" in certs_sent[0][1]
        assert f"CN = {issuer}" in certs_sent[1][0]
        # The chain verifies against the CA alone.
        assert "Verify return code: 0 (ok)" in out, out
        assert_serves(out)


# ---- session resumption across workers --------------------------------------

def _kill_all_workers(p):
    old = p.wait_workers(2)
    for w in old:
        os.kill(w, signal.SIGKILL)
    wait_until(lambda: len(p.workers()) == 2 and
               not set(p.workers()) & set(old) and
               p.ctl("status")[1]["workers"] == 2, 15,
               what="two new workers")
    # Both new workers serve (the master says so once they are ready).
    p.wait_log(r"worker \d \(pid \d+\) ready at generation", count=4)
    return old


@pytest.mark.parametrize("version,kind", [("-tls1_3", "ecdsa"),
                                          ("-tls1_2", "ecdsa"),
                                          ("-tls1_3", "rsa"),
                                          ("-tls1_2", "rsa")])
def test_session_resumes_on_new_workers(request, make_proxy, upstream,
                                        tmp_path, version, kind):
    """The ticket key is shared: a session made with workers that no longer
    exist resumes on brand-new worker processes."""
    p = request.getfixturevalue(f"{kind}_proxy")
    sess = tmp_path / "session.pem"
    rc, out = s_client(p.https_port, version, "-sess_out", str(sess),
                       "-ign_eof", stdin=get_request())
    assert re.search(r"^New, ", out, re.M), out
    assert_serves(out)
    assert sess.exists() and sess.stat().st_size > 0
    _kill_all_workers(p)
    rc, out = s_client(p.https_port, version, "-sess_in", str(sess),
                       "-ign_eof", stdin=get_request())
    assert re.search(r"^Reused, TLSv1\.[23]", out, re.M), \
        out + p.log()[-2000:]
    assert_serves(out)
    # The control: another proxy (another ticket key) does not resume it.
    other = start_proxy(make_proxy, upstream, workers=1,
                        configure=lambda q: q.listener.update(
                            tls=dict(p.listener["tls"])))
    rc, out = s_client(other.https_port, version, "-sess_in", str(sess),
                       "-ign_eof", stdin=get_request())
    assert re.search(r"^New, ", out, re.M), out
    assert_serves(out)


# ---- a session resumes only under its own certificate -----------------------

VERSIONS = [pytest.param(ssl.TLSVersion.TLSv1_3, id="tls13"),
            pytest.param(ssl.TLSVersion.TLSv1_2, id="tls12")]


def _client_ctx(version, alpn):
    """One context per client: a session resumes only with the context it
    was made with."""
    ctx = tls_context(alpn=(alpn,))
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def _ask_h1(port, ctx, sni, host, session=None):
    """GET / for host on a new connection with this SNI, offering session:
    (status, resumed?, the certificate the client holds, the session)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=sni, session=session) as s:
        s.sendall(get_request(host))
        status = parse_response(read_all(s))[0]
        return (status, s.session_reused, s.getpeercert(binary_form=True),
                s.session)


def _ask_h2(port, ctx, sni, host, session=None):
    with H2Client(port, sni=sni, ctx=ctx, session=session) as c:
        r = c.response(c.request("GET", "/", authority=host))
        return (r.status, c.sock.session_reused,
                c.sock.getpeercert(binary_form=True), c.sock.session)


def _resume_certs(certs):
    """a.test and b.test share a certificate, c.test has its own."""
    return {"a": certs.get("resume-a", ["a.test", "b.test"]),
            "c": certs.get("resume-c", ["c.test"]),
            "d": certs.get("resume-d", ["d.test"])}


def _own_cert_site(upstream, pair):
    return {"upstream": upstream.addr, "cert": str(pair[0]),
            "key": str(pair[1])}


@pytest.fixture
def resume_proxy(make_proxy, upstream, certs):
    """localhost on the listener's certificate, a.test and b.test on one
    of their own, c.test on another."""
    pairs = _resume_certs(certs)

    def configure(p):
        for name, which in (("a.test", "a"), ("b.test", "a"),
                            ("c.test", "c")):
            p.listener["site"].append(
                (name, _own_cert_site(upstream, pairs[which])))
    p = start_proxy(make_proxy, upstream, workers=1, configure=configure)
    ders = {k: pem_der(v[0]) for k, v in pairs.items()}
    ders["listener"] = pem_der(p.listener["tls"]["cert"])
    return p, ders


@pytest.mark.parametrize("alpn", ["http/1.1", "h2"])
@pytest.mark.parametrize("version", VERSIONS)
def test_resumption_only_under_the_sessions_certificate(resume_proxy,
                                                         version, alpn):
    """A session made with a.test's certificate does not resume for a name
    served by another certificate: the handshake is a full one and shows
    that name's certificate (before, a TLS 1.3 session made with SNI
    a.test resumed with SNI c.test and served c.test, whose certificate
    the connection never saw)."""
    p, ders = resume_proxy
    ask = _ask_h2 if alpn == "h2" else _ask_h1
    ctx = _client_ctx(version, alpn)
    status, reused, cert, sess = ask(p.https_port, ctx, "a.test", "a.test")
    assert (status, reused, cert) == (200, False, ders["a"])
    assert sess is not None and sess.has_ticket
    # The control: the same name resumes, so a refusal below is the
    # server's, not a client that did not offer the session.
    status, reused, _, _ = ask(p.https_port, ctx, "a.test", "a.test", sess)
    assert (status, reused) == (200, True), p.log()[-3000:]
    # On the resumed session a host of another certificate is misdirected.
    status, reused, _, _ = ask(p.https_port, ctx, "a.test", "c.test", sess)
    assert (status, reused) == (421, True)
    # Names of other certificates: full handshakes, with their own.
    for sni, host, want in (("c.test", "c.test", "c"),
                            ("localhost", "localhost", "listener"),
                            (None, "localhost", "listener")):
        status, reused, cert, _ = ask(p.https_port, ctx, sni, host, sess)
        assert (status, reused, cert == ders[want]) == (200, False, True), \
            (sni, status, reused)
    if version == ssl.TLSVersion.TLSv1_3:
        # b.test shares a.test's certificate: the session resumes for it.
        # (TLS 1.2 resumption wants the very same SNI: GnuTLS's rule.)
        status, reused, _, _ = ask(p.https_port, ctx, "b.test", "b.test",
                                   sess)
        assert (status, reused) == (200, True)


@pytest.mark.parametrize("version", VERSIONS)
def test_resumption_across_reloads_follows_the_certificates(
        make_proxy, upstream, certs, version):
    """A session stays bound to the bytes of its certificate, not to a
    position in the configuration: after a reload that reorders the
    certificates it still resumes (and still answers 421 for other
    certificates' hosts); after one that takes a.test's certificate away,
    a.test gets a full handshake with the certificate now in use."""
    pairs = _resume_certs(certs)

    def sites(names):
        return [(name, _own_cert_site(upstream, pairs[which]))
                for name, which in names]

    def configure(p):
        p.listener["site"] += sites([("a.test", "a"), ("c.test", "c")])
    p = start_proxy(make_proxy, upstream, workers=1, configure=configure)
    listener_der = pem_der(p.listener["tls"]["cert"])
    ctx = _client_ctx(version, "http/1.1")
    port = p.https_port
    sa = _ask_h1(port, ctx, "a.test", "a.test")[3]
    sc = _ask_h1(port, ctx, "c.test", "c.test")[3]

    def reload(new_sites):
        p.listener["site"] = [s for s in p.listener["site"]
                              if s[0] in ("localhost", "*.example.test")]
        p.listener["site"] = new_sites + p.listener["site"]
        p.write_config()
        rc, reply = p.ctl("reload")
        assert rc == 0 and reply["status"] == "ok", reply

    # Another certificate first, c.test's before a.test's.
    reload(sites([("d.test", "d"), ("c.test", "c"), ("a.test", "a")]))
    assert _ask_h1(port, ctx, "a.test", "a.test", sa)[:2] == (200, True)
    assert _ask_h1(port, ctx, "a.test", "c.test", sa)[:2] == (421, True)
    assert _ask_h1(port, ctx, "c.test", "c.test", sc)[:2] == (200, True)
    status, reused, cert, _ = _ask_h1(port, ctx, "d.test", "d.test", sa)
    assert (status, reused, cert) == (200, False, pem_der(pairs["d"][0]))

    # a.test loses its certificate: the listener's serves it now.
    reload([("a.test", {"upstream": upstream.addr})] +
           sites([("c.test", "c")]))
    status, reused, cert, _ = _ask_h1(port, ctx, "a.test", "a.test", sa)
    assert (status, reused, cert) == (200, False, listener_der)
    assert _ask_h1(port, ctx, "c.test", "c.test", sc)[:2] == (200, True)


def test_tls13_resumption_after_hello_retry(resume_proxy, tmp_path):
    """A resuming client whose key share the server does not take (P-256
    first, X25519 preferred) gets a HelloRetryRequest and still resumes:
    the second ClientHello selects the certificate of the first."""
    p, _ = resume_proxy
    sess = tmp_path / "a.sess"
    rc, out = s_client(p.https_port, "-tls1_3", "-sess_out", str(sess),
                       "-ign_eof", stdin=get_request("a.test"), sni="a.test")
    assert re.search(r"^New, ", out, re.M), out
    rc, out = s_client(p.https_port, "-tls1_3", "-groups", "P-256:X25519",
                       "-msg", "-sess_in", str(sess), "-ign_eof",
                       stdin=get_request("a.test"), sni="a.test")
    # -msg names the HelloRetryRequest a ServerHello (it is one, with a
    # special random): two of them.
    assert len(re.findall(r"^<<< TLS 1\.3, Handshake \[length [0-9a-f]+\], "
                          r"ServerHello$", out, re.M)) == 2, out
    assert re.search(r"^Reused, TLSv1\.3", out, re.M), out
    assert_serves(out)


def _next_record(s):
    """(type, body) of the next record other than a ChangeCipherSpec."""
    while True:
        head = recv_exact(s, 5)
        assert len(head) == 5, f"closed: {head!r}"
        ctype, _, length = struct.unpack("!BHH", head)
        body = recv_exact(s, length)
        if ctype != 20:
            return ctype, body


@pytest.mark.parametrize("second_sni,want", [("a.test", "server_hello"),
                                              ("c.test", "alert")])
def test_second_client_hello_keeps_the_certificate(resume_proxy, second_sni,
                                                   want):
    """After a HelloRetryRequest the second ClientHello must select the
    certificate of the first (whose ticket key may have been tried on its
    tickets): one naming another certificate ends the handshake with an
    illegal_parameter alert."""
    p, _ = resume_proxy
    sid = os.urandom(32)
    with socket.create_connection(("127.0.0.1", p.https_port),
                                  timeout=5 * SLOWDOWN) as s:
        s.sendall(client_hello(sni="a.test", p256_share=True,
                               session_id=sid))
        ctype, body = _next_record(s)
        # A HelloRetryRequest is a ServerHello with a fixed random.
        assert (ctype, body[0]) == (22, 2), (ctype, body[:8])
        assert body[6:38] == bytes.fromhex(
            "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
        s.sendall(client_hello(sni=second_sni, session_id=sid))
        ctype, body = _next_record(s)
    if want == "alert":
        assert (ctype, body[1]) == (21, 47), (ctype, body[:8])
    else:
        assert (ctype, body[0]) == (22, 2), (ctype, body[:8])


def _records(data):
    """(type, length) of each whole TLS record in data."""
    out = []
    while len(data) >= 5:
        ctype, _, length = struct.unpack("!BHH", data[:5])
        if len(data) < 5 + length:
            break
        out.append((ctype, length))
        data = data[5 + length:]
    return out


def test_tls13_tickets_leave_with_the_finished(ecdsa_proxy):
    """The server's TLS 1.3 flight (ServerHello to Finished) and the
    session tickets it sends right after leave in one piece.  A client
    that closes as soon as its handshake is done (openssl s_client
    -sess_out </dev/null, which testssl's ticket check uses) only keeps a
    session if the tickets are there by then; sent in a write of their
    own they could trail the Finished by a scheduling delay, and
    testssl's check failed now and then ("connect problem")."""
    for _ in range(5):
        with socket.create_connection(
                ("127.0.0.1", ecdsa_proxy.https_port),
                timeout=5 * SLOWDOWN) as s:
            s.sendall(client_hello())
            first = s.recv(65536)       # whatever has arrived by now
            # Anything still to come before the client speaks again.
            s.settimeout(0.5 * SLOWDOWN)
            rest = b""
            try:
                while chunk := s.recv(65536):
                    rest += chunk
            except socket.timeout:
                pass
        recs = _records(first + rest)
        assert recs and recs[0][0] == 22, recs      # the ServerHello
        # ServerHello, ChangeCipherSpec, then encrypted records: four
        # handshake messages (EncryptedExtensions to Finished) and the
        # tickets after them.
        assert len(recs) >= 2 + 4 + 1, recs
        assert rest == b"", \
            (f"first read {_records(first)}, then {_records(rest)}")


# ---- reload re-reads the certificate ----------------------------------------

def test_reload_rereads_certificate(make_proxy, upstream, certs):
    a_cert, a_key = certs.get("rot-a", ["localhost", "*.example.test"])
    b_cert, b_key = certs.get("rot-b", ["localhost", "*.example.test"])
    live_cert, live_key = None, None

    def configure(p):
        nonlocal live_cert, live_key
        live_cert, live_key = p.dir / "live.crt", p.dir / "live.key"
        shutil.copy(a_cert, live_cert)
        shutil.copy(a_key, live_key)
        p.listener["tls"] = {"mode": "manual", "cert": str(live_cert),
                             "key": str(live_key)}
    p = start_proxy(make_proxy, upstream, workers=2, configure=configure)
    a_der, b_der = pem_der(a_cert), pem_der(b_cert)
    assert peer_cert(p.https_port) == a_der

    # A keep-alive connection made with certificate A.
    old = tls_connect(p.https_port)
    try:
        old.sendall(get_request(close=False))
        status, _, _, rest = parse_response(_read_one(old))
        assert status == 200 and rest == b""

        # The files change: reload takes certificate B.
        shutil.copy(b_cert, live_cert)
        shutil.copy(b_key, live_key)
        rc, reply = p.ctl("reload")
        assert rc == 0 and reply["status"] == "ok", reply
        for _ in range(4):          # whichever worker takes it
            assert peer_cert(p.https_port) == b_der
        assert old.getpeercert(binary_form=True) == a_der

        # The established connection keeps working.
        old.sendall(get_request(close=False))
        status, _, body, _ = parse_response(_read_one(old))
        assert status == 200, (status, body, p.log()[-2000:])
    finally:
        old.close()

    # A broken certificate is refused, and B stays in use.
    live_cert.write_text("-----BEGIN CERTIFICATE-----\nbroken\n"
                         "-----END CERTIFICATE-----\n")
    rc, reply = p.ctl("reload")
    assert rc == 1 and reply["status"] == "error", reply
    assert str(live_cert) in reply["message"]
    # A certificate that does not match the key, too.
    shutil.copy(a_cert, live_cert)
    rc, reply = p.ctl("reload")
    assert rc == 1 and reply["status"] == "error", reply
    for _ in range(4):
        assert peer_cert(p.https_port) == b_der
    status, _, _, _ = https_get(p.https_port)
    assert status == 200


def _read_one(s):
    """Read one response with a Content-Length body from a keep-alive
    connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    m = re.search(rb"\r\ncontent-length: *(\d+)", data, re.I)
    assert m, data
    want = data.index(b"\r\n\r\n") + 4 + int(m.group(1))
    while len(data) < want:
        chunk = s.recv(65536)
        assert chunk, "closed in a response body"
        data += chunk
    return data


# ---- testssl ----------------------------------------------------------------

# Findings about the test certificate itself: it is self-signed, made for
# 30 days, and has no CRL/OCSP URI, by design.  These are all that may be
# reported at MEDIUM or above.
CERT_FINDINGS = {
    "cert_chain_of_trust",      # self-signed
    "cert_trust",               # name match is on "localhost" only
    "cert_expirationStatus",    # "expires < 30 days": made for 30 days
    "cert_notAfter",            # the same, for the date
    "cert_revocation",          # no CRL or OCSP URI in a test cert
    "cert_ocspURL", "cert_crlDistributionPoints", "OCSP_stapling",
    "cert_mustStapleExtension", "DNS_CAArecord",
}
# Not about TLS: testssl also grades the HTTP security headers of the
# answer it gets (HSTS, CSP ...), which are the application's.
HTTP_FINDINGS = {"security_headers", "HSTS"}
# Warnings about testssl's own environment, not the server.
ENV_WARNINGS = {"engine_problem"}


@slow
def test_testssl_scan(ecdsa_proxy, tmp_path):
    """testssl (about a minute): nothing at MEDIUM or above but the
    certificate-trust findings a self-signed test certificate must
    produce, and no warning that a protocol could not be tested."""
    jf = tmp_path / "testssl.json"
    r = subprocess.run(
        ["testssl", "--quiet", "--color", "0", "--warnings", "off",
         "--severity", "MEDIUM", "--jsonfile", str(jf),
         "--ip", "127.0.0.1", "--connect-timeout", str(10 * SLOWDOWN),
         "--openssl-timeout", str(10 * SLOWDOWN),
         f"localhost:{ecdsa_proxy.https_port}"],
        capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert jf.exists(), r.stdout + r.stderr
    findings = json.loads(jf.read_text())
    assert findings, r.stdout
    bad = [f for f in findings
           if (f["severity"] in ("MEDIUM", "HIGH", "CRITICAL")
               and f["id"] not in CERT_FINDINGS | HTTP_FINDINGS)
           or (f["severity"] == "WARN" and f["id"] not in ENV_WARNINGS)]
    assert bad == [], json.dumps(bad, indent=1) + "\n" + r.stdout[-6000:]
    assert "scanTime" not in {f["id"] for f in findings
                              if f["severity"] == "WARN"}
