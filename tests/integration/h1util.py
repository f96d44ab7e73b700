"""The HTTP/1.1 response parser of the tests, and readers built on it.

    r, rest = parse_one(data)           # one response, and what follows
    rs = parse_responses(data)          # every response in data
    status, fields, body = read_response(sock)  # one, off a keep-alive
    status, fields, rest = read_head(sock)      # a head; the body unread

A Response has .status, .reason, .version, .head (the raw bytes),
.headers ([(name, value)] as sent), .fields ({lower-case name: [values]}),
.body (de-chunked), .chunked and .complete.  Nothing here forgives a
malformed response: a bad status line, a chunk not followed by CRLF or
trailers (the proxy sends none) fail the test.
"""

import re


class Response:
    def __init__(self, status, reason, version, head, headers, body):
        self.status = status
        self.reason = reason
        self.version = version
        self.head = head            # raw bytes up to and incl. CRLFCRLF
        self.headers = headers      # [(name, value)] as sent
        self.body = body            # decoded
        self.chunked = False
        self.complete = True

    @property
    def fields(self):
        out = {}
        for n, v in self.headers:
            out.setdefault(n.lower(), []).append(v)
        return out

    def header(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def has(self, name):
        return bool(self.header(name))

    def one(self, name):
        values = self.header(name)
        assert len(values) == 1, (name, values, self.head)
        return values[0]

    def __repr__(self):
        return f"Response({self.status}, {self.head!r}, {self.body[:200]!r})"


STATUS_LINE = re.compile(rb"(HTTP/\d\.\d) (\d{3}) ?(.*)$")


def parse_head(head):
    """A response head (up to and including its CRLFCRLF) as a Response
    with no body yet."""
    lines = head[:-4].split(b"\r\n")
    m = STATUS_LINE.match(lines[0])
    if not m:
        raise AssertionError(f"not a status line: {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name, value.strip(" \t")))
    return Response(int(m.group(2)), m.group(3).decode("latin-1"),
                    m.group(1).decode(), head, headers, b"")


def _no_body(status, method):
    return method == "HEAD" or 100 <= status < 200 or status in (204, 304)


def _chunks(data, pos):
    """Walk the whole chunks of a chunked body in data from pos: the
    (start, end) of each one's data, the position after the last whole
    one, and whether that was the last chunk (then the position is the
    end of the message).  Resumable: call again from that position when
    more data came."""
    spans = []
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return spans, pos, False
        size = int(bytes(data[pos:eol]).split(b";")[0], 16)
        if size == 0:
            # No trailers from the proxy: just the final CRLF.
            if len(data) < eol + 4:
                return spans, pos, False
            assert data[eol + 2:eol + 4] == b"\r\n", \
                f"trailers or garbage after the last chunk: " \
                f"{bytes(data[eol + 2:eol + 80])!r}"
            return spans, eol + 4, True
        if len(data) < eol + 2 + size + 2:
            return spans, pos, False
        assert data[eol + 2 + size:eol + 4 + size] == b"\r\n", \
            f"chunk data not followed by CRLF: " \
            f"{bytes(data[eol + 2:eol + 6 + size])[-80:]!r}"
        spans.append((eol + 2, eol + 2 + size))
        pos = eol + 4 + size


def _framing(r, method):
    """How the body of a response is framed: "none", "chunked",
    "length" or "close"."""
    if _no_body(r.status, method):
        return "none"
    codings = [c.strip().lower() for v in r.header("Transfer-Encoding")
               for c in v.split(",")]
    if codings and codings[-1] == "chunked":
        return "chunked"
    if r.has("Content-Length"):
        return "length"
    return "close"


def parse_one(data, method="GET", eof=True):
    """The response at the start of data, and the bytes after it.  eof
    says that nothing more will come: a body without framing runs to the
    end of data (else it is not complete yet).  An incomplete response
    comes back with complete=False (status None if its head is not in)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        r = Response(None, "", "", data, [], b"")
        r.complete = False
        return r, b""
    start = head_end + 4
    r = parse_head(data[:start])
    framing = _framing(r, method)
    if framing == "none":
        return r, data[start:]
    if framing == "chunked":
        r.chunked = True
        spans, end, r.complete = _chunks(data, start)
        r.body = b"".join(data[a:b] for a, b in spans)
        return r, data[end:] if r.complete else b""
    if framing == "length":
        n = int(r.one("Content-Length"))
        r.body = data[start:start + n]
        r.complete = len(r.body) == n
        return r, data[start + n:]
    r.body, r.complete = data[start:], eof
    return r, b""


def parse_responses(data, methods=()):
    """Every response in data, in order (interim 1xx ones too).  methods
    gives the request method of each final response ("HEAD" responses
    have no body); missing ones count as GET.  A response without framing
    runs to the end of data.  An incomplete last response is returned with
    complete=False."""
    out = []
    finals = 0
    rest = data
    while rest:
        method = methods[finals] if finals < len(methods) else "GET"
        r, rest = parse_one(rest, method)
        out.append(r)
        if not r.complete:
            break
        if not 100 <= r.status < 200:
            finals += 1
    return out


def read_response(s, method="GET"):
    """Read exactly one response (a 1xx one too) from a connection:
    (status, fields, body), the body de-chunked.  Bytes after it in the
    same reads fail the test; a close before its end is an EOFError."""
    data = bytearray()

    def more():
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError(f"closed in a response: {bytes(data[:300])!r}")
        data.extend(chunk)

    while b"\r\n\r\n" not in data:
        more()
    start = data.index(b"\r\n\r\n") + 4
    r = parse_head(bytes(data[:start]))
    framing = _framing(r, method)
    spans, end = [], start
    if framing == "chunked":
        while True:
            more_spans, end, done = _chunks(data, end)
            spans += more_spans
            if done:
                break
            more()
    elif framing == "length":
        end = start + int(r.one("Content-Length"))
        while len(data) < end:
            more()
        spans = [(start, end)]
    elif framing == "close":
        while True:
            try:
                more()
            except EOFError:
                break
        end = len(data)
        spans = [(start, end)]
    assert len(data) == end, \
        f"bytes after the response: {bytes(data[end:end + 200])!r}"
    return r.status, r.fields, b"".join(bytes(data[a:b]) for a, b in spans)


def read_head(s, limit=65536):
    """Read a response head: (status, fields, what came after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError(f"closed before a response head: {data!r}")
        data += chunk
        if len(data) > limit:
            raise AssertionError("response head too large")
    end = data.index(b"\r\n\r\n") + 4
    r = parse_head(data[:end])
    return r.status, r.fields, data[end:]
