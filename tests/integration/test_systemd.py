"""systemd integration against a real NOTIFY_SOCKET, and the unit file."""

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import BUILDDIR, SRCDIR, wait_until


def test_ready_only_after_every_worker_serves(make_proxy):
    p = make_proxy(workers=3).start()
    p.notify.wait_for("STATUS=3 workers serving generation 1")
    lines = p.notify.assignments()
    ready = lines.index("READY=1")
    # Every worker reported in before READY=1 was sent.
    assert p.log().count("ready at generation 1") == 3
    assert any(l.startswith("STATUS=starting 3 workers") for l in lines[:ready])
    assert "STATUS=3 workers serving generation 1" in lines[ready:]
    # ... in the same datagram: whoever sees READY=1 sees the status too.
    with p.notify.lock:
        msgs = list(p.notify.messages)
    assert any(m.split("\n")[:2] == ["READY=1",
               "STATUS=3 workers serving generation 1"] for m in msgs), msgs
    # READY came from the master itself (MAINPID semantics).
    assert p.ctl("status")[1]["workers"] == 3
    # Nothing after it repeats the status unasked: the master sent all it
    # had to say about the start before it answered the status request,
    # so a datagram of ours sent now arrives after all of it.
    mark = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    mark.sendto(b"X-TEST-MARK=1", p.notify.path)
    mark.close()
    p.notify.wait_for("X-TEST-MARK=1")
    lines = p.notify.assignments()
    after = lines[lines.index("READY=1"):lines.index("X-TEST-MARK=1")]
    assert after.count("STATUS=3 workers serving generation 1") == 1, after


def test_reloading_then_ready(proxy):
    start = len(proxy.notify.assignments())
    assert proxy.ctl("reload")[0] == 0
    proxy.notify.wait_for("READY=1", start=start)
    lines = proxy.notify.assignments()[start:]
    assert lines[0] == "RELOADING=1"
    assert re.fullmatch(r"MONOTONIC_USEC=\d+", lines[1])
    assert lines.index("READY=1") > 1
    assert "STATUS=2 workers serving generation 2" in lines


def test_failed_reload_returns_to_ready(proxy):
    start = len(proxy.notify.assignments())
    proxy.conf_path.write_text("workers = nope\n")
    proxy.send_signal(signal.SIGHUP)
    proxy.notify.wait_for("READY=1", start=start)
    lines = proxy.notify.assignments()[start:]
    assert lines[0] == "RELOADING=1"
    assert any("last reload failed" in l for l in lines)


def test_stopping(proxy):
    assert proxy.stop() == 0
    proxy.notify.wait_for("STOPPING=1", timeout=5)


def test_workers_do_not_inherit_notify_socket(make_proxy):
    p = make_proxy(workers=1).start()
    (w,) = p.wait_workers(1)
    env = open(f"/proc/{w}/environ", "rb").read().split(b"\0")
    assert not any(e.startswith(b"NOTIFY_SOCKET=") for e in env)


UNIT = BUILDDIR / "deploy" / "portcullis.service"


# What systemd-analyze security (systemd 252, Debian 12) rates the unit;
# README.md and doc/decisions/0002 quote it.  A weaker unit scores higher.
EXPOSURE = 1.5


def test_unit_file_hardening_exposure():
    """systemd-analyze security rates the unit EXPOSURE or better."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze missing")
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                        "--no-pager", str(UNIT)],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= EXPOSURE, r.stdout


def test_unit_file_verifies(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze missing")
    text = UNIT.read_text()
    assert "Type=notify" in text
    assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", text, re.M)
    # Verify against a copy whose ExecStart points at a real binary.
    unit = tmp_path / "portcullis.service"
    # (Documentation= names man pages that are only there once installed.)
    text = re.sub(r"^(ExecStart(Pre)?=)\S+", r"\1/bin/true", text, flags=re.M)
    unit.write_text(re.sub(r"^Documentation=.*\n", "", text, flags=re.M))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)],
                       capture_output=True, text=True, timeout=60)
    problems = [l for l in r.stderr.splitlines()
                if str(unit) in l or "portcullis.service" in l]
    assert not problems, r.stderr


def test_sysusers_and_tmpfiles(tmp_path):
    if not shutil.which("systemd-sysusers"):
        pytest.skip("systemd-sysusers missing")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for f in ("passwd", "group", "shadow", "gshadow"):
        (root / "etc" / f).write_text("")
    # Debian's base system has the adm group the log directory belongs to.
    (root / "etc" / "group").write_text("adm:x:4:\n")
    sysusers = SRCDIR / "deploy" / "portcullis.sysusers"
    r = subprocess.run(["systemd-sysusers", f"--root={root}", str(sysusers)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    passwd = (root / "etc" / "passwd").read_text()
    assert re.search(r"^portcullis:x:\d+:\d+:.*:/nonexistent:"
                     r"/usr/sbin/nologin$", passwd, re.M), passwd
    tmpfiles = SRCDIR / "deploy" / "portcullis.tmpfiles"
    r = subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create",
                        str(tmpfiles)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert (root / "run" / "portcullis").is_dir()
    assert (root / "var" / "log" / "portcullis").is_dir()
