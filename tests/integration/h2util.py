"""A small HTTP/2 client for the tests, on python3-h2 (Debian's), with raw
frame access for the abuse tests: it never hides what the server sent.

    c = H2Client(port)                  # TLS + ALPN h2 + preface
    sid = c.request("GET", "/", authority="localhost")
    r = c.response(sid)                 # waits: r.status, r.headers, r.body
    c.close()
"""

import re
import socket
import ssl
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from conftest import tls_context


class StreamResult:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None         # [(name, value)] as str
        self.data = bytearray()
        self.ended = False
        self.reset = None           # error code of a RST_STREAM

    @property
    def status(self):
        for n, v in self.headers or []:
            if n == ":status":
                return int(v)
        return None

    def header(self, name):
        return [v for n, v in self.headers or [] if n == name]

    @property
    def body(self):
        return bytes(self.data)


class H2Client:
    def __init__(self, port, sni="localhost", host="127.0.0.1", timeout=10.0,
                 settings=None, auto_window=True, validate=True, ctx=None,
                 session=None):
        """ctx: an ssl context offering h2 (a session resumes only with
        the context it was made with)."""
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = (ctx or tls_context(alpn=("h2",))).wrap_socket(
            raw, server_hostname=sni, session=session)
        assert self.sock.selected_alpn_protocol() == "h2", \
            self.sock.selected_alpn_protocol()
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8",
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
            validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.auto_window = auto_window
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.streams = {}
        self.goaway = None          # the ConnectionTerminated event
        self.closed = False
        self.events = []

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data):
        self.sock.sendall(data)

    def request(self, method, path, authority="localhost", headers=(),
                body=None, end=True, scheme="https"):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme),
                (":authority", authority), (":path", path)]
        hdrs += list(headers)
        self.streams[sid] = StreamResult(sid)
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        """Send as much as the flow-control windows allow, waiting for
        window updates (reading frames meanwhile)."""
        view = memoryview(body)
        while len(view) > 0:
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                self.flush()
                self.read_some()
                if self.closed or self.streams[sid].reset is not None:
                    return
                continue
            n = min(window, len(view))
            self.conn.send_data(sid, bytes(view[:n]))
            view = view[n:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def read_some(self, timeout=None):
        """Read once and process the events; False at EOF."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            # Not a close: the server sent what HTTP/2 forbids (or what
            # a stream the test made behind the client's back cannot
            # take), which must not pass for one.
            raise AssertionError(f"HTTP/2 protocol error: {e!r}") from e
        self.events.extend(events)
        for ev in events:
            self._event(ev)
        try:
            self.flush()
        except OSError:
            self.closed = True
            return False
        return True

    def _event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived) and st:
            st.headers = [(n if isinstance(n, str) else n.decode(),
                           v if isinstance(v, str) else v.decode())
                          for n, v in ev.headers]
        elif isinstance(ev, h2.events.DataReceived):
            if st:
                st.data += ev.data
            if self.auto_window and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st.ended = True
        elif isinstance(ev, h2.events.StreamReset) and st:
            st.reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def response(self, sid, timeout=10.0):
        """Read until stream sid ends (or is reset, or the connection)."""
        deadline = time.monotonic() + timeout
        st = self.streams[sid]
        while not (st.ended or st.reset is not None or self.closed):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"stream {sid}: no complete response")
            self.read_some(timeout=left)
        return st

    def wait_closed(self, timeout=10.0):
        """Read until the server closes; True if it did in time."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self.read_some(timeout=left)
            except socket.timeout:
                return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def h2_get(port, path="/", authority="localhost", sni="localhost",
           headers=(), validate=True):
    with H2Client(port, sni=sni, validate=validate) as c:
        return c.response(c.request("GET", path, authority=authority,
                                    headers=headers))


def h2load(*args):
    """Run h2load (which must exit 0); its output and its request counts:
    total, done, succeeded, failed (h2load counts a 4xx or 5xx there),
    errored."""
    out = subprocess.run(["h2load", *args], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored",
                  out.stdout)
    assert m, out.stdout
    return out, tuple(map(int, m.groups()))
