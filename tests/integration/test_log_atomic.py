"""Log lines stay whole (issue 15 §3): lines of several workers never mix
inside a line when stderr is a pipe, and a log file on a full file system
never keeps the start of a line for the next one to continue; the lines
lost there are said once, by a LOG_LOST line, when writing works again.

A reader (fail2ban included) must be able to parse every line: the lines
are checked with the parser the ACCESS-line tests use."""

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from conftest import NO_RATE_LIMIT, SLOWDOWN, point_sites_at, read_all
from h1util import parse_responses
from proxyutil_http import connect, parse_text_event


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


# ---- a full file system under logging.file ------------------------------

# A 64 KiB tmpfs, mounted in a mount namespace of the proxy's own (unshare
# -m, so nothing is left mounted whatever happens); the test reaches it
# through /proc/PID/root.
MOUNT_SCRIPT = ('mount -t tmpfs -o size=64k,mode=0755 portcullis-test "$0" '
                '&& exec "$@"')


def fill(path):
    """Fill the file system that holds path; returns the bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    total = 0
    try:
        while True:
            try:
                n = os.write(fd, b"f" * 4096)
            except OSError as e:
                assert e.errno == 28, e         # ENOSPC
                return total
            total += n
    finally:
        os.close(fd)


def test_full_disk_no_piece_of_line(make_proxy, make_upstream):
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a tmpfs in a mount namespace")
    up = make_upstream(handler=small_handler)
    p = make_proxy(workers=1, **{"rate-limit": dict(NO_RATE_LIMIT)})
    mnt = p.dir / "small"
    mnt.mkdir()
    # Only ACCESS lines while the test runs (and the master's, at start).
    p.settings["logging"]["level"] = "info"
    p.settings["logging"]["file"] = str(mnt / "portcullis.log")
    point_sites_at(p, up)
    p.start(user_cmd=["unshare", "-m", "--propagation", "private",
                      "sh", "-c", MOUNT_SCRIPT, str(mnt)])
    inside = Path(f"/proc/{p.pid}/root{mnt}")
    p.log_path = inside / "portcullis.log"    # p.log(), wait_log() read it
    assert os.statvfs(inside).f_blocks * os.statvfs(inside).f_frsize == \
        64 * 1024
    filler = inside / "filler"

    def send(prefix, n):
        # 1.5 KB lines: a page of the file holds two and a half.
        paths = [f"/{prefix}/{i}/" + "y" * 1400 for i in range(n)]
        assert pipelined(p.https_port, paths, 10 * SLOWDOWN) == [200] * n
        return paths

    send("warm", 3)
    p.wait_log(r"path=/warm/2/", timeout=5)
    assert fill(filler) > 0
    during = send("full", 40)
    # The worker writes (or fails to write) its batch of lines once per loop
    # iteration, right after the responses went out; the pauses let it do
    # that before space is freed (the checks below hold if it is late).
    time.sleep(0.5)
    during += send("full-last", 1)
    time.sleep(0.5)
    os.unlink(filler)
    after = send("after", 5)
    p.wait_log(r"path=/after/4/", timeout=5)
    # The file outlives the namespace while it is open: read it whole once
    # the proxy is gone, and keep a copy where the fixtures look (the log
    # is shown if the test fails, and scanned for sanitizer reports).
    with open(p.log_path, "rb") as f:
        assert p.stop() == 0
        data = f.read()
    p.log_path = p.dir / "small.log"
    p.log_path.write_bytes(data)

    lines = parse_lines(data)
    paths = [f["path"] for tag, f in lines if tag == "ACCESS"]
    written = [q for q in during if q in paths]
    lost = [f for tag, f in lines if tag == "LOG_LOST"]
    assert len(lost) == 1, lost
    assert lost[0]["proc"] == "worker" and lost[0]["worker"] == "0"
    # Nothing else was logged while the disk was full: what is missing of
    # the requests sent then is exactly what LOG_LOST counts.
    assert len(written) < len(during)
    assert int(lost[0]["lines"]) == len(during) - len(written)
    assert lost[0]["error"] in ("No space left on device", "short write")
    # Said once a line could be written again: right after the first write
    # that went through (lines of /after/, or of /full/ if the worker was
    # slower than the pauses above); the requests sent after the space came
    # back are all there, in order, and nothing was lost among them.
    i = next(k for k, (tag, _) in enumerate(lines) if tag == "LOG_LOST")
    assert lines[i - 1][0] == "ACCESS", data.decode()
    assert lines[i - 1][1]["path"] in during + after, data.decode()
    assert all(f["path"] in after for tag, f in lines[i + 1:]
               if tag == "ACCESS"), data.decode()
    assert [f["path"] for tag, f in lines if tag == "ACCESS" and
            f["path"] in after] == after
