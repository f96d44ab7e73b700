"""HTTP/2 under load and under attack.

h2load with 100k requests; then the attacks of the HTTP/2 issue, each with
a second, well-behaved client that must keep getting answers while the
attack runs: Rapid Reset, CONTINUATION flood, HPACK bomb, SETTINGS / PING /
empty-DATA floods, a window held shut, PINGs on an idle connection."""

import struct
import threading
import time

import h2.exceptions
import hpack
import pytest

from conftest import start_proxy
from h2util import H2Client, StreamResult, h2_get, h2load
from nginx_upstream import NginxUpstream


# ---- raw frames -------------------------------------------------------

def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7fffffff) + payload


DATA, HEADERS, RST, SETTINGS, PING, CONT = 0, 1, 3, 4, 6, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def request_block(path="/", authority="localhost", extra=()):
    return hpack.Encoder().encode(
        [(":method", "GET"), (":scheme", "https"), (":authority", authority),
         (":path", path), *extra])


class GoodClient:
    """A well-behaved client that keeps asking during an attack: it has an
    answer before the attack starts and gets more while it runs."""

    def __init__(self, port):
        self.port = port
        self.statuses = []
        self.errors = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        deadline = time.monotonic() + 10
        while not self.statuses and time.monotonic() < deadline:
            time.sleep(0.01)
        # More answers may have come by now on a loaded machine: the
        # first one is what must be there, and no error before it.
        assert self.statuses[:1] == [200] and not self.errors, \
            (self.statuses, self.errors)

    def run(self):
        while not self.stop.is_set():
            try:
                self.statuses.append(h2_get(self.port, "/good").status)
            except Exception as e:      # noqa: BLE001 - reported below
                self.errors.append(repr(e))
            time.sleep(0.02)

    def finish(self, more=3):
        deadline = time.monotonic() + 10
        while len(self.statuses) < 1 + more and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stop.set()
        self.t.join(30)
        assert not self.errors, self.errors[:3]
        assert len(self.statuses) >= 1 + more, self.statuses
        assert set(self.statuses) == {200}, self.statuses


@pytest.fixture
def h2proxy(make_proxy, upstream):
    return start_proxy(make_proxy, upstream, workers=1), upstream


def goaway_code(c):
    return None if c.goaway is None else int(c.goaway.error_code)


# ---- load -------------------------------------------------------------

def test_h2load_100k_requests_no_failures(make_proxy, tmp_path):
    up = NginxUpstream(tmp_path / "nginx")
    try:
        p = start_proxy(make_proxy, up, workers=2)
        out, (total, done, ok, failed, errored) = h2load(
            "-n", "100000", "-c", "50", "-m", "10",
            f"https://localhost:{p.https_port}/")
        assert (total, done, ok, failed, errored) == \
            (100000, 100000, 100000, 0, 0), out.stdout
        assert "status codes: 100000 2xx" in out.stdout, out.stdout
        assert "h2" in out.stdout
    finally:
        up.stop()


# ---- attacks ----------------------------------------------------------

def test_rapid_reset_gets_goaway_and_spares_the_upstream(h2proxy):
    p, up = h2proxy
    good = GoodClient(p.https_port)
    with H2Client(p.https_port) as c:
        block = request_block("/reset")
        sid = 1
        for _ in range(20):
            burst = b""
            for _ in range(100):
                burst += frame(HEADERS, END_STREAM | END_HEADERS, sid, block)
                burst += frame(RST, 0, sid, struct.pack(">I", 8))
                sid += 2
            try:
                c.send_raw(burst)
            except OSError:
                break
        assert c.wait_closed(10)
        assert goaway_code(c) == 11      # ENHANCE_YOUR_CALM
    good.finish()
    reached = [q for q in up.requests if q.target == "/reset"]
    assert len(reached) < 250, len(reached)
    p.wait_log(r"anomaly budget spent \(last: RST_STREAM\)")


def test_continuation_flood_is_cut(h2proxy):
    p, up = h2proxy
    good = GoodClient(p.https_port)
    with H2Client(p.https_port) as c:
        block = request_block("/cont")
        data = frame(HEADERS, 0, 1, block)
        for _ in range(200):
            data += frame(CONT, 0, 1, b"\x40\x01a\x01b")   # literal a: b
        try:
            c.send_raw(data)
        except OSError:
            pass
        assert c.wait_closed(10)
        assert c.goaway is not None
    good.finish()
    assert not [q for q in up.requests if q.target == "/cont"]


def test_hpack_bomb_is_refused(h2proxy):
    """60 MB of fields in 18 kB of HPACK: the stream gets a 431 once the
    fields pass the head limit, and the connection goes on."""
    p, up = h2proxy
    good = GoodClient(p.https_port)
    with H2Client(p.https_port) as c:
        # The first x-bomb goes into the dynamic table; every other one is
        # a reference to it (one byte, 0xbe, for 4 kB).  The client
        # splits the block into HEADERS and CONTINUATION frames, and
        # knows the stream, so that it can read the answer.
        sid = c.conn.get_next_available_stream_id()
        c.streams[sid] = StreamResult(sid)
        c.conn.send_headers(sid, [
            (":method", "GET"), (":scheme", "https"),
            (":authority", "localhost"), (":path", "/bomb")] +
            [("x-bomb", "A" * 4000)] * 15000, end_stream=True)
        wire = c.conn.data_to_send()
        assert len(wire) < 20000, len(wire)     # the premise: a bomb
        c.send_raw(wire)
        r = c.response(sid)
        assert (r.status, r.reset) == (431, None), (r.headers, r.reset)
        assert r.ended and not c.closed and c.goaway is None
        # The connection is still good for a normal request.
        assert c.response(c.request("GET", "/after")).status == 200
    good.finish()
    assert not [q for q in up.requests if q.target == "/bomb"]


@pytest.mark.parametrize("kind", ["SETTINGS", "PING", "empty DATA"])
def test_control_frame_floods_spend_the_budget(h2proxy, kind):
    p, up = h2proxy
    good = GoodClient(p.https_port)
    with H2Client(p.https_port) as c:
        if kind == "empty DATA":
            sid = c.request("POST", "/slow-body", end=False)
            flood = frame(DATA, 0, sid) * 2000
        elif kind == "PING":
            flood = frame(PING, 0, 0, b"12345678") * 2000
        else:
            flood = frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 100)) * 2000
        try:
            c.send_raw(flood)
        except OSError:
            pass
        assert c.wait_closed(10)
        assert goaway_code(c) == 11
    good.finish()
    p.wait_log(rf"anomaly budget spent \(last: {kind}\)")


def test_window_held_shut_times_out_with_goaway(make_proxy, make_upstream):
    def big(req, conn):
        body = b"z" * (4 << 20)
        try:
            conn.respond(200, [], body)
        except OSError:
            pass
    up = make_upstream(handler=big)
    p = start_proxy(make_proxy, up, workers=1, http={"client-timeout": 2})
    good = GoodClient(p.https_port)
    with H2Client(p.https_port, auto_window=False) as c:
        sid = c.request("GET", "/big")
        t0 = time.monotonic()
        assert c.wait_closed(15)
        took = time.monotonic() - t0
        assert c.goaway is not None
        # The headers and at most one window of data came.
        assert len(c.streams[sid].data) <= 65535
    good.finish()
    assert 1.5 < took < 10, took
    p.wait_log(r"h2: client too slow")


def test_pings_do_not_keep_an_idle_connection_open(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, workers=1,
                    http={"idle-timeout": 2})
    with H2Client(p.https_port) as c:
        assert c.response(c.request("GET", "/")).status == 200
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 8 and not closed:
            try:
                c.conn.ping(b"pingping")
                c.flush()
            except (OSError, h2.exceptions.ProtocolError):
                closed = True      # GOAWAY came, or the socket closed
                break
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                try:
                    if not c.read_some(timeout=until - time.monotonic()):
                        closed = True
                        break
                except (TimeoutError, OSError, ValueError):
                    break
        took = time.monotonic() - t0
        assert closed or c.closed, "PINGs kept the connection open"
        assert took < 5, took
        assert c.goaway is not None and goaway_code(c) == 0
