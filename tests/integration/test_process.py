"""Processes: privileges of master and workers, descriptors, supervision."""

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (BINARY, children_of, pid_alive, proc_status, wait_until,
                      http_get, status_of)

NOBODY = pwd.getpwnam("nobody")
# CAP_SETGID(6) CAP_SETUID(7) CAP_KILL(5) CAP_DAC_READ_SEARCH(2)
MASTER_CAPS = (1 << 2) | (1 << 5) | (1 << 6) | (1 << 7)


def caps(pid, which="CapEff"):
    return int(proc_status(pid)[which], 16)


def uids(pid):
    return [int(x) for x in proc_status(pid)["Uid"].split()]


def gids(pid):
    return [int(x) for x in proc_status(pid)["Gid"].split()]


@pytest.fixture(autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: the privilege tests start portcullis as root")


def test_worker_count(make_proxy):
    p = make_proxy(workers=3).start()
    assert len(p.wait_workers(3)) == 3
    rc, st = p.ctl("status")
    assert rc == 0 and st["workers"] == 3


def test_workers_zero_means_one_per_cpu(make_proxy):
    p = make_proxy(workers=0).start()
    assert len(p.wait_workers(os.cpu_count())) == os.cpu_count()


def test_privileges_as_root(make_proxy):
    p = make_proxy(workers=2).start()
    workers = p.wait_workers(2)
    # The master stays uid 0 but keeps only what it needs to supervise.
    assert uids(p.pid) == [0, 0, 0, 0]
    assert caps(p.pid) == MASTER_CAPS
    assert caps(p.pid, "CapPrm") == MASTER_CAPS
    assert caps(p.pid, "CapInh") == 0
    assert caps(p.pid, "CapAmb") == 0
    assert proc_status(p.pid)["NoNewPrivs"] == "1"
    for w in workers:
        st = proc_status(w)
        assert uids(w) == [NOBODY.pw_uid] * 4, st["Uid"]
        assert gids(w) == [NOBODY.pw_gid] * 4, st["Gid"]
        assert st["Groups"].split() == [str(NOBODY.pw_gid)]
        for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            assert caps(w, field) == 0, (field, st[field])
        assert st["NoNewPrivs"] == "1"
    # And they still serve.
    assert status_of(http_get(p.health_port)) == 200


def test_worker_descriptors(make_proxy):
    """A worker holds its control socket, the two shm parts, its report
    pipe, its channel to the signer, the listeners and libev's own
    descriptors: nothing else leaks in."""
    p = make_proxy(workers=1).start()
    (w,) = p.wait_workers(1)
    fds = {int(fd): os.readlink(f"/proc/{w}/fd/{fd}")
           for fd in os.listdir(f"/proc/{w}/fd")}
    assert fds[0] == "/dev/null"
    assert "portcullis-config" in fds[4] and "portcullis-state" in fds[5]
    assert fds[3].startswith("socket:")
    # The report pipe: the write end, in packet mode.
    assert fds[6].startswith("pipe:")
    assert fdinfo_flags(w, 6) & os.O_ACCMODE == os.O_WRONLY
    assert fdinfo_flags(w, 6) & os.O_DIRECT
    # The master holds its read end and no copy of the write end, so it
    # reads EOF when the worker is gone.
    master = {fd: os.readlink(f"/proc/{p.pid}/fd/{fd}")
              for fd in os.listdir(f"/proc/{p.pid}/fd")}
    ends = [fd for fd, t in master.items() if t == fds[6]]
    assert len(ends) == 1, (fds[6], master)
    assert fdinfo_flags(p.pid, ends[0]) & os.O_ACCMODE == os.O_RDONLY
    # Its channel to the signer (issue 19), then the listeners.
    assert fds[7].startswith("socket:")
    listeners = [fd for fd in range(8, 11)]
    for fd in listeners:
        assert fds[fd].startswith("socket:")
    # The config part is read-only in the worker.
    assert fdinfo_flags(w, 4) & os.O_ACCMODE == os.O_RDONLY
    maps = open(f"/proc/{w}/maps").read()
    cfg_maps = [l for l in maps.splitlines() if "portcullis-config" in l]
    assert cfg_maps and all(l.split()[1] == "r--s" for l in cfg_maps)
    others = {fd: t for fd, t in fds.items() if fd > 10}
    # epoll + eventfd/signalfd/pipes of libev only.
    for fd, target in others.items():
        assert target.startswith("anon_inode:") or target.startswith("pipe:"), \
            (fd, target)


def fdinfo_flags(pid, fd):
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        return int(re.search(r"flags:\s+(\d+)", f.read()).group(1), 8)


def test_non_root_start_drops_capabilities(make_proxy, tmp_path):
    """Started as an ordinary user holding CAP_NET_BIND_SERVICE (as systemd
    would grant it), portcullis binds a privileged port and then neither
    master nor worker keeps any capability."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) missing")
    base = Path(tempfile.mkdtemp(prefix="portcullis-nonroot-"))
    try:
        os.chmod(base, 0o755)
        cert, key = (base / "c.pem", base / "k.pem")
        p = make_proxy(base=base, workers=1)
        c0, k0 = p.certs.get("localhost", ["localhost", "*.example.test"])
        shutil.copy(c0, cert)
        shutil.copy(k0, key)
        os.chmod(key, 0o644)
        port = next(port for port in range(700, 1000) if port_free(port))
        p.listener["https-port"] = port
        p.listener["tls"] = {"cert": str(cert), "key": str(key)}
        p.settings["admin-socket"] = ""
        p.settings["logging"].pop("file")
        p.write_config()
        os.chmod(p.conf_path, 0o644)
        p.start(user_cmd=["setpriv", "--reuid=nobody", "--regid=nogroup",
                          "--clear-groups", "--inh-caps=+net_bind_service",
                          "--ambient-caps=+net_bind_service"])
        (w,) = p.wait_workers(1)
        for pid in (p.pid, w):
            assert uids(pid) == [NOBODY.pw_uid] * 4
            for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
                assert caps(pid, field) == 0, (pid, field)
            assert proc_status(pid)["NoNewPrivs"] == "1"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert "starting 1 workers (same user)" in open(p.stderr_path).read()
        assert p.stop() == 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_killed_worker_is_respawned_and_logged(make_proxy):
    p = make_proxy(workers=2).start()
    victim = p.wait_workers(2)[0]
    os.kill(victim, signal.SIGKILL)
    p.wait_log(rf"worker \d \(pid {victim}\) killed by signal 9 \(Killed\)")
    new = wait_until(lambda: (w := p.workers()) and len(w) == 2 and
                     victim not in w and w, what="respawn")
    assert victim not in new
    p.wait_log(r"worker \d started", count=3)
    wait_until(lambda: p.ctl("status")[1]["workers"] == 2, what="2 ready")
    assert status_of(http_get(p.health_port)) == 200


def test_crash_loop_backs_off(make_proxy):
    """A worker that keeps dying young is restarted with growing delays."""
    p = make_proxy(workers=1).start()
    delays = []
    for i in range(5):
        (w,) = p.wait_workers(1)
        # Wait until it is fully up, then kill it young.
        wait_until(lambda: p.ctl("status")[1]["workers"] == 1, what="ready")
        os.kill(w, signal.SIGKILL)
        p.wait_log(r"respawning it in", count=i + 1)
        wait_until(lambda: w not in p.workers(), what="reaped")
    for m in re.finditer(r"respawning it in ([\d.]+)s", p.log()):
        delays.append(float(m.group(1)))
    assert delays == sorted(delays) and delays[-1] > delays[0], delays
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8], delays


def test_workers_exit_when_master_dies(make_proxy):
    p = make_proxy(workers=2).start()
    workers = p.wait_workers(2)
    os.kill(p.pid, signal.SIGKILL)
    p.proc.wait(5)
    wait_until(lambda: not any(pid_alive(w) for w in workers), timeout=10,
               what="workers to exit after the master died")
    assert "master exited" in p.log()


def test_worker_sigterm_alone_is_respawned(make_proxy):
    """systemd may signal a single worker; the master replaces it."""
    p = make_proxy(workers=1).start()
    (w,) = p.wait_workers(1)
    os.kill(w, signal.SIGTERM)
    wait_until(lambda: (ws := p.workers()) and ws != [w] and len(ws) == 1,
               what="replacement")
    assert status_of(http_get(p.health_port)) == 200


def test_worker_env_is_internal(tmp_path):
    """Setting the worker variable by hand does not make a half-worker."""
    env = dict(os.environ, PORTCULLIS_WORKER="0")
    r = subprocess.run([str(BINARY)], env=env, capture_output=True,
                       text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert "internal" in r.stderr or "control channel" in r.stderr \
        or "privileges" in r.stderr
