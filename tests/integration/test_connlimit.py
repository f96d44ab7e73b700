"""max-connections-per-client: at most N connections at once per client on
a listener, counted across all workers; the next is closed at once (before
any TLS) and logged once per client per minute; a worker killed while
holding counted connections leaves nothing counted; a reload that changes
the value is refused; --validate reports bad values with file:line."""

import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import (BINARY, https_get, proc_status, start_proxy,
                      wait_until)

CAP = 4
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?"


def capped(make_proxy, upstream=None, **kw):
    def configure(p):
        p.listener["max-connections-per-client"] = CAP
    return start_proxy(make_proxy, upstream, workers=2, configure=configure,
                       **kw)


def active(p):
    """Connections open in each worker: {pid: n}."""
    rc, st = p.ctl("status")
    assert rc == 0
    return {w["pid"]: w["active_connections"] for w in st["worker_counters"]}


def wait_active(p, total):
    return wait_until(lambda: (a := active(p)) and sum(a.values()) == total
                      and a, what=f"{total} connections open")


def open_tls(p, src="127.0.0.1"):
    """A TLS connection from src that completed its handshake."""
    raw = socket.socket()
    raw.settimeout(10)
    raw.bind((src, 0))
    raw.connect(("127.0.0.1", p.https_port))
    from conftest import tls_context
    return tls_context().wrap_socket(raw, server_hostname="localhost")


def refused_at_once(p, src="127.0.0.1"):
    """Whether a new TCP connection from src is closed by the proxy
    without a byte of TLS: we send nothing and see the end at once (a
    connection let in would wait for our ClientHello)."""
    with socket.socket() as s:
        s.settimeout(3)
        s.bind((src, 0))
        s.connect(("127.0.0.1", p.https_port))
        try:
            return s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def hold_spread(p, n):
    """n TLS connections from 127.0.0.1 held open, on both workers: one
    that lands where the others all are is closed and made again.
    Returns [(socket, worker pid)]."""
    held = []
    for _ in range(60):
        if len(held) == n:
            return held
        before = active(p)
        s = open_tls(p)
        after = wait_active(p, sum(before.values()) + 1)
        pid = next(k for k in after if after[k] > before.get(k, 0))
        pids = {q for _, q in held}
        if len(held) == n - 1 and pids == {pid}:
            s.close()
            wait_active(p, sum(before.values()))
            continue
        held.append((s, pid))
    raise AssertionError("connections never landed on both workers")


def conn_limit_lines(p):
    return [l for l in p.log().splitlines()
            if re.search(r"\bCONN_LIMIT ", l)]


def test_cap_across_workers(make_proxy):
    p = capped(make_proxy)
    workers = p.wait_workers(2)
    for pid in workers:
        assert proc_status(pid)["Uid"].split()[0] == \
            str(__import__("pwd").getpwnam("nobody").pw_uid)
    held = hold_spread(p, CAP)
    assert len({pid for _, pid in held}) == 2
    # The fifth is closed at once, whichever worker takes it.
    for _ in range(20):
        assert refused_at_once(p)
    with pytest.raises((ssl_error(), ConnectionError, OSError)):
        open_tls(p).close()
    # Another client address is not affected.
    others = [open_tls(p, "127.0.0.2") for _ in range(CAP)]
    assert refused_at_once(p, "127.0.0.2")
    for s in others:
        s.close()
    # Closing one lets one in, and only one.
    s, _ = held.pop()
    s.close()
    wait_active(p, CAP - 1)
    held.append((open_tls(p), None))
    assert refused_at_once(p)
    # Many refusals within a minute: one line.
    p.wait_log(r"CONN_LIMIT ", count=1)
    time.sleep(0.5)
    lines = conn_limit_lines(p)
    mine = [l for l in lines if "client_ip=127.0.0.1 " in l]
    assert len(mine) == 1, lines
    assert re.fullmatch(rf"{TS} CONN_LIMIT client_ip=127\.0\.0\.1 "
                        r"listener=1 "
                        r"max_connections_per_client=4", mine[0]), mine[0]
    # The other address had its own, once.
    assert len([l for l in lines if "client_ip=127.0.0.2 " in l]) == 1
    assert len(lines) == 2, lines
    for s, _ in held:
        s.close()


def ssl_error():
    import ssl
    return ssl.SSLError


def test_other_address_logs_its_own_line(make_proxy):
    p = capped(make_proxy)
    held = [open_tls(p, "127.0.0.2") for _ in range(CAP)]
    for _ in range(5):
        assert refused_at_once(p, "127.0.0.2")
    p.wait_log(r"CONN_LIMIT client_ip=127\.0\.0\.2")
    assert not refused_at_once(p, "127.0.0.1")
    time.sleep(0.3)
    assert len(conn_limit_lines(p)) == 1
    for s in held:
        s.close()


def test_plain_port_counts_too(make_proxy):
    """The listener's http-port (redirects) counts against the same cap."""
    p = capped(make_proxy)
    held = [open_tls(p) for _ in range(CAP)]
    with socket.socket() as s:
        s.settimeout(3)
        s.connect(("127.0.0.1", p.http_port))
        assert s.recv(1) == b""
    for s in held:
        s.close()
    wait_active(p, 0)
    with socket.create_connection(("127.0.0.1", p.http_port), 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 3")


def test_dead_worker_leaves_nothing_counted(make_proxy):
    p = capped(make_proxy)
    p.wait_workers(2)
    held = hold_spread(p, CAP)
    assert refused_at_once(p)
    victim = held[0][1]
    lost = [s for s, pid in held if pid == victim]
    kept = [s for s, pid in held if pid != victim]
    assert lost and kept
    os_kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in p.workers() and len(p.workers()) == 2,
               what="respawned worker")
    for s in lost:
        s.close()
    # What the dead worker counted is taken back: exactly that many new.
    again = [open_tls(p) for _ in range(len(lost))]
    assert refused_at_once(p)
    for s in again + kept:
        s.close()
    wait_active(p, 0)
    again = [open_tls(p) for _ in range(CAP)]
    assert refused_at_once(p)
    for s in again:
        s.close()


def os_kill(pid, sig):
    import os
    os.kill(pid, sig)


def test_reload_changing_it_is_refused(make_proxy):
    p = capped(make_proxy)
    p.listener["max-connections-per-client"] = CAP + 1
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 1
    assert ("'listener 1 max-connections-per-client' changed, which needs "
            "a restart") in reply["message"]
    assert p.ctl("status")[1]["generation"] == 1
    held = [open_tls(p) for _ in range(CAP)]
    assert refused_at_once(p)
    for s in held:
        s.close()
    # Removing it is a change too.
    del p.listener["max-connections-per-client"]
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 1 and "max-connections-per-client" in reply["message"]


@pytest.mark.parametrize("value,why", [
    ("0", "'max-connections-per-client' must be between 1 and 1000000"),
    ("1000001", "must be between 1 and 1000000"),
    ("-3", "must be between 1 and 1000000"),
    ("\"many\"", ""),
    ("2.5", ""),
])
def test_validate(make_proxy, value, why):
    p = make_proxy()
    text = p.conf_path.read_text()
    text = text.replace('  bind = "127.0.0.1"\n',
                        '  bind = "127.0.0.1"\n'
                        f"  max-connections-per-client = {value}\n")
    p.conf_path.write_text(text)
    line = text.splitlines().index(
        f"  max-connections-per-client = {value}") + 1
    r = subprocess.run([str(BINARY), "--validate", "-c", str(p.conf_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert re.search(rf"^{re.escape(str(p.conf_path))}:{line}: .*{re.escape(why)}",
                     r.stderr, re.M), r.stderr


def test_validate_ok(make_proxy):
    p = make_proxy()
    p.listener["max-connections-per-client"] = 1000000
    p.write_config()
    r = subprocess.run([str(BINARY), "--validate", "-c", str(p.conf_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


# The state header (src/shm.h): connlimit_off and connlimit_size follow
# the ten fields test_privsep.py reads, at bytes 64 and 72.
STATE_FD = 5
CONNLIMIT_ENTRIES, CONNLIMIT_CELLS = 65536, 4096


def test_corrupt_table_does_not_steer_the_master(make_proxy, upstream):
    """A compromised worker writes the whole shared words and log cells
    (all ones) and both workers' rows (huge shares): a worker's death,
    whose row the master takes back, leaves the master alive; the master
    zeroes the dead worker's row; clients are still served, the table
    failing open where it was full."""
    p = capped(make_proxy, upstream)
    pids = p.wait_workers(2)
    index = {w["pid"]: w["worker"]
             for w in p.ctl("status")[1]["worker_counters"]}
    words = (CONNLIMIT_ENTRIES + CONNLIMIT_CELLS) * 8
    row_bytes = CONNLIMIT_ENTRIES * 4
    fd = os.open(f"/proc/{pids[0]}/fd/{STATE_FD}", os.O_RDWR)
    try:
        off, size = struct.unpack("<QQ", os.pread(fd, 16, 64))
        assert size >= words + 2 * row_bytes
        os.pwrite(fd, b"\xff" * words, off)
        os.pwrite(fd, b"\x7f" * 2 * row_bytes, off + words)
        os.kill(pids[1], signal.SIGKILL)
        wait_until(lambda: pids[1] not in p.workers() and
                   len(p.workers()) == 2, what="respawned worker")
        assert p.proc.poll() is None, "the master died"
        rc, st = p.ctl("status")
        assert rc == 0 and st["status"] == "ok"
        # The dead worker's row: taken back and zeroed.
        row = os.pread(fd, row_bytes, off + words +
                       index[pids[1]] * row_bytes)
        assert row == bytes(row_bytes), "the dead worker's row stays"
    finally:
        os.close(fd)
    for _ in range(2 * CAP):
        assert https_get(p.https_port, "/x")[0] == 200


def test_behind_proxy_protocol_the_named_client_counts(make_proxy, upstream):
    """On a proxy-protocol listener the cap counts the client a trusted
    PROXY header names, not the balancer's address: two clients behind
    one balancer have a cap each, and one over its cap is closed after
    its header, before any TLS, with the named address in the line."""
    from test_proxy_protocol import TRUSTED, connect, v2

    def configure(p):
        p.listener.update({"proxy-protocol": True,
                           "trusted-proxies": (TRUSTED,),
                           "max-connections-per-client": 2})
    p = start_proxy(make_proxy, upstream, workers=2, configure=configure)
    from conftest import tls_context

    def held(client):
        s = connect(p.https_port, source=TRUSTED)
        s.sendall(v2(client))
        return tls_context().wrap_socket(s, server_hostname="localhost")

    a = [held("192.0.2.10") for _ in range(2)]
    b = [held("192.0.2.11") for _ in range(2)]
    s = connect(p.https_port, source=TRUSTED)
    s.sendall(v2("192.0.2.10"))
    s.settimeout(5)
    try:
        assert s.recv(1) == b""
    except ConnectionResetError:
        pass
    s.close()
    p.wait_log(r"CONN_LIMIT client_ip=192\.0\.2\.10 ")
    assert "CONN_LIMIT client_ip=127.0.0.3" not in p.log()
    a.pop().close()
    # The worker has to see the close before the count goes down.
    wait_active(p, 3)
    a.append(held("192.0.2.10"))
    for x in a + b:
        x.close()


def test_untrusted_direct_clients_count_from_accept(make_proxy, upstream):
    """On a proxy-protocol listener, a direct client (not a trusted
    proxy) is counted from the moment it is accepted, as on any listener:
    connections that send nothing at all (held in the PROXY stage until
    the deadline) fill its cap, and the next is closed at once."""
    def configure(p):
        p.listener.update({"proxy-protocol": True,
                           "trusted-proxies": ("127.0.0.3",),
                           "max-connections-per-client": 2})
    p = start_proxy(make_proxy, upstream, workers=2, configure=configure)
    silent = []
    for _ in range(2):
        s = socket.socket()
        s.settimeout(10)
        s.bind(("127.0.0.5", 0))
        s.connect(("127.0.0.1", p.https_port))
        silent.append(s)
    wait_active(p, 2)
    assert refused_at_once(p, "127.0.0.5")
    p.wait_log(r"CONN_LIMIT client_ip=127\.0\.0\.5 ")
    # Another direct client is served.
    open_tls(p, "127.0.0.6").close()
    for s in silent:
        s.close()
