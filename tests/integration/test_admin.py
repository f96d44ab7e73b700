"""The admin socket and "portcullis ctl"."""

import json
import os
import socket
import stat
import subprocess
import time

import pytest

from conftest import BINARY, offer_lingering_socket, wait_until


def test_status_reply(proxy):
    rc, st = proxy.ctl("status")
    assert rc == 0
    assert set(st) == {"status", "uptime_secs", "sites", "generation",
                       "workers", "counters", "worker_counters",
                       "certificates", "backends", "prober"}
    assert st["status"] == "ok" and st["sites"] == 2
    # No backend has a health-check: no prober.
    assert st["prober"] is None
    assert st["generation"] == 1 and st["workers"] == 2
    assert isinstance(st["uptime_secs"], int) and st["uptime_secs"] >= 0
    # Both sites are served with the listener's manual certificate.
    certs = st["certificates"]
    assert len(certs) == 2
    for c in certs:
        assert c["source"] == "manual" and c["listener"] == 0
        assert c["not_after"].endswith("Z") and c["not_after"][:2] == "20"


def test_uptime_grows(proxy):
    first = proxy.ctl("status")[1]["uptime_secs"]
    time.sleep(1.2)
    assert proxy.ctl("status")[1]["uptime_secs"] >= first + 1


def test_socket_mode(proxy):
    st = os.stat(proxy.admin_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600


def test_reply_is_one_json_line(proxy):
    raw = proxy.admin_raw(b"status\n")
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert json.loads(raw)["status"] == "ok"


@pytest.mark.parametrize("cmd", [b"statu\n", b"STATUS\n", b"\n",
                                 b"\x00\xff\xfe\n", b"{\"cmd\":1}\n",
                                 b"reload now\n", b"renew a b\n",
                                 b"renew\xff\n"])
def test_unknown_commands_get_an_error(proxy, cmd):
    reply = json.loads(proxy.admin_raw(cmd))
    assert reply["status"] == "error"
    assert "unknown command" in reply["message"]
    assert proxy.ctl("status")[1]["generation"] == 1


def test_renew_without_acme(proxy):
    """No listener in ACME mode: renew is an error at once, nothing else
    changes."""
    for cmd in (b"renew\n", b"renew a.test\n", b" renew \r\n"):
        reply = json.loads(proxy.admin_raw(cmd))
        assert reply == {"status": "error",
                         "message": 'no listener has tls mode "acme"'}
    assert proxy.ctl("status")[1]["generation"] == 1


def test_tolerates_crlf_and_blanks(proxy):
    assert json.loads(proxy.admin_raw(b"  status \r\n"))["status"] == "ok"


def test_oversized_client_dropped(proxy):
    try:
        reply = proxy.admin_raw(b"x" * 5000)
    except (ConnectionResetError, BrokenPipeError):
        reply = b""
    assert reply == b""
    assert "oversized command" in proxy.log()
    assert proxy.ctl("status")[0] == 0


def test_stalled_client_dropped(proxy):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(proxy.admin_path))
        s.sendall(b"sta")
        s.settimeout(15)
        start = time.monotonic()
        assert s.recv(100) == b""
        assert 4 < time.monotonic() - start < 10
    assert proxy.ctl("status")[0] == 0


def test_many_idle_clients_do_not_block_the_master(proxy):
    socks = []
    try:
        for _ in range(40):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(proxy.admin_path))
            socks.append(s)
        time.sleep(0.2)
        # Past the client limit new ones are dropped, but once the idle
        # ones time out, service resumes; the master itself never blocks.
        from conftest import http_get, status_of
        assert status_of(http_get(proxy.health_port)) == 200
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: proxy.ctl("status")[0] == 0, timeout=10,
               what="admin usable")


def test_ctl_exit_codes(proxy, tmp_path):
    r = subprocess.run([str(BINARY), "ctl", "--socket", str(proxy.admin_path),
                        "status"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok"
    r = subprocess.run([str(BINARY), "ctl", "--socket",
                        str(tmp_path / "none.sock"), "status"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "No such file" in r.stderr
    r = subprocess.run([str(BINARY), "ctl", "--socket", str(proxy.admin_path),
                        "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 1 and "usage" in r.stderr
    r = subprocess.run([str(BINARY), "ctl"], capture_output=True, text=True)
    assert r.returncode == 1 and "usage" in r.stderr


def test_ctl_error_reply_exit_code(proxy):
    proxy.conf_path.write_text("garbage garbage\n")
    r = subprocess.run([str(BINARY), "ctl", "--socket", str(proxy.admin_path),
                        "reload"], capture_output=True, text=True)
    assert r.returncode == 1
    assert json.loads(r.stdout)["status"] == "error"


def test_stale_socket_is_replaced(make_proxy):
    p = make_proxy()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(p.admin_path))       # left behind by a crashed run
    p.start()
    assert p.ctl("status")[0] == 0


def test_live_socket_is_not_stolen(make_proxy):
    first = make_proxy().start()
    second = make_proxy()
    second.settings["admin-socket"] = str(first.admin_path)
    second.write_config()
    r = subprocess.run([str(BINARY), "-c", str(second.conf_path)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "is in use" in second.log() + r.stderr
    assert first.ctl("status")[0] == 0


def test_regular_file_is_not_removed(make_proxy):
    p = make_proxy()
    p.admin_path.write_text("precious")
    r = subprocess.run([str(BINARY), "-c", str(p.conf_path)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert p.admin_path.read_text() == "precious"


def test_socket_removed_on_exit(proxy):
    assert proxy.admin_path.exists()
    assert proxy.stop() == 0
    assert not proxy.admin_path.exists()


def test_disabled_admin_socket(make_proxy):
    p = make_proxy(**{"admin-socket": ""}).start()
    assert not p.admin_path.exists()
    assert p.stop() == 0


def kernel_at_least(major, minor):
    got = tuple(int(x) for x in
                os.uname().release.split("-")[0].split(".")[:2])
    return got >= (major, minor)


def test_a_client_cannot_hand_the_master_a_descriptor(proxy):
    """An admin client (a worker running as the master's user can be one)
    could attach a descriptor to its command; the master would hold and
    close it, and the close of a lingering socket's last reference blocks.
    Where the kernel can refuse descriptors (SO_PASSRIGHTS, Linux 6.16),
    the admin socket does."""
    if not kernel_at_least(6, 16):
        pytest.skip("SO_PASSRIGHTS needs Linux 6.16")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(str(proxy.admin_path))
        refused = offer_lingering_socket(proxy, c, b"status\n")
    assert isinstance(refused, PermissionError), refused
