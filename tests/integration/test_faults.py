"""Faults the proxy survives, and says once: an upstream that resets in
the middle of a body, a client that vanishes in the middle of a large
response, a log file on a full disk.

(Descriptor exhaustion, EMFILE from accept: test_accept.py; allocation
failure: test_failmalloc.py; the log file's lines on a full disk, and
logging that resumes: test_log_atomic.py.)
"""

import os
import re
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from conftest import (https_get, start_proxy, status_of, tls_connect,
                      wait_until, http_get)
from h2util import H2Client
from proxyutil_http import read_until_close
from test_log_atomic import MOUNT_SCRIPT, fill

BIG = 64 << 20          # more than any buffer between upstream and client
LINGER0 = struct.pack("ii", 1, 0)


def fault_upstream(make_upstream):
    """/reset: a head announcing 1 MiB, 64 KiB of it, then a TCP reset.
    /big: BIG bytes, sent until the proxy stops taking them (the handler
    counts each connection that ended so).  Anything else: 200 "ok"."""
    ended = []

    def handler(req, conn):
        if req.target == "/reset":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n"
                      + b"r" * 65536)
            time.sleep(0.2)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 LINGER0)
            conn.close()
        elif req.target == "/big":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
            chunk = b"b" * 65536
            try:
                for _ in range(BIG // len(chunk)):
                    conn.send(chunk)
            except OSError:
                ended.append(time.monotonic())
                conn.close()
        else:
            conn.respond(200, [], b"ok")
    up = make_upstream(handler=handler)
    up.ended = ended
    return up


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_ticks(pid):
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(stat[11]) + int(stat[12])


def active(p):
    rc, st = p.ctl("status")
    assert rc == 0, st
    return st["counters"]["active_connections"]


# ---- an upstream that resets in the middle of a body ---------------------

def test_upstream_reset_mid_body_h1(make_proxy, make_upstream):
    """The client gets the head and what came, then its connection closes
    (never a complete-looking body); the worker serves the next request;
    the reset is one line in the log."""
    up = fault_upstream(make_upstream)
    p = start_proxy(make_proxy, up)
    with tls_connect(p.https_port) as s:
        s.sendall(b"GET /reset HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data, closed = read_until_close(s, 5.0)
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert 0 < len(body) < 1048576
    status, _, body, _ = https_get(p.https_port, "/next")
    assert status == 200 and body == b"ok"
    log = p.wait_log(r"path=/reset ")
    log = p.log()
    said = re.findall(r"WARN .*upstream .*site localhost.*", log)
    assert len(said) == 1, said


def test_upstream_reset_mid_body_h2(make_proxy, make_upstream):
    """Over HTTP/2 the stream is reset (RST_STREAM), not the connection: a
    request on the same connection afterwards is answered."""
    up = fault_upstream(make_upstream)
    p = start_proxy(make_proxy, up)
    with H2Client(p.https_port) as c:
        st = c.response(c.request("GET", "/reset"))
        assert st.status == 200
        assert st.reset is not None and not st.ended, (st.reset, st.ended)
        assert len(st.body) < 1048576
        assert not c.closed and c.goaway is None
        st = c.response(c.request("GET", "/next"))
        assert (st.status, st.body, st.reset) == (200, b"ok", None)
    said = re.findall(r"WARN .*upstream .*site localhost.*", p.log())
    assert len(said) == 1, said


# ---- a client that vanishes in the middle of a large response ------------

def vanish_h1(port):
    s = tls_connect(port)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got = 0
    while got < (1 << 20):
        got += len(s.recv(65536))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    s.close()


def vanish_h2(port):
    c = H2Client(port)
    sid = c.request("GET", "/big")
    while len(c.streams[sid].data) < (1 << 20):
        c.read_some(timeout=5)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    c.close()


@pytest.mark.parametrize("vanish", [vanish_h1, vanish_h2],
                         ids=["h1", "h2"])
def test_client_vanishing_mid_response(make_proxy, make_upstream, vanish):
    """Five clients reset their connection in the middle of a 64 MiB
    download: each upstream connection is closed (it cannot be reused in
    the middle of a body), no connection and no descriptor stays behind,
    and the worker serves the next client at once."""
    up = fault_upstream(make_upstream)
    p = start_proxy(make_proxy, up)
    (w,) = p.wait_workers(1)
    assert https_get(p.https_port, "/warm")[0] == 200
    wait_until(lambda: active(p) == 0, what="idle")
    base = fd_count(w)
    for i in range(5):
        vanish(p.https_port)
        status, _, body, _ = https_get(p.https_port, f"/after/{i}")
        assert status == 200 and body == b"ok"
    wait_until(lambda: len(up.ended) == 5, timeout=10,
               what="the five upstream connections closed")
    wait_until(lambda: active(p) == 0, timeout=10, what="no connection left")
    # The warm-up's pooled upstream connection (and the last request's)
    # may be kept: at most one more than before.
    wait_until(lambda: fd_count(w) <= base + 1, timeout=10,
               what=f"descriptors back to {base} (+1)")
    assert pid_alive_same(p, w)


def pid_alive_same(p, w):
    return p.workers() == [w]


# ---- a log file on a full disk ------------------------------------------

def test_full_disk_keeps_serving_without_spinning(make_proxy, make_upstream):
    """The log file's file system is full: requests are served as before,
    the worker does not spin on the failing writes (a little CPU for 200
    requests), and the lost lines are said once (LOG_LOST) when space is
    back."""
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a tmpfs in a mount namespace")
    up = fault_upstream(make_upstream)
    p = make_proxy(workers=1, **{"rate-limit": {
        "requests-per-second": 1000000, "burst": 1000000}})
    mnt = p.dir / "small"
    mnt.mkdir()
    p.settings["logging"]["file"] = str(mnt / "portcullis.log")
    for _, site in p.listener["site"]:
        site["upstream"] = up.addr
    p.write_config()
    p.start(user_cmd=["unshare", "-m", "--propagation", "private",
                      "sh", "-c", MOUNT_SCRIPT, str(mnt)])
    inside = Path(f"/proc/{p.pid}/root{mnt}")
    p.log_path = inside / "portcullis.log"
    (w,) = p.wait_workers(1)
    filler = inside / "filler"
    assert fill(filler) > 0
    before = cpu_ticks(w)
    with tls_connect(p.https_port) as s:
        for i in range(200):
            s.sendall(b"GET /full/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % i)
            data = b""
            while not data.endswith(b"ok"):
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data
    time.sleep(1)
    # 200 requests and a second of idling: well under a second of CPU.
    assert cpu_ticks(w) - before < 50
    assert status_of(http_get(p.health_port)) == 200
    os.unlink(filler)
    assert https_get(p.https_port, "/after")[0] == 200
    p.wait_log(r"path=/after ", timeout=5)
    with open(p.log_path, "rb") as f:
        assert p.stop() == 0
        data = f.read().decode(errors="replace")
    p.log_path = p.dir / "small.log"
    p.log_path.write_text(data)
    assert len(re.findall(r"LOG_LOST proc=worker", data)) == 1, data
