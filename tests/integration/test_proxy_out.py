"""PROXY protocol out to upstreams (issue 18): upstream-proxy-protocol.

A backend with upstream-proxy-protocol = "v1" or "v2" starts every new
upstream connection with a PROXY header naming the client connection it
is for: the client's address and port, and the address and port it
reached (the listener's).  What is checked, with real HTTP/1.1 and
HTTP/2 clients in front:

- nginx behind it with `listen ... proxy_protocol` (plain, and `ssl
  proxy_protocol` for upstream-scheme "https": the header goes before
  TLS), v1 and v2: $proxy_protocol_addr/_port are the client's,
  $proxy_protocol_server_addr/_port the listener's;
- the pool: requests of one client connection (keep-alive, or HTTP/2
  streams) share an upstream connection ($connection); requests of two
  client connections never do, even when the first's is idle;
- the v2 TLVs, decoded here by a small upstream of the test's own that
  reads the header itself: ALPN (h2, http/1.1), AUTHORITY (the SNI sent;
  none without SNI), SSL (client bits, verify, version, cipher);
- health checks of such a backend send the header of a connection of
  the proxy's own (v2 LOCAL, v1 UNKNOWN), and nginx passes them;
- a reload turns it on, switches the version and turns it off; a pooled
  connection made under the old setting is never used for the new;
- --validate: a bad value with its file:line.
"""

import json
import re
import socket
import ssl
import struct
import threading

import pytest

from conftest import (SLOWDOWN, start_proxy,
                      tls_connect, tls_context, wait_until)
from h1util import read_response
from h2util import H2Client
import nginx_upstream
from nginx_upstream import NginxUpstream
from test_upstream_tls import (PKI, front_cert, tls_site,  # noqa: F401
                               validate)
from test_upstreams import Client, reload_ok, upstream_states

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("pki"))


# ---- nginx with proxy_protocol --------------------------------------------

# What nginx answers: what the PROXY header told it, and its connection.
RETURN = ('return 200 "pp=$proxy_protocol_addr:$proxy_protocol_port '
          'server=$proxy_protocol_server_addr:$proxy_protocol_server_port '
          'conn=$connection uri=$request_uri\\n";')


def pp_conf(d, port, ssl_conf):
    """nginx_upstream's nginx.conf, its server made to expect the PROXY
    header (and TLS, with ssl_conf) and to answer RETURN."""
    text = nginx_upstream.CONF.format(dir=d, port=port, body="",
                                      access="off")
    listen = f"listen 127.0.0.1:{port};"
    assert listen in text and 'return 200 "";' in text
    ssl = "ssl " if ssl_conf else ""
    return text.replace(listen, f"listen 127.0.0.1:{port} {ssl}"
                        f"proxy_protocol; {ssl_conf}").replace(
        'return 200 "";', RETURN)


BODY = re.compile(r"^pp=(\S+):(\d+) server=(\S+):(\d+) conn=(\d+) "
                  r"uri=(\S+)\n$")


class NginxPP(NginxUpstream):
    """nginx expecting a PROXY header (v1 or v2) on every connection,
    answering what it says: BODY."""

    def __init__(self, directory, cert=None, key=None):
        ssl_conf = ""
        if cert is not None:
            ssl_conf = (f"ssl_certificate {cert}; "
                        f"ssl_certificate_key {key};")
        super().__init__(directory,
                         conf=lambda d, port: pp_conf(d, port, ssl_conf))


@pytest.fixture
def make_nginx_pp(tmp_path):
    made = []

    def factory(cert=None, key=None):
        n = NginxPP(tmp_path / f"nginx-pp{len(made)}", cert, key)
        made.append(n)
        return n

    yield factory
    for n in made:
        n.stop()


def parse_body(body):
    m = BODY.match(body.decode())
    assert m, body
    return {"addr": m.group(1), "port": int(m.group(2)),
            "server": m.group(3), "server_port": int(m.group(4)),
            "conn": int(m.group(5)), "uri": m.group(6)}


def proxy_to(make_proxy, site, workers=1):
    def configure(p):
        p.listener["site"] = [("localhost", site)]
    return start_proxy(make_proxy, workers=workers, configure=configure)


class H1:
    """One keep-alive HTTP/1.1 client connection: each get() returns the
    status and body, and .port is the connection's own port."""

    def __init__(self, p):
        self.c = Client(p.https_port)
        self.port = None

    def get(self, path):
        status, body, _ = self.c.get(path)
        self.port = self.c.conn.sock.getsockname()[1]
        return status, body

    def close(self):
        self.c.close()


def h1_says(p, client, path):
    status, body = client.get(path)
    assert status == 200, (status, body)
    got = parse_body(body)
    assert got["uri"] == path
    assert (got["addr"], got["port"]) == ("127.0.0.1", client.port), got
    assert (got["server"], got["server_port"]) == ("127.0.0.1",
                                                   p.https_port), got
    return got


def h2_says(p, c, path):
    st = c.response(c.request("GET", path))
    assert st.status == 200, (st.status, st.body)
    got = parse_body(st.body)
    assert got["uri"] == path
    assert (got["addr"], got["port"]) == (
        "127.0.0.1", c.sock.getsockname()[1]), got
    assert (got["server"], got["server_port"]) == ("127.0.0.1",
                                                   p.https_port), got
    return got


def check_nginx(p):
    """HTTP/1.1 and HTTP/2 clients through p to an nginx expecting the
    header: it names each client; one client connection's requests share
    an upstream connection, two client connections' never do."""
    a, b = H1(p), H1(p)
    a1 = h1_says(p, a, "/a1")
    b1 = h1_says(p, b, "/b1")           # a's connection is idle now
    a2 = h1_says(p, a, "/a2")
    b2 = h1_says(p, b, "/b2")
    assert a.port != b.port
    assert a1["conn"] == a2["conn"], (a1, a2)
    assert b1["conn"] == b2["conn"], (b1, b2)
    assert a1["conn"] != b1["conn"], (a1, b1)
    a.close()
    c = H1(p)                           # a gone: its connection is not c's
    c1 = h1_says(p, c, "/c1")
    assert c1["conn"] != b1["conn"], (b1, c1)
    # (Unless c got a's port again: the same header, rightly the same.)
    assert c1["conn"] != a1["conn"] or c.port == a.port, (a1, c1)
    b.close()
    c.close()
    with H2Client(p.https_port) as h, H2Client(p.https_port) as k:
        h1 = h2_says(p, h, "/h1")
        k1 = h2_says(p, k, "/k1")
        h2 = h2_says(p, h, "/h2")
        assert h1["conn"] == h2["conn"], (h1, h2)
        assert k1["conn"] != h1["conn"], (h1, k1)
        assert h1["conn"] not in (a1["conn"], b1["conn"], c1["conn"])


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_nginx_plain(make_proxy, make_nginx_pp, version):
    n = make_nginx_pp()
    p = proxy_to(make_proxy, {"upstream": n.addr,
                              "upstream-proxy-protocol": version})
    check_nginx(p)
    assert "broken header" not in (n.dir / "error.log").read_text()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_nginx_https(make_proxy, make_nginx_pp, pki, version):
    """upstream-scheme "https": the header first, then TLS."""
    n = make_nginx_pp(*pki.good)
    p = proxy_to(make_proxy, tls_site(n.addr, pki, **{
        "upstream-server-name": "up.test",
        "upstream-proxy-protocol": version}))
    check_nginx(p)


def test_nginx_without_it_refuses(make_proxy, make_nginx_pp, make_upstream):
    """The header is sent only where configured: the same nginx refuses
    a request without it (it is not HTTP to it), and a plain upstream
    gets no header."""
    n = make_nginx_pp()
    u = make_upstream()
    p = proxy_to(make_proxy, {"upstream": n.addr})
    status, _ = H1(p).get("/x")
    assert status == 502
    p2 = proxy_to(make_proxy, {"upstream": u.addr})
    status, body = H1(p2).get("/plain")
    assert status == 200
    assert u.raw().startswith(b"GET /plain HTTP/1.1\r\n")


# ---- an upstream that reads the header itself -----------------------------


def decode_header(read):
    """The PROXY header at the start of a connection, read with read(n)
    (exactly n bytes): a dict saying what it is (kind "none" if the
    connection starts with anything else; then "rest" is what was read)."""
    first = read(5)
    if first == b"PROXY":
        line = first
        while not line.endswith(b"\r\n"):
            line += read(1)
            assert len(line) <= 107, line
        parts = line[:-2].decode("ascii").split(" ")
        if parts[1] == "UNKNOWN":
            return {"kind": "v1", "proto": "UNKNOWN", "raw": line}
        assert len(parts) == 6, parts
        return {"kind": "v1", "proto": parts[1], "src": parts[2],
                "dst": parts[3], "sport": int(parts[4]),
                "dport": int(parts[5]), "raw": line}
    if first != V2_SIG[:5]:
        return {"kind": "none", "rest": first}
    head = first + read(7)
    assert head == V2_SIG, head
    ver_cmd, fam, length = struct.unpack("!BBH", read(4))
    assert ver_cmd >> 4 == 2, ver_cmd
    body = read(length)
    out = {"kind": "v2", "cmd": ver_cmd & 0xF, "fam": fam, "tlvs": {},
           "raw": head + struct.pack("!BBH", ver_cmd, fam, length) + body}
    families = {0x11: (socket.AF_INET, 4), 0x21: (socket.AF_INET6, 16)}
    if fam in families:
        af, n = families[fam]
        src, dst, sport, dport = struct.unpack(f"!{n}s{n}sHH",
                                               body[:2 * n + 4])
        out.update(src=socket.inet_ntop(af, src),
                   dst=socket.inet_ntop(af, dst), sport=sport, dport=dport)
        rest = body[2 * n + 4:]
    else:
        assert fam == 0x00, fam
        rest = body
    out["tlvs"] = decode_tlvs(rest)
    return out


def decode_tlvs(data):
    """{type: value} of TLVs (each type once); PP2_TYPE_SSL (0x20) as a
    dict of its client byte, verify and sub-TLVs."""
    tlvs, i = {}, 0
    while i < len(data):
        assert i + 3 <= len(data), data
        t, n = data[i], struct.unpack("!H", data[i + 1:i + 3])[0]
        v = data[i + 3:i + 3 + n]
        assert len(v) == n, data
        assert t not in tlvs, t
        if t == 0x20:
            client, verify = struct.unpack("!BI", v[:5])
            v = {"client": client, "verify": verify,
                 "sub": decode_tlvs(v[5:])}
        tlvs[t] = v
        i += 3 + n
    return tlvs


class PPUpstream:
    """A keep-alive HTTP/1.1 upstream on 127.0.0.1 that decodes the PROXY
    header of each connection (decode_header) and answers every request
    with it as JSON, with the connection's serial number ("conn") and
    the target ("uri").  .conns: the decoded headers, in order;
    .errors: what went wrong in its threads (the fixture fails the test
    on any)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.conns = []
        self.errors = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.stopping = False
        self.open = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.open.append(s)
            threading.Thread(target=self._serve, args=(s,),
                             daemon=True).start()

    def _serve(self, s):
        buf = bytearray()

        def read(n):
            while len(buf) < n:
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError
                buf.extend(chunk)
            out = bytes(buf[:n])
            del buf[:n]
            return out

        try:
            hdr = decode_header(read)
            if hdr["kind"] == "none":
                buf[:0] = hdr.pop("rest")
            with self.lock:
                hdr["conn"] = len(self.conns)
                self.conns.append(hdr)
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    buf.extend(chunk)
                end = buf.index(b"\r\n\r\n") + 4
                head = bytes(buf[:end]).decode("latin-1")
                del buf[:end]
                uri = head.split(" ")[1]
                reply = {k: v for k, v in hdr.items()
                         if k not in ("raw", "tlvs")}
                reply["uri"] = uri
                reply["raw"] = hdr.get("raw", b"").hex()
                body = json.dumps(reply).encode() + b"\n"
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body)
        except (EOFError, OSError):
            pass
        except Exception as e:          # a check failed: the test fails
            with self.lock:
                self.errors.append(repr(e))
        finally:
            s.close()

    def header(self, conn):
        with self.lock:
            return self.conns[conn]

    def stop(self):
        self.stopping = True
        # shutdown() wakes the accept() of the thread (close() alone
        # does not), so that it ends and the test does not wait for it.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def pp_upstream():
    made = []

    def factory():
        u = PPUpstream()
        made.append(u)
        return u

    yield factory
    for u in made:
        u.stop()
    errors = [e for u in made for e in u.errors]
    assert not errors, errors


def ask(client_get, path):
    status, body = client_get(path)
    assert status == 200, (status, body)
    got = json.loads(body)
    assert got["uri"] == path
    return got


def raw_get(port, path, sni, alpn=("http/1.1",), tls_version=None):
    """One request on a new TLS connection: (the reply's JSON, the
    client's port, the cipher the client negotiated)."""
    ctx = tls_context(alpn=alpn)
    if tls_version is not None:
        ctx.minimum_version = ctx.maximum_version = tls_version
    with tls_connect(port, sni=sni, ctx=ctx) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"
                  .encode())
        status, _, body = read_response(s)
        assert status == 200, (status, body)
        return json.loads(body), s.getsockname()[1], s.cipher()[0]


def test_v2_tlvs(make_proxy, pp_upstream):
    """v2 over IPv4 with the TLVs of the client's TLS: ALPN, AUTHORITY
    (the SNI; none without), SSL: client bits PP2_CLIENT_SSL only (no
    client certificate), verify non-zero (none was verified), the
    version as OpenSSL writes it, the cipher suite's name (GnuTLS's,
    the IANA one: TLS 1.3 suites are named the same by OpenSSL)."""
    u = pp_upstream()
    p = proxy_to(make_proxy, {"upstream": u.addr,
                              "upstream-proxy-protocol": "v2"})
    got, port, cipher = raw_get(p.https_port, "/t1", "localhost")
    hdr = u.header(got["conn"])
    assert (hdr["cmd"], hdr["fam"]) == (1, 0x11)
    assert (hdr["src"], hdr["sport"]) == ("127.0.0.1", port)
    assert (hdr["dst"], hdr["dport"]) == ("127.0.0.1", p.https_port)
    t = hdr["tlvs"]
    assert sorted(t) == [0x01, 0x02, 0x20], t
    assert t[0x01] == b"http/1.1"
    assert t[0x02] == b"localhost"
    assert t[0x20]["client"] == 0x01
    assert t[0x20]["verify"] != 0
    assert t[0x20]["sub"] == {0x21: b"TLSv1.3", 0x23: cipher.encode()}, t
    assert cipher.startswith("TLS_") and "_WITH_" not in cipher

    # No SNI: no AUTHORITY.  HTTP/2: ALPN h2.
    got, port, _ = raw_get(p.https_port, "/t2", None)
    t = u.header(got["conn"])["tlvs"]
    assert sorted(t) == [0x01, 0x20], t
    assert u.header(got["conn"])["sport"] == port
    with H2Client(p.https_port, sni="other.example.test") as c:
        st = c.response(c.request("GET", "/t3"))
        assert st.status == 200, st.body
        hdr = u.header(json.loads(st.body)["conn"])
        assert hdr["sport"] == c.sock.getsockname()[1]
        assert hdr["tlvs"][0x01] == b"h2"
        assert hdr["tlvs"][0x02] == b"other.example.test"

    # TLS 1.2: its version, and GnuTLS's name of the suite (not
    # OpenSSL's "ECDHE-ECDSA-...").
    got, port, cipher = raw_get(p.https_port, "/t4", "localhost",
                                tls_version=ssl.TLSVersion.TLSv1_2)
    sub = u.header(got["conn"])["tlvs"][0x20]["sub"]
    assert sub[0x21] == b"TLSv1.2"
    assert sub[0x23].startswith(b"TLS_ECDHE_ECDSA_WITH_"), sub
    assert "ECDHE-ECDSA" in cipher


def test_v1_exact_and_pooling(make_proxy, pp_upstream):
    """v1: exactly the line of the spec; the header never comes twice on
    a connection (the second request of a client reuses it, no header),
    and never for another client."""
    u = pp_upstream()
    p = proxy_to(make_proxy, {"upstream": u.addr,
                              "upstream-proxy-protocol": "v1"})
    a, b = H1(p), H1(p)
    a1 = ask(a.get, "/a1")
    assert bytes.fromhex(a1["raw"]) == (
        f"PROXY TCP4 127.0.0.1 127.0.0.1 {a.port} {p.https_port}\r\n"
        .encode())
    b1 = ask(b.get, "/b1")
    a2 = ask(a.get, "/a2")
    assert a2["conn"] == a1["conn"] and b1["conn"] != a1["conn"]
    assert b1["sport"] == b.port
    assert len(u.conns) == 2
    a.close()
    b.close()


def test_ipv6_client(make_proxy, pp_upstream):
    """A listener on ::1: TCP6 in v1, AF_INET6 in v2, both addresses
    ::1."""
    u = pp_upstream()
    for version in ("v1", "v2"):
        def configure(p, version=version):
            p.listener["bind"] = "::1"
            p.listener["site"] = [("localhost", {
                "upstream": u.addr, "upstream-proxy-protocol": version})]
        p = start_proxy(make_proxy, configure=configure)
        ctx = tls_context()
        raw = socket.create_connection(("::1", p.https_port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /six HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status, _, body = read_response(s)
            assert status == 200, body
            port = s.getsockname()[1]
        hdr = u.header(json.loads(body)["conn"])
        if version == "v1":
            assert hdr["raw"] == (f"PROXY TCP6 ::1 ::1 {port} "
                                  f"{p.https_port}\r\n").encode()
        else:
            assert (hdr["fam"], hdr["src"], hdr["dst"]) == (0x21, "::1",
                                                           "::1")
            assert (hdr["sport"], hdr["dport"]) == (port, p.https_port)


# ---- health checks ---------------------------------------------------------


def checks_of(u):
    return [h for h in list(u.conns) if h["kind"] != "none" and
            (h.get("cmd") == 0 or h.get("proto") == "UNKNOWN")]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_health_checks_send_a_local_header(make_proxy, pp_upstream,
                                           make_nginx_pp, version):
    """A check's connection is the proxy's own: v2's LOCAL command (no
    address), v1's "PROXY UNKNOWN"; nginx takes it, and the check
    passes."""
    u = pp_upstream()
    n = make_nginx_pp()
    hc = {"path": "/healthz", "interval": 1, "timeout": 1, "passes": 1,
          "fails": 1}

    def configure(p):
        p.listener["site"] = [("localhost", {
            "upstream": (u.addr, n.addr), "upstream-proxy-protocol": version,
            "max-fails": 0, "health-check": hc})]
    p = start_proxy(make_proxy, configure=configure)
    wait_until(lambda: checks_of(u), 5 * SLOWDOWN, what="a check")
    hdr = checks_of(u)[0]
    if version == "v2":
        assert hdr["raw"] == V2_SIG + b"\x20\x00\x00\x00"
    else:
        assert hdr["raw"] == b"PROXY UNKNOWN\r\n"
    wait_until(lambda: upstream_states(p)[n.addr]["check"] == "up",
               10 * SLOWDOWN, interval=0.1, what="nginx checked up")
    wait_until(lambda: upstream_states(p)[u.addr]["check"] == "up",
               10 * SLOWDOWN, interval=0.1, what="ours checked up")


# ---- reload ----------------------------------------------------------------


def test_reload_on_switch_off(make_proxy, pp_upstream):
    """Reloads turn it on, switch the version, turn it off; a client
    connection kept open across them gets the new setting at once: an
    upstream connection made under another setting is never used for
    it, and one made under the same (the same header bytes, or none)
    is."""
    u = pp_upstream()
    site = {"upstream": u.addr}
    p = proxy_to(make_proxy, site)
    a = H1(p)
    kinds = []
    for version in (None, "v2", "v1", None, "v2"):
        if version is None:
            site.pop("upstream-proxy-protocol", None)
        else:
            site["upstream-proxy-protocol"] = version
        if kinds:
            reload_ok(p)
        got = ask(a.get, f"/{version}")
        again = ask(a.get, f"/{version}/again")
        assert again["conn"] == got["conn"]
        kinds.append((got["kind"], got["conn"]))
        if version is not None:
            assert got["sport"] == a.port
    assert [k for k, _ in kinds] == ["none", "v2", "v1", "none", "v2"]
    conns = [c for _, c in kinds]
    assert len(set(conns[:3])) == 3, kinds
    assert conns[3] == conns[0] and conns[4] == conns[1], kinds
    assert len(u.conns) == 3
    a.close()


# ---- --validate -------------------------------------------------------------


def test_validate_errors(tmp_path, front_cert):
    """A bad value is an error at its line, in a site and in a path
    block (test_upstream_tls's validate(): the lines from 8 on)."""
    conf = tmp_path / "v.conf"
    want = ("upstream-proxy-protocol must be \"v1\", \"v2\" or \"none\", "
            "not ")
    assert validate(tmp_path, ['upstream-proxy-protocol = "v3"'],
                    scheme="http") == (1, [
        f"{conf}:8: site \"a.test\": {want}\"v3\""])
    assert validate(tmp_path, ['upstream-proxy-protocol = true'],
                    scheme="http") == (1, [
        f"{conf}:8: site \"a.test\": {want}\"true\""])
    block = ['path "/p/" {', 'upstream = "127.0.0.1:8444"',
             'upstream-proxy-protocol = "2"', '}']
    assert validate(tmp_path, block, scheme="http") == (1, [
        f"{conf}:10: site \"a.test\" path \"/p/\": {want}\"2\""])
    for good in ("v1", "v2", "none"):
        assert validate(tmp_path, [f'upstream-proxy-protocol = "{good}"',
                                   'path "/p/" {',
                                   'upstream = "127.0.0.1:8444"',
                                   'upstream-proxy-protocol = "v1"', '}'],
                        scheme="http") == (0, [])
