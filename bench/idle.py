#!/usr/bin/python3
"""Idle-connection client for the benchmark (scenario 4).

Opens N TLS connections to 127.0.0.1:PORT (SNI "localhost"), sends one
keep-alive GET / on each and reads its response, then holds them all open
and idle.  Prints "ready N" (or "failed K: reason") on stdout once done,
and then waits until stdin closes.

usage: idle.py PORT N
"""
import asyncio
import resource
import ssl
import sys

CONCURRENCY = 100
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench-idle\r\n\r\n"


async def one(ctx, port, sem, held):
    async with sem:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="localhost")
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"200":
            raise RuntimeError("status " + status.decode())
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        held.append(writer)


async def main():
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
    sem = asyncio.Semaphore(CONCURRENCY)
    held = []
    results = await asyncio.gather(
        *(one(ctx, port, sem, held) for _ in range(n)),
        return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"failed {len(errors)}: {errors[0]!r}", flush=True)
    else:
        print(f"ready {len(held)}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for w in held:
        w.transport.abort()


if __name__ == "__main__":
    asyncio.run(main())
