"""The privilege boundary between the master and its workers.

Every worker maps the state part of the shared segment read-write (its
descriptor 5) and holds one end of each control channel: a socket the
master talks to it on (descriptor 3) and a pipe it reports on
(descriptor 6).  A compromised worker can write anything there; the
master, which keeps root and its capabilities, must not be steered by
it: it keeps its own layout, reads counters as numbers only, checks every
generation a worker names and takes no descriptor from it.  The tests
play the compromised worker from outside, as root: through
/proc/<worker>/fd/5 for the segment and pidfd_getfd(2) for the channels.
"""

import ctypes
import errno
import json
import os
import signal
import socket
import stat
import struct
import subprocess

import pytest

from conftest import (BINARY, https_get, offer_lingering_socket,
                      wait_until)

# struct shm_state_hdr (src/shm.h): magic u32, version u32, size u64,
# counters_off u64, max_workers u32, pad u32, upstate_off u64,
# upstate_size u64, ratelimit_off u64, ratelimit_size u64.
HDR = struct.Struct("<IIQQIIQQQQ")
OFF_SIZE, OFF_COUNTERS, OFF_MAXW = 8, 16, 24
OFF_UP, OFF_UPSIZE, OFF_RL, OFF_RLSIZE = 32, 40, 48, 56
# struct shm_counters: one 64-byte line per worker, pid the 7th word.
COUNTER_NAMES = ("requests", "rate_limited", "active_connections",
                 "bytes_in", "bytes_out", "errors")
U64_MAX = 2**64 - 1
STATE_FD = 5
CONTROL_FD = 3
REPORT_FD = 6
CONTROL_READY, CONTROL_ACK = 1, 3


def q(v):
    return struct.pack("<Q", v)


def u32(v):
    return struct.pack("<I", v)


class State:
    """The state part as a worker sees it, opened through /proc."""

    def __init__(self, worker_pid):
        self.fd = os.open(f"/proc/{worker_pid}/fd/{STATE_FD}", os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.hdr = os.pread(self.fd, HDR.size, 0)
        fields = HDR.unpack(self.hdr)
        assert fields[2] == self.size, "not the state part"
        self.counters_off = fields[3]
        self.up_off = fields[6]
        self.up_size = fields[7]
        self.rl_off = fields[8]

    def write(self, off, data):
        assert os.pwrite(self.fd, data, off) == len(data)

    def read(self, off, n):
        return os.pread(self.fd, n, off)

    def close(self):
        os.close(self.fd)


def status_ok(proxy, what):
    """status answers with the master's JSON, and the master lives."""
    assert proxy.proc.poll() is None, \
        f"{what}: the master died ({proxy.proc.returncode})"
    rc, st = proxy.ctl("status", timeout=20)
    assert proxy.proc.poll() is None, \
        f"{what}: the master died ({proxy.proc.returncode})"
    assert rc == 0 and st is not None and st["status"] == "ok", (what, st)
    return st


def expect_real_counters(st, pids, what):
    """The per-worker lines are the two real workers' own slots."""
    got = [(w["worker"], w["pid"]) for w in st["worker_counters"]]
    assert sorted(p for _, p in got) == sorted(pids) and \
        [i for i, _ in got] == [0, 1], f"{what}: worker_counters {got}"


def serves(proxy):
    status, _, _, _ = https_get(proxy.https_port, "/after")
    return status == 200


def test_corrupt_state_header_does_not_steer_the_master(proxied):
    p, up = proxied
    pids = p.wait_workers(2)
    st = State(pids[0])
    size = st.size
    variants = [
        ("counters_off 0x100000000000", OFF_COUNTERS, q(0x100000000000)),
        ("counters_off = segment size", OFF_COUNTERS, q(size)),
        ("counters_off = size - 64", OFF_COUNTERS, q(size - 64)),
        ("counters_off misaligned", OFF_COUNTERS, q(st.counters_off + 1)),
        ("counters_off 2^64-64", OFF_COUNTERS, q(U64_MAX - 63)),
        ("max_workers 2^32-1", OFF_MAXW, u32(0xFFFFFFFF)),
        ("max_workers 0", OFF_MAXW, u32(0)),
        ("max_workers 2^32-1, counters at the end", OFF_COUNTERS,
         q(size - 64) + u32(0xFFFFFFFF)),
        ("rate-limit table off the end", OFF_RL, q(2**63) + q(2**63)),
        ("upstream table off the end", OFF_UP, q(2**63) + q(2**63)),
        ("size 0", OFF_SIZE, q(0)),
        ("all ones", 0, b"\xff" * HDR.size),
    ]
    try:
        for n, (what, off, data) in enumerate(variants, 1):
            st.write(off, data)
            reply = status_ok(p, what)
            expect_real_counters(reply, pids, what)
            assert reply["workers"] == 2, (what, reply)
            # Noticed, said, and put back for the workers to come.
            p.wait_log(r"header of the shared state was overwritten",
                       count=n)
            assert st.read(0, HDR.size) == st.hdr, f"{what}: not restored"
    finally:
        st.write(0, st.hdr)
        st.close()
    rc, reply = p.ctl("reload", timeout=30)
    assert rc == 0 and reply == {"status": "ok", "generation": 2,
                                 "workers": 2}, reply
    assert p.log().count("generation 2 live") == 2
    assert serves(p)
    assert status_ok(p, "after the reload")["generation"] == 2
    assert p.workers() == pids


def test_absurd_counters_are_numbers(proxied):
    p, _ = proxied
    pids = p.wait_workers(2)
    st = State(pids[0])
    try:
        for w in (0, 1):
            st.write(st.counters_off + 64 * w, q(U64_MAX) * 6)
        reply = status_ok(p, "counters at 2^64-1")
    finally:
        for w in (0, 1):
            st.write(st.counters_off + 64 * w, q(0) * 6)
        st.close()
    expect_real_counters(reply, pids, "counters at 2^64-1")
    for w in reply["worker_counters"]:
        assert all(w[k] == U64_MAX for k in COUNTER_NAMES), w
    # The sum of two of them stays at the top instead of wrapping.
    assert reply["counters"] == {k: U64_MAX for k in COUNTER_NAMES}
    assert serves(p)


def test_corrupt_upstream_table_does_not_steer_the_master(proxied):
    """Every entry of the upstream table and every worker's row of
    in-flight counts all ones: ctl status still answers (numbers only,
    clamped), a worker's death (whose row the master takes back) and a
    reload (which resets new slots) leave the master alive and serving."""
    p, _ = proxied
    pids = p.wait_workers(2)
    st = State(pids[0])
    try:
        assert st.up_size >= 4096 * 64
        for off in range(0, st.up_size, 1 << 20):
            st.write(st.up_off + off, b"\xff" * min(1 << 20,
                                                    st.up_size - off))
    finally:
        st.close()
    reply = status_ok(p, "table overwritten")
    for b in reply["backends"]:
        for u in b["upstreams"]:
            for k in ("in_flight", "fails", "failures", "requests"):
                assert isinstance(u[k], int) and 0 <= u[k] < 2**64, u
            assert u["state"] in ("up", "down")
    os.kill(pids[1], 9)
    p.wait_workers(2)
    status_ok(p, "after a worker died")
    rc, reply = p.ctl("reload", timeout=30)
    assert rc == 0 and reply["status"] == "ok", reply
    status_ok(p, "after a reload")
    # All ones says "down" (fails, down_until in the far future): the
    # single upstream of each site still gets its requests (balance.h).
    assert serves(p)


def test_a_worker_started_after_corruption_attaches(proxied):
    """The master puts back both headers of the state part before it
    starts a worker, so a respawn after the damage still attaches."""
    p, _ = proxied
    pids = p.wait_workers(2)
    st = State(pids[0])
    try:
        st.write(0, b"\xff" * HDR.size)
        # The rate-limit table's header (magic, version, entries, secret).
        st.write(st.rl_off, b"\xff" * 32)
    finally:
        st.close()
    started = p.log().count("serving generation")
    os.kill(pids[1], 9)
    p.wait_log(r"serving generation", count=started + 1, timeout=15)
    new = p.wait_workers(2)
    assert pids[0] in new and pids[1] not in new
    assert "shared segment" not in p.log()
    for part in ("shared state", "rate-limit table"):
        assert f"the header of the {part} was overwritten" in p.log()
    reply = status_ok(p, "after the respawn")
    expect_real_counters(reply, new, "after the respawn")
    assert serves(p)


# ---- the control channel --------------------------------------------

libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_open, SYS_pidfd_getfd = 434, 438


def steal_fd(pid, fd):
    """A copy of another process's descriptor (root may take it)."""
    pidfd = libc.syscall(SYS_pidfd_open, pid, 0)
    assert pidfd >= 0, os.strerror(ctypes.get_errno())
    try:
        got = libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
        assert got >= 0, os.strerror(ctypes.get_errno())
        return got
    finally:
        os.close(pidfd)


def report(pid, *msgs):
    """Send messages to the master as worker pid would: on its report pipe,
    one write each.  (Before the pipe existed, 0050547, workers reported
    on the control socket, descriptor 3: fall back to it, so that these
    tests say what that build does.)"""
    fd = steal_fd(pid, REPORT_FD)
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            for m in msgs:
                assert os.write(fd, m) == len(m)
            return
    finally:
        os.close(fd)
    with socket.socket(fileno=steal_fd(pid, CONTROL_FD)) as s:
        for m in msgs:
            s.send(m)


def ack(gen):
    return struct.pack("<IIQ", CONTROL_ACK, 8, gen)


def test_a_made_up_generation_is_a_protocol_violation(proxied):
    """A worker acking a generation the master never published would
    count as up to date for every later reload: it is killed instead."""
    p, _ = proxied
    pids = p.wait_workers(2)
    started = p.log().count("serving generation")
    report(pids[0], ack(U64_MAX))
    new = wait_until(lambda: (w := p.workers()) and len(w) == 2 and
                     pids[0] not in w and w, what="the worker replaced")
    assert "named generation 18446744073709551615, but the newest is 1; " \
        "killing it" in p.log()
    p.wait_log(r"serving generation", count=started + 1, timeout=15)
    rc, reply = p.ctl("reload", timeout=30)
    assert rc == 0 and reply == {"status": "ok", "generation": 2,
                                 "workers": 2}, reply
    assert p.log().count("generation 2 live") == 2
    assert sorted(w["pid"] for w in
                  status_ok(p, "after")["worker_counters"]) == sorted(new)
    assert serves(p)


def test_ready_twice_is_a_protocol_violation(proxied):
    """A worker says READY once, when it starts serving: a second one is
    not a state change to believe but a worker that is not ours any more."""
    p, _ = proxied
    pids = p.wait_workers(2)
    started = p.log().count("serving generation")
    report(pids[0], struct.pack("<IIQI", CONTROL_READY, 12, 1, pids[0]))
    p.wait_log(rf"worker \d \(pid {pids[0]}\): said READY twice; "
               r"killing it", timeout=15)
    new = wait_until(lambda: (w := p.workers()) and len(w) == 2 and
                     pids[0] not in w and w, what="the worker replaced")
    p.wait_log(r"serving generation", count=started + 1, timeout=15)
    assert pids[1] in new
    assert status_ok(p, "after")["workers"] == 2
    assert serves(p)


def test_one_bad_batch_one_kill(proxied):
    """Messages queued behind a protocol violation are not read: two bad
    messages give one kill, and an ACK behind them does not count towards
    the reload in flight.  Ordering is forced: worker 0 is stopped so only
    worker 1 acks generation 2 by itself, and the master is stopped while
    the batch is written, so it finds all three in one read."""
    p, _ = proxied
    pids = p.wait_workers(2)
    os.kill(pids[0], signal.SIGSTOP)
    reload = subprocess.Popen([str(BINARY), "ctl", "--socket",
                               str(p.admin_path), "reload"],
                              stdout=subprocess.PIPE, text=True)
    try:
        p.wait_log(rf"pid={pids[1]} msg=\"generation 2 live\"")
        os.kill(p.pid, signal.SIGSTOP)
        try:
            report(pids[0], ack(U64_MAX), ack(U64_MAX - 1), ack(2))
        finally:
            os.kill(p.pid, signal.SIGCONT)
        out, _ = reload.communicate(timeout=30)
    finally:
        if reload.poll() is None:
            reload.kill()
            reload.wait()
    # The master logged the kills before it answered the reload.
    kills = [l for l in p.log().splitlines()
             if f"(pid {pids[0]})" in l and "killing it" in l]
    assert len(kills) == 1, kills
    assert "named generation 18446744073709551615" in kills[0]
    # Generation 2 is live on worker 1 only: worker 0's ACK came after
    # its violation and was never read.
    assert json.loads(out) == {"status": "ok", "generation": 2,
                               "workers": 1}, out
    new = p.wait_workers(2)
    assert pids[0] not in new and pids[1] in new
    rc, reply = p.ctl("reload", timeout=30)
    assert rc == 0 and reply == {"status": "ok", "generation": 3,
                                 "workers": 2}, reply


def test_the_control_socket_is_one_way(proxied):
    """The socket carries the master's messages to the worker; what a
    worker sends on it is refused by the kernel (the master's end is shut
    for reading), so nothing, no descriptor either, is queued there."""
    p, _ = proxied
    pids = p.wait_workers(2)
    with socket.socket(fileno=steal_fd(pids[0], CONTROL_FD)) as ctl:
        with pytest.raises(BrokenPipeError):
            ctl.send(ack(1))
        with pytest.raises(BrokenPipeError):
            ctl.sendmsg([ack(1)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                    struct.pack("i", ctl.fileno()))])
    assert "killing it" not in p.log()
    assert status_ok(p, "after")["workers"] == 2
    assert p.workers() == pids


def test_a_descriptor_from_a_worker_does_not_hold_the_master(proxied):
    """A worker could attach descriptors (SCM_RIGHTS) to what it sends.
    The close of the last reference to a lingering socket blocks until
    its queue drains, which the worker controls: the master must never
    hold that last reference, so it must not take descriptors from a
    worker at all.  Both of a worker's channels are tried: the control
    socket refuses anything a worker sends, and the report pipe cannot
    carry a descriptor."""
    p, _ = proxied
    pids = p.wait_workers(2)
    with socket.socket(fileno=steal_fd(pids[0], CONTROL_FD)) as ctl:
        refused = offer_lingering_socket(p, ctl, ack(1))
    assert isinstance(refused, BrokenPipeError), refused
    # The report pipe: sendmsg(2), the only way to pass a descriptor,
    # needs a socket.
    fd = steal_fd(pids[0], REPORT_FD)
    try:
        assert stat.S_ISFIFO(os.fstat(fd).st_mode)
        with pytest.raises(OSError) as e:
            socket.socket(fileno=fd).detach()
        assert e.value.errno == errno.ENOTSOCK
    finally:
        os.close(fd)
    assert "killing it" not in p.log()
    assert p.workers() == pids
