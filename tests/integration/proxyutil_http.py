"""Helpers for the HTTP/1.1 data-path tests: raw TLS and TCP exchanges
that also say whether the proxy closed the connection, upstream handlers
that answer with raw bytes, and a parser for ACCESS log lines."""

import re
import socket
import ssl
import time

from conftest import tls_context
from h1util import parse_responses

# How long a test waits for a close it expects; a keep-alive connection
# stays open far longer (idle-timeout defaults to 60 s).
CLOSE_WAIT = 3.0


class Reply:
    """What a client read: data, and whether the server closed (EOF, reset
    or a TLS error) before the read timed out."""

    def __init__(self, data, closed):
        self.data = data
        self.closed = closed

    def responses(self):
        return parse_responses(self.data)

    @property
    def status(self):
        rs = self.responses()
        return rs[0].status if rs else None

    def __repr__(self):
        return f"Reply(closed={self.closed}, data={self.data[:600]!r})"


def read_until_close(s, timeout=CLOSE_WAIT, want=None):
    """Read until EOF (closed=True) or until nothing came for `timeout`
    seconds (closed=False).  With want(data) -> bool, stop early (closed
    False) as soon as it is true."""
    s.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return b"".join(chunks), False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return b"".join(chunks), True
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        if want is not None and want(b"".join(chunks)):
            return b"".join(chunks), False


def connect(port, tls=True, sni="localhost", host="127.0.0.1", timeout=10.0):
    raw = socket.create_connection((host, port), timeout=timeout)
    if not tls:
        return raw
    return tls_context().wrap_socket(raw, server_hostname=sni)


def talk(port, raw, sni="localhost", tls=True, timeout=CLOSE_WAIT,
         pieces=None, pause=0.05):
    """Send raw (or the byte strings in pieces, one write each with a pause
    between them), then read until the server closes or goes quiet."""
    with connect(port, tls=tls, sni=sni) as s:
        try:
            for i, piece in enumerate(pieces or [raw]):
                if i:
                    time.sleep(pause)
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        data, closed = read_until_close(s, timeout)
        return Reply(data, closed)


def finals(responses):
    return [r for r in responses if not 100 <= (r.status or 0) < 200]


def raw_upstream(response_bytes, close=False):
    """A handler answering every request with fixed raw bytes (a callable
    gets the Request and returns them); close=True closes the upstream
    connection after it."""

    def handler(req, conn):
        data = response_bytes(req) if callable(response_bytes) \
            else response_bytes
        conn.send(data)
        if close:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
    return handler


def forget(up):
    """Make the upstream forget what it saw so far."""
    with up.lock:
        up.requests.clear()
        up.raw_chunks.clear()
        up.connections = 0


def settle(seconds=0.05):
    """Give a proxy that misbehaves the time to reach the upstream."""
    time.sleep(seconds)


def assert_nothing_upstream(up, reply=None):
    settle()
    assert up.raw() == b"", (up.raw()[:500], reply)
    assert up.connections == 0, (up.connections, reply)


def assert_rejected(reply, status, up):
    """The client got exactly one response, `status`, the connection was
    closed after it, and the upstream saw nothing at all."""
    rs = reply.responses()
    assert rs, reply
    assert rs[0].status == status, reply
    assert len(rs) == 1, reply
    assert rs[0].complete, reply
    assert reply.closed, f"connection left open after {status}: {reply}"
    assert [v.lower() for v in rs[0].header("Connection")] == ["close"], \
        reply
    assert_nothing_upstream(up, reply)


# ---- the access log ------------------------------------------------------

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
_FIELD = re.compile(r' ([a-z_]+)=([^\s"\\]+|"(?:[^"\\]|\\.)*")')
_ESC = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(v):
    if not v.startswith('"'):
        return v
    return re.sub(r'\\x([0-9a-f]{2})|\\(.)',
                  lambda m: chr(int(m.group(1), 16)) if m.group(1)
                  else _ESC.get(m.group(2), m.group(2)), v[1:-1])


def parse_text_event(line):
    """A text log line as (tag, [(key, value)]), or AssertionError when
    the line is not exactly TS TAG followed by key=value fields."""
    m = re.match(rf"^{TS} ([A-Z_]+)", line)
    assert m, line
    pos, fields = m.end(), []
    while pos < len(line):
        f = _FIELD.match(line, pos)
        assert f, f"unparsable text log line at {pos}: {line!r}"
        fields.append((f.group(1), _unquote(f.group(2))))
        pos = f.end()
    return m.group(1), fields


def access_events(log):
    """Every ACCESS line of a text log as a dict (a key seen twice makes
    the test fail: a field was forged)."""
    out = []
    for line in log.splitlines():
        if not re.match(rf"^{TS} ACCESS ", line):
            continue
        _, fields = parse_text_event(line)
        keys = [k for k, _ in fields]
        assert len(keys) == len(set(keys)), f"duplicate field: {line!r}"
        d = dict(fields)
        d["_line"] = line
        out.append(d)
    return out


ACCESS_KEYS = ["client_ip", "method", "host", "path", "protocol", "status",
               "bytes_in", "bytes_out", "duration_ms", "upstream",
               "upstream_error"]
