"""Log lines stay whole (issue 15 §3): lines of several workers never mix
inside a line when stderr is a pipe.

A reader (fail2ban included) must be able to parse every line: the lines
are checked with the parser the ACCESS-line tests use."""

import fcntl
import os
import threading
import time

from conftest import SLOWDOWN, point_sites_at, read_all
from proxyutil_http import (NO_RATE_LIMIT, connect, parse_responses,
                            parse_text_event)


def small_handler(req, conn):
    conn.respond(200, [], b"ok")


def request(path, close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: localhost\r\n" +
            ("Connection: close\r\n" if close else "") + "\r\n").encode()


def pipelined(port, paths, timeout):
    """Send every request at once on one connection, the last one asking
    to close it; return the statuses of the responses."""
    raw = b"".join(request(p, close=i == len(paths) - 1)
                   for i, p in enumerate(paths))
    with connect(port) as s:
        s.settimeout(timeout)
        s.sendall(raw)
        data = read_all(s)
    return [r.status for r in parse_responses(data)]


def long_path(prefix, quotes):
    return prefix + '"' * quotes + "x" * (2000 - len(prefix) - quotes)


def parse_lines(data):
    """Every line of a text log as (tag, fields dict); fails on a line that
    is not TS TAG key=value..., on a key seen twice, and on a last line
    without its newline."""
    text = data.decode("utf-8", "replace")
    assert text.endswith("\n"), f"unterminated last line: {text[-300:]!r}"
    out = []
    for line in text[:-1].split("\n"):
        tag, fields = parse_text_event(line)
        keys = [k for k, _ in fields]
        assert len(keys) == len(set(keys)), f"duplicate field: {line!r}"
        out.append((tag, dict(fields)))
    return out


# The flood: two workers write to one pipe whose buffer is one page
# (what a pipe gets once its user is over fs.pipe-user-pages-soft), so a
# batch of several ~3.5 KB lines that the workers wrote in one write(2)
# went in pieces, and the pieces of two workers mixed.  Bounded: THREADS
# clients x CONNS connections x PIPELINE requests, within DEADLINE.
WORKERS = 2
THREADS = 8
CONNS = 6
PIPELINE = 25
DEADLINE = 120 * SLOWDOWN


def test_pipe_lines_whole_across_workers(make_proxy, make_upstream):
    up = make_upstream(handler=small_handler)
    p = make_proxy(workers=WORKERS, **{"rate-limit": dict(NO_RATE_LIMIT)})
    del p.settings["logging"]["file"]
    p.settings["logging"]["level"] = "info"
    point_sites_at(p, up)
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    assert fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) == 4096
    got = []

    def reader():
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                return
            got.append(chunk)

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    try:
        # Every process of the proxy writes its lines to the pipe.
        p.start(preexec=lambda: os.dup2(w, 2))
    finally:
        os.close(w)
    p.wait_workers(WORKERS)

    deadline = time.monotonic() + DEADLINE
    sent, statuses, errors = [], [], []
    lock = threading.Lock()

    def client(t):
        try:
            for c in range(CONNS):
                if time.monotonic() > deadline:
                    raise AssertionError("flood deadline passed")
                # 2000-byte paths (the ACCESS line keeps 2047 bytes),
                # half of them or more quotes, which the line escapes:
                # lines of 3.2 to 3.9 KB, within a line's 4 KB.
                paths = [long_path(f"/{t}/{c}/{i}/", 1000 + 30 * i)
                         for i in range(PIPELINE)]
                st = pipelined(p.https_port, paths, 30 * SLOWDOWN)
                with lock:
                    sent.extend(paths)
                    statuses.extend(st)
        except Exception as e:          # reported below, fails the test
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(t,))
               for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE + 60)
    assert not errors, errors
    assert statuses == [200] * (THREADS * CONNS * PIPELINE)
    # SIGTERM: every process exits, the pipe sees EOF, and everything the
    # workers batched has been written.
    assert p.stop() == 0
    rt.join(30)
    assert not rt.is_alive()
    os.close(r)
    data = b"".join(got)
    with open(p.stderr_path, "ab") as f:   # shown if the test fails
        f.write(data)

    lines = parse_lines(data)
    access = [f for tag, f in lines if tag == "ACCESS"]
    assert len(access) == len(sent)
    assert sorted(f["path"] for f in access) == sorted(sent)
    assert all(f["status"] == "200" for f in access)
    assert not [f for tag, f in lines if tag == "LOG_LOST"]
