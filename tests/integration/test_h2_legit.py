"""Legitimate HTTP/2 clients that the frame guard (h2guard) and the delayed
reset after an early answer (stop_uploads) must leave alone.

Raw frames for what client libraries do not send on their own (stream ids
near 2^31, PADDED and PRIORITY HEADERS with CONTINUATION, unknown frames
whose payload looks like frames, a write per octet, trailers on streams
older than the 32 the guard remembers), then real clients: h2load uploading
with and without a body limit, and curl with parallel uploads over the
limit on one connection (each must get its 413).
"""

import struct
import subprocess

import pytest

from conftest import start_proxy
from h2util import h2load
from nginx_upstream import NginxUpstream
from test_h2_conformance import (DATA, EH, ES, GOAWAY, HEADERS, PADDED, PING,
                                 PRIORITY, RST, WINUP, RawH2, code_of, frame)

CONTINUATION, PRIO, UNKNOWN = 0x9, 0x20, 0xfa


def wait_ends(c, *sids):
    """Every response on sids has ended (in whatever order they come)."""
    want = set(sids)
    for f in c.seen:
        if f.flags & ES and f.type in (HEADERS, DATA):
            want.discard(f.sid)
    while want:
        f = c.read_until(lambda f: f.sid in want and f.flags & ES and
                         f.type in (HEADERS, DATA))
        assert f is not None, c.describe()
        want.discard(f.sid)


def assert_no_error(c):
    """The PING after it all is answered, and no error came before it."""
    f = c.verdict()
    assert f is not None and f.type == PING, c.describe()
    assert not [x for x in c.seen if x.type == GOAWAY or
                (x.type == RST and code_of(x) != 0)], c.describe()


@pytest.fixture
def raw(make_proxy, upstream):
    p = start_proxy(make_proxy, upstream, workers=1)
    c = RawH2(p.https_port)
    try:
        yield c
    finally:
        c.close()


def test_trailers_on_streams_older_than_the_guard_remembers(raw):
    """45 uploads open at once, then each ended by DATA and trailers,
    newest first: the oldest are past the guard's 32."""
    c = raw
    sids = list(range(1, 91, 2))
    c.send(*[c.headers(s, "POST", f"/s{s}", flags=EH) for s in sids])
    for s in reversed(sids):
        c.send(frame(DATA, 0, s, b"x"), c.trailers(s))
    wait_ends(c, *sids)
    assert_no_error(c)


def test_stream_ids_near_the_top(raw):
    """Ids up to 2^31 - 1 (the reserved bit set on one), and a reset."""
    c = raw
    c.send(c.headers(0x7ffffffb, "POST", "/a", flags=EH),
           c.headers(0x7ffffffd, "GET", "/b"),
           frame(RST, 0, 0x7ffffffb, struct.pack(">I", 8)),
           c.headers(0x7fffffff | 0x80000000, "GET", "/c"))
    wait_ends(c, 0x7ffffffd, 0x7fffffff)
    assert_no_error(c)


def test_padding_priority_continuation_unknown_frames(raw):
    c = raw
    block = c.enc.encode([(":method", "POST"), (":scheme", "https"),
                          (":authority", "localhost"), (":path", "/p")])
    pad = 7
    head = bytes([pad]) + struct.pack(">IB", 0, 15) + block[:3] + b"\0" * pad
    looks_like_frames = frame(HEADERS, ES | EH, 1) * 100
    c.send(frame(HEADERS, PADDED | PRIO, 1, head),
           frame(CONTINUATION, EH, 1, block[3:]),
           frame(UNKNOWN, 0, 0, looks_like_frames),
           frame(UNKNOWN, 0, 1, frame(WINUP, 0, 1, b"\0\0\0\0")),
           frame(PRIORITY, 0, 11, struct.pack(">IB", 0, 1)),
           frame(DATA, PADDED, 1, b"\x03abc\0\0\0"),
           frame(DATA, PADDED | ES, 1, b"\x00"),
           c.headers(3),
           frame(WINUP, 0, 1, struct.pack(">I", 1)),
           frame(WINUP, 0, 3, struct.pack(">I", 1)))
    wait_ends(c, 1, 3)
    assert_no_error(c)


def test_one_octet_per_write(raw):
    c = raw
    data = c.headers(1, "POST", "/b", flags=EH) + \
        frame(DATA, PADDED, 1, b"\x02ab\0\0") + c.trailers(1) + \
        c.headers(5) + frame(WINUP, 0, 5, struct.pack(">I", 9))
    for b in data:
        c.send(bytes([b]))
    wait_ends(c, 1, 5)
    assert_no_error(c)


@pytest.mark.parametrize("size", [3000, 100 * 1024])
@pytest.mark.parametrize("limit", [0, 1000])
def test_h2load_uploads(make_proxy, tmp_path, size, limit):
    """nginx answers before it has read the body (`return 200`), so the
    uploads get early answers and resets too."""
    body = tmp_path / "body"
    body.write_bytes(b"u" * size)
    up = NginxUpstream(tmp_path / "nginx")
    try:
        p = start_proxy(make_proxy, up, workers=2,
                        **({"body": {"limit-bytes": limit}} if limit else {}))
        n = 20000 if size < 10000 else 4000
        out, (total, done, _, _, errored) = h2load(
            "-n", str(n), "-c", "10", "-m", "50", "-d", str(body),
            f"https://localhost:{p.https_port}/")
        assert (total, done, errored) == (n, n, 0), out.stdout
        # h2load counts a 4xx as failed: every request has its status.
        want = f"status codes: {n} 2xx, 0 3xx, 0 4xx" if limit == 0 else \
            f"status codes: 0 2xx, 0 3xx, {n} 4xx"
        assert want in out.stdout, out.stdout
    finally:
        up.stop()


@pytest.mark.parametrize("length", [True, False], ids=["length", "streamed"])
def test_curl_parallel_uploads_over_the_limit(make_proxy, upstream, tmp_path,
                                              length):
    """Six uploads over the limit at once on one connection, 10 times:
    every one gets its 413."""
    body = tmp_path / "body"
    body.write_bytes(b"u" * 100 * 1024)
    p = start_proxy(make_proxy, upstream, body={"limit-bytes": 1000})
    url = f"https://localhost:{p.https_port}/up"
    got = []
    for _ in range(10):
        args = ["curl", "-Z", "--parallel-immediate"]
        for j in range(6):
            if j > 0:
                args.append("--next")
            args += ["-sk", "--http2", "-w", "%{http_version} %{http_code}\\n",
                     *([] if length else ["-H", "Content-Length:"]),
                     "--data-binary", f"@{body}", "-o", "/dev/null",
                     f"{url}{j}"]
        out = subprocess.run(args, capture_output=True, text=True,
                             timeout=60)
        got.append((out.returncode, sorted(out.stdout.split("\n"))))
    assert got == [(0, ["", *["2 413"] * 6])] * 10, got
