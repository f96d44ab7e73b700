"""HTTP/2 conformance (RFC 9113) where the answer must not depend on timing.

h2spec sends its frames one TLS record at a time, so whether the upstream's
answer (and with it the end of the stream) leaves before the next frame
arrives is a race.  Each case here is played both ways, deterministically:
"before" sends the request and the offending frame in one write, so the
proxy reads both before anything can answer; "after" waits until the whole
response (END_STREAM) has arrived and only then sends the offending frame.

Hand-built frames both ways (the client library would refuse to send them
or to read what comes back).  After the offending frame the client sends a
PING: frames are handled in order, so a PING ACK with no error before it
means the offending frame was let through (no timeout decides anything).

The accepted outcomes are h2spec 2.6.0's, minus "the connection closed"
without a frame (a crashed worker would pass that way).
"""

import socket
import struct
import time
from collections import namedtuple

import hpack
import pytest

from conftest import start_proxy, tls_context

DATA, HEADERS, PRIORITY, RST, SETTINGS, PING, GOAWAY, WINUP = \
    0, 1, 2, 3, 4, 6, 7, 8
ES, EH, PADDED, ACK = 0x1, 0x4, 0x8, 0x1
NO_ERROR, PROTOCOL_ERROR, STREAM_CLOSED, CANCEL = 0x0, 0x1, 0x5, 0x8
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PING_DATA = b"conform!"

Frame = namedtuple("Frame", "type flags sid payload")


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7fffffff) + payload


def code_of(f):
    """The error code of a RST_STREAM or GOAWAY frame."""
    return struct.unpack(">I", f.payload[:4] if f.type == RST
                         else f.payload[4:8])[0]


class RawH2:
    """An HTTP/2 client connection that sends and reads raw frames."""

    def __init__(self, port, timeout=10.0):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = tls_context(alpn=("h2",)).wrap_socket(
            raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.timeout = timeout
        self.enc = hpack.Encoder()
        self.buf = b""
        self.seen = []              # every frame read, in order
        self.closed = False
        self.send(PREFACE + frame(SETTINGS, 0, 0))
        self.read_until(lambda f: f.type == SETTINGS and not f.flags & ACK)
        self.send(frame(SETTINGS, ACK, 0))

    def send(self, *frames):
        self.sock.sendall(b"".join(frames))

    def headers(self, sid, method="GET", path="/", flags=ES | EH, extra=()):
        block = self.enc.encode(
            [(":method", method), (":scheme", "https"),
             (":authority", "localhost"), (":path", path), *extra])
        return frame(HEADERS, flags, sid, block)

    def trailers(self, sid, flags=ES | EH):
        return frame(HEADERS, flags, sid, self.enc.encode([("x-t", "1")]))

    def _next(self, deadline):
        while len(self.buf) < 9 or \
                len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no answer; frames so far: "
                                     f"{self.describe()}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:         # reset, or a TLS error: closed
                data = b""
            if not data:
                self.closed = True
                return None
            self.buf += data
        n = int.from_bytes(self.buf[:3], "big")
        f = Frame(self.buf[3], self.buf[4],
                  int.from_bytes(self.buf[5:9], "big") & 0x7fffffff,
                  self.buf[9:9 + n])
        self.buf = self.buf[9 + n:]
        self.seen.append(f)
        return f

    def read_until(self, pred):
        """The first frame for which pred is true, or None at EOF."""
        deadline = time.monotonic() + self.timeout
        while not self.closed:
            f = self._next(deadline)
            if f is not None and pred(f):
                return f
        return None

    def response_end(self, sid):
        """Wait for the whole response on sid (its END_STREAM)."""
        f = self.read_until(lambda f: f.sid == sid and f.flags & ES and
                            f.type in (HEADERS, DATA))
        assert f is not None, f"no response on {sid}: {self.describe()}"

    def verdict(self, *offending):
        """Send the offending frames and a PING; return what came first:
        a GOAWAY, a RST_STREAM other than NO_ERROR, the PING's ACK, or
        None if the connection closed without any of them."""
        start = len(self.seen)
        self.send(*offending, frame(PING, 0, 0, PING_DATA))
        f = self.read_until(
            lambda f: f.type == GOAWAY or (f.type == RST and
                                           code_of(f) != NO_ERROR) or
            (f.type == PING and f.flags & ACK and f.payload == PING_DATA))
        self.after = self.seen[start:]
        return f

    def describe(self):
        names = {DATA: "DATA", HEADERS: "HEADERS", RST: "RST_STREAM",
                 SETTINGS: "SETTINGS", PING: "PING", GOAWAY: "GOAWAY",
                 WINUP: "WINDOW_UPDATE", PRIORITY: "PRIORITY"}
        out = []
        for f in self.seen:
            s = f"{names.get(f.type, f.type)}(sid={f.sid}, flags={f.flags:#x}"
            if f.type in (RST, GOAWAY):
                s += f", code={code_of(f)}"
            out.append(s + ")")
        return ", ".join(out)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def assert_error(c, f, codes, sid):
    """f is a connection error (GOAWAY) with one of codes, or a stream
    error (RST_STREAM on sid) with one of them if stream errors are
    accepted (codes as {"goaway": (...), "rst": (...)})."""
    assert f is not None, f"closed without GOAWAY: {c.describe()}"
    if f.type == GOAWAY:
        assert code_of(f) in codes["goaway"], c.describe()
    elif f.type == RST:
        assert f.sid == sid and code_of(f) in codes.get("rst", ()), \
            c.describe()
    else:
        raise AssertionError(f"the offending frame went unanswered: "
                             f"{c.describe()}")


def answer_at_head(req, conn):
    """An HTTP/1.1 upstream's handler that answers as soon as it has read
    a request's head, without waiting for its body, and closes: the
    answer that wins the race in h2spec's runs (Upstream with
    read_body=False)."""
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
              b"Connection: close\r\n\r\nok")
    conn.close()


@pytest.fixture
def early(make_proxy, make_upstream):
    """A proxy whose upstream answers before the request body."""
    up = make_upstream(handler=answer_at_head, read_body=False)
    yield start_proxy(make_proxy, up, workers=1), up
    assert not up.errors, up.errors


def play(c, order, sid, request, *offending):
    """Send request (on sid) and then the offending frames: in one write
    ("before"), or only once the response on sid has ended ("after").
    What came back first (RawH2.verdict)."""
    if order == "after":
        c.send(request)
        c.response_end(sid)
        return c.verdict(*offending)
    return c.verdict(request, *offending)


ORDERS = ["before", "after"]


# ---- 5.1.1: stream identifiers ----------------------------------------

@pytest.mark.parametrize("order", ORDERS)
def test_lower_stream_id_is_a_connection_error(early, order):
    """h2spec http2/5.1.1/2: HEADERS on 5, then on 3."""
    p, up = early
    c = RawH2(p.https_port)
    try:
        f = play(c, order, 5, c.headers(5, path="/five"),
                 c.headers(3, path="/three"))
        assert_error(c, f, {"goaway": (PROTOCOL_ERROR,)}, 3)
        assert f.type == GOAWAY
        assert not [x for x in c.seen if x.sid == 3], c.describe()
    finally:
        c.close()
    assert "/three" not in [r.target for r in up.requests], \
        [r.target for r in up.requests]
    p.wait_log(r"h2: HEADERS below a stream already opened \(stream 3\): "
               r"GOAWAY")


def test_trailers_on_a_lower_stream_are_not_an_error(make_proxy, upstream):
    """A request body (and its trailers) on stream 1 while stream 3 is
    answered: HEADERS on 1 after 3 is legitimate."""
    p = start_proxy(make_proxy, upstream, workers=1)
    c = RawH2(p.https_port)
    try:
        c.send(c.headers(1, "POST", "/upload", flags=EH),
               c.headers(3, path="/get"))
        c.response_end(3)
        c.send(frame(DATA, 0, 1, b"abc"), c.trailers(1))
        c.response_end(1)
        f = c.verdict()
        assert f is not None and f.type == PING, c.describe()
    finally:
        c.close()
    bodies = {r.target: r.body for r in upstream.requests}
    assert bodies == {"/upload": b"abc", "/get": b""}, bodies


def test_late_trailers_after_the_answer_are_ignored(early):
    """A client that had not seen our answer yet may still send trailers
    on the stream (RFC 9113 5.1): they are dropped, not an error."""
    p, _ = early
    c = RawH2(p.https_port)
    try:
        f = play(c, "after", 1, c.headers(1, "POST", "/late", flags=EH),
                 frame(DATA, 0, 1, b"abc"), c.trailers(1))
        assert f is not None and f.type == PING, c.describe()
    finally:
        c.close()


# ---- 6.1: DATA with an invalid pad length --------------------------------

@pytest.mark.parametrize("order", ORDERS)
def test_data_with_invalid_padding(early, order):
    """h2spec http2/6.1/3: POST with content-length 4, then DATA (END_STREAM,
    PADDED) of length 5 whose pad length is 6."""
    p, _ = early
    c = RawH2(p.https_port)
    try:
        bad = frame(DATA, ES | PADDED, 1, b"\x06Test")
        req = c.headers(1, "POST", f"/{order}", flags=EH,
                        extra=[("content-length", "4")])
        f = play(c, order, 1, req, bad)
        assert_error(c, f, {"goaway": (PROTOCOL_ERROR,)}, 1)
    finally:
        c.close()


# ---- 6.9: WINDOW_UPDATE of 0 on a stream ---------------------------------

@pytest.mark.parametrize("order", ORDERS)
def test_zero_window_update_on_a_stream(early, order):
    """h2spec http2/6.9/2: HEADERS without END_STREAM, then WINDOW_UPDATE
    with an increment of 0 on the stream."""
    p, _ = early
    c = RawH2(p.https_port)
    try:
        bad = frame(WINUP, 0, 1, struct.pack(">I", 0))
        req = c.headers(1, path=f"/{order}", flags=EH)
        f = play(c, order, 1, req, bad)
        assert_error(c, f, {"goaway": (PROTOCOL_ERROR,),
                            "rst": (PROTOCOL_ERROR,)}, 1)
    finally:
        c.close()


# ---- 5.1: frames after the client's RST_STREAM -----------------------------

@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("what", ["HEADERS", "DATA"])
def test_frames_after_rst_stream(early, order, what):
    """h2spec http2/5.1/9 (HEADERS) and 5.1/8 (DATA): HEADERS without
    END_STREAM, RST_STREAM(CANCEL), then another frame on the stream."""
    p, _ = early
    c = RawH2(p.https_port)
    try:
        req = c.headers(1, path=f"/{order}", flags=EH)
        rst = frame(RST, 0, 1, struct.pack(">I", CANCEL))
        bad = c.headers(1, path="/again") if what == "HEADERS" else \
            frame(DATA, ES, 1, b"test")
        f = play(c, order, 1, req, rst, bad)
        assert_error(c, f, {"goaway": (STREAM_CLOSED,),
                            "rst": (STREAM_CLOSED,)}, 1)
    finally:
        c.close()
