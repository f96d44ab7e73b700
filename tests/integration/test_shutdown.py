"""Shutdown: SIGTERM/SIGINT drain in-flight work, refuse new connections
and exit 0; shutdown-timeout bounds the drain."""

import signal
import socket
import time

import pytest

from conftest import pid_alive, wait_until


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_idle_shutdown_exits_zero(make_proxy, sig):
    p = make_proxy().start()
    workers = p.wait_workers(2)
    start = time.monotonic()
    assert p.stop(sig) == 0
    assert time.monotonic() - start < 3
    assert not any(pid_alive(w) for w in workers)
    assert "exiting" in p.log()


def test_in_flight_request_completes(make_proxy):
    """A request half-sent when SIGTERM arrives is still answered; new
    connections are refused meanwhile."""
    p = make_proxy(workers=1).start()
    s = socket.create_connection(("127.0.0.1", p.health_port), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    p.wait_log(r"draining \(master asked\): 1 connections")
    # Listeners are closed everywhere: a new connection is refused.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p.health_port), timeout=2)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p.https_port), timeout=2)
    assert p.proc.poll() is None
    s.sendall(b"\r\n")
    reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200 OK")
    # Draining: the answer says the connection ends, and it does.
    assert b"\r\nConnection: close\r\n" in reply, reply
    s.settimeout(5)
    assert s.recv(10) == b""
    s.close()
    assert p.proc.wait(10) == 0


def test_shutdown_timeout_cuts_stragglers(make_proxy):
    p = make_proxy(workers=1, **{"shutdown-timeout": 2}).start()
    s = socket.create_connection(("127.0.0.1", p.health_port), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\n")      # never finished
    time.sleep(0.2)
    start = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert p.proc.wait(15) == 0
    took = time.monotonic() - start
    assert 1.5 < took < 6, took
    assert s.recv(10) == b""
    s.close()


def test_second_signal_stops_at_once(make_proxy):
    p = make_proxy(workers=1, **{"shutdown-timeout": 30}).start()
    s = socket.create_connection(("127.0.0.1", p.health_port), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\n")
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    p.wait_log("draining")
    start = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert p.proc.wait(10) == 0
    assert time.monotonic() - start < 5
    s.close()


def test_reload_during_shutdown_is_refused(make_proxy):
    p = make_proxy(workers=1, **{"shutdown-timeout": 5}).start()
    s = socket.create_connection(("127.0.0.1", p.health_port), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\n")
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    p.wait_log("draining")
    p.send_signal(signal.SIGHUP)       # ignored while stopping
    s.sendall(b"Host: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    s.close()
    assert p.proc.wait(10) == 0
    assert "reloading" not in p.log()
