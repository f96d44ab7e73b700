#!/usr/bin/python3
"""Idle-connection client for the benchmark (scenario 4).

Opens N TLS connections to 127.0.0.1:PORT (SNI "localhost"), sends one
keep-alive GET / on each and reads its response, then holds them all open
and idle.  Prints "ready N" (or "failed K: reason") on stdout once done,
and then waits until stdin closes.  Plain blocking sockets, a few threads:
much cheaper per connection than asyncio's TLS, so the client (on the load
generator's CPU) is not what takes the time.

usage: idle.py PORT N
"""
import resource
import socket
import ssl
import sys
import threading

THREADS = 8
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench-idle\r\n\r\n"


def one(ctx, port):
    raw = socket.create_connection(("127.0.0.1", port), timeout=60)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("closed before the response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    if status != b"200":
        raise RuntimeError("status " + status.decode())
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("closed in the body")
        body += chunk
    return s


def worker(ctx, port, n, held, errors):
    for _ in range(n):
        try:
            held.append(one(ctx, port))
        except Exception as e:        # reported, counted
            errors.append(e)


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < n + 64:
        print(f"failed 0: RLIMIT_NOFILE {hard} < {n + 64}", flush=True)
        return
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    held, errors = [], []
    threads = [threading.Thread(target=worker, args=(
        ctx, port, n // THREADS + (i < n % THREADS), held, errors))
        for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"failed {len(errors)}: {errors[0]!r}", flush=True)
    else:
        print(f"ready {len(held)}", flush=True)
    sys.stdin.read()
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
