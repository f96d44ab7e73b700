"""The test upstream: a real HTTP/1.1 server that writes down exactly what
it received, and answers through a handler.

It listens on 127.0.0.1 (or ::1), serves every connection in a thread,
keeps the raw bytes of each connection and each request it parsed.  The
default handler answers 200 with a JSON description of the request, so
tests can check what the proxy forwarded.

    up = Upstream()                       # started, .port is set
    up = Upstream(handler=my_handler)     # my_handler(req, conn) -> None
    up = Upstream(handler=h, read_body=False)   # h gets the head only
    up.requests      # [Request], in arrival order
    up.raw()         # every byte received, all connections
    up.connections   # number of accepted connections
    up.stop()

    up = Upstream(tls=ctx)                # HTTPS: ctx, an ssl.SSLContext
                                          # for the server side

A handler gets the parsed Request and a Conn with send(bytes),
respond(status, headers, body), close(); it may keep the connection for
more requests by returning normally (keep-alive), or close it.

With read_body=False the handler is called as soon as the head is in
(req.body is None): it answers before the body if it likes, and reads
the body itself (conn.read_body, conn.stream_body, conn.drain) or closes.

Checks cannot vanish in a handler thread: whatever a handler raises,
other than a connection error (OSError, or EOFError: the proxy closed),
is kept in .violations, and conftest fails the test that made the
upstream.  A malformed request from the proxy is one of them.
"""

import hashlib
import json
import socket
import threading
import time
import traceback

MiB = 1 << 20


class Request:
    def __init__(self, method, target, version, headers, raw):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers          # [(name, value)], as received
        # bytes, decoded from chunked; None while the handler of a
        # read_body=False upstream has not read it.
        self.body = None
        self.raw = raw                  # the bytes of this request

    def header(self, name):
        """All values of a field (case-insensitive name)."""
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def one(self, name):
        values = self.header(name)
        assert len(values) == 1, (name, values)
        return values[0]

    @property
    def chunked(self):
        return any(v.lower() == "chunked"
                   for v in self.header("Transfer-Encoding"))

    @property
    def length(self):
        """The Content-Length (0 without one), for a body not chunked."""
        values = self.header("Content-Length")
        return int(values[0]) if values else 0

    def describe(self):
        return {"method": self.method, "target": self.target,
                "version": self.version,
                "headers": [[n, v] for n, v in self.headers],
                "body_len": len(self.body or b"")}


class Conn:
    def __init__(self, sock, upstream):
        self.sock = sock
        self.up = upstream
        self.buf = b""
        self.raw = b""
        self.closed = False

    def recv_more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.raw += data
        with self.up.lock:
            self.up.raw_chunks.append(data)
        self.buf += data

    def read_until(self, sep):
        while sep not in self.buf:
            self.recv_more()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self.recv_more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        """The next request's head; its body is still to be read."""
        start = len(self.raw) - len(self.buf)
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        method, target, version = lines[0].decode("latin-1").split(" ")
        headers = []
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name, value.strip()))
        end = len(self.raw) - len(self.buf)
        req = Request(method, target, version, headers, self.raw[start:end])
        req._start = start
        return req

    def read_body(self, req):
        """Read the request's body into req.body (and req.raw)."""
        body = b""
        if req.chunked:
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    # No trailers expected: the CRLF that ends the body.
                    assert self.read_until(b"\r\n") == b"\r\n", \
                        "trailers in a request from the proxy"
                    break
                body += self.read_exact(size)
                assert self.read_exact(2) == b"\r\n", \
                    "chunk data not followed by CRLF"
        else:
            body = self.read_exact(req.length)
        req.body = body
        req.raw = self.raw[req._start:len(self.raw) - len(self.buf)]
        return body

    def stream_body(self, req, fn=None, piece=MiB):
        """Read a Content-Length body keeping none of it (nor in .raw):
        fn(bytes) gets each piece.  Returns how many bytes came, fewer
        than the length if the proxy closed first."""
        assert not req.chunked, "stream_body takes Content-Length bodies"
        left = req.length
        first, self.buf = self.buf[:left], self.buf[left:]
        if first and fn:
            fn(first)
        got, left = len(first), left - len(first)
        buf = bytearray(min(piece, max(left, 1)))
        view = memoryview(buf)
        while left > 0:
            n = self.sock.recv_into(view, min(len(buf), left))
            if n == 0:
                break
            if fn:
                fn(view[:n])
            got += n
            left -= n
        req.body = b""
        return got

    def drain(self):
        """Read and drop everything until the proxy closes; how many
        bytes that was (with what was already read and not parsed)."""
        got = len(self.buf)
        self.buf = b""
        while True:
            data = self.sock.recv(65536)
            if not data:
                return got
            got += len(data)

    def send(self, data):
        self.sock.sendall(data)

    def respond(self, status=200, headers=None, body=b"", reason="OK"):
        headers = list(headers or [])
        if not any(n.lower() in ("content-length", "transfer-encoding")
                   for n, _ in headers):
            headers.append(("Content-Length", str(len(body))))
        head = f"HTTP/1.1 {status} {reason}\r\n"
        head += "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
        self.send(head.encode("latin-1") + body)

    def close(self):
        self.closed = True


def describe_handler(req, conn):
    body = json.dumps(req.describe()).encode()
    conn.respond(200, [("Content-Type", "application/json")], body)


class Sink:
    """A handler for Upstream(read_body=False) that reads each request's
    Content-Length body keeping only its length and SHA-256 (an upstream
    that keeps every byte would hold a 1 GiB upload in memory), then
    answers 200 with "<length> <sha256>".  .results: (length, sha256)
    of each body, sha256 None for one cut short."""

    def __init__(self, delay=0.0):
        self.delay = delay              # before reading each body
        self.results = []

    def __call__(self, req, conn):
        assert req.body is None, "Sink needs Upstream(read_body=False)"
        time.sleep(self.delay)
        h = hashlib.sha256()
        got = conn.stream_body(req, h.update)
        if got < req.length:
            self.results.append((got, None))
            conn.close()
            return
        self.results.append((got, h.hexdigest()))
        conn.respond(200, [], f"{got} {h.hexdigest()}".encode())


class Upstream:
    # Every upstream made, for conftest's check after each test.
    made = []

    def __init__(self, handler=describe_handler, host="127.0.0.1",
                 read_body=True, tls=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.read_body = read_body
        self.tls = tls
        self.lock = threading.Lock()
        self.requests = []
        self.raw_chunks = []
        self.connections = 0
        self.errors = []                # every error, connection ones too
        self.violations = []            # what must fail the test
        self.running = True
        self.threads = []
        Upstream.made.append(self)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host \
            else f"{self.host}:{self.port}"

    def raw(self):
        with self.lock:
            return b"".join(self.raw_chunks)

    def _accept(self):
        self.sock.settimeout(0.2)
        while self.running:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(s,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, s):
        try:
            if self.tls is not None:
                # The handshake in this thread; one the proxy refuses is
                # a connection error, which the test checks otherwise.
                s = self.tls.wrap_socket(s, server_side=True)
            conn = Conn(s, self)
            while self.running and not conn.closed:
                try:
                    req = conn.read_head()
                    if self.read_body:
                        conn.read_body(req)
                except EOFError:
                    break           # the proxy closed between requests
                with self.lock:
                    self.requests.append(req)
                self.handler(req, conn)
                if req.body is None:
                    # Unread, the body would be taken for the next request.
                    conn.close()
        except (OSError, EOFError) as e:
            # A client or the proxy going away mid-exchange: tests that
            # abort connections cause these, and check what they expect.
            self.errors.append(repr(e))
        except Exception as e:          # noqa: BLE001 - kept, and fails
            # A check in a handler, or a request the proxy should not
            # have sent (ValueError from parsing it, say).
            self.errors.append(repr(e))
            self.violations.append(
                "".join(traceback.format_exception(e)[-3:]).strip())
        finally:
            try:
                s.close()
            except OSError:
                pass

    def wait_requests(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.01)
        raise AssertionError(f"upstream got {len(self.requests)} requests, "
                             f"wanted {n}")

    def stop(self):
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass
