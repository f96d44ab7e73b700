"""A real HTTP/1.1 upstream server for the tests, which writes down exactly
what it received.

It listens on 127.0.0.1 (or ::1), serves every connection in a thread,
keeps the raw bytes of each connection and each request it parsed, and
answers through a handler.  The default handler answers 200 with a JSON
description of the request, so tests can check what the proxy forwarded.

    up = Upstream()                       # started, .port is set
    up = Upstream(handler=my_handler)     # my_handler(req, conn) -> None
    up.requests      # [Request], in arrival order
    up.raw()         # every byte received, all connections
    up.connections   # number of accepted connections
    up.stop()

A handler gets the parsed Request and a Conn with send(bytes),
respond(status, headers, body), close(); it may keep the connection for
more requests by returning normally (keep-alive), or close it.
"""

import json
import socket
import threading
import time
import traceback


class Request:
    def __init__(self, method, target, version, headers, body, raw):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers          # [(name, value)], as received
        self.body = body                # bytes, decoded from chunked
        self.raw = raw                  # the bytes of this request

    def header(self, name):
        """All values of a field (case-insensitive name)."""
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def one(self, name):
        values = self.header(name)
        assert len(values) == 1, (name, values)
        return values[0]

    def describe(self):
        return {"method": self.method, "target": self.target,
                "version": self.version,
                "headers": [[n, v] for n, v in self.headers],
                "body_len": len(self.body)}


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

    def read_request(self):
        start = len(self.raw) - len(self.buf)
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        method, target, version = lines[0].decode("latin-1").split(" ")
        headers = []
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name, value.strip()))
        body = b""
        lower = {n.lower(): v for n, v in headers}
        if "transfer-encoding" in lower:
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self.read_until(b"\r\n")     # no trailers expected
                    break
                body += self.read_exact(size)
                assert self.read_exact(2) == b"\r\n"
        elif "content-length" in lower:
            n = int(lower["content-length"])
            if self.up.drain_bodies:
                while n > 0:
                    chunk = self.read_exact(min(n, 1 << 20))
                    n -= len(chunk)
                    self.up.body_bytes += len(chunk)
            else:
                body = self.read_exact(n)
        end = len(self.raw) - len(self.buf)
        return Request(method, target, version, headers, body,
                       self.raw[start:end])

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


class Upstream:
    # Every upstream made, for conftest's check after each test: a check
    # that fails in a handler thread (whatever it raises but a
    # connection error) must fail the test, not vanish.
    made = []

    def __init__(self, handler=describe_handler, host="127.0.0.1",
                 drain_bodies=False):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.drain_bodies = drain_bodies
        self.body_bytes = 0
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
        conn = Conn(s, self)
        try:
            while self.running and not conn.closed:
                try:
                    req = conn.read_request()
                except EOFError:
                    break
                with self.lock:
                    self.requests.append(req)
                self.handler(req, conn)
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
