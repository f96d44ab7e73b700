"""Accept protects itself: connection cap, descriptor reserve, EMFILE."""

import re
import socket
import subprocess
import time

import pytest

from conftest import http_get, status_of, wait_until


def healthy(port):
    try:
        return status_of(http_get(port, timeout=2)) == 200
    except OSError:
        return False


def connect_all(port, n):
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    return socks


def test_connection_cap_per_worker(make_proxy):
    p = make_proxy(workers=1, **{"max-connections": 16}).start()
    held = connect_all(p.health_port, 16)
    try:
        time.sleep(0.3)
        # The 17th connection completes in the kernel but is not served.
        s = socket.create_connection(("127.0.0.1", p.health_port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(1.0)
        with pytest.raises(socket.timeout):
            s.recv(100)
        # Freeing one slot lets it through.
        held.pop().close()
        s.settimeout(5)
        assert s.recv(100).startswith(b"HTTP/1.1 200")
        s.close()
    finally:
        for h in held:
            h.close()


def test_descriptor_pressure_pauses_once_per_episode(make_proxy):
    """With a tiny RLIMIT_NOFILE the worker stops accepting before it runs
    out of descriptors, logs one line for the episode however many
    clients knock, and recovers when descriptors free up."""
    p = make_proxy(workers=1, **{"max-connections": 1000})
    p.start(user_cmd=["prlimit", "--nofile=60:60", "--"])
    p.wait_log("serving generation 1")
    held = []
    try:
        for _ in range(40):
            held.append(socket.create_connection(("127.0.0.1", p.health_port),
                                                 timeout=5))
        time.sleep(1.5)
        log = p.log()
        assert len(re.findall(r"accept paused", log)) == 1, log
        served = held[:5]
        for s in served:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
        for s in held:
            s.close()
        held = []
        wait_until(lambda: healthy(p.health_port), timeout=10,
                   what="recovery")
        p.wait_log(r"accepting again after")
        assert len(re.findall(r"accept paused", p.log())) == 1
    finally:
        for s in held:
            s.close()


def test_emfile_backs_off(make_proxy):
    """Even past the reserve (EMFILE from accept itself) the worker backs
    off on a timer instead of spinning."""
    p = make_proxy(workers=1, **{"max-connections": 1000})
    p.start(user_cmd=["prlimit", "--nofile=60:60", "--"])
    (w,) = p.wait_workers(1)
    held = [socket.create_connection(("127.0.0.1", p.health_port), timeout=5)
            for _ in range(60)]
    try:
        time.sleep(2)
        # Not spinning: the worker used little CPU while paused.
        stat = open(f"/proc/{w}/stat").read().rsplit(")", 1)[1].split()
        cpu_ticks = int(stat[11]) + int(stat[12])
        assert cpu_ticks < 50, cpu_ticks
    finally:
        for s in held:
            s.close()
    wait_until(lambda: healthy(p.health_port), timeout=10, what="recovery")
