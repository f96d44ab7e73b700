"""PROXY protocol in, trusted-proxies and real-ip-header (issue 18).

A real L4 balancer (HAProxy in TCP mode, send-proxy-v2 and send-proxy)
in front of portcullis, and raw sockets for what HAProxy never sends:
malformed headers, a header split over writes or too slow, no header
from a trusted source, a header from an untrusted one, v2 LOCAL, IPv6.

Addresses: every test client binds its socket to a 127.0.0.x address of
its own, so that portcullis sees sources it can tell apart.  127.0.0.3
is the trusted balancer; 127.0.0.1 (and the clients behind HAProxy,
127.0.0.2 and 127.0.0.4) are not trusted.
"""

import re
import shutil
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import (BINARY, free_port, parse_response, read_all,
                      start_proxy, tls_context, wait_until)

TRUSTED = "127.0.0.3"
SIG2 = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src, dst="127.0.0.1", sport=40000, dport=443, cmd=0x21, tlvs=b""):
    """A PROXY v2 header for TCP from src to dst (IPv4 or IPv6)."""
    if ":" in src:
        fam = 0x21
        addrs = (socket.inet_pton(socket.AF_INET6, src) +
                 socket.inet_pton(socket.AF_INET6, dst))
    else:
        fam = 0x11
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack(">HH", sport, dport) + tlvs
    return SIG2 + bytes([cmd, fam]) + struct.pack(">H", len(body)) + body


def v2_local():
    return SIG2 + bytes([0x20, 0x00]) + struct.pack(">H", 0)


def v1(src, dst="127.0.0.1", sport=40000, dport=443):
    fam = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def connect(port, source="127.0.0.1", timeout=10.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def request(path="/", host="localhost", extra=b""):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            .encode() + extra + b"\r\n")


def tls_after(sock, header, raw, alpn=("http/1.1",)):
    """Send header in the clear, then raw over TLS on the same socket;
    what came back."""
    if header:
        sock.sendall(header)
    with tls_context(alpn).wrap_socket(sock, server_hostname="localhost") \
            as s:
        s.sendall(raw)
        return read_all(s)


def closed_without_answer(sock, timeout=5.0):
    """The server closes sock without sending a byte."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        data = b""
    sock.close()
    return data == b""


def access_ips(p):
    return re.findall(r"ACCESS client_ip=(\S+)", p.log())


def proxy_lines(p):
    return [line for line in p.log().splitlines() if " PROXY " in line]


def listener_with(**opts):
    def configure(p):
        p.listener.update(opts)
    return configure


@pytest.fixture
def pp_proxy(make_proxy, upstream):
    """proxy-protocol on both ports, 127.0.0.3 trusted."""
    p = start_proxy(make_proxy, upstream, configure=listener_with(**{
        "proxy-protocol": True, "trusted-proxies": (TRUSTED, "10.0.0.0/8")}))
    return p, upstream


class HAProxy:
    """HAProxy in TCP mode: one frontend per (listen port, server)."""

    def __init__(self, tmp_path, routes, check=False):
        """routes: [(server port, "send-proxy-v2" or "send-proxy")];
        check: HAProxy's health checks, with the PROXY header too."""
        self.ports = [free_port() for _ in routes]
        cfg = ["global", "  maxconn 256", "defaults", "  mode tcp",
               "  timeout connect 5s", "  timeout client 30s",
               "  timeout server 30s"]
        for i, ((port, send), listen) in enumerate(zip(routes, self.ports)):
            cfg += [f"listen l{i}", f"  bind 127.0.0.1:{listen}",
                    f"  server s 127.0.0.1:{port} {send} source {TRUSTED}" +
                    (" check check-send-proxy check-ssl verify none "
                     "inter 100ms" if check else "")]
            if check:
                cfg += ["  option httpchk GET /hc",
                        "  http-check send hdr Host localhost"]
        self.path = tmp_path / "haproxy.cfg"
        self.path.write_text("\n".join(cfg) + "\n")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.path)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def up():
            assert self.proc.poll() is None, "haproxy exited"
            try:
                socket.create_connection(("127.0.0.1", self.ports[-1]),
                                         timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, 10, what="haproxy listening")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def haproxy(tmp_path):
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed (contrib/install-deps.sh test)")
    made = []

    def factory(routes, check=False):
        h = HAProxy(tmp_path, routes, check)
        made.append(h)
        return h
    yield factory
    for h in made:
        h.stop()


# -- through HAProxy ------------------------------------------------------

def test_haproxy_v2_gives_the_real_client(pp_proxy, haproxy):
    p, up = pp_proxy
    h = haproxy([(p.https_port, "send-proxy-v2")])
    data = tls_after(connect(h.ports[0], source="127.0.0.2"), b"",
                     request("/v2"))
    assert parse_response(data)[0] == 200
    req = up.wait_requests(1)[-1]
    assert req.one("x-forwarded-for") == "127.0.0.2"
    assert req.one("x-real-ip") == "127.0.0.2"
    p.wait_log(r"ACCESS client_ip=127\.0\.0\.2 method=GET host=localhost "
               r"path=/v2 ")
    assert TRUSTED not in access_ips(p)
    assert proxy_lines(p) == []


def test_haproxy_v1_on_both_ports(pp_proxy, haproxy):
    p, up = pp_proxy
    h = haproxy([(p.https_port, "send-proxy"), (p.http_port, "send-proxy")])
    data = tls_after(connect(h.ports[0], source="127.0.0.2"), b"",
                     request("/v1"))
    assert parse_response(data)[0] == 200
    assert up.wait_requests(1)[-1].one("x-forwarded-for") == "127.0.0.2"
    # The plain port: the redirect, and its ACCESS line names the client.
    s = connect(h.ports[1], source="127.0.0.4")
    s.sendall(request("/plain"))
    status, fields, _, _ = parse_response(read_all(s))
    s.close()
    assert status == 301
    assert fields["location"] == [f"https://localhost:{p.https_port}/plain"]
    p.wait_log(r"ACCESS client_ip=127\.0\.0\.4 method=GET host=localhost "
               r"path=/plain ")
    p.wait_log(r"ACCESS client_ip=127\.0\.0\.2 method=GET host=localhost "
               r"path=/v1 ")


def test_haproxy_http2(pp_proxy, haproxy):
    p, up = pp_proxy
    h = haproxy([(p.https_port, "send-proxy-v2")])
    r = subprocess.run(
        ["curl", "-sk", "--http2", "--interface", "127.0.0.2",
         "--resolve", f"localhost:{h.ports[0]}:127.0.0.1",
         "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
         f"https://localhost:{h.ports[0]}/h2"],
        capture_output=True, text=True, timeout=30)
    assert r.stdout == "2 200", r
    assert up.wait_requests(1)[-1].one("x-forwarded-for") == "127.0.0.2"
    p.wait_log(r"ACCESS client_ip=127\.0\.0\.2 method=GET "
               r"host=localhost:\d+ path=/h2 protocol=h2 ")


def test_haproxy_health_checks_are_local(pp_proxy, haproxy):
    """HAProxy's checks with check-send-proxy arrive as v2 LOCAL (here an
    HTTPS check, so that it makes a request): the balancer itself is the
    client, and nothing is refused."""
    p, up = pp_proxy
    h = haproxy([(p.https_port, "send-proxy-v2")], check=True)
    p.wait_log(r"ACCESS client_ip=127\.0\.0\.3 method=GET host=localhost "
               r"path=/hc ", count=3)
    assert proxy_lines(p) == []
    # Real traffic alongside still names its client.
    data = tls_after(connect(h.ports[0], source="127.0.0.2"), b"",
                     request())
    assert parse_response(data)[0] == 200
    assert up.wait_requests(1)[-1].one("x-forwarded-for") == "127.0.0.2"


def test_rate_limit_is_per_proxy_client(make_proxy, upstream, haproxy):
    """Two clients behind one balancer: a bucket each."""
    p = start_proxy(make_proxy, upstream, configure=listener_with(**{
        "proxy-protocol": True, "trusted-proxies": (TRUSTED,)}),
        **{"rate-limit": {"requests-per-second": 0.01, "burst": 3}})
    h = haproxy([(p.https_port, "send-proxy-v2")])

    def get(source):
        return parse_response(tls_after(connect(h.ports[0], source=source),
                                        b"", request()))[0]
    assert [get("127.0.0.2") for _ in range(4)] == [200, 200, 200, 429]
    # The other client, through the same balancer, has its own bucket.
    assert [get("127.0.0.4") for _ in range(3)] == [200, 200, 200]
    assert get("127.0.0.4") == 429
    p.wait_log(r"RATE_LIMIT client_ip=127\.0\.0\.2 ")
    p.wait_log(r"RATE_LIMIT client_ip=127\.0\.0\.4 ")
    assert f"client_ip={TRUSTED}" not in p.log()


# -- raw sockets from the trusted source ----------------------------------

@pytest.mark.parametrize("header,src", [
    (v2("198.51.100.7"), "198.51.100.7"),
    (v1("198.51.100.8"), "198.51.100.8"),
    (v2("2001:db8::42", "2001:db8::1"), "2001:db8::42"),
    (v1("2001:db8::43", "::1"), "2001:db8::43"),
    (v2("198.51.100.9", tlvs=b"\x01\x00\x02h2" + b"\x04\x00\x03abc"),
     "198.51.100.9"),
])
def test_header_names_the_client(pp_proxy, header, src):
    p, up = pp_proxy
    data = tls_after(connect(p.https_port, source=TRUSTED), header,
                     request("/raw"))
    assert parse_response(data)[0] == 200
    req = up.wait_requests(1)[-1]
    assert req.one("x-forwarded-for") == src
    assert req.one("x-real-ip") == src
    p.wait_log(rf"ACCESS client_ip={re.escape(src)} method=GET ")


def test_v2_local_keeps_the_peer(pp_proxy):
    p, up = pp_proxy
    data = tls_after(connect(p.https_port, source=TRUSTED), v2_local(),
                     request("/local"))
    assert parse_response(data)[0] == 200
    assert up.wait_requests(1)[-1].one("x-forwarded-for") == TRUSTED
    p.wait_log(rf"ACCESS client_ip={re.escape(TRUSTED)} method=GET ")


def test_v1_unknown_keeps_the_peer(pp_proxy):
    p, up = pp_proxy
    data = tls_after(connect(p.https_port, source=TRUSTED),
                     b"PROXY UNKNOWN\r\n", request())
    assert parse_response(data)[0] == 200
    assert up.wait_requests(1)[-1].one("x-forwarded-for") == TRUSTED


def test_header_split_over_writes(pp_proxy):
    p, up = pp_proxy
    header = v2("198.51.100.20", tlvs=b"\x04\x00\x10" + b"n" * 16)
    s = connect(p.https_port, source=TRUSTED)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for piece in (header[:1], header[1:7], header[7:15], header[15:20],
                  header[20:]):
        s.sendall(piece)
        time.sleep(0.1)
    assert parse_response(tls_after(s, b"", request()))[0] == 200
    assert up.wait_requests(1)[-1].one("x-forwarded-for") == "198.51.100.20"
    # v1, byte by byte, to the plain port.
    s = connect(p.http_port, source=TRUSTED)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in v1("198.51.100.21"):
        s.sendall(bytes([b]))
    time.sleep(0.1)
    s.sendall(request("/slowly"))
    assert parse_response(read_all(s))[0] == 301
    s.close()
    p.wait_log(r"ACCESS client_ip=198\.51\.100\.21 method=GET "
               r"host=localhost path=/slowly ")


MALFORMED = [
    (b"PROXY TCP4 198.51.100.1 127.0.0.1 1 2\n", "LF without CR"),
    (b"PROXY TCP4  198.51.100.1 127.0.0.1 1 2\r\n", "empty field"),
    (b"PROXY TCP4 198.51.100.1 127.0.0.1 01 2\r\n", "bad source port"),
    (b"PROXY TCP4 198.51.100.1 127.0.0.1 1 65536\r\n",
     "bad destination port"),
    (b"PROXY TCP6 198.51.100.1 127.0.0.1 1 2\r\n", "bad source address"),
    (b"PROXY UDP4 198.51.100.1 127.0.0.1 1 2\r\n", "protocol"),
    (b"PROXY UNKNOWN " + b"x" * 120, "107"),
    (SIG2 + b"\x11\x11\x00\x0c" + b"\x00" * 12, "version"),
    (SIG2 + b"\x2f\x11\x00\x0c" + b"\x00" * 12, "command"),
    (SIG2 + b"\x21\x12\x00\x0c" + b"\x00" * 12, "datagram"),
    (SIG2 + b"\x21\x21\x00\x0c" + b"\x00" * 12, "too short"),
    (SIG2 + b"\x21\x11\xff\xff", "longer than we take"),
    (v2("198.51.100.1", tlvs=b"\x01\x00\x05ab"), "TLV longer"),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "not a PROXY"),
]


@pytest.mark.parametrize("header,why", MALFORMED)
def test_malformed_header_is_closed(pp_proxy, header, why):
    p, up = pp_proxy
    s = connect(p.https_port, source=TRUSTED)
    s.sendall(header)
    assert closed_without_answer(s)
    p.wait_log(r" PROXY client_ip=127\.0\.0\.3 listener=1 trusted=yes "
               r"error=")
    lines = proxy_lines(p)
    assert len(lines) == 1 and why in lines[0], lines
    assert "198.51.100.1" not in p.log()
    assert up.requests == []


def test_no_header_from_a_trusted_source_is_closed(pp_proxy):
    p, up = pp_proxy
    s = connect(p.https_port, source=TRUSTED)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_after(s, b"", request())
    p.wait_log(r" PROXY client_ip=127\.0\.0\.3 listener=1 trusted=yes "
               r'error="not a PROXY protocol header"')
    assert len(proxy_lines(p)) == 1
    assert up.requests == []


def test_slow_header_is_closed_at_the_deadline(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, configure=listener_with(**{
        "proxy-protocol": True, "trusted-proxies": (TRUSTED,)}),
        http={"handshake-timeout": 1})
    header = v2("198.51.100.30")
    s = connect(p.https_port, source=TRUSTED)
    start = time.monotonic()
    s.sendall(header[:10])
    assert closed_without_answer(s, timeout=5)
    assert 0.8 < time.monotonic() - start < 4
    p.wait_log(r" PROXY client_ip=127\.0\.0\.3 listener=1 trusted=yes "
               r'error="no whole PROXY header within handshake-timeout"')
    # A connection that sends nothing at all, too.
    s = connect(p.https_port, source=TRUSTED)
    assert closed_without_answer(s, timeout=5)
    p.wait_log(r"trusted=yes error=\"no whole PROXY header", count=2)


# -- untrusted sources ----------------------------------------------------

@pytest.mark.parametrize("header", [v2("203.0.113.66"), v1("203.0.113.66")])
@pytest.mark.parametrize("port", ["https", "http"])
def test_header_from_an_untrusted_source_is_refused(pp_proxy, header, port):
    p, up = pp_proxy
    s = connect(getattr(p, f"{port}_port"), source="127.0.0.1")
    s.sendall(header)
    assert closed_without_answer(s)
    p.wait_log(r" PROXY client_ip=127\.0\.0\.1 listener=1 trusted=no "
               r'error="a PROXY header from a source not in '
               r'trusted-proxies"')
    assert len(proxy_lines(p)) == 1
    assert "203.0.113.66" not in p.log()
    assert up.requests == []


def test_direct_client_from_an_untrusted_source_is_served(pp_proxy):
    p, up = pp_proxy
    data = tls_after(connect(p.https_port, source="127.0.0.1"), b"",
                     request("/direct", extra=b"X-Forwarded-For: 6.6.6.6\r\n"))
    assert parse_response(data)[0] == 200
    # The edge model: the client's value replaced, never appended.
    assert up.wait_requests(1)[-1].header("x-forwarded-for") == ["127.0.0.1"]
    p.wait_log(r"ACCESS client_ip=127\.0\.0\.1 method=GET host=localhost "
               r"path=/direct ")
    # Plain HTTP too, even one that pauses inside "POST".
    s = connect(p.http_port, source="127.0.0.1")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"P")
    time.sleep(0.3)
    s.sendall(b"OST /p HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
              b"Connection: close\r\n\r\n")
    assert parse_response(read_all(s))[0] == 301
    s.close()
    assert proxy_lines(p) == []


# -- real-ip-header -------------------------------------------------------

@pytest.fixture
def realip_proxy(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, configure=listener_with(**{
        "trusted-proxies": (TRUSTED, "10.0.0.0/8"),
        "real-ip-header": "X-Forwarded-For"}))
    return p, upstream


def test_real_ip_header_from_a_trusted_peer(realip_proxy):
    p, up = realip_proxy
    xff = b"X-Forwarded-For: 6.6.6.6, 198.51.100.40, 10.1.2.3\r\n"
    data = tls_after(connect(p.https_port, source=TRUSTED), b"",
                     request("/rip", extra=xff))
    assert parse_response(data)[0] == 200
    req = up.wait_requests(1)[-1]
    assert req.header("x-forwarded-for") == ["198.51.100.40"]
    assert req.one("x-real-ip") == "198.51.100.40"
    p.wait_log(r"ACCESS client_ip=198\.51\.100\.40 method=GET "
               r"host=localhost path=/rip ")


def test_real_ip_header_garbage_on_the_left_is_passed_over(realip_proxy):
    """Read from the right as nginx does: what a client writes before the
    address its balancer appended never makes the balancer the client."""
    p, up = realip_proxy
    xff = b"X-Forwarded-For: junk, 198.51.100.41\r\n"
    data = tls_after(connect(p.https_port, source=TRUSTED), b"",
                     request("/left", extra=xff))
    assert parse_response(data)[0] == 200
    assert up.wait_requests(1)[-1].one("x-real-ip") == "198.51.100.41"
    p.wait_log(r"ACCESS client_ip=198\.51\.100\.41 method=GET "
               r"host=localhost path=/left ")


def test_real_ip_header_per_request_on_one_connection(realip_proxy):
    """A keep-alive connection from a balancer carries many clients."""
    p, up = realip_proxy
    raw = b""
    for ip in ("198.51.100.41", "198.51.100.42"):
        raw += (b"GET /k HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: " +
                ip.encode() + b"\r\n\r\n")
    raw += request("/k", extra=b"X-Forwarded-For: junk\r\n")
    data = tls_after(connect(p.https_port, source=TRUSTED), b"", raw)
    for _ in range(3):
        status, _, _, data = parse_response(data)
        assert status == 200
    got = [r.one("x-forwarded-for") for r in up.wait_requests(3)]
    assert got == ["198.51.100.41", "198.51.100.42", TRUSTED]


def test_real_ip_header_from_an_untrusted_peer_is_ignored(realip_proxy):
    p, up = realip_proxy
    data = tls_after(connect(p.https_port, source="127.0.0.1"), b"",
                     request("/rip", extra=b"X-Forwarded-For: 6.6.6.6\r\n"
                             b"X-Real-IP: 6.6.6.7\r\n"))
    assert parse_response(data)[0] == 200
    req = up.wait_requests(1)[-1]
    assert req.header("x-forwarded-for") == ["127.0.0.1"]
    assert req.header("x-real-ip") == ["127.0.0.1"]
    assert "6.6.6.6" not in p.log() and "6.6.6.7" not in p.log()


def test_real_ip_header_after_proxy_protocol(make_proxy, upstream, haproxy):
    """The connection's client (PROXY's) is who must be trusted: a client
    behind the balancer cannot name another with the header."""
    p = start_proxy(make_proxy, upstream, configure=listener_with(**{
        "proxy-protocol": True, "trusted-proxies": (TRUSTED, "127.0.0.4"),
        "real-ip-header": "X-Forwarded-For"}))
    h = haproxy([(p.https_port, "send-proxy-v2")])
    extra = b"X-Forwarded-For: 198.51.100.50\r\n"
    for i, (src, want) in enumerate((("127.0.0.2", "127.0.0.2"),
                                     ("127.0.0.4", "198.51.100.50"))):
        data = tls_after(connect(h.ports[0], source=src), b"",
                         request(extra=extra))
        assert parse_response(data)[0] == 200
        got = upstream.wait_requests(i + 1)[i].one("x-forwarded-for")
        assert got == want


# -- configuration --------------------------------------------------------

def test_reload_keeps_proxy_protocol_and_changes_real_ip_header(pp_proxy):
    p, up = pp_proxy
    p.listener["proxy-protocol"] = False
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 1
    assert "'listener 1 proxy-protocol' changed, which needs a restart" \
        in reply["message"]
    p.listener["proxy-protocol"] = True
    p.listener["trusted-proxies"] = (TRUSTED,)
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 1 and "'listener 1 trusted-proxies' changed" \
        in reply["message"]
    p.listener["trusted-proxies"] = (TRUSTED, "10.0.0.0/8")
    p.listener["real-ip-header"] = "X-Real-IP"
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    # Now the header of a request from a trusted client counts.
    data = tls_after(connect(p.https_port, source=TRUSTED),
                     v2("10.9.9.9"), request(extra=b"X-Real-IP: "
                                             b"198.51.100.60\r\n"))
    assert parse_response(data)[0] == 200
    assert up.wait_requests(1)[-1].one("x-forwarded-for") == "198.51.100.60"


def test_validate_errors(make_proxy):
    p = make_proxy()
    p.listener["proxy-protocol"] = True
    p.listener["real-ip-header"] = "Forwarded"
    p.write_config()
    text = p.conf_path.read_text()
    r = subprocess.run([str(BINARY), "--validate", "-c", str(p.conf_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    lines = text.splitlines()
    pp_line = next(i for i, s in enumerate(lines, 1)
                   if "proxy-protocol" in s)
    ri_line = next(i for i, s in enumerate(lines, 1)
                   if "real-ip-header" in s)
    assert f"{p.conf_path}:{pp_line}: proxy-protocol needs " \
        "trusted-proxies" in r.stderr, r.stderr
    assert f"{p.conf_path}:{ri_line}: real-ip-header: \"Forwarded\" is " \
        "not a field name" in r.stderr, r.stderr
    p.listener["real-ip-header"] = "X-Real-IP"
    p.listener["trusted-proxies"] = ("10.0.0.1/8", "nope")
    p.write_config()
    lines = p.conf_path.read_text().splitlines()
    tp_line = next(i for i, s in enumerate(lines, 1)
                   if "trusted-proxies" in s)
    r = subprocess.run([str(BINARY), "--validate", "-c", str(p.conf_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f"{p.conf_path}:{tp_line}: trusted-proxies: \"10.0.0.1/8\": " \
        "address bits set past the prefix length" in r.stderr, r.stderr
    assert f"{p.conf_path}:{tp_line}: trusted-proxies: \"nope\": not an " \
        "IPv4 or IPv6 address" in r.stderr, r.stderr


# -- the PROXY client is the client of the site's rules --------------------

def test_access_rules_judge_the_proxy_client(make_proxy, upstream):
    """allow/deny (issue 18) decide on the address a PROXY header names,
    never on the balancer's: a client of the allowed range through the
    trusted balancer is served, one outside it gets 403 with its own
    address in the ACCESS line; the balancer's own address, allowed as
    such, lets nothing through for a client behind it."""
    def configure(p):
        p.listener.update({"proxy-protocol": True,
                           "trusted-proxies": (TRUSTED,)})
        p.listener["site"] = [("localhost", {
            "upstream": upstream.addr,
            "allow": ("192.0.2.0/24", TRUSTED),
            "deny": ("0.0.0.0/0", "::/0")})]
    p = start_proxy(make_proxy, upstream, configure=configure)
    data = tls_after(connect(p.https_port, source=TRUSTED), v2("192.0.2.9"),
                     request("/in"))
    assert parse_response(data)[0] == 200
    assert upstream.wait_requests(1)[-1].one("x-real-ip") == "192.0.2.9"
    data = tls_after(connect(p.https_port, source=TRUSTED),
                     v1("198.51.100.77"), request("/out"))
    assert parse_response(data)[0] == 403
    p.wait_log(r"ACCESS client_ip=198\.51\.100\.77 method=GET "
               r"host=localhost path=/out protocol=HTTP/1\.1 status=403 ")
    assert [r.target for r in upstream.requests] == ["/in"]
