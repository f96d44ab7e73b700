"""How a WebSocket tunnel ends: the last bytes of either side reach the
other one before the end does, over HTTP/1.1 and HTTP/2.

A client that sends its last message and its close together (one TCP
segment holding the TLS record and the close_notify, or the record and
the FIN) makes the proxy read both in the same read.  The client side
here is TLS over memory BIOs on a raw socket, so that the test decides
what goes into each send(); a FIN rides on the data's segment with
TCP_CORK (Linux sends corked data with the FIN set on it).  Nothing
depends on timing."""

import os
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.events
import pytest

from conftest import start_proxy, tls_context, wait_until
from proxyutil_ops import cpu_seconds
from test_streaming import ws_accept, ws_request

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


class TunnelUpstream:
    """An upstream that accepts every WebSocket (101, then `tail` and a
    close if given), records the tunnel's bytes until EOF, and then
    answers `after_eof` before it closes: an upstream that sees a
    half-close can still talk."""

    def __init__(self, tail=None, after_eof=b""):
        self.tail = tail
        self.after_eof = after_eof
        self.tunnel = bytearray()
        self.eof = threading.Event()
        self.closed = threading.Event()

    def __call__(self, req, conn):
        key = req.header("Sec-WebSocket-Key")
        head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n")
        if key:
            head += b"Sec-WebSocket-Accept: %s\r\n" % ws_accept(
                key[0]).encode()
        if self.tail is not None:
            # Everything then the FIN, with no pause for the proxy.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            conn.send(head + b"\r\n" + self.tail)
            conn.sock.shutdown(socket.SHUT_WR)
            self.closed.set()
        else:
            conn.send(head + b"\r\n")
        while True:
            self.tunnel += conn.buf
            conn.buf = b""
            try:
                conn.recv_more()
            except EOFError:
                break
        self.eof.set()
        if self.after_eof:
            conn.send(self.after_eof)
        conn.close()


class MemTLS:
    """A TLS client over memory BIOs: records are made in memory and sent
    when and how the test says."""

    def __init__(self, port, alpn, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.inc, self.outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = tls_context(alpn)
        # A TCP end without close_notify is a truncation, not an end.
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
        self.tls = ctx.wrap_bio(self.inc, self.outg,
                                              server_hostname="localhost")
        for _ in range(100):
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outg.read())
                assert self.fill(), "closed in the handshake"
        else:
            raise AssertionError("no handshake")
        self.sock.sendall(self.outg.read())
        assert self.tls.selected_alpn_protocol() == alpn[0]

    def fill(self):
        data = self.sock.recv(65536)
        if data:
            self.inc.write(data)
        else:
            self.inc.write_eof()
        return bool(data)

    def records(self, data, close_notify=False):
        """The ciphertext of data, and of a close_notify after it."""
        if data:
            self.tls.write(data)
        if close_notify:
            try:
                self.tls.unwrap()
            except ssl.SSLWantReadError:
                pass            # it wants the server's: it is sent
        return self.outg.read()

    def send(self, data):
        self.sock.sendall(self.records(data))

    def recv(self):
        """Some bytes; b"" at the server's close_notify; AssertionError
        at a TCP end without one (a truncation)."""
        while True:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                self.fill()
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLEOFError:
                raise AssertionError("TCP end without close_notify")

    def read_until(self, pred):
        data = b""
        while not pred(data):
            chunk = self.recv()
            assert chunk, f"closed after {data[:200]!r}"
            data += chunk
        return data

    def read_to_end(self):
        data = b""
        for _ in range(1 << 16):
            chunk = self.recv()
            if not chunk:
                return data
            data += chunk
        raise AssertionError("no end")

    def close(self):
        self.sock.close()


def h1_tunnel(p, rcvbuf=None):
    c = MemTLS(p.https_port, ("http/1.1",), rcvbuf=rcvbuf)
    c.send(ws_request(key=KEY))
    data = c.read_until(lambda d: b"\r\n\r\n" in d)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return c, rest


def counted(p, n):
    """The proxy's counters once n requests are counted."""
    return wait_until(lambda: (s := p.ctl("status")[1])["counters"][
        "requests"] >= n and s["counters"], what=f"{n} requests counted")


# ---- the client's end, HTTP/1.1 ---------------------------------------------

def test_h1_last_bytes_and_close_notify_in_one_read(make_proxy,
                                                    make_upstream):
    """The last message and the close_notify in one segment: the upstream
    gets the message, then an EOF that is a half-close (TLS 1.3's
    close_notify closes one direction): what the upstream says after it
    still reaches the client, then the proxy's close_notify."""
    answer = b"goodbye " * 5000
    up = TunnelUpstream(after_eof=answer)
    p = start_proxy(make_proxy, make_upstream(handler=up))
    last = b"\x88\x82" + b"\x01\x02\x03\x04" + b"\x03\xea" + os.urandom(3000)
    for i in range(3):
        up.tunnel.clear()
        up.eof.clear()
        c, rest = h1_tunnel(p)
        try:
            assert rest == b""
            c.sock.sendall(c.records(last, close_notify=True))
            assert up.eof.wait(10), "the upstream never got the EOF"
            assert bytes(up.tunnel) == last, \
                f"run {i}: {len(up.tunnel)} of {len(last)} bytes upstream"
            assert c.read_to_end() == answer
        finally:
            c.close()
    # Ended by the client, the tunnels count as no error.
    k = counted(p, 3)
    assert k["requests"] == 3 and k["errors"] == 0, k


# The proxy's TLS read-ahead (TLS_READAHEAD in src/tls.c).  A read that
# fills it is followed by another one at once, which finds the FIN; one
# that does not leaves the FIN to the next loop iteration.
READ_AHEAD = 16384 + 2048
RECORD_OVERHEAD = 22        # TLS 1.3, AEAD with a 16-byte tag


def test_h1_last_bytes_and_fin_in_one_read(make_proxy, make_upstream):
    """The last bytes and the FIN (no close_notify) in one segment, sized
    so that the proxy reads the FIN right behind them: the upstream gets
    the bytes, then its EOF.  (Nothing more can reach such a client:
    GnuTLS ends a session whose peer left without close_notify.)"""
    up = TunnelUpstream()
    p = start_proxy(make_proxy, make_upstream(handler=up))
    c, _ = h1_tunnel(p)
    try:
        # Small records, so that the read-ahead is full while the bytes
        # still fit in the proxy's 16 KiB input buffer.
        k = -(-(READ_AHEAD - 16384) // RECORD_OVERHEAD) + 1
        size = READ_AHEAD - k * RECORD_OVERHEAD
        last = os.urandom(size)
        cut = [i * size // k for i in range(k + 1)]
        wire = b"".join(c.records(last[a:b]) for a, b in zip(cut, cut[1:]))
        assert len(wire) == READ_AHEAD, (len(wire), "the premise")
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        c.sock.sendall(wire)
        c.sock.shutdown(socket.SHUT_WR)
        assert up.eof.wait(10), "the upstream never got the EOF"
        assert bytes(up.tunnel) == last, \
            f"{len(up.tunnel)} of {len(last)} bytes upstream"
    finally:
        c.close()
    k = counted(p, 1)
    assert k["errors"] == 0, k


# ---- the upstream's end ------------------------------------------------------

def test_h1_upstream_last_bytes_reach_the_client(make_proxy, make_upstream):
    """The upstream sends its last bytes and closes at once: all of them
    reach the client, then a close_notify."""
    tail = os.urandom(1 << 20)
    up = TunnelUpstream(tail=tail)
    p = start_proxy(make_proxy, make_upstream(handler=up))
    c, rest = h1_tunnel(p)
    try:
        assert rest + c.read_to_end() == tail
    finally:
        c.close()
    k = counted(p, 1)
    assert k["errors"] == 0, k


def test_h1_upstream_end_leaves_the_worker_asleep(make_proxy,
                                                  make_upstream):
    """After the upstream's end the proxy waits on the client alone: an
    upstream socket at EOF is no reason to run (it stays readable)."""
    up = TunnelUpstream(tail=b"last words")
    p = start_proxy(make_proxy, make_upstream(handler=up), workers=1)
    worker = p.wait_workers(1)[0]
    c, rest = h1_tunnel(p)
    try:
        assert rest + c.read_to_end() == b"last words"
        # The proxy lingers for the client's close, which does not come.
        before = cpu_seconds(worker)
        time.sleep(1.0)
        used = cpu_seconds(worker) - before
    finally:
        c.close()
    assert used < 0.2, f"the worker used {used:.2f}s of CPU in 1s " \
                       f"after the tunnel ended"


# ---- HTTP/2 ------------------------------------------------------------------

class MemH2:
    """HTTP/2 on MemTLS: frames are made in memory, sent when the test
    says."""

    def __init__(self, port):
        self.t = MemTLS(port, ("h2",))
        cfg = h2.config.H2Configuration(client_side=True,
                                        header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()
        self.data = {}
        self.ended = set()
        self.early_reset = {}       # RST_STREAM before END_STREAM
        self.status = {}
        self.remote_settings = False

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.t.send(out)

    def read_some(self):
        chunk = self.t.recv()
        assert chunk, "the proxy closed"
        for ev in self.conn.receive_data(chunk):
            if isinstance(ev, h2.events.ResponseReceived):
                self.status[ev.stream_id] = dict(ev.headers)[":status"]
            elif isinstance(ev, h2.events.DataReceived):
                self.data.setdefault(ev.stream_id, bytearray()).extend(
                    ev.data)
                self.conn.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self.remote_settings = True
            elif isinstance(ev, h2.events.StreamReset):
                # After END_STREAM, NO_ERROR only says "send no more"
                # (RFC 9113 8.1).
                if ev.stream_id not in self.ended or ev.error_code != 0:
                    self.early_reset[ev.stream_id] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                raise AssertionError(repr(ev))
        self.flush()

    def websocket(self):
        for _ in range(100):
            if self.remote_settings:
                break
            self.read_some()
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [
            (":method", "CONNECT"), (":protocol", "websocket"),
            (":scheme", "https"), (":path", "/ws"),
            (":authority", "localhost"),
            ("sec-websocket-version", "13")], end_stream=False)
        self.flush()
        for _ in range(100):
            if sid in self.status:
                break
            self.read_some()
        assert self.status.get(sid) == "200", self.status
        return sid


@pytest.mark.parametrize("end_stream", [True, False],
                         ids=["END_STREAM", "no-END_STREAM"])
def test_h2_last_bytes_and_close_notify_in_one_read(make_proxy,
                                                    make_upstream,
                                                    end_stream):
    """The last DATA and the close_notify in one segment: the upstream gets
    the bytes, then EOF.  With END_STREAM that is HTTP/2's half-close; a
    client that closes its connection without ending the stream still
    has its DATA delivered before the end."""
    up = TunnelUpstream()
    p = start_proxy(make_proxy, make_upstream(handler=up))
    last = os.urandom(3000)
    c = MemH2(p.https_port)
    try:
        sid = c.websocket()
        c.conn.send_data(sid, last, end_stream=end_stream)
        c.t.sock.sendall(c.t.records(c.conn.data_to_send(),
                                     close_notify=True))
        assert up.eof.wait(10), "the upstream never got the EOF"
    finally:
        c.t.close()
    assert bytes(up.tunnel) == last, \
        f"{len(up.tunnel)} of {len(last)} bytes upstream"


def test_h2_upstream_last_bytes_reach_the_client(make_proxy, make_upstream):
    """The upstream sends its last bytes and closes at once: all of them
    reach the client, then END_STREAM."""
    tail = os.urandom(1 << 20)
    up = TunnelUpstream(tail=tail)
    p = start_proxy(make_proxy, make_upstream(handler=up))
    c = MemH2(p.https_port)
    try:
        sid = c.websocket()
        for _ in range(10000):
            if sid in c.ended or sid in c.early_reset:
                break
            c.read_some()
        assert sid in c.ended and c.early_reset == {}, c.early_reset
        assert bytes(c.data.get(sid, b"")) == tail
    finally:
        c.t.close()
