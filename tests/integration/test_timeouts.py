"""Client timers: the handshake deadline, the header deadline (slowloris),
the idle keep-alive deadline, the upstream's request timeout, and slow
readers, who are not cut while bytes still flow but are once they stop.

Every timer is set to 2 s; a cut is expected between 1.5 and 4 s."""

import socket
import ssl
import time

import pytest

from conftest import start_proxy, tls_connect
from h1util import parse_responses, read_head, read_response
from proxyutil_ops import (MiB, drain_body, site_settings, stream_pattern,
                           tls_connect_small)

T = 2
LOW, HIGH = 1.5, 4.0
TIMERS = {"handshake-timeout": T, "header-timeout": T, "idle-timeout": T,
          "client-timeout": T}
# For the deadlines before a request is whole: client-timeout is long, so
# that nothing but the timer under test can end a connection in time.
HEAD_TIMERS = dict(TIMERS, **{"client-timeout": 30})


@pytest.fixture
def timed(make_proxy, upstream):
    return start_proxy(make_proxy, upstream, http=dict(HEAD_TIMERS)), upstream


@pytest.fixture
def client_timed(make_proxy, upstream):
    return start_proxy(make_proxy, upstream, http=dict(TIMERS)), upstream


def wait_close(s, timeout=10.0):
    """Seconds until the peer closes (EOF, reset or a TLS error), and what
    arrived meanwhile; fails if it stays open for `timeout`."""
    start = time.monotonic()
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError(f"still open after {timeout}s")
        except (ConnectionResetError, ssl.SSLError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return time.monotonic() - start, data


def test_handshake_deadline(timed):
    p, _ = timed
    with socket.create_connection(("127.0.0.1", p.https_port)) as s:
        took, data = wait_close(s)
    assert data == b""
    assert LOW < took < HIGH, took


def test_handshake_deadline_half_a_hello(timed):
    """A ClientHello that never completes is cut just the same."""
    p, _ = timed
    with socket.create_connection(("127.0.0.1", p.https_port)) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        took, data = wait_close(s)
    assert LOW < took < HIGH, took


def test_no_request_after_handshake(timed):
    p, up = timed
    with tls_connect(p.https_port) as s:
        took, data = wait_close(s)
    assert data == b"" and LOW < took < HIGH, (took, data)
    assert up.requests == []


def trickle(s, pieces, gap):
    """Send pieces `gap` seconds apart until the proxy answers or closes.
    Returns (seconds to the first answer byte or the close, what it
    sent, seconds to the close after that, or None if it stayed open
    another 6 s)."""
    start = time.monotonic()
    data = b""
    for piece in pieces:
        try:
            s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return time.monotonic() - start, b"", 0.0
        s.settimeout(gap)
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return time.monotonic() - start, b"", 0.0
        break
    else:
        raise AssertionError("never cut")
    answered = time.monotonic() - start
    if data == b"":
        return answered, data, 0.0
    try:
        _, rest = wait_close(s, timeout=6)
    except AssertionError:
        return answered, data, None
    return answered, data + rest, time.monotonic() - start - answered


def assert_408(data):
    """data is one whole 408 response, which closes the connection."""
    rs = parse_responses(data)
    assert [r.status for r in rs] == [408] and rs[0].complete, data
    assert rs[0].header("Connection") == ["close"], data


@pytest.mark.parametrize("second_request", [False, True],
                         ids=["first-request", "after-keepalive"])
def test_header_deadline_one_byte_a_second(timed, second_request):
    """Slowloris: one byte of the head every second, forever.  The
    deadline counts from the head's first byte and no byte resets it; the
    answer, 408 (a head has begun), is followed by the close at once."""
    p, up = timed
    head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 50
    with tls_connect(p.https_port) as s:
        if second_request:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert read_response(s)[0] == 200
        cut, data, close_after = trickle(s, [bytes([b]) for b in head], 1.0)
    assert LOW < cut < HIGH, cut
    # A 408 (the proxy lingers, so that it is read), and nothing went
    # upstream.
    assert_408(data)
    assert close_after is not None and close_after < 1.0, \
        (f"the connection stayed open {close_after or 'over 6'}s after "
         "the 408",
         p.log()[-800:])
    assert len(up.requests) == (1 if second_request else 0)


def test_header_deadline_is_not_reset_by_progress(timed):
    """Many bytes at a time, but a head that never ends, still cut."""
    p, up = timed
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        cut, data, close_after = trickle(
            s, [b"X-H%d: v\r\n" % i for i in range(40)], 0.25)
    assert LOW < cut < HIGH, cut
    assert_408(data)
    assert close_after is not None and close_after < 1.0, \
        f"the connection stayed open {close_after or 'over 6'}s after the 408"
    assert up.requests == []


def test_idle_keepalive_deadline(timed):
    p, up = timed
    with tls_connect(p.https_port) as s:
        for _ in range(2):
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert read_response(s)[0] == 200
            time.sleep(T / 2)            # shorter than idle: still open
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(s)[0] == 200
        took, data = wait_close(s)
    assert data == b""
    assert LOW < took < HIGH, took
    assert len(up.requests) == 3


def test_request_timeout_counts_upstream_silence(make_proxy, make_upstream):
    """request-timeout = 1: a silent upstream gives 504 after about 1 s."""
    def silent(req, conn):
        time.sleep(3)
        conn.close()
    up = make_upstream(handler=silent)
    p = start_proxy(make_proxy, up, http=dict(TIMERS),
                    configure=site_settings(**{"request-timeout": 1}))
    with tls_connect(p.https_port) as s:
        start = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, _, _ = read_response(s)
        took = time.monotonic() - start
    assert status == 504
    assert 0.8 < took < 2.5, took


def big_handler(req, conn):
    n = int(req.target.rsplit("/", 1)[1])
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
    try:
        stream_pattern(conn.send, n, seed=7, piece=256 * 1024)
    except OSError:
        pass                    # the proxy cut it (the stopped reader)


@pytest.fixture
def big(make_proxy, make_upstream):
    up = make_upstream(handler=big_handler)
    return start_proxy(make_proxy, up, http=dict(TIMERS)), up


def test_slow_reader_is_not_cut_while_bytes_flow(big):
    """4 MiB read 32 KiB at a time with a pause after each read: about
    6 s in all, three times client-timeout, and every byte arrives."""
    p, _ = big
    n = 4 * MiB
    with tls_connect_small(p.https_port, timeout=10) as s:
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % n)
        status, _, first = read_head(s)
        assert status == 200
        start = time.monotonic()
        last = [0]

        def pace(got):
            if got - last[0] >= 32 * 1024:
                last[0] = got
                time.sleep(0.045)
        got, early = drain_body(s, first, n, pace=pace)
        took = time.monotonic() - start
    assert got == n and not early, (got, took)
    assert took > 2 * T, took


def test_stopped_reader_is_cut(big):
    """The control: a client that stops reading altogether is cut after
    client-timeout."""
    p, _ = big
    n = 64 * MiB
    with tls_connect_small(p.https_port, timeout=10) as s:
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % n)
        status, _, first = read_head(s)
        assert status == 200
        time.sleep(T + 2.5)
        s.settimeout(3)
        got, early = drain_body(s, first, n)
    assert early and got < n // 4, got
    p.wait_log(r"connection closed: client too slow")


def test_request_body_that_stops_gets_408(client_timed):
    """A body that stops half-way: 408 after client-timeout, then the
    close at once; the upstream never sees a whole request."""
    p, up = client_timed
    with tls_connect(p.https_port) as s:
        start = time.monotonic()
        s.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Length: 100\r\n\r\n0123456789")
        s.settimeout(HIGH + 2)
        data = s.recv(65536)
        answered = time.monotonic() - start
        try:
            wait_close(s, timeout=6)
            close_after = time.monotonic() - start - answered
        except AssertionError:
            close_after = None
    assert LOW < answered < HIGH, answered
    assert data.startswith(b"HTTP/1.1 408"), data
    assert close_after is not None and close_after < 1.0, \
        (f"the connection stayed open {close_after or 'over 6'}s after "
         "the 408",
         p.log()[-800:])
    assert up.requests == []        # never a whole request upstream


def test_slow_upstream_is_not_cut_by_client_timers(make_proxy,
                                                   make_upstream):
    """While the proxy waits on the upstream (3 s, request-timeout 10),
    the client's timers (all 2 s) do not run."""
    def slow(req, conn):
        time.sleep(3)
        conn.respond(200, [], b"late")
    up = make_upstream(handler=slow)
    p = start_proxy(make_proxy, up, http=dict(TIMERS),
                    configure=site_settings(**{"request-timeout": 10}))
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        s.settimeout(8)
        status, _, body = read_response(s)
    assert status == 200 and body == b"late"


def test_slow_upload_is_not_cut_by_request_timeout(make_proxy, upstream):
    """A client that sends its body a piece every 0.5 s for 3 s: the
    upstream's request-timeout (1 s) is for the upstream's silence, not
    the client's pace, and client-timeout (2 s) restarts with each
    piece."""
    p = start_proxy(make_proxy, upstream, http=dict(TIMERS),
                    configure=site_settings(**{"request-timeout": 1}))
    pieces = [b"%02d-" % i * 10 for i in range(7)]
    with tls_connect(p.https_port) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Length: %d\r\n\r\n" % sum(map(len, pieces)))
        for piece in pieces:
            s.sendall(piece)
            time.sleep(0.5)
        s.settimeout(5)
        status, _, body = read_response(s)
    assert status == 200, body
    assert upstream.requests[0].body == b"".join(pieces)
