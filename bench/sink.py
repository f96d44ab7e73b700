#!/usr/bin/python3
"""Upload sink for the benchmark (scenario 5): an HTTP/1.1 upstream that
reads each request body to the end (Content-Length or chunked), throws it
away and answers 200 "ok".  Keep-alive; one thread per connection.

usage: sink.py PORT
"""
import socket
import sys
import threading

BUF = 1 << 20


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.mv = memoryview(bytearray(BUF))

    def fill(self):
        n = self.sock.recv_into(self.mv)
        if n == 0:
            raise EOFError
        self.buf += self.mv[:n]

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            self.fill()

    def skip(self, n):
        take = min(n, len(self.buf))
        del self.buf[:take]
        n -= take
        while n > 0:
            got = self.sock.recv_into(self.mv, min(n, BUF))
            if got == 0:
                raise EOFError
            n -= got

    def request(self):
        if not self.line():
            return
        length, chunked = 0, False
        while True:
            field = self.line()
            if not field:
                break
            name, _, value = field.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    break
                self.skip(size)
                self.line()
        else:
            self.skip(length)
        self.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                          b"Content-Type: text/plain\r\n\r\nok\n")


def serve(sock):
    c = Conn(sock)
    try:
        while True:
            c.request()
    except (EOFError, OSError, ValueError):
        pass
    finally:
        sock.close()


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1])))
    srv.listen(128)
    while True:
        sock, _ = srv.accept()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
